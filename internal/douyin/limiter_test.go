package douyin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimiter_WaitNeverExceedsRate runs concurrent callers against one bucket
// for about a second and counts what got through.
func TestLimiter_WaitNeverExceedsRate(t *testing.T) {
	// share 3: one of three replicas, each held to a third of the budget.
	for _, share := range []int{1, 3} {
		t.Run(fmt.Sprintf("share %d", share), func(t *testing.T) { waitNeverExceedsRate(t, share) })
	}
}

func waitNeverExceedsRate(t *testing.T, share int) {
	const (
		budget  = 60.0
		burst   = 1
		window  = time.Second
		callers = 8
	)
	ratePerSec := budget / float64(share)
	l := NewLimiter(map[API]float64{APICreateRefund: budget}, burst, nil)
	l.SetShare(share)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var (
		admitted atomic.Int64
		wg       sync.WaitGroup
	)
	for range callers {
		wg.Go(func() {
			for range 10 * int(budget) { // bounded: far more than can pass
				if _, err := l.Wait(ctx, testApp, APICreateRefund); err != nil {
					return
				}
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	// Every token was handed out between start and the deadline (Wait
	// refuses a token it could only give later), and callers may return
	// before the deadline: the measured window is the longer of the two.
	elapsed := max(time.Since(start), deadline.Sub(start))
	got := float64(admitted.Load())
	upper := ratePerSec*elapsed.Seconds() + burst
	lower := 0.9 * ratePerSec * window.Seconds()
	t.Logf("%v calls in %v (rate %v/s, burst %d): bounds [%.1f, %.1f]", got, elapsed, ratePerSec, burst, lower, upper)
	if got > upper {
		t.Errorf("%v calls passed in %v, more than rate×window+burst = %.1f", got, elapsed, upper)
	}
	if got < lower {
		t.Errorf("%v calls passed in %v, fewer than 0.9×rate×window = %.1f", got, elapsed, lower)
	}
}

// TestLimiter_BucketsAreIndependent checks that draining one app's bucket
// does not slow another app or another API.
func TestLimiter_BucketsAreIndependent(t *testing.T) {
	l := NewLimiter(map[API]float64{APIQueryOrder: 1, APIQueryRefund: 1}, 1, nil)
	ctx := context.Background()
	if _, err := l.Wait(ctx, "a", APIQueryOrder); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		app string
		api API
	}{{"b", APIQueryOrder}, {"a", APIQueryRefund}} {
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := l.Wait(wctx, k.app, k.api)
		cancel()
		if err != nil {
			t.Errorf("%s/%s waited on another bucket: %v", k.app, k.api, err)
		}
	}
	// The drained bucket itself has no token for a second.
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(wctx, "a", APIQueryOrder); err == nil {
		t.Error("a/query_order got a second token within 100ms at 1/s")
	}
}

func TestLimiter_Defaults(t *testing.T) {
	l := NewLimiter(map[API]float64{APIQueryOrder: 150, APISettle: 0, APIQuerySettle: -3}, 0, nil)
	want := map[API]float64{
		APICreateOrder: 30, APIQueryOrder: 150, APICreateRefund: 50, APIQueryRefund: 30,
		APISettle: 30, APIQuerySettle: 30, APIUnsettleAmount: 30, API("future_api"): 30,
	}
	for api, r := range want {
		if got := l.Rate("tt1", api); got != r {
			t.Errorf("Rate(%s) = %v, want %v", api, got, r)
		}
	}
	if l.burst != 1 {
		t.Errorf("burst = %d, want 1 when given 0", l.burst)
	}
}

func TestLimiter_Wait_Context(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 0.2}, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Wait(ctx, "tt1", APISettle); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, err := l.Wait(context.Background(), "tt1", APISettle); err != nil {
		t.Fatalf("first token: %v", err)
	}
	// The next token is 5 s away; a caller that gives up sooner is told at once.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	start := time.Now()
	if _, err := l.Wait(ctx2, "tt1", APISettle); err == nil {
		t.Error("Wait returned a token 5 s early")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait took %v to give up on a token it could not get in time", d)
	}
}

// TestLimiter_BackoffAndRecovery moves an injected clock: a 1001 halves the
// rate, 1001s from the same burst do not halve it again, the rate never
// drops below a sixteenth, and it recovers step by step to the base, not past it.
func TestLimiter_BackoffAndRecovery(t *testing.T) {
	clock := newFixedClock()
	l := NewLimiter(nil, 1, clock.Now)
	const app = "tt1"
	rate := func() float64 { return l.Rate(app, APICreateRefund) }
	step := func(name string, want float64) {
		t.Helper()
		if got := rate(); got != want {
			t.Fatalf("%s: rate = %v, want %v", name, got, want)
		}
	}

	step("start", 50)
	l.Backoff(app, APICreateRefund)
	step("after a 1001", 25)
	if got := l.Rate(app, APIQueryRefund); got != 30 {
		t.Errorf("query_refund rate = %v, want 30: back-off is per API", got)
	}
	if got := l.Rate("tt2", APICreateRefund); got != 50 {
		t.Errorf("other app's rate = %v, want 50: back-off is per app", got)
	}

	clock.Advance(500 * time.Millisecond)
	l.Backoff(app, APICreateRefund)
	step("second 1001 within the hold", 25)

	clock.Advance(backoffHold)
	l.Backoff(app, APICreateRefund)
	step("1001 after the hold", 12.5)

	for range 10 {
		clock.Advance(backoffHold)
		l.Backoff(app, APICreateRefund)
	}
	step("floor", 50*minFraction)

	clock.Advance(recoverEvery - time.Millisecond)
	step("just before the first recovery step", 50*minFraction)
	clock.Advance(time.Millisecond)
	step("first recovery step", 50*minFraction+50*recoverStep)
	clock.Advance(recoverEvery)
	step("second recovery step", 50*minFraction+2*50*recoverStep)
	clock.Advance(time.Hour)
	step("recovered", 50)

	// A 1001 long after the last one starts from the recovered rate, even if
	// nobody asked for the rate in between.
	l.Backoff(app, APICreateRefund)
	step("fresh 1001", 25)
	clock.Advance(time.Hour)
	l.Backoff(app, APICreateRefund)
	step("1001 after an hour of quiet", 25)
}

// TestLimiter_BackoffSlowsWait checks that a halved rate is the one Wait
// enforces, not only the one Rate reports.
func TestLimiter_BackoffSlowsWait(t *testing.T) {
	l := NewLimiter(map[API]float64{APIQueryOrder: 100}, 1, newFixedClock().Now)
	ctx := context.Background()
	l.Backoff("tt1", APIQueryOrder) // 50/s: one token each 20 ms
	const n = 11
	start := time.Now()
	for range n {
		if _, err := l.Wait(ctx, "tt1", APIQueryOrder); err != nil {
			t.Fatal(err)
		}
	}
	// The first token is in the bucket; the other n-1 take 20 ms each.
	if d, min := time.Since(start), time.Duration(n-1)*20*time.Millisecond*9/10; d < min {
		t.Errorf("%d waits took %v at 50/s, want at least %v", n, d, min)
	}
}

func TestLimiter_Delay(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 10}, 1, nil)
	if d := l.Delay("app", APISettle); d != 0 {
		t.Fatalf("fresh bucket: delay %s, want 0", d)
	}
	ctx := context.Background()
	if _, err := l.Wait(ctx, "app", APISettle); err != nil {
		t.Fatal(err)
	}
	if d := l.Delay("app", APISettle); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("after one call at 10/s: delay %s, want about 100ms", d)
	}
	if d := l.Delay("app", APIQueryOrder); d != 0 {
		t.Fatalf("another API's bucket: delay %s, want 0", d)
	}
}

