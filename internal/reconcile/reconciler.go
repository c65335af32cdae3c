// Package reconcile is payd's reconciler: it drives every order toward its
// desired state through a provider.Provider. Plan is a pure function from one
// order's rows and the time to its next actions; Reconciler applies them through Douyin under the rate limits,
// following the intent protocol: persist the intent, call, persist the
// result; an unknown outcome is queried before anything is resent.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/state"
)

// Douyin is the part of the ecpay API the reconciler calls. *douyin.Client
// satisfies it.
type Douyin interface {
	QueryOrder(ctx context.Context, req douyin.QueryOrderRequest) (*douyin.QueryOrderResponse, error)
	CreateRefund(ctx context.Context, req douyin.CreateRefundRequest) (*douyin.CreateRefundResponse, error)
	QueryRefund(ctx context.Context, req douyin.QueryRefundRequest) (*douyin.RefundInfo, error)
	Settle(ctx context.Context, req douyin.SettleRequest) (*douyin.SettleResponse, error)
	QuerySettle(ctx context.Context, req douyin.QuerySettleRequest) (*douyin.SettleInfo, error)
}

var _ Douyin = (*douyin.Client)(nil)

// Store is what the reconciler needs of the database. *state.Store
// satisfies it.
type Store interface {
	LoadOrder(ctx context.Context, id int64) (*state.OrderView, error)
	Release(ctx context.Context, c state.Claim, next *time.Time, now time.Time) error
	ClaimDueTriaged(ctx context.Context, now time.Time, limit int, lease time.Duration, owner string, triage state.Triage) ([]state.Claim, int, error)
	UpdateOrder(ctx context.Context, o *state.Order, events ...state.NewEvent) error
	UpdateRefund(ctx context.Context, r *state.Refund, from state.Phase, events ...state.NewEvent) error
	UpdateSettlement(ctx context.Context, st *state.Settlement, from state.Phase, events ...state.NewEvent) error
	AppendAttempt(ctx context.Context, a *state.Attempt) error
	InTx(ctx context.Context, fn func(tx *state.Store) error) error
}

var _ Store = (*state.Store)(nil)

// Options configure a Reconciler.
type Options struct {
	Store  Store
	Douyin Douyin
	Clock  clock.Clock
	Policy Policy
	// Workers is how many orders are worked on at once; 8 when zero.
	Workers int
	// Lease is how long a claimed order is reserved for its worker; 2m when zero.
	Lease time.Duration
	// MaxOrders bounds the orders one pass works on; 100000 when zero.
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
	// Order is the out_order_no acted on.
	Order  string
	Action Action
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
	Duration time.Duration
}

// Reconciler drives orders to their desired state.
type Reconciler struct {
	store   Store
	dy      Douyin
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

	budget Budget // nil: never park

	wake chan struct{}
	mu   sync.Mutex // one pass at a time
}

// New returns a reconciler.
func New(o Options) *Reconciler {
	r := &Reconciler{
		store: o.Store, dy: o.Douyin, clock: o.Clock, policy: o.Policy,
		workers: o.Workers, lease: o.Lease, max: o.MaxOrders, owner: o.Owner,
		log: o.Log, observe: o.Observe, onPass: o.ObservePass, rand: o.Rand,
		wake: make(chan struct{}, 1),
	}
	if b, ok := o.Douyin.(Budget); ok {
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
		if ps.Orders >= r.max {
			r.Wake() // the pass stopped at its bound: more may be due
		}
	}
}

