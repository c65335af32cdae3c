package douyin

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFlightRoom(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		bound, share int
		rate         float64
		latency      time.Duration
		want         int
	}{
		{3, 1, 30, 0, 3},          // alone: the whole bound
		{3, 3, 10, 50 * ms, 1},    // three replicas: a third each
		{3, 2, 15, 10 * ms, 1},    // 3/2: one each, never a fraction
		{3, 4, 7.5, 0, 1},         // more replicas than the bound: one each
		{3, 3, 10, 250 * ms, 3},   // slow answers: 10/s over 250 ms needs 3
		{3, 1, 300, 20 * ms, 6},   // 300/s over 20 ms
		{30, 1, 300, 20 * ms, 30}, // the bound covers it
	} {
		if got := flightRoom(c.bound, c.share, c.rate, c.latency); got != c.want {
			t.Errorf("flightRoom(bound %d, share %d, %v/s, %v) = %d, want %d", c.bound, c.share, c.rate, c.latency, got, c.want)
		}
	}
}

// takeAll starts n calls of Take and returns the channel each one's done
// comes out of once it got room and a token.
func takeAll(t *testing.T, l *Limiter, n int) chan func(time.Duration) {
	t.Helper()
	out := make(chan func(time.Duration), n)
	for range n {
		go func() {
			done, _, err := l.Take(context.Background(), testApp, APISettle)
			if err != nil {
				t.Error(err)
				return
			}
			out <- done
		}()
	}
	return out
}

// through collects the calls that got through within wait.
func through(ch chan func(time.Duration), wait time.Duration) []func(time.Duration) {
	var got []func(time.Duration)
	deadline := time.After(wait)
	for {
		select {
		case d := <-ch:
			got = append(got, d)
		case <-deadline:
			return got
		}
	}
}

// TestLimiter_TakeBoundsTheCallsInFlight: at 1,000 calls/s with a 3 ms
// window, three calls may be out at once; a fourth goes only when one of
// them is answered, and a replica of three gets one.
func TestLimiter_TakeBoundsTheCallsInFlight(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 1000}, 1, nil)
	l.SetInFlight(3 * time.Millisecond)
	calls := takeAll(t, l, 6)
	out := through(calls, 200*time.Millisecond)
	if len(out) != 3 {
		t.Fatalf("%d calls in flight, want 3 (1,000/s × 3 ms)", len(out))
	}
	out[0](time.Microsecond) // answered at once: the room stays 3
	if more := through(calls, 200*time.Millisecond); len(more) != 1 {
		t.Fatalf("%d calls went after one answer, want 1", len(more))
	} else {
		out = append(out[1:], more...)
	}
	for _, done := range out {
		done(time.Microsecond)
		done(time.Microsecond) // a second done counts nothing
	}
	if rest := through(calls, 200*time.Millisecond); len(rest) != 2 {
		t.Fatalf("%d of the last 2 calls went once the others were answered", len(rest))
	}

	shared := NewLimiter(map[API]float64{APISettle: 1000}, 1, nil)
	shared.SetInFlight(3 * time.Millisecond)
	shared.SetShare(3)
	if got := len(through(takeAll(t, shared, 3), 200*time.Millisecond)); got != 1 {
		t.Fatalf("one of three replicas: %d calls in flight, want 1", got)
	}
}

// TestLimiter_TakeRoomGrowsWithLatency: when Douyin answers more slowly
// than the window, the room grows to what the rate needs over an answer's
// latency, so the bound does not hold the rate below the limit.
func TestLimiter_TakeRoomGrowsWithLatency(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 1000}, 1, nil)
	l.SetInFlight(time.Millisecond) // a bound of one call
	for range 20 {
		done, _, err := l.Take(context.Background(), testApp, APISettle)
		if err != nil {
			t.Fatal(err)
		}
		done(10 * time.Millisecond) // 1,000/s over 10 ms: 10 in flight
	}
	if got := len(through(takeAll(t, l, 12), 300*time.Millisecond)); got != 10 {
		t.Fatalf("%d calls in flight after answers of 10 ms, want 10", got)
	}
}

// TestLimiter_TakeGivesUpWithItsContext: a call waiting for room returns
// its context's error and holds no room; without a bound Take is Wait.
func TestLimiter_TakeGivesUpWithItsContext(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 1000}, 1, nil)
	l.SetInFlight(time.Millisecond)
	first, _, err := l.Take(context.Background(), testApp, APISettle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := l.Take(ctx, testApp, APISettle); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call with no room: %v, want its context's deadline", err)
	}
	first(0)
	done, _, err := l.Take(context.Background(), testApp, APISettle)
	if err != nil {
		t.Fatalf("after the first landed: %v", err)
	}
	done(0)

	free := NewLimiter(map[API]float64{APISettle: 1000}, 1, nil) // no SetInFlight: no bound
	if got := len(through(takeAll(t, free, 5), 200*time.Millisecond)); got != 5 {
		t.Fatalf("without a bound %d of 5 calls went", got)
	}
}
