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

// RunOnce works on due orders as a stream until none is due and none is in
// hand. Workers take the next claimed order as soon as they are free; the
// claim refills them continuously, fairly across apps (see quota), so an
// order that becomes due while the pass runs (a hint, the query after a
// settle) is served in the same pass. At most MaxOrders are held at once.
// Cancelling ctx stops it from starting anything new; the Douyin calls in
// flight finish and their answers are recorded, so a shutdown never turns
// a known outcome into an unknown one.
func (r *Reconciler) RunOnce(ctx context.Context) (PassStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	p := &pass{stats: PassStats{Actions: map[Kind]int{}, Outcomes: map[string]int{}}, held: map[string]int{}, freed: make(chan struct{}, 1),
		tp: newThroughput(r.lease, r.clock.Now())}
	work := make(chan claimedOrder, maxChunk)
	pk := &waitRoom{q: map[budgetKey][]claimedOrder{}}
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Go(func() { r.work(ctx, work, pk, p) })
	}
	err := r.feed(ctx, work, pk, p)
	close(work)
	wg.Wait()
	p.stats.Duration = time.Since(start)
	r.setSoonest(p.soonest)
	if r.onPass != nil {
		r.onPass(p.stats)
	}
	return p.stats, err
}

// pass is one RunOnce's tally and holdings, shared by its workers.
type pass struct {
	mu    sync.Mutex
	stats PassStats
	// held counts the orders in hand (with a worker or waiting for a
	// budget) by app; inHand is their sum.
	held   map[string]int
	inHand int
	// soonest is the earliest next action time a release gave.
	soonest *time.Time
	freed   chan struct{} // a worker let an order go
	// tp is how fast the workers finish orders (see inHandCap).
	tp throughput
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
	p.stats.LetGo += ps.LetGo
}

// take counts claimed orders as in hand.
func (p *pass) take(cs []state.Claim) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.held[c.AppID]++
	}
	p.inHand += len(cs)
}

// done counts an order as let go, with its next action time; worked says
// a worker finished it (at now), which counts towards the throughput.
func (p *pass) done(c state.Claim, next *time.Time, worked bool, now time.Time) {
	p.mu.Lock()
	if worked {
		p.tp.finished(now)
	}
	p.held[c.AppID]--
	p.inHand--
	if next != nil && (p.soonest == nil || next.Before(*p.soonest)) {
		t := *next
		p.soonest = &t
	}
	p.mu.Unlock()
	select {
	case p.freed <- struct{}{}:
	default:
	}
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
			p.done(c, nil, false, time.Time{})
			continue
		}
		if now := r.clock.Now(); stale(c, now, r.lease) {
			// It waited too long in hand: it is due again when its lease
			// ends, and claimed afresh then.
			r.log.WithFields(logrus.Fields{logkey.OrderRow: c.OrderID, logkey.App: c.AppID}).Debug("order let go: its lease is running out")
			lease := c.LeaseUntil
			p.add(PassStats{LetGo: 1}, 0)
			p.done(c, &lease, false, now)
			continue
		}
		canWait := func(k budgetKey) bool {
			return !last && pk.room(k, r.budget.Rate(k.app, k.call), r.lease)
		}
		res := r.reconcileOrder(ctx, c, cw.view, canWait)
		if res.waitingOn != nil {
			// It keeps its view: nothing was applied since it was read.
			pk.put(*res.waitingOn, claimedOrder{claim: c, view: res.view})
			continue
		}
		p.add(res.stats, 1)
		p.done(c, res.next, true, r.clock.Now())
	}
}