// RunOnce claims due orders and works on them until none is due (or
// MaxOrders were worked on). Orders hinted while it runs are picked up in the
// same pass. Cancelling ctx stops it from starting anything new; the Douyin
// calls in flight finish and their answers are recorded, so a shutdown never
// turns a known outcome into an unknown one.
func (r *Reconciler) RunOnce(ctx context.Context) (PassStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	stats := PassStats{Actions: map[Kind]int{}, Outcomes: map[string]int{}}
	var smu sync.Mutex
	work := make(chan claimedOrder)
	pk := &parking{q: map[parkKey][]claimedOrder{}}
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cw, last, ok := r.nextOrder(ctx, work, pk)
				if !ok {
					return
				}
				c := cw.claim
				if ctx.Err() != nil {
					// Shutting down: hand the claim back untouched.
					r.release(c, &[]time.Time{r.clock.Now()}[0])
					continue
				}
				canPark := func(k parkKey) bool {
					return !last && pk.room(k, r.budget.Rate(k.app, k.api), r.lease)
				}
				ps, parkedAt := r.reconcileOrder(ctx, c, cw.view, canPark)
				if parkedAt != nil {
					pk.put(*parkedAt, claimedOrder{claim: c})
					continue
				}
				smu.Lock()
				stats.Orders++
				for k, v := range ps.Actions {
					stats.Actions[k] += v
				}
				for k, v := range ps.Outcomes {
					stats.Outcomes[k] += v
				}
				stats.Errors += ps.Errors
				smu.Unlock()
			}
		}()
	}
	var err error
	claimed := 0
	chunk := r.workers
	for claimed < r.max && ctx.Err() == nil {
		n := min(chunk, r.max-claimed)
		now := r.clock.Now()
		views := map[int64]*state.OrderView{}
		busy, idle, cerr := r.store.ClaimDueTriaged(ctx, now, n, r.lease, r.owner, r.triage(now, views))
		if cerr != nil {
			err = fmt.Errorf("claim due orders: %w", cerr)
			break
		}
		if len(busy)+idle == 0 {
			break
		}
		claimed += len(busy) + idle
		smu.Lock()
		stats.Orders += idle
		smu.Unlock()
		for _, c := range busy {
			v := views[c.OrderID]
			if v != nil {
				// The view was read before the lease was written: give it
				// the row's leased state.
				lease := c.LeaseUntil
				v.Order.Version, v.Order.LeaseUntil, v.Order.NextActionAt, v.Order.LeaseOwner = c.Version, &lease, &lease, c.Owner
			}
			work <- claimedOrder{c, v}
		}
		// Mostly nothing to do (hints that came to nothing, schedules not
		// yet due): take bigger bites; otherwise one order per worker, so
		// a hinted order waits for at most one order's work.
		if len(busy) == 0 {
			chunk = maxChunk
		} else {
			chunk = r.workers
		}
	}
	close(work)
	wg.Wait()
	stats.Duration = time.Since(start)
	if r.onPass != nil {
		r.onPass(stats)
	}
	return stats, err
}

// maxChunk bounds how many orders one claim takes.
const maxChunk = 512

// claimedOrder is an order handed to a worker, with the view the claim read
// (its rows cannot change under the lease but through hints, which the
// release honours), so the worker's first step needs no second read.
type claimedOrder struct {
	claim state.Claim
	view  *state.OrderView
}

// triage tells the claim which due orders need a worker: those whose plan
// has an action due now; their views are kept in keep. The others are
// rescheduled inside the claim.
func (r *Reconciler) triage(now time.Time, keep map[int64]*state.OrderView) state.Triage {
	return func(v *state.OrderView) (bool, *time.Time) {
		acts := Plan(*v, now, r.policy)
		if len(DueNow(acts, now)) > 0 {
			keep[v.Order.ID] = v
			return true, nil
		}
		return false, NextAfter(acts, now)
	}
}

// Budget tells how long a call would wait for its rate-limit token now.
// *douyin.Client satisfies it; without it the reconciler never parks.
type Budget interface {
	Delay(appID string, api douyin.API) time.Duration
	Rate(appID string, api douyin.API) float64
}

// parkAfter is the token wait beyond which a worker parks an order instead
// of blocking on its API's bucket while other APIs' budgets may sit idle.
const parkAfter = 20 * time.Millisecond

// parkKey names one rate budget: an app's API.
type parkKey struct {
	app string
	api douyin.API
}

// parking holds claimed orders waiting for their API's budget, first in,
// first out per budget.
type parking struct {
	mu sync.Mutex
	q  map[parkKey][]claimedOrder
}

func (p *parking) put(k parkKey, co claimedOrder) {
	p.mu.Lock()
	p.q[k] = append(p.q[k], co)
	p.mu.Unlock()
}

// room reports whether one more order fits behind k's queue: at most what
// the budget serves in a quarter of a lease, so a parked order's lease
// cannot run out while it waits.
func (p *parking) room(k parkKey, rate float64, lease time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(len(p.q[k])) < rate*lease.Seconds()/4
}

// take pops the oldest order of a budget that ready accepts (any budget
// when ready is nil).
func (p *parking) take(ready func(parkKey) bool) (claimedOrder, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, q := range p.q {
		if len(q) == 0 || (ready != nil && !ready(k)) {
			continue
		}
		co := q[0]
		if len(q) == 1 {
			delete(p.q, k)
		} else {
			p.q[k] = q[1:]
		}
		return co, true
	}
	return claimedOrder{}, false
}

// nextOrder gives a worker its next order: a parked one whose budget has a
// token, else a newly claimed one; once nothing more is being claimed, the
// parked ones in turn (last: the worker waits on the bucket instead of
// parking again). ok is false when there is nothing left.
func (r *Reconciler) nextOrder(ctx context.Context, work <-chan claimedOrder, pk *parking) (co claimedOrder, last bool, ok bool) {
	ready := func(k parkKey) bool { return r.budget == nil || r.budget.Delay(k.app, k.api) <= parkAfter }
	tick := time.NewTicker(parkAfter)
	defer tick.Stop()
	done := ctx.Done()
	for {
		if co, ok := pk.take(ready); ok {
			return co, false, true
		}
		select {
		case co, ok := <-work:
			if ok {
				return co, false, true
			}
			// Nothing more is being claimed: drain the parked orders.
			co, ok = pk.take(nil)
			return co, true, ok
		case <-tick.C:
		case <-done:
			if co, ok := pk.take(nil); ok {
				return co, true, true // released by the caller
			}
			done = nil // wait for the feeder to close work
		}
	}
}

