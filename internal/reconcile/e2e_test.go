package reconcile_test

import (
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/testworld"

	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/state"
)

func TestReconciler_AutoSettleAfterT7(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	ctx := context.Background()
	w.SeedPaid("o1", 1000, 100, w.Sim.Now().Add(-time.Minute))

	w.Pass() // learns the order is paid
	o := w.View("o1").Order
	if o.Status != state.OrderSuccess || o.TotalAmount != 1000 || o.SettleAfter == nil {
		t.Fatalf("after first pass: %+v", o)
	}
	for day := 0; day < 6; day++ {
		w.Advance(24 * time.Hour)
		if sum, err := w.Batch.RunOnce(ctx); err != nil || sum.Due != 0 {
			t.Fatalf("day %d: batch created %d settlements (err %v) before T+7", day+1, sum.Due, err)
		}
		w.Pass()
	}
	if got := w.LedgerOrder("o1").SettledAmount; got != 0 {
		t.Fatalf("settled %d before T+7", got)
	}
	w.Advance(24*time.Hour + time.Minute)
	sum, err := w.Batch.RunOnce(ctx)
	if err != nil || sum.Due != 1 || sum.Pending != 1 {
		t.Fatalf("batch after T+7: %+v %v", sum, err)
	}
	w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })
	if sum, err := w.Batch.RunOnce(ctx); err != nil || sum.Due != 0 || sum.Succeeded != 1 {
		t.Fatalf("batch after settling: %+v %v", sum, err)
	}

	h := w.View("o1")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != 900 {
		t.Fatalf("settlement: %+v", h.Settlement)
	}
	lo := w.LedgerOrder("o1")
	if lo.SettledAmount != 900 || len(lo.Settlements) != 1 || lo.Settlements[0].Executions != 1 {
		t.Fatalf("ledger: %+v", lo)
	}
	settles := 0
	for _, a := range h.Attempts {
		if a.API == string(douyin.APISettle) {
			settles++
		}
	}
	if settles != 1 {
		t.Fatalf("settle called %d times, want 1", settles)
	}
	w.CheckClean()
}

func TestReconciler_RefundsBeforeAndAfterSettlement(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	ctx := context.Background()
	w.SeedPaid("o2", 10000, 0, w.Sim.Now())
	w.Pass()

	w.Advance(48 * time.Hour) // day 2
	w.Refund("o2", "o2-day2", 1500)
	w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })

	w.Advance(6 * 24 * time.Hour) // day 8: past T+7
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })

	w.Advance(24 * time.Hour) // day 9
	w.Refund("o2", "o2-day9", 2000)
	w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })

	h := w.View("o2")
	if len(h.Refunds) != 2 {
		t.Fatalf("refunds: %+v", h.Refunds)
	}
	for _, r := range h.Refunds {
		if r.Phase != state.PhaseSucceeded {
			t.Fatalf("refund %s: %s (%s)", r.Key, r.Phase, r.ParkReason)
		}
		if want := r.Key == "o2-day9"; r.AllSettle != want {
			t.Fatalf("refund %s all_settle = %v, want %v", r.Key, r.AllSettle, want)
		}
	}
	lo := w.LedgerOrder("o2")
	if lo.RefundedAmount != 3500 || lo.SettledAmount != 8500 {
		t.Fatalf("ledger: refunded %d settled %d", lo.RefundedAmount, lo.SettledAmount)
	}
	w.CheckClean()
}

func TestReconciler_RefundFailsTwiceThenSucceeds(t *testing.T) {
	w := testworld.New(t, testworld.Options{Policy: func(p *reconcile.Policy) { p.Retry = []time.Duration{time.Minute} }})
	w.SeedPaid("o3", 5000, 0, w.Sim.Now())
	w.Refund("o3", "r-17", 1200)
	w.Sim.SetFaults(douyinsim.Faults{RefundChannelFail: 1})

	w.Converge(30, 5*time.Second, func() bool {
		h := w.View("o3")
		return h.Refunds[0].Attempt == 3
	})
	w.Sim.SetFaults(douyinsim.Faults{})
	w.Converge(40, 30*time.Second, func() bool { return w.OpenItems() == 0 })

	r := w.View("o3").Refunds[0]
	if r.Phase != state.PhaseSucceeded || r.Attempt != 3 || r.OutRefundNo != "r-17-3" {
		t.Fatalf("refund: %+v", r)
	}
	lo := w.LedgerOrder("o3")
	var executed int
	for _, lr := range lo.Refunds {
		executed += lr.Executions
		if lr.OutRefundNo != "r-17-3" && lr.Status != "FAIL" {
			t.Fatalf("attempt %s: %s", lr.OutRefundNo, lr.Status)
		}
	}
	if executed != 1 || lo.RefundedAmount != 1200 || len(lo.Refunds) != 3 {
		t.Fatalf("ledger: %d executions, %d refunded, %d numbers", executed, lo.RefundedAmount, len(lo.Refunds))
	}
	// Two attempt_failed events and one success, in the outbox.
	var failed, ok int
	for _, e := range w.View("o3").Events {
		switch e.Type {
		case state.EventRefundAttemptFailed:
			failed++
		case state.EventRefundSucceeded:
			ok++
		}
	}
	if failed != 2 || ok != 1 {
		t.Fatalf("events: %d attempt_failed, %d succeeded", failed, ok)
	}
	w.CheckClean()
}

