package state

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Grouped is a Store whose InTx calls, made by many goroutines at once,
// share transactions: group commit, as the callback inbox does for
// callbacks. On SQLite every write transaction takes the one connection
// and ends in an fsync (synchronous FULL), so a reconciler of many workers
// spends most of its database time in BEGIN and COMMIT; grouped, the
// intents and answers waiting while one transaction commits go into the
// next one together.
//
// Each call's fn runs in a savepoint of the shared transaction: an error
// rolls back that fn's writes only and is returned to its caller; the
// others commit. InTx returns only after the commit that holds its writes
// (or with the error that lost them: a failed commit fails every call of
// the group), so an intent is durable before its Douyin call exactly as
// with Store.InTx. A lone call runs in a transaction of its own, as
// Store.InTx would run it: grouping adds no wait, pacing (SetPace) at most
// its pace.
//
// The goroutine whose call finds no group committing leads: it commits the
// calls queued up to then (its own among them) and hands the lead to the
// first call queued meanwhile, so no caller waits for more than its own
// group and the one before it, and no goroutine of its own is needed.
//
// Use it on SQLite. On PostgreSQL, transactions of separate connections
// commit in parallel already, and one holding several orders' row locks
// could deadlock with another replica's.
type Grouped struct {
	*Store
	max int

	// pace is the least time between the starts of two commits while
	// calls keep coming (see SetPace); 0: commit as soon as the last did.
	pace time.Duration

	mu       sync.Mutex
	queue    []*groupCall
	leading  bool
	lastOpen time.Time     // when the last group was taken
	rate     float64       // calls a second, counted with a weight that decays over rateDecay (nextRate)
	full     chan struct{} // signalled when the queue reaches max while the leader paces

	groups, calls atomic.Int64
}

type groupCall struct {
	ctx  context.Context
	fn   func(tx *Store) error
	done chan error    // the call's outcome, after its group committed
	lead chan struct{} // the call's goroutine is to commit the next group
}

// Grouped returns s with group commit of at most max calls per transaction
// (64 when max < 1).
func (s *Store) Grouped(max int) *Grouped {
	if max < 1 {
		max = 64
	}
	return &Grouped{Store: s, max: max, full: make(chan struct{}, 1)}
}

// SetPace makes the leader of a group wait, when the last group began less
// than d ago, until d has passed since (or until max calls are queued),
// so that under a steady stream of calls a commit serves d's worth of
// them instead of the one or two that came during the last commit. A
// commit writes every page its calls changed once, the pages all of them
// share (the tables' and indexes' ends, the counters' log) included, and
// syncs; on SQLite at 20 apps the groups held two calls each and the
// commits wrote 29 pages a call. The leader waits only while calls come at
// paceGain or more a d (nextRate's average): sparse calls, as one app's
// are, go at once, and none waits more than d. 0 (the default) turns it
// off.
func (g *Grouped) SetPace(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pace = max(d, 0)
}

// Pace is what SetPace set.
func (g *Grouped) Pace() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pace
}

// paceWait is how long a leader waits before beginning its group: until
// pace has passed since the last group began, unless the queue is full,
// pacing is off, or that time has passed.
func paceWait(now, lastOpen time.Time, pace time.Duration, queued, limit int, rate float64) time.Duration {
	if pace <= 0 || queued >= limit || lastOpen.IsZero() || rate*pace.Seconds() < paceGain {
		return 0
	}
	return min(max(lastOpen.Add(pace).Sub(now), 0), pace) // a clock set back waits no longer than pace
}

// paceGain is the calls a paced wait must be expected to gather (at the
// average rate) for the leader to wait at all: fewer, and the wait would
// delay its own call for little.
const paceGain = 4

