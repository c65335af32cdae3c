package douyin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultLimits are the documented per-app rates in calls per second.
var DefaultLimits = map[API]float64{
	APICreateOrder:    30,
	APIQueryOrder:     30,
	APICreateRefund:   50,
	APIQueryRefund:    30,
	APISettle:         30,
	APIQuerySettle:    30,
	APIUnsettleAmount: 30,
}

// Back-off tuning: after a 1001 the rate is halved (never below minFraction
// of the configured rate). Further 1001s within backoffHold of a halving are
// answers to calls already in flight: they restart the recovery clock but do
// not halve again. Every recoverEvery without a new 1001 the rate grows by
// recoverStep of the configured rate until it is back.
const (
	minFraction  = 1.0 / 16
	backoffHold  = time.Second
	recoverEvery = 2 * time.Second
	recoverStep  = 0.1
)

// Limiter holds one token bucket per app and API.
type Limiter struct {
	mu      sync.Mutex
	base    map[API]float64
	burst   int
	share   int // the processes sharing each budget (SetShare); at least 1
	slot    int // this process's place among them (SetSlot); -1: none
	now     func() time.Time
	buckets map[bucketKey]*bucket
	window  time.Duration // the calls in flight: those a limit allows in it (SetInFlight); 0: no bound
}

type bucketKey struct {
	app string
	api API
}

type bucket struct {
	lim       *rate.Limiter
	base      float64
	current   float64
	lastShift time.Time // last 1001 or recovery step
	lastHalve time.Time // last halving
	// changed is closed, and replaced, when the bucket is slowed, its
	// slots move or lim is replaced (see Wait).
	changed chan struct{}
	flight  flight // the calls out and not yet answered (see Take)
}

// slowed tells the calls waiting on b that its rate fell, its slots
// moved or its token bucket was replaced. l.mu must be held.
func (b *bucket) slowed() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// NewLimiter returns a limiter with the given rates (calls per second per app
// and API; DefaultLimits fill the gaps), bucket size burst (1 when < 1) and
// clock now (time.Now when nil).
func NewLimiter(limits map[API]float64, burst int, now func() time.Time) *Limiter {
	base := make(map[API]float64, len(DefaultLimits))
	for k, v := range DefaultLimits {
		base[k] = v
	}
	for k, v := range limits {
		if v > 0 {
			base[k] = v
		}
	}
	if burst < 1 {
		burst = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{base: base, burst: burst, share: 1, slot: -1, now: now, buckets: make(map[bucketKey]*bucket)}
}

func (l *Limiter) get(app string, api API) *bucket {
	k := bucketKey{app, api}
	b := l.buckets[k]
	if b == nil {
		r, ok := l.base[api]
		if !ok {
			r = 30
		}
		b = &bucket{base: r, current: r, changed: make(chan struct{})}
		b.lim = l.aligned(b)
		l.buckets[k] = b
	}
	return b
}

// Wait blocks until a call of api for app may go, or ctx is done. It returns
// how long it waited. A call whose bucket is slowed while it waits (a
// larger share, a new slot, a back-off) gives its token back and waits
// again under the new rate: otherwise every worker queued behind the
// bucket would still call at the old rate, for as long as the queue.
func (l *Limiter) Wait(ctx context.Context, app string, api API) (time.Duration, error) {
	start := time.Now()
	l.mu.Lock()
	b := l.get(app, api)
	l.mu.Unlock()
	err := l.waitOn(ctx, b)
	return time.Since(start), err
}

// waitOn is Wait on the bucket b.
func (l *Limiter) waitOn(ctx context.Context, b *bucket) error {
	for i := 0; ; i++ {
		again, err := l.waitToken(ctx, b, i < maxRewaits)
		if err != nil || !again {
			return err
		}
	}
}

// maxRewaits bounds how often one call waits again for a bucket slowed
// meanwhile (a share flapping every heartbeat must not hold it forever).
const maxRewaits = 4

// waitToken waits for one token of b; again when b was slowed meanwhile
// (and watch), the token given back. A slotted replica's token falls on
// its slot when the bucket was empty; one that came between slots (the
// bucket had filled while the replica was idle) is held to the next slot,
// where the other replicas' calls do not fall. The slot is chosen by the
// token's time, not by when this goroutine wakes, so a late wake-up never
// moves a call onto the slot of the token after it.
func (l *Limiter) waitToken(ctx context.Context, b *bucket, watch bool) (again bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	l.mu.Lock()
	l.recover(b)
	lim, changed := b.lim, b.changed
	off, period, step, slotted := l.grid(b)
	l.mu.Unlock()
	if !watch {
		changed = nil
	}
	now := time.Now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, errors.New("rate limit: no token can be reserved")
	}
	at := now.Add(r.DelayFrom(now))
	if slotted {
		at = at.Add(slotWait(at, off, period, step/2))
	}
	if dl, ok := ctx.Deadline(); ok && at.After(dl) {
		r.CancelAt(now)
		return false, fmt.Errorf("rate limit: a wait of %s would pass the call's deadline", at.Sub(now).Round(time.Millisecond))
	}
	if !at.After(now) {
		return false, nil
	}
	t := time.NewTimer(at.Sub(now))
	defer t.Stop()
	select {
	case <-ctx.Done():
		r.Cancel()
		return false, ctx.Err()
	case <-changed:
		r.Cancel()
		return true, nil
	case <-t.C:
		return false, nil
	}
}