func TestReconciler_RefundParkedAfterLastAttempt(t *testing.T) {
	w := testworld.New(t, testworld.Options{Policy: func(p *reconcile.Policy) { p.RefundAttempts = 2; p.Retry = []time.Duration{time.Minute} }})
	w.SeedPaid("o4", 5000, 0, w.Sim.Now())
	w.Refund("o4", "r-park", 100)
	w.Sim.SetFaults(douyinsim.Faults{RefundChannelFail: 1})
	w.Converge(40, 20*time.Second, func() bool { return w.OpenItems() == 0 })
	r := w.View("o4").Refunds[0]
	if r.Phase != state.PhaseParked || !strings.Contains(r.ParkReason, "attempt 2 of 2 FAILED") {
		t.Fatalf("refund: %+v", r)
	}
	w.CheckClean()
}

func TestReconciler_UnknownOrderIsParkedWithReason(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	w.Refund("ghost", "r-ghost", 100) // Douyin has never heard of it
	w.Converge(5, time.Second, func() bool { return w.OpenItems() == 0 })
	h := w.View("ghost")
	if h.Order.Status != state.OrderNotFound {
		t.Fatalf("order status %s", h.Order.Status)
	}
	if r := h.Refunds[0]; r.Phase != state.PhaseParked || !strings.Contains(r.ParkReason, "Douyin does not know order ghost") {
		t.Fatalf("refund: %+v", r)
	}
}

// TestReconciler_AllFaults drives 300 orders with every request fault of
// the simulator switched on (1000 and HTTP 500 before and after the effect,
// hangs past the timeout, refunds failing at the channel) and checks that
// everything converges with a clean ledger (GET /_sim/check). This world
// has no callback listener; the same faults with dropped, duplicated and
// delayed callbacks into payd's handler are TestSoak_AllFaults in
// internal/reliability (300 orders in CI).
func TestReconciler_AllFaults(t *testing.T) {
	w := testworld.New(t, testworld.Options{
		Timeout: 300 * time.Millisecond,
		Workers: 32,
		Sim: func(c *douyinsim.Config) {
			c.ProcessingDelay = 500 * time.Millisecond
			c.Faults = douyinsim.Faults{
				Err1000NoEffect: 0.05, Err1000AfterEffect: 0.05, HTTP500: 0.05, HTTP500AfterEffect: 0.03,
				HangAfterEffect: 0.03, Hang: 500 * time.Millisecond,
				CallbackDrop: 0.2, CallbackDuplicate: 0.2, CallbackDelay: 0.2, CallbackDelayMax: time.Second,
				RefundChannelFail: 0.2,
			}
		},
		Policy: func(p *reconcile.Policy) {
			p.Retry = []time.Duration{time.Second}
			p.Poll = []time.Duration{time.Second}
			p.RefundAttempts = 10
			p.SettleAttempts = 10
		},
	})
	ctx := context.Background()
	paid := w.Sim.Now()
	const n = 300
	for i := 0; i < n; i++ {
		no := fmt.Sprintf("f%03d", i)
		w.SeedPaid(no, int64(1000+i), int64(i%3)*10, paid)
		if i%2 == 0 {
			w.Refund(no, no+"-a", int64(100+i))
		}
		if i%5 == 0 {
			w.Refund(no, no+"-b", 50)
		}
	}
	w.Converge(60, 2*time.Second, func() bool { return w.OpenItems() == 0 })
	w.Advance(7*24*time.Hour + time.Minute)
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.Converge(80, 2*time.Second, func() bool { return w.OpenItems() == 0 })

	s, err := w.Store.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Settlements[state.PhaseSucceeded] != n || s.Refunds[state.PhaseParked] != 0 {
		t.Fatalf("summary: %+v", s)
	}
	// payd's view and Douyin's ledger agree on every order.
	for _, lo := range w.Sim.Ledger().Orders {
		h := w.View(lo.OutOrderNo)
		var refunded int64
		for _, r := range h.Refunds {
			if r.Phase == state.PhaseSucceeded {
				refunded += r.Amount
			}
		}
		if refunded != lo.RefundedAmount || h.Settlement.Amount != lo.SettledAmount {
			t.Fatalf("order %s: payd refunded %d settled %d, ledger %d / %d", lo.OutOrderNo, refunded, h.Settlement.Amount, lo.RefundedAmount, lo.SettledAmount)
		}
	}
	w.CheckClean()
}