// parkable reports the budget a due action would wait on.
func (r *Reconciler) parkable(v *state.OrderView, a Action) (parkKey, bool) {
	if r.budget == nil {
		return parkKey{}, false
	}
	var api douyin.API
	switch a.Kind {
	case KindQueryOrder:
		api = douyin.APIQueryOrder
	case KindSubmitRefund:
		api = douyin.APICreateRefund
	case KindQueryRefund:
		api = douyin.APIQueryRefund
	case KindSubmitSettle:
		api = douyin.APISettle
	case KindQuerySettle:
		api = douyin.APIQuerySettle
	default:
		return parkKey{}, false // no call
	}
	k := parkKey{v.Order.AppID, api}
	return k, r.budget.Delay(k.app, k.api) > parkAfter
}

// maxSteps bounds the plan-apply rounds spent on one order in one claim.
const maxSteps = 8

// reconcileOrder works on one claimed order: plan, apply what is due,
// re-plan, until nothing is due; then releases it with its next time.
func (r *Reconciler) reconcileOrder(stop context.Context, c state.Claim, first *state.OrderView, canPark func(parkKey) bool) (PassStats, *parkKey) {
	ctx := context.WithoutCancel(stop)
	ps := PassStats{Actions: map[Kind]int{}, Outcomes: map[string]int{}}
	log := r.log.WithField("order_id", c.OrderID)
	var next *time.Time
	failed := false
	fin := &finisher{claim: c}
	fctx := context.WithValue(ctx, finishKey{}, fin)
	for step := 0; ; step++ {
		now := r.clock.Now()
		v, err := first, error(nil)
		if v == nil {
			v, err = r.store.LoadOrder(ctx, c.OrderID)
		}
		first = nil
		if err != nil {
			log.WithError(err).Error("load order")
			ps.Errors++
			failed = true
			break
		}
		acts := Plan(*v, now, r.policy)
		due := DueNow(acts, now)
		next = NextAfter(acts, now)
		if len(due) == 0 || step == maxSteps || stop.Err() != nil {
			if len(due) > 0 {
				next = &now // more to do: come back at once
			}
			break
		}
		if k, ok := r.parkable(v, due[0]); ok && canPark(k) {
			// Its API's budget is backed up: let this worker take an order
			// whose budget is free, and come back to this one (still
			// leased) when the bucket has a token.
			return ps, &k
		}
		if err := r.apply(fctx, v, due[0], &ps); err != nil {
			log.WithError(err).WithField("action", due[0].Kind).Error("apply action")
			ps.Errors++
			failed = true
			break
		}
		if fin.released {
			return ps, nil // the answer's transaction released the order
		}
	}
	if failed {
		// Something local went wrong (database, lost lease); come back soon.
		t := r.clock.Now().Add(Step(r.policy.Poll, 0))
		next = &t
	}
	r.release(c, next)
	return ps, nil
}

// release hands a claimed order back with its next action time. It runs
// even during shutdown, so no lease is left behind.
func (r *Reconciler) release(c state.Claim, next *time.Time) {
	if err := r.store.Release(context.Background(), c, next, r.clock.Now()); err != nil {
		r.log.WithError(err).WithField("order_id", c.OrderID).Warn("release order")
	}
}

