package reliability

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// envInt reads a positive size from the environment, else def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, s)
	}
	return n
}

// TestSoak_AllFaults drives PAYD_SOAK_ORDERS orders (300 by default; the
// documented full run uses 2000) through refunds and settlement with every
// fault kind of the simulator switched on at once — 1000 and HTTP 500
// before and after the effect, hangs past the client's timeout, dropped,
// duplicated and delayed callbacks into payd's callback handler, refunds
// that FAIL at the channel — and requires convergence with every refund and
// settlement executed exactly once and no violation. It logs the figures:
// time to converge, calls per outcome, violations.
func TestSoak_AllFaults(t *testing.T) {
	n := envInt(t, "PAYD_SOAK_ORDERS", 300)
	faults := douyinsim.Faults{
		Err1000NoEffect: 0.04, Err1000AfterEffect: 0.04,
		HTTP500: 0.04, HTTP500AfterEffect: 0.04,
		HangAfterEffect: 0.02, Hang: 600 * time.Millisecond,
		CallbackDrop: 0.2, CallbackDuplicate: 0.2, CallbackDelay: 0.2, CallbackDelayMax: 500 * time.Millisecond,
		RefundChannelFail: 0.15,
	}
	w := newWorld(t, testworld.Options{
		Timeout:   300 * time.Millisecond, // a hang (600ms) outlasts it: unknown outcome
		Workers:   32,
		Callbacks: true,
		Sim: func(c *douyinsim.Config) {
			c.ProcessingDelay = 500 * time.Millisecond
			c.Faults = faults
		},
		Policy: func(p *reconcile.Policy) {
			p.Retry = []time.Duration{time.Second}
			p.Poll = []time.Duration{time.Second}
			p.RefundAttempts = 20
			p.SettleAttempts = 20
		},
	})
	ctx := context.Background()
	paid := w.Sim.Now()
	wishes := make(map[string]wish, n)
	for i := 0; i < n; i++ {
		no := fmt.Sprintf("soak%05d", i)
		total, cps := int64(1000+i%997), int64(i%3)*10
		w.SeedPaid(no, total, cps, paid)
		wi := wish{total: total, cps: cps, refunds: map[string]int64{}, settle: true}
		if i%2 == 0 {
			wi.refunds[no+"-a"] = int64(100 + i%300)
		}
		if i%5 == 0 {
			wi.refunds[no+"-b"] = 50
		}
		for k, a := range wi.refunds {
			w.Refund(no, k, a)
		}
		wishes[no] = wi
	}

	start := time.Now()
	passes := w.Converge(200, 2*time.Second, nil)
	w.Advance(7*24*time.Hour + time.Minute)
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	passes += w.Converge(200, 2*time.Second, nil)
	elapsed := time.Since(start)

	s, err := w.Store.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Settlements[state.PhaseSucceeded] != int64(n) || s.Refunds[state.PhaseParked] != 0 || s.Settlements[state.PhaseParked] != 0 {
		t.Fatalf("summary: %+v", s)
	}
	violations := w.Sim.Check()
	ledger := w.Sim.Ledger()
	refunds, settlements := verifyLedger(t, ledger, violations, wishes)
	verifyStore(t, w.Store, appID, ledger, wishes)

	stats := w.Sim.Stats()
	t.Logf("soak: %d orders, %d refunds and %d settlements executed once each; converged in %s wall (%d passes); violations: %d",
		n, refunds, settlements, elapsed.Round(time.Millisecond), passes, len(violations))
	t.Logf("soak: simulator: %d calls, %d HTTP 500s, %d hangs, answers by api/err_no: %s", stats.Requests, stats.HTTP500s, stats.Hangs, formatCounts(simCalls(stats)))
	t.Logf("soak: simulator callbacks: %d sent, %d acked, %d dropped, %d duplicated, %d delayed",
		stats.CallbacksSent, stats.CallbacksAcked, stats.CallbacksDropped, stats.CallbacksDuplicated, stats.CallbacksDelayed)
	t.Logf("soak: payd attempt log by api/outcome: %s", formatCounts(callsByOutcome(t, w.Store)))
	if stats.Hangs == 0 || stats.HTTP500s == 0 || stats.CallbacksDropped == 0 || stats.CallbacksDuplicated == 0 {
		t.Fatalf("a fault kind never fired: %+v", stats)
	}
	var after1000 int64
	for _, byErr := range stats.ByAPI {
		after1000 += byErr[douyin.ErrNoInternal]
	}
	if after1000 == 0 {
		t.Fatalf("no 1000 answer was injected: %+v", stats.ByAPI)
	}
}