func TestLimiter_Share(t *testing.T) {
	clk := time.Unix(0, 0)
	l := NewLimiter(map[API]float64{APISettle: 30}, 1, func() time.Time { return clk })
	if got := l.Rate(testApp, APISettle); got != 30 {
		t.Fatalf("rate %v, want 30", got)
	}
	l.SetShare(3)
	if got, share := l.Rate(testApp, APISettle), l.Share(); got != 10 || share != 3 {
		t.Fatalf("share 3: rate %v (share %d), want 10", got, share)
	}
	// A 1001 halves this process's part too, and recovery restores it.
	l.Backoff(testApp, APISettle)
	if got := l.Rate(testApp, APISettle); got != 5 {
		t.Fatalf("after a 1001 at share 3: rate %v, want 5", got)
	}
	clk = clk.Add(time.Minute)
	if got := l.Rate(testApp, APISettle); got != 10 {
		t.Fatalf("recovered at share 3: rate %v, want 10", got)
	}
	// A bucket made after SetShare gets its part at once.
	if got := l.Rate("another", APICreateRefund); got != 50.0/3 {
		t.Fatalf("new bucket at share 3: rate %v, want %v", got, 50.0/3)
	}
	l.SetShare(0)
	if got, share := l.Rate(testApp, APISettle), l.Share(); got != 30 || share != 1 {
		t.Fatalf("SetShare(0): rate %v (share %d), want the whole 30", got, share)
	}
}