// TestReconciler_SettleBatchUnderRateLimit settles 300 due orders with the
// simulator limiting settle to 30 QPS: payd's own limiter keeps it from
// ever hearing 1001.
func TestReconciler_SettleBatchUnderRateLimit(t *testing.T) {
	limits := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		limits[api] = 500
	}
	limits[douyin.APISettle] = 30
	w := testworld.New(t, testworld.Options{
		Workers: 32,
		// payd is configured 10% under the grant, as an operator would: the
		// simulator counts arrivals, and a loaded machine bunches them.
		Limits: map[douyin.API]float64{douyin.APISettle: 27, douyin.APIQuerySettle: 400, douyin.APIQueryOrder: 400, douyin.APICreateRefund: 400, douyin.APIQueryRefund: 400},
		Sim:    func(c *douyinsim.Config) { c.Limits = limits },
	})
	ctx := context.Background()
	paid := w.Sim.Now().Add(-8 * 24 * time.Hour)
	const n = 300
	for i := 0; i < n; i++ {
		w.SeedPaid(fmt.Sprintf("rl%03d", i), 1000, 0, paid)
	}
	w.Pass()
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.Pass()
	w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })
	st := w.Sim.Stats()
	if busy := st.Busy(); busy != 0 {
		t.Fatalf("%d calls answered 1001: %+v", busy, st.ByAPI)
	}
	w.CheckClean()
}

