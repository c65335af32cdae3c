package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/state"
	"github.com/sirupsen/logrus"
)

// RunOnce claims due orders and works on them until none is due (or
// MaxOrders were worked on). Orders hinted while it runs are picked up in the
// same pass. Cancelling ctx stops it from starting anything new; the Douyin
// calls in flight finish and their answers are recorded, so a shutdown never
// turns a known outcome into an unknown one.
func (r *Reconciler) RunOnce(ctx context.Context) (PassStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	p := &pass{stats: PassStats{Actions: map[Kind]int{}, Outcomes: map[string]int{}}}
	work := make(chan claimedOrder)
	pk := &waitRoom{q: map[budgetKey][]claimedOrder{}}
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Go(func() { r.work(ctx, work, pk, p) })
	}
	err := r.feed(ctx, work, p)
	close(work)
	wg.Wait()
	p.stats.Duration = time.Since(start)
	if r.onPass != nil {
		r.onPass(p.stats)
	}
	return p.stats, err
}

// pass is one RunOnce's tally, shared by its workers.
type pass struct {
	mu    sync.Mutex
	stats PassStats
}

func (p *pass) add(ps PassStats, orders int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Orders += orders
	for k, v := range ps.Actions {
		p.stats.Actions[k] += v
	}
	for k, v := range ps.Outcomes {
		p.stats.Outcomes[k] += v
	}
	p.stats.Errors += ps.Errors
}

// work is one worker: it takes claimed orders until there are none left.
func (r *Reconciler) work(ctx context.Context, work <-chan claimedOrder, pk *waitRoom, p *pass) {
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
		canWait := func(k budgetKey) bool {
			return !last && pk.room(k, r.budget.Rate(k.app, k.call), r.lease)
		}
		ps, waitingOn := r.reconcileOrder(ctx, c, cw.view, canWait)
		if waitingOn != nil {
			pk.put(*waitingOn, claimedOrder{claim: c})
			continue
		}
		p.add(ps, 1)
	}
}

// feed claims due orders and hands those with work to the workers, until
// none is due, MaxOrders were claimed or ctx ends.
func (r *Reconciler) feed(ctx context.Context, work chan<- claimedOrder, p *pass) error {
	claimed := 0
	chunk := r.workers
	for claimed < r.max && ctx.Err() == nil {
		n := min(chunk, r.max-claimed)
		now := r.clock.Now()
		views := map[int64]*state.OrderView{}
		busy, idle, err := r.store.ClaimDueTriaged(ctx, now, n, r.lease, r.owner, r.triage(now, views))
		if err != nil {
			return fmt.Errorf("claim due orders: %w", err)
		}
		if len(busy)+idle == 0 {
			return nil
		}
		claimed += len(busy) + idle
		p.add(PassStats{}, idle)
		for _, c := range busy {
			if v := views[c.OrderID]; v != nil {
				// The view was read before the lease was written: give it
				// the row's leased state.
				lease := c.LeaseUntil
				v.Order.Version, v.Order.LeaseUntil, v.Order.NextActionAt, v.Order.LeaseOwner = c.Version, &lease, &lease, c.Owner
			}
			work <- claimedOrder{c, views[c.OrderID]}
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
	return nil
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

// nextOrder gives a worker its next order: a parked one whose budget has a
// token, else a newly claimed one; once nothing more is being claimed, the
// parked ones in turn (last: the worker waits on the bucket instead of
// waitRoom again). ok is false when there is nothing left.
func (r *Reconciler) nextOrder(ctx context.Context, work <-chan claimedOrder, pk *waitRoom) (co claimedOrder, last bool, ok bool) {
	ready := func(k budgetKey) bool { return r.budget == nil || r.budget.Delay(k.app, k.call) <= waitAfter }
	tick := time.NewTicker(waitAfter)
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

// maxSteps bounds the plan-apply rounds spent on one order in one claim.
const maxSteps = 8

// reconcileOrder works on one claimed order: plan, apply what is due,
// re-plan, until nothing is due; then releases it with its next time.
func (r *Reconciler) reconcileOrder(stop context.Context, c state.Claim, first *state.OrderView, canWait func(budgetKey) bool) (PassStats, *budgetKey) {
	ctx := context.WithoutCancel(stop)
	ps := PassStats{Actions: map[Kind]int{}, Outcomes: map[string]int{}}
	log := r.log.WithField(logkey.OrderRow, c.OrderID)
	if first != nil {
		log = r.log.WithFields(logrus.Fields{logkey.App: first.Order.AppID, logkey.Order: first.Order.OutOrderNo})
	}
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
		if k, ok := r.mustWait(v, due[0]); ok && canWait(k) {
			// Its API's budget is backed up: let this worker take an order
			// whose budget is free, and come back to this one (still
			// leased) when the bucket has a token.
			return ps, &k
		}
		if err := r.apply(fctx, v, due[0], &ps); err != nil {
			log.WithError(err).WithField(logkey.Action, due[0].Kind).Error("apply action")
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
		r.log.WithError(err).WithField(logkey.OrderRow, c.OrderID).Warn("release order")
	}
}
