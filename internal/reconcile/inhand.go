package reconcile

import (
	"time"

	"github.com/payd/payd/internal/state"
)

// An order in hand waits for a worker (or its budget) under a lease. When
// Douyin answers slowly, the workers finish fewer orders per second than a
// full claim hands them, and the last orders of the queue would start
// after their lease ran out: claimed again meanwhile, they would be worked
// twice, the first time for nothing (each of its writes is fenced out, but
// its calls are made). So the orders in hand are held to what the workers
// finish in half a lease (inHandCap), and a worker lets an order go
// without a call when less than half of its lease is left (stale).

// throughput measures how many orders the workers finish per second, over
// windows of half a lease.
type throughput struct {
	window time.Duration
	start  time.Time
	n      int
	rate   float64 // orders/s over the last whole window; < 0 before one
}

func newThroughput(lease time.Duration, now time.Time) throughput {
	return throughput{window: lease / 2, start: now, rate: -1}
}

// finished counts one order finished at now.
func (t *throughput) finished(now time.Time) {
	t.n++
	if d := now.Sub(t.start); d >= t.window && d > 0 {
		t.rate = float64(t.n) / d.Seconds()
		t.start, t.n = now, 0
	}
}

// inHandCap is how many orders may be in hand: batch (reconcile.batch)
// until a rate is known, then what the workers finish in half a lease at
// the measured rate, never less than twice the workers (so that a slow
// window does not starve them) nor more than batch.
func inHandCap(batch, workers int, rate float64, lease time.Duration) int {
	if rate < 0 {
		return batch
	}
	return min(batch, int(max(float64(2*workers), rate*lease.Seconds()/2)))
}

// stale reports whether a claim has less than half of its lease left at
// now: a worker lets such an order go untouched (it is due again by
// itself when the lease ends) rather than call Douyin for it.
func stale(c state.Claim, now time.Time, lease time.Duration) bool {
	return c.LeaseUntil.Sub(now) < lease/2
}