// crashAfterIntent leaves refund key of order no as a crashed worker
// would: submitting, with its number on disk, whether or not the call went.
func crashAfterIntent(t *testing.T, w *testworld.World, no, key string, sent bool) {
	t.Helper()
	ctx := context.Background()
	h := w.View(no)
	r := h.Refunds[0]
	r.Phase = state.PhaseSubmitting
	now := w.Clock.Now()
	r.NextActionAt = &now
	if err := w.Store.UpdateRefund(ctx, &r, state.PhasePending); err != nil {
		t.Fatal(err)
	}
	if sent {
		if _, err := w.Client.CreateRefund(ctx, douyin.CreateRefundRequest{AppID: testworld.AppID, OutOrderNo: no, OutRefundNo: r.OutRefundNo, Reason: "e2e", RefundAmount: r.Amount}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReconciler_CrashBetweenIntentAndAnswer(t *testing.T) {
	for _, sent := range []bool{false, true} {
		t.Run(fmt.Sprintf("call sent=%v", sent), func(t *testing.T) {
			w := testworld.New(t, testworld.Options{})
			w.SeedPaid("oc", 3000, 0, w.Sim.Now())
			w.Pass() // the order is known to be paid
			w.Refund("oc", "rc", 700)
			crashAfterIntent(t, w, "oc", "rc", sent)

			w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })
			h := w.View("oc")
			if r := h.Refunds[0]; r.Phase != state.PhaseSucceeded || r.Attempt != 1 || r.OutRefundNo != "rc-1" {
				t.Fatalf("refund: %+v", r)
			}
			// The first call payd makes for the number is a query; a create
			// follows only when Douyin proved (3101) it never happened.
			var calls []string
			for _, a := range h.Attempts {
				if a.MerchantNo == "rc-1" {
					calls = append(calls, a.API)
				}
			}
			if len(calls) == 0 || calls[0] != string(douyin.APIQueryRefund) {
				t.Fatalf("calls for rc-1: %v, want a query first", calls)
			}
			creates := strings.Count(strings.Join(calls, ","), string(douyin.APICreateRefund))
			if want := map[bool]int{false: 1, true: 0}[sent]; creates != want {
				t.Fatalf("create_refund sent %d times by payd, want %d (%v)", creates, want, calls)
			}
			lo := w.LedgerOrder("oc")
			if lo.RefundedAmount != 700 || len(lo.Refunds) != 1 || lo.Refunds[0].Executions != 1 {
				t.Fatalf("ledger: %+v", lo)
			}
			w.CheckClean()
		})
	}
}

// TestReconciler_NoHeadOfLineBlocking: a settle batch makes many orders due
// on a slow settle budget; refunds declared after them must not wait behind
// them while the refund budget is free.
func TestReconciler_NoHeadOfLineBlocking(t *testing.T) {
	limits := map[douyin.API]float64{}
	simLimits := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		limits[api], simLimits[api] = 500, 1000
	}
	// payd's settle budget is 10/s; Douyin grants twice that, so the check
	// below is about payd keeping its own budget, not about how evenly a
	// loaded machine spaces the arrivals (a 10/s client against a 12/s
	// bucket of size 1 has 17 ms of slack, less than scheduler jitter
	// under -race on two cores).
	limits[douyin.APISettle], simLimits[douyin.APISettle] = 10, 20
	w := testworld.New(t, testworld.Options{Workers: 8, Limits: limits, Sim: func(c *douyinsim.Config) { c.Limits = simLimits }})
	ctx := context.Background()
	paid := w.Sim.Now().Add(-8 * 24 * time.Hour)
	const settles, refunds = 40, 20
	for i := 0; i < settles; i++ {
		w.SeedPaid(fmt.Sprintf("hs%02d", i), 1000, 0, paid)
	}
	for i := 0; i < refunds; i++ {
		w.SeedPaid(fmt.Sprintf("hr%02d", i), 1000, 0, paid)
	}
	w.Pass() // every order is known to be paid
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// The refunds are declared after the settlements became due.
	w.Advance(time.Second)
	for i := 0; i < refunds; i++ {
		w.Refund(fmt.Sprintf("hr%02d", i), fmt.Sprintf("hr%02d-r", i), 100)
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Pass() }()
	deadline := time.Now().Add(20 * time.Second)
	var settledWhenRefunded int64 = -1
	for time.Now().Before(deadline) {
		st := w.Sim.Stats()
		if st.ByAPI[douyin.APICreateRefund][0] >= refunds {
			settledWhenRefunded = st.ByAPI[douyin.APISettle][0]
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-done
	if settledWhenRefunded < 0 {
		t.Fatal("the refunds were not all sent within the pass")
	}
	// At 10/s the 40 settles take 4 s; the refunds, on their own budget,
	// must not queue behind them.
	if settledWhenRefunded > settles/2 {
		t.Fatalf("refunds waited behind %d of %d settles", settledWhenRefunded, settles)
	}
	if busy := w.Sim.Stats().Busy(); busy != 0 {
		t.Fatalf("%d calls answered 1001", busy)
	}
	w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })
	w.CheckClean()
}

