package reconcile

import (
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

func TestInHandCap(t *testing.T) {
	for _, c := range []struct {
		name           string
		batch, workers int
		rate           float64
		lease          time.Duration
		want           int
	}{
		{"no rate yet: the batch", 500, 32, -1, 5 * time.Second, 500},
		{"slow Douyin: half a lease of work", 500, 4, 20, 10 * time.Second, 100},
		{"very slow: twice the workers", 500, 32, 1, 5 * time.Second, 64},
		{"fast: the batch", 500, 32, 3000, 2 * time.Minute, 500},
		{"stalled (rate 0): twice the workers", 500, 8, 0, time.Minute, 16},
	} {
		if got := inHandCap(c.batch, c.workers, c.rate, c.lease); got != c.want {
			t.Errorf("%s: inHandCap(%d, %d, %v, %s) = %d, want %d", c.name, c.batch, c.workers, c.rate, c.lease, got, c.want)
		}
	}
}

func TestThroughput(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tp := newThroughput(4*time.Second, t0) // windows of 2 s
	for i := 1; i <= 9; i++ {
		tp.finished(t0.Add(time.Duration(i) * 200 * time.Millisecond))
	}
	if tp.rate >= 0 {
		t.Fatalf("rate %v after 1.8 s of a 2 s window, want none yet", tp.rate)
	}
	tp.finished(t0.Add(2 * time.Second)) // the 10th closes the window
	if tp.rate != 5 {
		t.Fatalf("rate %v, want 10 orders / 2 s = 5", tp.rate)
	}
	tp.finished(t0.Add(6 * time.Second)) // one in the next 4 s
	if tp.rate != 0.25 {
		t.Fatalf("rate %v, want 1 / 4 s = 0.25", tp.rate)
	}
}

func TestStale(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	lease := time.Minute
	for _, c := range []struct {
		left time.Duration
		want bool
	}{{time.Minute, false}, {31 * time.Second, false}, {30 * time.Second, false}, {29 * time.Second, true}, {0, true}, {-time.Second, true}} {
		if got := stale(state.Claim{LeaseUntil: now.Add(c.left)}, now, lease); got != c.want {
			t.Errorf("%s of a %s lease left: stale %v, want %v", c.left, lease, got, c.want)
		}
	}
}

func TestRefillNow(t *testing.T) {
	for _, c := range []struct {
		name                  string
		room, inHand, workers int
		since                 time.Duration
		want                  bool
	}{
		{"nothing in hand: claim", 1, 0, 32, 0, true},
		{"a quarter of the workers free: claim", 8, 100, 32, 0, true},
		{"one free, just claimed: wait", 1, 100, 32, time.Millisecond, false},
		{"one free, a while since: claim", 1, 100, 32, refillAfter, true},
		{"few workers: one is a quarter", 1, 10, 3, 0, true},
		{"no room: wait", 0, 500, 32, time.Millisecond, false},
	} {
		if got := refillNow(c.room, c.inHand, c.workers, c.since); got != c.want {
			t.Errorf("%s: refillNow(%d, %d, %d, %s) = %v, want %v", c.name, c.room, c.inHand, c.workers, c.since, got, c.want)
		}
	}
}