// feed claims due orders and hands those with work to the workers, as long
// as any is due or in hand, and ctx lasts. A claim that comes back short
// (nothing more due now) is repeated when there may be more (awaitRefill).
func (r *Reconciler) feed(ctx context.Context, work chan<- claimedOrder, pk *waitRoom, p *pass) error {
	others := time.Time{}  // when the apps not in the policy were last claimed
	scan := max(r.scan, 1) // the next claim reads scan × its quota (see nextScan)
	defer func() { r.scan = scan }()
	var claimed time.Time // when the last claim was made
	odd := false          // which end of an app's due orders gets an odd share's extra one
	for ctx.Err() == nil {
		p.mu.Lock()
		limit := inHandCap(r.max, r.workers, p.tp.rate, r.lease)
		room, inHand := limit-p.inHand, p.inHand
		base := r.quota(p.held, min(room, maxChunk), limit)
		p.mu.Unlock()
		if !refillNow(room, inHand, r.workers, time.Since(claimed)) {
			if !r.awaitRefill(ctx, p) {
				return nil
			}
			continue
		}
		claimed = time.Now()
		q := scaleQuota(base, scan)
		odd = !odd
		q.NewestOdd = odd
		q.Newest = pk.backedUp(q.Apps)
		now := r.clock.Now()
		// The apps outside the policy are looked at once a second, and
		// always before the pass ends.
		if len(q.Apps) > 0 && inHand > 0 && time.Since(others) < time.Second {
			q.Others, base.Others = 0, 0
		} else if len(q.Apps) > 0 {
			others = time.Now()
		}
		want := quotaTotal(q)
		got, busy := 0, 0
		if want > 0 {
			views := map[int64]*state.OrderView{}
			claimed, idle, err := r.store.ClaimFair(ctx, now, q, r.lease, r.owner, r.triage(now, views))
			if err != nil {
				return fmt.Errorf("claim due orders: %w", err)
			}
			got, busy = len(claimed)+idle, len(claimed)
			scan = nextScan(scan, busy, got, want, quotaTotal(base))
			p.add(PassStats{}, idle)
			p.take(claimed)
			for _, c := range claimed {
				work <- claimedOrder{c, leasedView(views[c.OrderID], c)}
			}
		}
		if passDone(busy, inHand, got, want, q.Others > 0) {
			return nil
		}
		if got > 0 && got >= want/2 {
			continue // a backlog: claim on
		}
		if !r.awaitRefill(ctx, p) {
			return nil
		}
	}
	return nil
}

// refillNow tells feed whether to claim now, with room for more orders in
// hand, inHand held, and since the last claim: a claim is a write
// transaction (a commit on disk), so while the workers are busy it waits
// until a quarter of their count is free, or refillAfter has passed, rather
// than claim for every order a worker lets go.
func refillNow(room, inHand, workers int, since time.Duration) bool {
	return inHand == 0 || room >= max(1, workers/4) || since >= refillAfter
}

// refillAfter bounds how long a small refill waits (see refillNow).
const refillAfter = 50 * time.Millisecond

// passDone tells feed to end the pass after a claim that handed busy of
// the got orders it read (it asked for want) to workers, with inHand
// orders held before it; allApps says the claim looked at every app (the
// apps outside the policy are looked at once a second). The pass is done
// when nothing is in hand and the claim read every due order (a short
// claim) and found none to work on: those it read only needed a new time.
// Waiting for a refill then would wait for an order that cannot come.
func passDone(busy, inHand, got, want int, allApps bool) bool {
	return busy == 0 && inHand == 0 && allApps && got < want
}

// nextScan is the factor by which the next claim's quota is read, given
// this claim's: scan, how many of the got orders it read needed a worker
// (busy), how many it asked for (want, scaled) and its unscaled quota
// (base). The quota bounds the orders a claim hands to workers, but most
// due orders often need nothing (a hint on a settled order, a poll that
// finds no change): those are only rescheduled, in the claim's own
// transaction. Reading them a worker's count at a time made a pass over
// 1,000 idle orders 125 commits instead of two. So while full claims come
// back mostly idle the factor grows fourfold (at most maxScan), and it
// halves when a claim hands out more than its unscaled quota, so that the
// orders handed out per claim stay near the quota. A short claim (the
// backlog is read) grows it no further; nothing read says nothing, and the
// factor is kept for the next pass, whose due orders are most often like
// this one's.
func nextScan(scan, busy, got, want, base int) int {
	switch {
	case busy > base:
		return max(1, scan/2)
	case got == want && busy*2 < base:
		return min(scan*4, maxScan)
	}
	return scan
}

// maxScan bounds nextScan's factor; a scaled quota is also held to
// maxChunk per app.
const maxScan = 64

// scaleQuota multiplies every share of q by k, each at most maxChunk.
func scaleQuota(q state.Quota, k int) state.Quota {
	if k <= 1 {
		return q
	}
	out := state.Quota{Others: min(q.Others*k, maxChunk)}
	if q.Apps != nil {
		out.Apps = make(map[string]int, len(q.Apps))
		for id, n := range q.Apps {
			out.Apps[id] = min(n*k, maxChunk)
		}
	}
	return out
}