// TestReconciler_ShortSettlePeriod: payd's settle_period (2d) is shorter
// than Douyin's (7d). Every settle attempt FAILs, but the attempts are
// spaced so that they span more than a day instead of burning in minutes;
// the error, the plan and one warn line say that the period may be too
// short, and the plan says when the next attempt goes.
func TestReconciler_ShortSettlePeriod(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	p := w.Policy
	p.Apps = map[string]reconcile.AppPolicy{testworld.AppID: {SettlePeriod: 2 * 24 * time.Hour, SettleDesc: "e2e"}}
	p.SettleRetry = []time.Duration{time.Hour, 3 * time.Hour, 8 * time.Hour, 12 * time.Hour}
	log, hook := logtest.NewNullLogger()
	rec := reconcile.New(reconcile.Options{Store: w.Store, Provider: douyin.NewProvider(w.Client), Clock: w.Clock, Policy: p, Log: logrus.NewEntry(log)})
	ctx := context.Background()
	pass := func() {
		if _, err := rec.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.SeedPaid("sp1", 1000, 0, w.Sim.Now().Add(-2*24*time.Hour-time.Minute))
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: testworld.AppID, OutOrderNo: "sp1"}, w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	start := w.Clock.Now()
	for i := 0; i < 20 && w.View("sp1").Settlement.Attempt < 2; i++ {
		pass()
		w.Advance(2 * time.Second)
	}
	st := w.View("sp1").Settlement
	if st.Attempt != 2 || !strings.Contains(st.ErrTips, "the app's settle_period (2d) may be shorter than Douyin's") {
		t.Fatalf("attempt %d, err_tips %q: want attempt 2 and the settle_period warning", st.Attempt, st.ErrTips)
	}
	if next := st.NextActionAt.Sub(w.Clock.Now()); next < 50*time.Minute {
		t.Fatalf("attempt 2 goes in %s: a FAIL before the period burns attempts in minutes", next)
	}
	rep, err := reconcile.Report(ctx, w.Store, w.Clock.Now(), p, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Later) != 1 || !strings.Contains(rep.Later[0].Reason, "may be shorter than Douyin's") || !strings.Contains(rep.Later[0].Reason, "retry after the back-off, in ") {
		t.Fatalf("plan: %+v", rep.Later)
	}
	for i := 0; i < 400 && !w.View("sp1").Settlement.Phase.Final(); i++ {
		pass()
		w.Advance(10 * time.Minute)
	}
	st = w.View("sp1").Settlement
	if st.Phase != state.PhaseParked || st.Attempt != 5 {
		t.Fatalf("settlement %s on attempt %d, want parked after 5 attempts", st.Phase, st.Attempt)
	}
	if span := st.DoneAt.Sub(start); span < 24*time.Hour {
		t.Fatalf("5 attempts spent in %s, want at least a day", span)
	}
	if !strings.Contains(st.ParkReason, "may be shorter than Douyin's") {
		t.Fatalf("park reason %q does not say why", st.ParkReason)
	}
	warnings := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "settle_period") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Fatalf("%d settle_period warnings logged, want exactly 1", warnings)
	}
	w.CheckClean()
}

// TestReconciler_LogsParkingAndPasses: a parking is logged at warn with
// its reason, and a pass that did work writes one info line with its
// counts; a pass with nothing to do writes none.
func TestReconciler_LogsParkingAndPasses(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.InfoLevel)
	rec := reconcile.New(reconcile.Options{Store: w.Store, Provider: douyin.NewProvider(w.Client), Clock: w.Clock, Policy: w.Policy, Log: logrus.NewEntry(log)})
	w.Refund("ghost", "r-ghost", 100) // Douyin has never heard of the order
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.View("ghost").Refunds[0].Phase != state.PhaseParked {
		if time.Now().After(deadline) {
			t.Fatal("the refund was never parked")
		}
		rec.Wake()
		time.Sleep(10 * time.Millisecond)
	}
	passes := func() (n int) {
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.InfoLevel && e.Message == "reconcile pass done" {
				n++
			}
		}
		return n
	}
	for passes() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	before := passes()
	rec.Wake() // nothing is due any more
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	var warned *logrus.Entry
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.HasPrefix(e.Message, "parked") {
			warned = e
		}
	}
	if warned == nil || !strings.Contains(fmt.Sprint(warned.Data["reason"]), "Douyin does not know order ghost") || warned.Data["order"] != "ghost" {
		t.Fatalf("parking warn line: %+v", warned)
	}
	if before != 1 || passes() != 1 {
		t.Fatalf("%d pass lines after the work, %d after an idle pass; want 1 and 1", before, passes())
	}
	for _, e := range hook.AllEntries() {
		if e.Message == "reconcile pass done" && (e.Data["actions"] == nil || e.Data["calls"] == nil || e.Data["retryable"] == nil) {
			t.Fatalf("pass line lacks counts: %+v", e.Data)
		}
	}
	// The pass that logged is recorded with the same counts; the idle one is not.
	recs, err := w.Store.LastPasses(context.Background(), state.PassReconcile, 10)
	if err != nil {
		t.Fatal(err)
	}
	var line *logrus.Entry
	for _, e := range hook.AllEntries() {
		if e.Message == "reconcile pass done" {
			line = e
		}
	}
	if len(recs) != 1 || fmt.Sprint(recs[0].Actions) != fmt.Sprint(line.Data["actions"]) || fmt.Sprint(recs[0].Calls) != fmt.Sprint(line.Data["calls"]) ||
		recs[0].Actions == 0 || recs[0].Replica != "payd" || !strings.Contains(recs[0].Detail, "query_order") {
		t.Fatalf("pass records %+v, want one like the line %+v", recs, line.Data)
	}
}
