package douyin

import (
	"context"
	"math"
	"time"
)

// The calls in flight. A token bucket spaces the calls payd sends, but a
// delay anywhere between payd and Douyin's limiter (the network, a busy
// host, a paused process) lets the calls sent during it arrive together:
// at the limit, Douyin's bucket has nothing left for them and answers
// 1001. So each bucket also bounds the calls of its app and API that are
// out and not yet answered: a call goes out only when there is room, and
// a stall on the path holds back the calls behind it instead of releasing
// them at once after it.
//
// The bound is the calls Douyin's limit allows in a window (SetInFlight;
// payd's config defaults to 100 ms: 3 calls at 30/s), shared among the
// replicas (at least one each). It never holds the rate below the limit:
// when the answers take longer, the room grows to what the rate needs over
// an answer's latency (an average of the last answers' latencies).

// latencyWeight is the weight of each answer in the latency average.
const latencyWeight = 0.2

// flight is a bucket's calls in flight; the Limiter's mu guards it.
type flight struct {
	held    int
	freed   chan struct{} // closed when a call lands; nil until one waits
	latency time.Duration // average of the answers' latencies; 0 before any
}

// SetInFlight bounds the calls of one API for one app in flight, across
// the replicas sharing the budget, to those its limit allows in window;
// 0 removes the bound. Each replica takes its share of the bound, at least
// one call.
func (l *Limiter) SetInFlight(window time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.window = max(window, 0)
	for _, b := range l.buckets {
		b.flight.wake()
	}
}

// InFlight returns SetInFlight's window (0: no bound).
func (l *Limiter) InFlight() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.window
}

// Take is Wait for a call that also waits for room among the calls in
// flight (see SetInFlight) first. done must be called once, when the
// call's answer is in or it failed, with the exchange's latency (0 when no
// answer came: the average is left as it was). waited covers both waits.
func (l *Limiter) Take(ctx context.Context, app string, api API) (done func(latency time.Duration), waited time.Duration, err error) {
	start := time.Now()
	l.mu.Lock()
	b := l.get(app, api)
	l.mu.Unlock()
	if err := l.board(ctx, b); err != nil {
		return nil, time.Since(start), err
	}
	landed := false
	done = func(latency time.Duration) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !landed {
			landed = true
			b.flight.land(latency)
		}
	}
	if err := l.waitOn(ctx, b); err != nil {
		done(0)
		return nil, time.Since(start), err
	}
	return done, time.Since(start), nil
}

// board waits until b has room for one more call in flight and counts it.
func (l *Limiter) board(ctx context.Context, b *bucket) error {
	for {
		l.mu.Lock()
		l.recover(b)
		if l.window <= 0 || b.flight.held < flightRoom(l.bound(b), l.share, float64(l.limit(b)), b.flight.latency) {
			b.flight.held++
			l.mu.Unlock()
			return nil
		}
		if b.flight.freed == nil {
			b.flight.freed = make(chan struct{})
		}
		freed := b.flight.freed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-freed:
		}
	}
}

// bound is the cluster's bound on b's calls in flight: those its
// configured limit allows in the window, at least one. l.mu must be held.
func (l *Limiter) bound(b *bucket) int {
	return max(1, int(math.Ceil(b.base*l.window.Seconds()-1e-9)))
}

// land counts a call out of flight and folds its latency into the
// average; the calls waiting for room look again.
func (f *flight) land(latency time.Duration) {
	f.held--
	if latency > 0 {
		if f.latency == 0 {
			f.latency = latency
		} else {
			f.latency += time.Duration(latencyWeight * float64(latency-f.latency))
		}
	}
	f.wake()
}

// wake tells the calls waiting for room to look again.
func (f *flight) wake() {
	if f.freed != nil {
		close(f.freed)
		f.freed = nil
	}
}

// flightRoom is how many calls of one app and API one replica may have in
// flight: its share of the cluster's bound (at least one), or, when the
// answers take longer, the calls its rate sends over an answer's latency.
func flightRoom(bound, share int, rate float64, latency time.Duration) int {
	part := max(1, bound/max(share, 1))
	need := int(math.Ceil(rate*latency.Seconds() - 1e-9))
	return max(part, need)
}