// TestLimiter_SlotsSurviveBackoff: a replica at place 1 of 3 sharing 18
// calls/s has its tokens on its own slots (1/18 s apart, every third),
// and still after a 1001 and through the recovery, when its rate is no
// whole fraction of the shared one: a backed-off replica skips its slots
// instead of calling on the other replicas'.
func TestLimiter_SlotsSurviveBackoff(t *testing.T) {
	clock := newFixedClock()
	l := NewLimiter(map[API]float64{APISettle: 18}, 1, clock.Now)
	l.SetSlot(1, 3)
	step := time.Second / 18
	onOwnSlot := func(name string) {
		t.Helper()
		l.mu.Lock()
		b := l.get("tt1", APISettle)
		l.recover(b)
		lim := b.lim
		l.mu.Unlock()
		now := time.Now()
		for i := range 4 {
			r := lim.ReserveN(now, 1)
			at := now.Add(r.DelayFrom(now))
			off := (at.UnixNano() - int64(step)) % int64(3*step)
			if off > int64(2*time.Millisecond) && off < int64(3*step-2*time.Millisecond) {
				t.Fatalf("%s: token %d at %s past its slot (slots 1/18 s apart, this replica's every third)", name, i, time.Duration(off))
			}
		}
	}
	onOwnSlot("at the shared rate")
	l.Backoff("tt1", APISettle)
	onOwnSlot("after a 1001")
	if got := l.Rate("tt1", APISettle); got != 3 {
		t.Fatalf("rate after a 1001 = %v, want 18/3/2 = 3", got)
	}
	clock.Advance(recoverEvery) // 9 + 1.8 = 10.8 calls/s: every second slot
	onOwnSlot("one recovery step")
	if got := l.Rate("tt1", APISettle); got != 3 {
		t.Fatalf("rate one step into the recovery = %v, want 3 (10.8/s is used as 9/s, every second slot)", got)
	}
	clock.Advance(time.Hour)
	onOwnSlot("recovered")
	if got := l.Rate("tt1", APISettle); got != 6 {
		t.Fatalf("recovered rate = %v, want 6", got)
	}

	// Alone, a replica has no slots to keep to: its recovery is gradual.
	solo := NewLimiter(map[API]float64{APISettle: 18}, 1, clock.Now)
	solo.SetSlot(0, 1)
	solo.Backoff("tt1", APISettle)
	clock.Advance(recoverEvery)
	if got := solo.Rate("tt1", APISettle); math.Abs(got-10.8) > 1e-9 {
		t.Fatalf("a lone replica one step into the recovery: rate %v, want 9 + 1.8 = 10.8", got)
	}
}

// TestSlotWait: a call within tol after one of its slots goes at once;
// any other waits until the next slot.
func TestSlotWait(t *testing.T) {
	ms := time.Millisecond
	at := func(d time.Duration) time.Time { return time.Unix(0, 0).Add(d) }
	for _, c := range []struct {
		now              time.Time
		off, period, tol time.Duration
		want             time.Duration
	}{
		{at(100 * ms), 100 * ms, 300 * ms, 50 * ms, 0},        // on the slot
		{at(150 * ms), 100 * ms, 300 * ms, 50 * ms, 0},        // late by tol: still its slot
		{at(151 * ms), 100 * ms, 300 * ms, 50 * ms, 249 * ms}, // past it: the next
		{at(99 * ms), 100 * ms, 300 * ms, 50 * ms, 1 * ms},    // just before
		{at(3*time.Second + 10*ms), 100 * ms, 300 * ms, 50 * ms, 90 * ms},
		{at(5 * ms), 0, 0, 50 * ms, 0}, // no grid
	} {
		if got := slotWait(c.now, c.off, c.period, c.tol); got != c.want {
			t.Errorf("slotWait(%v, off %v, period %v, tol %v) = %v, want %v", c.now.Sub(at(0)), c.off, c.period, c.tol, got, c.want)
		}
	}
}