// slotWait is how long a call at now waits for its slot: 0 within tol
// after one of the times off, off+period, off+2·period … (a token handed
// out at its slot, a little late), else until the next.
func slotWait(now time.Time, off, period, tol time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	phase := time.Duration((now.UnixNano() - int64(off)) % int64(period))
	if phase < 0 {
		phase += period
	}
	if phase <= tol {
		return 0
	}
	return period - phase
}

// Backoff halves the rate of api for app after a 1001 answer; 1001s that
// arrive within a second of a halving only postpone the recovery.
func (l *Limiter) Backoff(app string, api API) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(app, api)
	l.recover(b)
	now := l.now()
	b.lastShift = now
	if b.current < b.base && now.Sub(b.lastHalve) < backoffHold {
		return
	}
	b.lastHalve = now
	b.current /= 2
	if floor := b.base * minFraction; b.current < floor {
		b.current = floor
	}
	b.slowed()
	if l.slotted() {
		b.lim = l.aligned(b)
	} else {
		b.lim = l.drained(b)
	}
}

// recover raises a halved rate by one step per recoverEvery since the last
// change. l.mu must be held.
func (l *Limiter) recover(b *bucket) {
	if b.current >= b.base {
		return
	}
	now := l.now()
	steps := int(now.Sub(b.lastShift) / recoverEvery)
	if steps <= 0 {
		return
	}
	b.current += float64(steps) * recoverStep * b.base
	if b.current > b.base {
		b.current = b.base
	}
	b.lastShift = b.lastShift.Add(time.Duration(steps) * recoverEvery)
	l.retime(b)
}

// retime puts b's changed rate in force: with a slot, a bucket re-timed
// onto this replica's slots (a backed-off replica skips some of its slots
// rather than call between them, where the other replicas' calls fall);
// without, the same bucket at the new rate. The calls waiting on a
// replaced bucket wait again on the new one: their tokens of the old one
// fall on slots the new one hands out too, and two calls of one replica
// on a slot are a burst Douyin answers 1001. l.mu must be held.
func (l *Limiter) retime(b *bucket) {
	if l.slotted() {
		b.lim = l.aligned(b)
		b.slowed()
		return
	}
	b.lim.SetLimit(l.limit(b))
}