// refillEvery spaces the claims that find little to do; idleClaim bounds
// the wait between two of them.
const (
	refillEvery = 10 * time.Millisecond
	idleClaim   = time.Second
)

// awaitRefill waits refillEvery, then until a worker lets an order go, a
// hint wakes the reconciler, or the soonest next action a release gave is
// due (at most idleClaim); false when ctx ended.
func (r *Reconciler) awaitRefill(ctx context.Context, p *pass) bool {
	t := time.NewTimer(refillEvery)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	wait := idleClaim
	p.mu.Lock()
	if p.soonest != nil {
		if d := p.soonest.Sub(r.clock.Now()); d > 0 {
			wait = min(wait, d)
		} else {
			p.soonest = nil // due by now: this claim serves it
			wait = 0
		}
	}
	p.mu.Unlock()
	t.Reset(wait)
	select {
	case <-ctx.Done():
		return false
	case <-p.freed:
	case <-r.wake:
	case <-t.C:
	}
	return true
}

// quota is the next claim's share per app. Each app of the policy holds at
// most its part of limit, the orders in hand allowed (at least minHeld),
// so one app's backlog never takes the room another app's due orders
// need; each claim takes at most a
// worker's count of any app, so replicas claiming together share a backlog
// instead of the first taking it all. Without apps in the policy every due
// order is claimed in due order.
func (r *Reconciler) quota(held map[string]int, room, limit int) state.Quota {
	if room <= 0 {
		return state.Quota{}
	}
	n := len(r.policy.Apps)
	bite := max(1, min(room/max(n, 1), r.workers))
	if n == 0 {
		return state.Quota{Others: bite}
	}
	share := max(minHeld, limit/n)
	q := state.Quota{Apps: make(map[string]int, n), Others: bite}
	for id := range r.policy.Apps {
		q.Apps[id] = max(0, min(bite, share-held[id]))
	}
	return q
}

// minHeld is the least share of the orders in hand an app gets.
const minHeld = 4

// leasedView gives a view read before the lease was written the row's
// leased state.
func leasedView(v *state.OrderView, c state.Claim) *state.OrderView {
	if v != nil {
		lease := c.LeaseUntil
		v.Order.Version, v.Order.LeaseUntil, v.Order.NextActionAt, v.Order.LeaseOwner = c.Version, &lease, &lease, c.Owner
	}
	return v
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

// orderDone is what reconcileOrder did with an order.
type orderDone struct {
	stats PassStats
	// waitingOn is the budget the order waits for, still leased, with the
	// view it was planned on; nil when it was released.
	waitingOn *budgetKey
	view      *state.OrderView
	// next is the next action time it was released with (nil: none).
	next *time.Time
}

// reconcileOrder works on one claimed order: plan, apply what is due,
// re-plan, until nothing is due; then releases it with its next time.
func (r *Reconciler) reconcileOrder(stop context.Context, c state.Claim, first *state.OrderView, canWait func(budgetKey) bool) orderDone {
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
			return orderDone{stats: ps, waitingOn: &k, view: v}
		}
		if err := r.apply(fctx, v, due[0], &ps); err != nil {
			log.WithError(err).WithField(logkey.Action, due[0].Kind).Error("apply action")
			ps.Errors++
			failed = true
			break
		}
		if fin.released {
			return orderDone{stats: ps, next: fin.next} // the answer's transaction released the order
		}
	}
	if failed {
		// Something local went wrong (database, lost lease); come back soon.
		t := r.clock.Now().Add(Step(r.policy.Poll, 0))
		next = &t
	}
	r.release(c, next)
	return orderDone{stats: ps, next: next}
}

// release hands a claimed order back with its next action time. It runs
// even during shutdown, so no lease is left behind.
func (r *Reconciler) release(c state.Claim, next *time.Time) {
	if err := r.store.Release(context.Background(), c, next, r.clock.Now()); err != nil {
		r.log.WithError(err).WithField(logkey.OrderRow, c.OrderID).Warn("release order")
	}
}

// quotaTotal is how many orders q asks for in all.
func quotaTotal(q state.Quota) int {
	n := q.Others
	for _, k := range q.Apps {
		n += k
	}
	return n
}