// TestLimiter_IdleReplicaWaitsForItsSlot: a slotted replica whose bucket
// filled while it was idle still calls on its own slots (at 10/s shared by
// two, place 1: 100 ms + k·200 ms), not the moment it has work, where the
// other replica's calls fall. A limiter without slots would call at once,
// at any phase.
func TestLimiter_IdleReplicaWaitsForItsSlot(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 10}, 1, nil)
	l.SetSlot(1, 2)
	step, period := 100*time.Millisecond, 200*time.Millisecond
	for i := range 5 {
		// Idle long enough for a token, then a call at a phase of its own.
		time.Sleep(period + time.Duration(i)*37*time.Millisecond)
		if _, err := l.Wait(context.Background(), testApp, APISettle); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		phase := time.Duration((now.UnixNano() - int64(step)) % int64(period))
		// Within half a step after its slot, with room for a late wake-up.
		if phase > step/2+30*time.Millisecond {
			t.Fatalf("call %d went %v after its slot (slots every %v from %v), on the other replica's", i, phase, period, step)
		}
	}
}

// TestLimiter_QueuedCallsTakeANewShare: calls queued at 20/s when a second
// replica joins (SetShare(2): 10/s each) go at the new rate, not at the
// rate they queued under: six calls queued behind one just made need at
// least 0.5 s more at 10/s, against 0.3 s at 20/s.
func TestLimiter_QueuedCallsTakeANewShare(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 20}, 1, nil)
	if took := queuedThrough(t, l, func() { l.SetShare(2) }); took < 500*time.Millisecond {
		t.Fatalf("the queued calls went within %s of the share change: at the old 20/s, not the new 10/s", took)
	}
}

// TestLimiter_BackoffSlowsQueuedCalls: after a 1001 the calls already
// queued wait under the halved rate, so a back-off takes effect at once.
func TestLimiter_BackoffSlowsQueuedCalls(t *testing.T) {
	l := NewLimiter(map[API]float64{APISettle: 20}, 1, nil)
	if took := queuedThrough(t, l, func() { l.Backoff(testApp, APISettle) }); took < 500*time.Millisecond {
		t.Fatalf("the queued calls went within %s of the back-off: at the old 20/s, not the halved 10/s", took)
	}
}

// queuedThrough makes one call on l, queues six more behind it, runs
// change once they all hold a reservation, and returns how long after
// change the last of them went.
func queuedThrough(t *testing.T, l *Limiter, change func()) time.Duration {
	t.Helper()
	if _, err := l.Wait(context.Background(), testApp, APISettle); err != nil {
		t.Fatal(err)
	}
	const queued = 6
	done := make(chan time.Time, queued)
	for range queued {
		go func() {
			if _, err := l.Wait(context.Background(), testApp, APISettle); err != nil {
				t.Error(err)
			}
			done <- time.Now()
		}()
	}
	time.Sleep(20 * time.Millisecond) // every call has its reservation at 20/s
	changed := time.Now()
	change()
	var last time.Time
	for range queued {
		last = <-done
	}
	return last.Sub(changed)
}

// TestLimiter_RecoveryKeepsOneCallPerSlot: a slotted replica backed off to
// every second slot, with calls queued on those slots, recovers its rate
// (a new bucket on every slot). The queued calls move onto the new bucket
// with the calls made after the recovery: every slot still carries at most
// one call. Calls that kept their old reservations would share slots with
// the new bucket's tokens: two calls at once from one replica, which the
// other replicas' calls beside them turn into a 1001.
func TestLimiter_RecoveryKeepsOneCallPerSlot(t *testing.T) {
	clock := newFixedClock()
	l := NewLimiter(map[API]float64{APISettle: 10}, 1, clock.Now)
	l.SetSlot(0, 2) // slots 200 ms apart; 400 ms backed off
	l.Backoff(testApp, APISettle)
	if _, err := l.Wait(context.Background(), testApp, APISettle); err != nil {
		t.Fatal(err)
	}
	const queued, after = 3, 3
	done := make(chan time.Time, queued+after)
	wait := func() {
		if _, err := l.Wait(context.Background(), testApp, APISettle); err != nil {
			t.Error(err)
		}
		done <- time.Now()
	}
	for range queued {
		go wait()
	}
	time.Sleep(20 * time.Millisecond) // the queued calls hold slots 400 ms apart
	clock.Advance(time.Hour)          // recovered: the next call re-times the bucket
	for range after {
		go wait()
	}
	var at []time.Time
	for range queued + after {
		at = append(at, <-done)
	}
	slices.SortFunc(at, time.Time.Compare)
	for i := 1; i < len(at); i++ {
		// 200 ms apart; two calls on one slot are within a few ms.
		if gap := at[i].Sub(at[i-1]); gap < 100*time.Millisecond {
			t.Fatalf("calls %d and %d went %v apart, on one slot (slots 200 ms apart)", i-1, i, gap.Round(time.Millisecond))
		}
	}
}
