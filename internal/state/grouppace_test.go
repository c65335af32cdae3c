package state

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// TestPaceWait: a leader waits until pace has passed since the last group
// began, and only while calls come fast enough for the wait to gather
// paceGain of them; never with a full queue, pacing off, or no group yet.
func TestPaceWait(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const pace = 5 * time.Millisecond
	stream := 2000.0 // calls a second: 10 in a pace
	cases := []struct {
		name     string
		now      time.Time
		lastOpen time.Time
		pace     time.Duration
		queued   int
		rate     float64
		want     time.Duration
	}{
		{"a stream, the last group just began", t0.Add(time.Millisecond), t0, pace, 1, stream, 4 * time.Millisecond},
		{"a stream, pace passed", t0.Add(6 * time.Millisecond), t0, pace, 1, stream, 0},
		{"a stream, exactly pace", t0.Add(pace), t0, pace, 3, stream, 0},
		{"a full queue goes at once", t0.Add(time.Millisecond), t0, pace, 64, stream, 0},
		{"pacing off", t0.Add(time.Millisecond), t0, 0, 1, stream, 0},
		{"no group yet", t0, time.Time{}, pace, 1, stream, 0},
		{"sparse calls: fewer than paceGain in a pace", t0.Add(time.Millisecond), t0, pace, 1, 700, 0},
		{"just enough calls: paceGain in a pace", t0.Add(time.Millisecond), t0, pace, 1, 800, 4 * time.Millisecond},
		{"a clock set back waits one pace at most", t0.Add(-time.Second), t0, pace, 1, stream, pace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := paceWait(c.now, c.lastOpen, c.pace, c.queued, 64, c.rate); got != c.want {
				t.Fatalf("paceWait = %s, want %s", got, c.want)
			}
		})
	}
}

// TestNextRate: a steady stream reads as its rate; a few calls after a
// quiet spell read as a few over rateDecay, not as a burst's rate.
func TestNextRate(t *testing.T) {
	rate := 0.0
	for range 500 { // 2 calls every millisecond: 2,000 a second
		rate = nextRate(rate, 2, time.Millisecond)
	}
	if math.Abs(rate-2000) > 40 {
		t.Fatalf("steady 2,000 calls/s read as %.0f", rate)
	}
	rate = nextRate(rate, 0, 10*time.Second) // forgotten after a quiet spell
	rate = nextRate(rate, 3, 200*time.Microsecond)
	if want := 3 / rateDecay.Seconds(); math.Abs(rate-want) > 1 {
		t.Fatalf("3 calls after a quiet spell read as %.1f/s, want %.1f/s", rate, want)
	}
	if r := nextRate(0, 1, 0); r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		t.Fatalf("a call at once after the first reads as %v", r)
	}
}

// TestGrouped_PaceBoundsTheCommitRate: workers that call back to back a
// little apart (as the reconciler's do between Douyin's answers) commit,
// paced, at most about once a pace; every write is stored. Without pacing
// the same calls take a commit each or two (one every millisecond or so
// on SQLite here), far above the bound.
func TestGrouped_PaceBoundsTheCommitRate(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	const workers, each, pace = 16, 12, 40 * time.Millisecond
	refunds := orderRefunds(t, e, "p", workers, 100000)
	g := e.Grouped(64)
	g.SetPace(pace)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range each {
				time.Sleep(2 * time.Millisecond) // the call to Douyin
				if err := g.InTx(ctx, func(tx *Store) error { return setErrTips(ctx, tx, refunds[w], fmt.Sprint(k)) }); err != nil {
					t.Errorf("worker %d call %d: %v", w, k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	checkLastWrites(t, e, refunds, each)
	groups, calls := g.GroupStats()
	// The first groups may go at once, before the rate reads as a stream.
	if bound := int64(elapsed/pace) + 4; calls != workers*each || groups > bound {
		t.Fatalf("%d calls in %d groups over %s: want %d calls in at most %d groups (one a pace of %s)", calls, groups, elapsed, workers*each, bound, pace)
	}
	t.Logf("%d calls in %d groups over %s", calls, groups, elapsed)
}

// TestGrouped_PaceEndsWhenTheQueueIsFull: a leader pacing for a long time
// commits as soon as max calls are queued.
func TestGrouped_PaceEndsWhenTheQueueIsFull(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	const max = 4
	refunds := orderRefunds(t, e, "f", max, 100000)
	g := e.Grouped(max)
	g.SetPace(10 * time.Second)
	g.mu.Lock()
	g.lastOpen, g.rate = time.Now(), 1000 // a stream, and a group just begun
	g.mu.Unlock()
	done := make(chan error, max)
	start := time.Now()
	for i := range max {
		go func() { done <- g.InTx(ctx, func(tx *Store) error { return setErrTips(ctx, tx, refunds[i], "full") }) }()
	}
	for range max {
		select {
		case err := <-done:
			must(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a full group still waited for its pace after 5 s")
		}
	}
	if groups, calls := g.GroupStats(); groups != 1 || calls != max {
		t.Fatalf("%d calls in %d groups, want %d in one", calls, groups, max)
	}
	t.Logf("a full group of %d committed %s after its first call", max, time.Since(start).Round(time.Millisecond))
}