// apply runs one action against Douyin and records its result.
func (r *Reconciler) apply(ctx context.Context, v *state.OrderView, a Action, ps *PassStats) error {
	ps.Actions[a.Kind]++
	var res ActionResult
	var err error
	switch a.Kind {
	case KindQueryOrder:
		res, err = r.queryOrder(ctx, v)
	case KindSubmitRefund:
		res, err = r.submitRefund(ctx, v, a)
	case KindQueryRefund:
		res, err = r.queryRefund(ctx, v, a)
	case KindSubmitSettle:
		res, err = r.submitSettle(ctx, v, a)
	case KindQuerySettle:
		res, err = r.querySettle(ctx, v, a)
	case KindParkRefund:
		res, err = r.parkRefund(ctx, v, a)
	case KindParkSettle:
		res, err = r.parkSettle(ctx, v, a)
	case KindSkipSettle:
		res, err = r.skipSettle(ctx, v, a)
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	res.Action = a
	res.Order = v.Order.OutOrderNo
	if res.Outcome != "" {
		ps.Outcomes[res.Outcome]++
	}
	if r.observe != nil {
		res.Err = err
		r.observe(res)
	}
	entry := r.log.WithFields(logrus.Fields{"order": v.Order.OutOrderNo, "action": a.Kind, "no": a.MerchantNo, "outcome": res.Outcome})
	if res.ErrNo > 0 {
		entry = entry.WithField("err_no", res.ErrNo)
	}
	entry.Debug(a.Reason)
	if errors.Is(err, state.ErrConflict) {
		// Someone else moved the row: re-plan from what is stored now.
		return nil
	}
	return err
}

// findRefund returns the refund with id from the view.
func findRefund(v *state.OrderView, id int64) (*state.Refund, error) {
	for i := range v.Refunds {
		if v.Refunds[i].ID == id {
			r := v.Refunds[i]
			return &r, nil
		}
	}
	return nil, fmt.Errorf("refund %d of order %s: %w", id, v.Order.OutOrderNo, state.ErrNotFound)
}

// attempt builds the attempt-log row of one call; save writes it.
func (r *Reconciler) attempt(v *state.OrderView, resource string, id int64, api douyin.API, no string, err error, latency time.Duration) (*state.Attempt, douyin.Class, int) {
	class := douyin.Classify(err)
	errNo := 0
	tips := ""
	if err != nil {
		errNo = douyin.ErrNo(err)
		tips = err.Error()
		var ae *douyin.APIError
		if errors.As(err, &ae) {
			tips = ae.ErrTips
		}
	}
	return &state.Attempt{
		OrderID: v.Order.ID, Resource: resource, ResourceID: id, API: string(api), MerchantNo: no,
		ErrNo: errNo, ErrTips: truncate(tips, 200), Outcome: outcomeName(class, api, errNo), LatencyMS: latency.Milliseconds(),
	}, class, errNo
}

// save records a call's attempt row and its result (apply, may be nil) in
// one transaction: one fsync per answer, and the log never shows an answer
// whose consequence was not written. If the result lost a race, the attempt
// is still recorded on its own: a call was made.
func (r *Reconciler) save(ctx context.Context, att *state.Attempt, apply func(tx *state.Store) error) error {
	fin, _ := ctx.Value(finishKey{}).(*finisher)
	releasing := false
	err := r.store.InTx(ctx, func(tx *state.Store) error {
		releasing = false
		if err := tx.AppendAttempt(ctx, att); err != nil {
			return fmt.Errorf("append attempt %s %s: %w", att.API, att.MerchantNo, err)
		}
		if apply == nil {
			return nil
		}
		if err := apply(tx); err != nil {
			return err
		}
		if fin != nil {
			releasing = r.finishInTx(ctx, tx, fin.claim)
		}
		return nil
	})
	if err == nil && releasing {
		fin.released = true
	}
	if err != nil && (errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrInvalid)) {
		att.ID = 0
		if aerr := r.store.AppendAttempt(ctx, att); aerr != nil {
			return errors.Join(err, fmt.Errorf("append attempt %s %s: %w", att.API, att.MerchantNo, aerr))
		}
	}
	return err
}

// finisher lets the transaction that records an answer also release the
// order when that answer leaves nothing due now: one fsync instead of two.
type finisher struct {
	claim    state.Claim
	released bool
}

type finishKey struct{}

// finishInTx re-plans the order inside tx and, if nothing is due now,
// releases it there. A release that fails (a lost lease) is undone alone (a
// savepoint) and leaves the release to the worker.
func (r *Reconciler) finishInTx(ctx context.Context, tx *state.Store, c state.Claim) bool {
	v, err := tx.LoadOrder(ctx, c.OrderID)
	if err != nil {
		return false
	}
	now := r.clock.Now()
	acts := Plan(*v, now, r.policy)
	if len(DueNow(acts, now)) > 0 {
		return false
	}
	return tx.Release(ctx, c, NextAfter(acts, now), now) == nil
}

// outcomeName names a call's outcome for the attempt log and metrics: the
// class, except that a query's definite "no such number" is "not_found" —
// for a write whose outcome was unknown it is the proof that allows a
// resend, not a permanent failure.
func outcomeName(class douyin.Class, api douyin.API, errNo int) string {
	switch {
	case api == douyin.APIQueryRefund && errNo == douyin.ErrNoRefundNotFound,
		(api == douyin.APIQueryOrder || api == douyin.APIQuerySettle) && errNo == douyin.ErrNoOrderNotFound:
		return "not_found"
	}
	return class.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (r *Reconciler) jittered(now time.Time, schedule []time.Duration, n int) *time.Time {
	t := NextAt(now, schedule, n, r.policy.Jitter, r.rand())
	return &t
}

func tipsOf(err error) string {
	var ae *douyin.APIError
	if errors.As(err, &ae) {
		return ae.ErrTips
	}
	if err != nil {
		return truncate(err.Error(), 200)
	}
	return ""
}
