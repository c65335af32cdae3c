package douyinsim

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

func TestRetryWait(t *testing.T) {
	tests := []struct {
		attempt int
		scale   float64
		want    time.Duration
		ok      bool
	}{
		{1, 1, 15 * time.Second, true},
		{3, 1, 30 * time.Second, true},
		{4, 1, 3 * time.Minute, true},
		{10, 1, time.Hour, true},
		{15, 1, 6 * time.Hour, true},
		{16, 1, 0, false},
		{0, 1, 0, false},
		{1, 0.001, 15 * time.Millisecond, true},
	}
	for _, tc := range tests {
		got, ok := retryWait(tc.attempt, tc.scale)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryWait(%d, %v) = %s, %v; want %s, %v", tc.attempt, tc.scale, got, ok, tc.want, tc.ok)
		}
	}
	var total time.Duration
	for _, d := range RetrySchedule {
		total += d
	}
	if len(RetrySchedule) != 15 || total < 24*time.Hour || total > 25*time.Hour {
		t.Errorf("schedule of %d waits over %s, want 15 over about 24 h", len(RetrySchedule), total)
	}
}

func TestServer_CallbacksRetryUntilAcknowledged(t *testing.T) {
	// Attempt 1: HTTP 500; 2: not JSON; 3: err_no 1; 4: acknowledged.
	k := newSink(t, testToken, func(n int) (int, string) {
		switch n {
		case 1:
			return http.StatusInternalServerError, "oops"
		case 2:
			return http.StatusOK, "success"
		case 3:
			return http.StatusOK, `{"err_no":1,"err_tips":"not yet"}`
		}
		return http.StatusOK, `{"err_no":0,"err_tips":"success"}`
	})
	cfg := testConfig()
	cfg.NotifyURL = k.srv.URL
	cfg.CallbackScale = 0.004 // waits of 60, 60 and 120 ms
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})

	waitUntil(t, 5*time.Second, "four attempts", func() bool { return k.count() >= 4 })
	time.Sleep(300 * time.Millisecond) // the next wait would be 720 ms: nothing more may come
	got := k.received()
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4 (acknowledged on the 4th)", len(got))
	}
	k.wantVerified(t)
	for i := 1; i < len(got); i++ {
		if !bytes.Equal(got[i].body, got[0].body) {
			t.Errorf("attempt %d body differs from the first", i+1)
		}
		want, _ := retryWait(i, cfg.CallbackScale)
		if gap := got[i].at.Sub(got[i-1].at); gap < want-5*time.Millisecond {
			t.Errorf("gap before attempt %d: %s, want at least %s", i+1, gap, want)
		}
	}
	st := b.sim.Stats()
	if st.CallbacksSent != 4 || st.CallbacksAcked != 1 || st.CallbacksPending != 0 {
		t.Errorf("stats %+v, want 4 sent, 1 acked, none pending", st)
	}
}

func TestServer_CallbacksGiveUp(t *testing.T) {
	k := newSink(t, testToken, func(int) (int, string) { return http.StatusServiceUnavailable, "" })
	cfg := testConfig()
	cfg.NotifyURL = k.srv.URL
	cfg.CallbackScale = 0.00001 // the whole day in under a second
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	waitUntil(t, 10*time.Second, "the callback to be given up", func() bool { return b.sim.Stats().CallbacksGivenUp == 1 })
	if n := k.count(); n != 16 {
		t.Errorf("%d attempts, want 1 + 15 retries", n)
	}
}

