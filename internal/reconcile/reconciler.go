// Package reconcile is payd's reconciler: it drives every order toward its
// desired state through a provider.Provider. Plan is a pure function from one
// order's rows and the time to its next actions; Reconciler applies them
// through the provider under its rate limits, following the intent protocol: persist the intent, call, persist the
// result; an unknown outcome is queried before anything is resent.
package reconcile

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// Store is what the reconciler needs of the database. *state.Store
// satisfies it.
type Store interface {
	// ClaimFair, LoadOrder and Release find and hold the orders due.
	ClaimFair(ctx context.Context, now time.Time, q state.Quota, lease time.Duration, owner string, triage state.Triage) ([]state.Claim, int, error)
	LoadOrder(ctx context.Context, id int64) (*state.OrderView, error)
	Release(ctx context.Context, c state.Claim, next *time.Time, now time.Time) error
	// InTx runs every write: an intent, an answer with its attempt row and
	// events, a parking.
	InTx(ctx context.Context, fn func(tx *state.Store) error) error
}

var _ Store = (*state.Store)(nil)

// GroupCommit is st as a reconciler of workers should write to it: on
// SQLite with group commit (state.Grouped: the intents and answers of the
// workers waiting while one transaction commits share the next one; wait
// paces the commits, see Grouped.SetPace), on PostgreSQL st itself (its
// connections commit in parallel).
func GroupCommit(st *state.Store, workers int, wait time.Duration) Store {
	if st.Dialect() == state.DriverSQLite {
		if workers <= 0 {
			workers = 8 // New's default
		}
		g := st.Grouped(workers)
		g.SetPace(wait)
		return g
	}
	return st
}

// Options configure a Reconciler.
type Options struct {
	Store Store
	// Provider speaks to Douyin; when it is also a provider.Budget, an order
	// whose call would wait for its budget gives way to others.
	Provider provider.Provider
	Clock    clock.Clock
	Policy   Policy
	// Workers is how many orders are worked on at once; 8 when zero.
	Workers int
	// Lease is how long a claimed order is reserved for its worker; 2m when zero.
	Lease time.Duration
	// MaxOrders bounds the orders held at once (with a worker or waiting for
	// their budget); each app of the policy holds at most its share of
	// them. 100000 when zero.
	MaxOrders int
	// Owner names this process in leases; "payd" when empty.
	Owner string
	// Log receives one line per decision; discarded when nil.
	Log *logrus.Entry
	// Observe, when set, is told of every action's outcome (for metrics).
	Observe func(ActionResult)
	// ObservePass, when set, is told of every finished pass.
	ObservePass func(PassStats)
	// Rand returns uniform numbers in [0,1) for jitter; math/rand when nil.
	Rand func() float64
}

// ActionResult is the outcome of one applied action.
type ActionResult struct {
	// Parked is the reason when the action parked its item.
	Parked string
	// Order is the out_order_no acted on, App its app_id.
	Order, App string
	Action     Action
	// Outcome is the class of the Douyin answer ("ok", "unknown" …), or
	// "local" for actions that need no call.
	Outcome string
	ErrNo   int
	Err     error
}

// PassStats summarises one RunOnce.
type PassStats struct {
	Orders   int            // orders claimed and worked on
	Actions  map[Kind]int   // actions applied, by kind
	Outcomes map[string]int // call outcomes by class
	Errors   int            // orders whose work stopped on an error
	// LetGo counts the orders a worker let go untouched, their lease
	// running out while they waited in hand (Douyin slower than the
	// claims): each is claimed afresh when its lease ends.
	LetGo    int
	Duration time.Duration
}

// Reconciler drives orders to their desired state.
type Reconciler struct {
	store   Store
	dy      provider.Provider
	clock   clock.Clock
	policy  Policy
	workers int
	lease   time.Duration
	max     int
	owner   string
	log     *logrus.Entry
	observe func(ActionResult)
	onPass  func(PassStats)
	rand    func() float64

	budget provider.Budget // nil: never park

	warned sync.Map // app_id → a settle_period warning was logged

	wake  chan struct{}
	mu    sync.Mutex // one pass at a time
	scan  int        // the claim's read factor the last pass ended with (see nextScan); under mu
	timer *time.Timer
	tmu   sync.Mutex   // guards timer
	next  atomic.Value // time.Time: the soonest next action the last pass set

}

// New returns a reconciler.
func New(o Options) *Reconciler {
	r := &Reconciler{
		store: o.Store, dy: o.Provider, clock: o.Clock, policy: o.Policy,
		workers: o.Workers, lease: o.Lease, max: o.MaxOrders, owner: o.Owner,
		log: o.Log, observe: o.Observe, onPass: o.ObservePass, rand: o.Rand,
		wake: make(chan struct{}, 1),
	}
	if b, ok := o.Provider.(provider.Budget); ok {
		r.budget = b
	}
	if r.clock == nil {
		r.clock = clock.Real{}
	}
	if r.workers <= 0 {
		r.workers = 8
	}
	if r.lease <= 0 {
		r.lease = 2 * time.Minute
	}
	if r.max <= 0 {
		r.max = 100000
	}
	if r.owner == "" {
		r.owner = "payd"
	}
	if r.log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		r.log = logrus.NewEntry(l)
	}
	if r.rand == nil {
		r.rand = randFloat
	}
	return r
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Wake asks the loop started by Run for a pass at once. It never blocks.
func (r *Reconciler) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run calls RunOnce whenever Wake is called, until ctx is done. A pass in
// flight when ctx ends is finished first by RunOnce's own handling.
func (r *Reconciler) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		ps, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.WithError(err).Error("reconcile pass failed")
		}
		r.logPass(ctx, ps)
		r.wakeAtSoonest()
	}
}

// soonHorizon bounds how far ahead Run sets a wake-up for the soonest next
// action a pass gave; later ones are left to the schedule and to hints.
const soonHorizon = time.Minute

// setSoonest remembers the soonest next action time a pass gave.
func (r *Reconciler) setSoonest(t *time.Time) {
	if t != nil {
		r.next.Store(*t)
	} else {
		r.next.Store(time.Time{})
	}
}

// wakeAtSoonest wakes Run when the soonest next action the last pass gave
// (the query that follows a settle, say) is due, so it is served within
// moments of being due rather than at the next scheduled pass.
func (r *Reconciler) wakeAtSoonest() {
	t, _ := r.next.Load().(time.Time)
	if t.IsZero() {
		return
	}
	d := t.Sub(r.clock.Now())
	if d > soonHorizon {
		return
	}
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = time.AfterFunc(max(d, 0), r.Wake)
}

// logPass writes one info line for a pass that did work: what it did, the
// calls it made and how many Douyin refused as too frequent; and stores
// the same as the pass's record (recordPass).
func (r *Reconciler) logPass(ctx context.Context, ps PassStats) {
	acts := 0
	for _, n := range ps.Actions {
		acts += n
	}
	if acts == 0 && ps.Errors == 0 && ps.LetGo == 0 {
		return
	}
	calls := 0
	for o, n := range ps.Outcomes {
		if o != "local" {
			calls += n
		}
	}
	r.log.WithFields(logrus.Fields{
		"orders": ps.Orders, "actions": acts, "calls": calls, "retryable": ps.Outcomes["retryable"],
		"errors": ps.Errors, "let_go": ps.LetGo, "took": ps.Duration.Round(time.Millisecond).String(),
	}).Info("reconcile pass done")
	r.recordPass(ctx, ps, acts, calls)
}