// nextRate is the rate of calls, a second, after a group of n calls taken
// gap after the last: calls counted with a weight that decays by e every
// rateDecay, so a steady stream of r calls a second reads r, and a burst
// of a few calls between quiet spells reads a few over rateDecay.
func nextRate(rate float64, n int, gap time.Duration) float64 {
	return rate*math.Exp(-gap.Seconds()/rateDecay.Seconds()) + float64(n)/rateDecay.Seconds()
}

// rateDecay is the time over which nextRate forgets calls.
const rateDecay = 50 * time.Millisecond

// InTx runs fn as Store.InTx does, possibly in one transaction with other
// goroutines' calls (see Grouped).
func (g *Grouped) InTx(ctx context.Context, fn func(tx *Store) error) error {
	c := &groupCall{ctx: ctx, fn: fn, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if len(g.queue) == g.max {
		select { // wake a leader pacing for a group that is now full
		case g.full <- struct{}{}:
		default:
		}
	}
	if !g.leading {
		g.leading = true
		g.mu.Unlock()
		g.commitNext()
		return <-c.done
	}
	g.mu.Unlock()
	select {
	case err := <-c.done:
		return err
	case <-c.lead:
		g.commitNext()
		return <-c.done
	}
}

// ClaimFair is Store.ClaimFair as one call of a group: the claim's leases
// and reschedules commit with the intents and answers queued beside it,
// one commit (an fsync on SQLite) instead of two.
func (g *Grouped) ClaimFair(ctx context.Context, now time.Time, q Quota, lease time.Duration, owner string, triage Triage) (claims []Claim, idle int, err error) {
	err = g.InTx(ctx, func(tx *Store) error {
		var err error
		claims, idle, err = tx.ClaimFair(ctx, now, q, lease, owner, triage)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return claims, idle, nil
}

// GroupStats reports how many transactions the grouped calls took.
func (g *Grouped) GroupStats() (groups, calls int64) { return g.groups.Load(), g.calls.Load() }

// commitNext opens a transaction, then commits in it the calls queued by
// then, at most max, and hands the lead to the first call left queued, if
// any. The group is taken once the transaction holds the connection: on
// SQLite the claim and the callback inbox take it too, and the calls
// queued while the leader waited for it join its group instead of the
// next one.
func (g *Grouped) commitNext() {
	g.awaitPace()
	g.mu.Lock()
	ctx := context.WithoutCancel(g.queue[0].ctx) // the leader's own call
	g.mu.Unlock()
	var group []*groupCall
	var errs []error
	err := g.Store.InTx(ctx, func(tx *Store) error {
		group = g.take()
		errs = make([]error, len(group))
		if len(group) == 1 { // alone: as Store.InTx would run it
			errs[0] = group[0].fn(tx)
			return errs[0]
		}
		for i, c := range group {
			errs[i] = transaction(tx.db, func(sp *gorm.DB) error {
				return c.fn(tx.with(sp))
			})
		}
		return nil
	})
	if group == nil { // the transaction did not begin
		group = g.take()
	}
	g.groups.Add(1)
	g.calls.Add(int64(len(group)))
	for i, c := range group {
		if err != nil {
			c.done <- err // the commit failed: nothing of the group is stored
		} else {
			c.done <- errs[i]
		}
	}

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.mu.Unlock()
	next.lead <- struct{}{}
}

// awaitPace waits as paceWait says, or until the queue fills.
func (g *Grouped) awaitPace() {
	g.mu.Lock()
	wait := paceWait(time.Now(), g.lastOpen, g.pace, len(g.queue), g.max, g.rate)
	g.mu.Unlock()
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait) // a signal left from an earlier wait only shortens this one
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.full:
	}
}

// take removes the next group from the queue: the calls queued now, at
// most max, the leader's first.
func (g *Grouped) take() []*groupCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := min(len(g.queue), g.max)
	now := time.Now()
	g.rate = nextRate(g.rate, n, now.Sub(g.lastOpen))
	g.lastOpen = now
	group := make([]*groupCall, n)
	copy(group, g.queue)
	g.queue = append(g.queue[:0], g.queue[n:]...)
	return group
}