// SetSlot is SetShare(n) for the replica at place i (0 ≤ i < n; places
// are kept for a replica's life, see state.Store.HeartbeatPlace): each
// bucket's tokens then fall at the wall-clock
// times i/L, (i+n)/L, (i+2n)/L … for its limit L, so the replicas' calls
// interleave evenly instead of bunching, and their sum keeps the spacing of
// one process at L. A change of place or count re-times every bucket.
func (l *Limiter) SetSlot(i, n int) {
	n = max(n, 1)
	if i < 0 || i >= n {
		i = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == l.share && i == l.slot {
		return
	}
	l.share, l.slot = n, i
	for _, b := range l.buckets {
		l.recover(b)
		b.lim = l.aligned(b)
		b.slowed()
	}
}

// aligned returns a new token bucket for b at its current limit; with a
// slot (SetSlot), its next token falls on this process's next slot.
func (l *Limiter) aligned(b *bucket) *rate.Limiter {
	lim := rate.NewLimiter(l.limit(b), l.burst)
	off, period, _, ok := l.grid(b)
	if !ok {
		return lim
	}
	now := time.Now()
	last := now.Add(-time.Duration((now.UnixNano() - int64(off)) % int64(period)))
	lim.ReserveN(last, l.burst) // empty at the last slot: the next token comes at the next
	return lim
}

// grid returns this replica's slots for b: the wall-clock times off +
// k·period (in Unix nanoseconds), step apart from the next replica's;
// false when b keeps to no slots. l.mu must be held.
func (l *Limiter) grid(b *bucket) (off, period, step time.Duration, ok bool) {
	if !l.slotted() || b.base <= 0 {
		return 0, 0, 0, false
	}
	step = time.Duration(float64(time.Second) / b.base) // the cluster's spacing
	period = step * time.Duration(l.share*slotSkip(b))
	if period <= 0 {
		return 0, 0, 0, false
	}
	return step * time.Duration(l.slot), period, step, true
}

// limit is b's rate in force: its current rate, this process's share of
// it (with a slot, in whole slots: see slotSkip). l.mu must be held.
func (l *Limiter) limit(b *bucket) rate.Limit {
	if l.slotted() {
		return rate.Limit(b.base / float64(l.share*slotSkip(b)))
	}
	return rate.Limit(b.current / float64(l.share))
}

// slotted reports whether the buckets keep to this replica's slots: there
// is a slot (SetSlot) and another replica to interleave with. l.mu must be
// held.
func (l *Limiter) slotted() bool { return l.slot >= 0 && l.share > 1 }

// slotSkip is how many of its slots a slotted bucket uses one of: 1 at its
// configured rate, k when backed off to between 1/k and 1/(k-1) of it (the
// rate in force is then base/k, never above the backed-off one).
func slotSkip(b *bucket) int {
	if b.current >= b.base || b.current <= 0 {
		return 1
	}
	return int(math.Ceil(b.base/b.current - 1e-9))
}

// SetShare divides every budget among n processes (1 when n < 1): replicas
// of payd calling for the same apps each take 1/n of Douyin's limits.
func (l *Limiter) SetShare(n int) {
	n = max(n, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == l.share {
		return
	}
	slower := n > l.share
	l.share = n
	for _, b := range l.buckets {
		l.recover(b)
		if !slower {
			b.lim.SetLimit(l.limit(b))
			continue
		}
		b.lim = l.drained(b)
		b.slowed()
	}
}

// drained returns a new token bucket for b at its current limit, empty:
// the calls that wait on a slowed bucket give their tokens back and start
// afresh on it, at the new rate from now (on the old bucket they would
// first repay what the queue had reserved at the old rate). l.mu must be
// held.
func (l *Limiter) drained(b *bucket) *rate.Limiter {
	lim := rate.NewLimiter(l.limit(b), l.burst)
	lim.ReserveN(time.Now(), l.burst)
	return lim
}

// Share returns how many processes the budgets are divided among.
func (l *Limiter) Share() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.share
}

// Rate returns the rate in force for api of app in this process, in calls
// per second: after any 1001 back-off, divided by the share.
func (l *Limiter) Rate(app string, api API) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(app, api)
	l.recover(b)
	return float64(l.limit(b))
}

// Delay returns how long a call of api for app would wait for its token if
// it asked now (0 when a token is ready). It takes nothing.
func (l *Limiter) Delay(app string, api API) time.Duration {
	l.mu.Lock()
	b := l.get(app, api)
	l.recover(b)
	lim := b.lim
	l.mu.Unlock()
	tokens := lim.TokensAt(time.Now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second))
}