func TestServer_RefundAndSettleCallbacks(t *testing.T) {
	console := newSink(t, testToken, nil)
	perRequest := newSink(t, testToken, nil)
	cfg := testConfig()
	cfg.NotifyURL = console.srv.URL
	cfg.ProcessingDelay = 30 * time.Millisecond // completes by itself, in wall time
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000, PaidAt: testStart.Add(-8 * 24 * time.Hour)})
	waitUntil(t, 2*time.Second, "the payment callback", func() bool { return console.count() == 1 })

	resp, err := b.client.CreateRefund(context.Background(), douyin.CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: "o1-r-1",
		Reason: "x", RefundAmount: 300, NotifyURL: perRequest.srv.URL, CPExtra: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody queries: the background loop finishes the refund and calls back.
	waitUntil(t, 2*time.Second, "the refund callback", func() bool { return perRequest.count() == 1 })
	cb := perRequest.wantVerified(t)[0]
	if cb.Type != douyin.CallbackRefund || cb.Refund.CPRefundNo != "o1-r-1" || cb.Refund.Status != douyin.StatusSuccess ||
		cb.Refund.RefundAmount != 300 || cb.Refund.RefundNo != resp.RefundNo || cb.Refund.CPExtra != "mine" || cb.Refund.RefundedAt == 0 {
		t.Fatalf("refund callback %+v", cb.Refund)
	}

	if _, err := b.settle("o1", "o1-s-1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Second, "the settle callback", func() bool { return console.count() == 2 })
	cb = console.wantVerified(t)[1]
	if cb.Type != douyin.CallbackSettle || cb.Settle.CPSettleNo != "o1-s-1" || cb.Settle.Status != douyin.StatusSuccess ||
		cb.Settle.SettleAmount != 700 || cb.Settle.OutOrderNo != "o1" || cb.AppID != testApp {
		t.Fatalf("settle callback %+v", cb.Settle)
	}
	if perRequest.count() != 1 {
		t.Errorf("the per-request URL got %d callbacks, want only the refund's", perRequest.count())
	}
	wantNoViolations(t, b.sim)
}

func TestServer_CallbackFaults(t *testing.T) {
	t.Run("dropped", func(t *testing.T) {
		k := newSink(t, testToken, nil)
		cfg := testConfig()
		cfg.NotifyURL = k.srv.URL
		cfg.Faults = Faults{CallbackDrop: 1}
		b := setup(t, cfg)
		b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
		b.sim.SetFaults(Faults{})
		b.seed(t, SeedOrder{OutOrderNo: "o2", TotalAmount: 1000})
		waitUntil(t, 2*time.Second, "o2's callback", func() bool { return k.count() >= 1 })
		time.Sleep(100 * time.Millisecond)
		cbs := k.wantVerified(t)
		if len(cbs) != 1 || cbs[0].SubjectNo != "o2" {
			t.Fatalf("got %d callbacks (first about %v), want only o2's", len(cbs), cbs[0].SubjectNo)
		}
		if st := b.sim.Stats(); st.CallbacksDropped != 1 {
			t.Errorf("stats dropped %d, want 1", st.CallbacksDropped)
		}
	})
	t.Run("duplicated", func(t *testing.T) {
		k := newSink(t, testToken, nil)
		cfg := testConfig()
		cfg.NotifyURL = k.srv.URL
		cfg.Faults = Faults{CallbackDuplicate: 1}
		b := setup(t, cfg)
		b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
		waitUntil(t, 2*time.Second, "two copies", func() bool { return k.count() >= 2 })
		time.Sleep(100 * time.Millisecond)
		got := k.received()
		if len(got) != 2 || !bytes.Equal(got[0].body, got[1].body) {
			t.Fatalf("got %d callbacks, want 2 identical copies", len(got))
		}
		k.wantVerified(t)
		if st := b.sim.Stats(); st.CallbacksDuplicated != 1 || st.CallbacksAcked != 2 {
			t.Errorf("stats %+v, want 1 duplicated, 2 acked", st)
		}
	})
	t.Run("delayed", func(t *testing.T) {
		k := newSink(t, testToken, nil)
		cfg := testConfig()
		cfg.NotifyURL = k.srv.URL
		cfg.Faults = Faults{CallbackDelay: 1, CallbackDelayMax: 400 * time.Millisecond}
		b := setup(t, cfg)
		seeded := time.Now()
		b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
		waitUntil(t, 3*time.Second, "the delayed callback", func() bool { return k.count() >= 1 })
		if d := k.received()[0].at.Sub(seeded); d < 200*time.Millisecond {
			t.Fatalf("delayed callback arrived after %s, want at least half of 400ms", d)
		}
		if st := b.sim.Stats(); st.CallbacksDelayed != 1 {
			t.Errorf("stats delayed %d, want 1", st.CallbacksDelayed)
		}
	})
}

func TestServer_NoCallbacksAfterClose(t *testing.T) {
	k := newSink(t, testToken, func(int) (int, string) { return http.StatusInternalServerError, "" })
	cfg := testConfig()
	cfg.NotifyURL = k.srv.URL
	cfg.CallbackScale = 0.002
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SeedOrder(SeedOrder{AppID: testApp, OutOrderNo: "o1", TotalAmount: 10}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Second, "a first attempt", func() bool { return k.count() >= 1 })
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	n := k.count()
	time.Sleep(200 * time.Millisecond) // retries were due every 30-60 ms
	if k.count() != n {
		t.Errorf("%d callbacks after Close", k.count()-n)
	}
}
