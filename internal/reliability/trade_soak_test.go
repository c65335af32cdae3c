package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// TestSoak_TradeAllFaults is the fault soak on a trade-system app:
// PAYD_SOAK_ORDERS orders (300 by default) on the trade simulator with
// every fault of its kind at once — 13000 and 23000 after the effect, HTTP
// 5xx after the effect, hangs past the client's timeout, refunds that FAIL
// at the channel, dropped, duplicated and delayed RSA-signed callbacks
// into payd's callback handler — through refunds (spread over item orders)
// and settlement at D+7. It requires convergence, every declared refund
// succeeded exactly once with its amount, every settlement executed once
// for what is left, and the simulator's check clean.
func TestSoak_TradeAllFaults(t *testing.T) {
	n := envInt(t, "PAYD_SOAK_ORDERS", 300)
	faults := tradesim.Faults{
		Err13000AfterEffect: 0.04, Err23000AfterEffect: 0.04, HTTP5xxAfterEffect: 0.04, HangAfterEffect: 0.02,
		RefundChannelFail: 0.15, CallbackDrop: 0.2, CallbackDuplicate: 0.2, CallbackDelay: 0.2,
	}
	w := newWorld(t, testworld.Options{
		Timeout:   300 * time.Millisecond, // the trade client's too: a hang (600ms) outlasts it
		Workers:   32,
		Callbacks: true,
		Trade: &testworld.TradeOptions{Sim: func(c *tradesim.Config) {
			c.ProcessingDelay = 500 * time.Millisecond
			c.Hang = 600 * time.Millisecond
			c.CallbackDelayMax = 500 * time.Millisecond
			c.Faults = faults
		}},
		Policy: func(p *reconcile.Policy) {
			p.Retry = []time.Duration{time.Second}
			p.Poll = []time.Duration{time.Second}
			p.RefundAttempts = 20
			p.SettleAttempts = 20
		},
	})
	ctx := context.Background()
	want := map[string]map[string]int64{} // order → refund key → amount
	paid := map[string]int64{}
	for i := 0; i < n; i++ {
		no := fmt.Sprintf("tsoak%05d", i)
		items := []tradesim.SeedItem{{SKUID: "a", Amount: int64(600 + i%400)}, {SKUID: "b", Amount: int64(400 + i%97)}}
		w.SeedTrade(tradesim.SeedOrder{OutOrderNo: no, Items: items})
		paid[no] = items[0].Amount + items[1].Amount
		want[no] = map[string]int64{}
		if i%2 == 0 {
			want[no][no+"-a"] = int64(100 + i%300)
		}
		if i%5 == 0 {
			want[no][no+"-b"] = 50
		}
		for k, a := range want[no] {
			w.RefundTrade(no, k, a)
		}
	}
	start := time.Now()
	passes := w.Converge(300, 2*time.Second, nil)
	w.Advance(7*24*time.Hour + time.Minute)
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	passes += w.Converge(300, 2*time.Second, nil)
	elapsed := time.Since(start)

	s, err := w.Store.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Refunds[state.PhaseParked] != 0 || s.Settlements[state.PhaseParked] != 0 {
		t.Fatalf("parked items: %+v", s)
	}
	ledger := w.Trade.Ledger()
	refunds, settlements := verifyTradeLedger(t, ledger, want, paid)
	failed := 0
	for _, lo := range ledger.Orders {
		for _, r := range lo.Refunds {
			if r.Status == "FAIL" {
				failed++
			}
		}
	}
	w.TradeCheckClean()
	t.Logf("trade soak: %d orders, %d refunds and %d settlements executed once each (%d refund attempts FAILed at the channel and were retried); converged in %s wall (%d passes); attempt log: %s",
		n, refunds, settlements, failed, elapsed.Round(time.Millisecond), passes, formatCounts(callsByOutcome(t, w.Store)))
	if failed == 0 {
		t.Fatal("no refund FAILed at the channel: the retry path was not exercised")
	}
	if calls := callsByOutcome(t, w.Store); calls["create_refund/unknown"] == 0 || calls["settle/unknown"] == 0 {
		t.Fatalf("the faults never made a write's outcome unknown: %v", calls)
	}
}

// verifyTradeLedger checks the trade simulator's ledger against what was
// declared: every refund key succeeded exactly once, under one of its
// numbers, with its amount; every order settled once for what is left.
func verifyTradeLedger(t *testing.T, l tradesim.Ledger, want map[string]map[string]int64, paid map[string]int64) (refunds, settlements int) {
	t.Helper()
	for _, lo := range l.Orders {
		keys, ok := want[lo.OutOrderNo]
		if !ok {
			continue // the world's other orders
		}
		succeeded := map[string]int64{}
		var refunded int64
		for _, r := range lo.Refunds {
			if r.Executions > 1 {
				t.Fatalf("refund %s of %s executed %d times", r.No, lo.OutOrderNo, r.Executions)
			}
			if r.Status != "SUCCESS" {
				continue
			}
			key := attemptKey(r.No)
			if _, dup := succeeded[key]; dup {
				t.Fatalf("refund %s of %s succeeded twice", key, lo.OutOrderNo)
			}
			succeeded[key] = r.Amount
			refunded += r.Amount
		}
		for k, a := range keys {
			if succeeded[k] != a {
				t.Fatalf("refund %s of %s: %d fen succeeded, want %d", k, lo.OutOrderNo, succeeded[k], a)
			}
		}
		if len(succeeded) != len(keys) {
			t.Fatalf("order %s: refunds %v succeeded, want %v", lo.OutOrderNo, succeeded, keys)
		}
		refunds += len(succeeded)
		var settled int64
		done := 0
		for _, st := range lo.Settlements {
			if st.Executions > 1 {
				t.Fatalf("settlement %s of %s executed %d times", st.No, lo.OutOrderNo, st.Executions)
			}
			if st.Status == "SUCCESS" {
				settled += st.Amount
				done++
			}
		}
		if done != 1 || settled != paid[lo.OutOrderNo]-refunded {
			t.Fatalf("order %s: %d settlements for %d fen, want one for %d", lo.OutOrderNo, done, settled, paid[lo.OutOrderNo]-refunded)
		}
		settlements++
	}
	if refunds == 0 || settlements != len(want) {
		t.Fatalf("ledger holds %d of %d orders' settlements", settlements, len(want))
	}
	return refunds, settlements
}
