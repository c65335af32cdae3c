package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/jobs"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/server"
	"github.com/payd/payd/internal/state"
)

const (
	appID = "tt-reliability"
	salt  = "rel-salt-5d8e1a0c93f2"
	token = "rel-token-b71c44e9a0d6"
)

// world is a reconciler wired to a real SQLite store, the simulator and
// (optionally) payd's callback handler, with payd's clock and the
// simulator's moved together. It copies the small pieces of
// internal/jobs/e2e_test.go that the harnesses need.
type world struct {
	t       *testing.T
	clock   *clock.Fake
	sim     *douyinsim.Server
	client  *douyin.Client
	store   *state.Store
	dbPath  string
	rec     *reconcile.Reconciler
	batch   *jobs.SettleBatch
	policy  reconcile.Policy
	notify  string // the callback handler's URL, when wired
	handler http.Handler
}

type worldOpts struct {
	sim       func(*douyinsim.Config)
	policy    func(*reconcile.Policy)
	timeout   time.Duration
	workers   int
	callbacks bool // serve payd's callback handler and point the simulator at it
	busy      time.Duration
	douyin    func(provider.Provider) provider.Provider // wraps the provider the reconciler uses
}

func newWorld(t *testing.T, o worldOpts) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, dbPath: filepath.Join(t.TempDir(), "payd.db")}

	// The callback listener comes first: the simulator needs its URL.
	var cbLn net.Listener
	if o.callbacks {
		var err error
		cbLn, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		w.notify = "http://" + cbLn.Addr().String() + "/douyin/notify"
	}

	simCfg := douyinsim.Config{
		Apps:            []douyinsim.App{{AppID: appID, Salt: salt, Token: token}},
		SettlePeriod:    7 * 24 * time.Hour,
		ProcessingDelay: time.Second,
		CallbackScale:   0.001,
		Seed:            7,
		NotifyURL:       w.notify,
		Limits:          map[douyin.API]float64{},
	}
	for _, api := range douyin.APIs {
		simCfg.Limits[api] = 1000
	}
	if o.sim != nil {
		o.sim(&simCfg)
	}
	sim, err := douyinsim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	w.sim = sim

	w.clock = clock.NewFake(sim.Now())
	st, err := state.Open(ctx, state.Options{DSN: w.dbPath, Synchronous: "NORMAL", BusyTimeout: o.busy, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.store = st

	limits := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		limits[api] = 900
	}
	timeout := o.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	w.client, err = douyin.New(douyin.Options{BaseURL: url, Timeout: timeout, Apps: []douyin.App{{AppID: appID, Salt: salt, Token: token}}, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	p := reconcile.DefaultPolicy()
	p.Apps = map[string]reconcile.AppPolicy{appID: {SettlePeriod: 7 * 24 * time.Hour, AutoSettle: true, SettleDesc: "reliability"}}
	p.Jitter = 0
	if o.policy != nil {
		o.policy(&p)
	}
	w.policy = p
	var dy provider.Provider = douyin.NewProvider(w.client)
	if o.douyin != nil {
		dy = o.douyin(dy)
	}
	w.rec = reconcile.New(reconcile.Options{Store: st, Provider: dy, Clock: w.clock, Policy: p, Workers: o.workers})
	w.batch = &jobs.SettleBatch{Store: st, Clock: w.clock, Policy: p, Wake: w.rec.Wake}

	if o.callbacks {
		w.handler = server.NewCallbackHandler(server.CallbackOptions{
			Inbox: st, Tokens: map[string]string{appID: token}, Waker: w.rec, Clock: w.clock,
			Rate: 100000, Burst: 100000,
		})
		srv := &http.Server{Handler: w.handler, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(cbLn) }()
		t.Cleanup(func() { srv.Close() })
	}
	return w
}

// advance moves both clocks.
func (w *world) advance(d time.Duration) {
	w.clock.Advance(d)
	w.sim.Advance(d)
}

// pass runs one reconcile pass and fails the test on its error.
func (w *world) pass() reconcile.PassStats {
	w.t.Helper()
	ps, err := w.rec.RunOnce(context.Background())
	if err != nil {
		w.t.Fatalf("RunOnce: %v", err)
	}
	return ps
}

// seedPaid creates a paid order at Douyin and tells payd about it.
func (w *world) seedPaid(no string, total, cps int64, paidAt time.Time) {
	w.t.Helper()
	if err := w.sim.SeedOrder(douyinsim.SeedOrder{AppID: appID, OutOrderNo: no, TotalAmount: total, Status: "SUCCESS", PaidAt: paidAt, CPSShare: cps}); err != nil {
		w.t.Fatal(err)
	}
	if _, _, err := w.store.UpsertOrder(context.Background(), state.OrderInput{AppID: appID, OutOrderNo: no}, w.clock.Now()); err != nil {
		w.t.Fatal(err)
	}
}

// refund declares a refund.
func (w *world) refund(no, key string, amount int64) {
	w.t.Helper()
	if _, _, err := w.store.DeclareRefund(context.Background(), state.RefundWish{AppID: appID, OutOrderNo: no, Key: key, Amount: amount, Reason: "reliability"}, w.clock.Now()); err != nil {
		w.t.Fatal(err)
	}
}

// openItems counts what is not final yet: orders not known, refunds and
// settlements not succeeded or failed.
func (w *world) openItems() int64 {
	w.t.Helper()
	s, err := w.store.Summary(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return openIn(s)
}

func openIn(s *state.Summary) int64 {
	var n int64
	for _, p := range []state.Phase{state.PhasePending, state.PhaseSubmitting, state.PhaseProcessing} {
		n += s.Refunds[p] + s.Settlements[p]
	}
	return n + s.Orders[state.OrderUnknown] + s.Orders[state.OrderProcessing]
}

// converge runs passes, moving time by step between them, until nothing is
// open or rounds run out; it returns the passes run.
func (w *world) converge(rounds int, step time.Duration) int {
	w.t.Helper()
	for i := 0; i < rounds; i++ {
		w.pass()
		if w.openItems() == 0 {
			return i + 1
		}
		w.advance(step)
	}
	s, _ := w.store.Summary(context.Background())
	w.t.Fatalf("not converged after %d rounds: %+v", rounds, s)
	return rounds
}

// wish is what the merchant declared of one order.
type wish struct {
	total, cps int64
	refunds    map[string]int64 // refund key → amount
	settle     bool
}

// verifyLedger compares the simulator's ledger with the wishes: every
// declared refund succeeded exactly once under one of its numbers with the
// exact amount, every settlement executed once for total − refunds − cps,
// nothing else moved money, and Check is clean. It returns the executions
// counted.
func verifyLedger(t *testing.T, l douyinsim.Ledger, violations []string, wishes map[string]wish) (refunds, settlements int) {
	t.Helper()
	if len(violations) != 0 {
		t.Fatalf("simulator check: %d violations: %v", len(violations), violations)
	}
	seen := map[string]bool{}
	for _, lo := range l.Orders {
		wi, ok := wishes[lo.OutOrderNo]
		if !ok {
			t.Fatalf("ledger has order %s that was never declared", lo.OutOrderNo)
		}
		seen[lo.OutOrderNo] = true
		succeeded := map[string]int64{} // key → amount
		var refunded int64
		for _, r := range lo.Refunds {
			if r.Executions > 1 {
				t.Fatalf("refund %s of %s executed %d times", r.OutRefundNo, lo.OutOrderNo, r.Executions)
			}
			if r.Status != douyin.StatusSuccess {
				if r.Executions != 0 {
					t.Fatalf("refund %s of %s is %s with %d executions", r.OutRefundNo, lo.OutOrderNo, r.Status, r.Executions)
				}
				continue
			}
			if r.Executions != 1 {
				t.Fatalf("refund %s of %s succeeded with %d executions", r.OutRefundNo, lo.OutOrderNo, r.Executions)
			}
			key := attemptKey(r.OutRefundNo)
			if _, dup := succeeded[key]; dup {
				t.Fatalf("refund %s of %s succeeded twice", key, lo.OutOrderNo)
			}
			succeeded[key] = r.Amount
			refunded += r.Amount
			refunds++
		}
		if len(succeeded) != len(wi.refunds) {
			t.Fatalf("order %s: %d refunds succeeded, %d declared (%v vs %v)", lo.OutOrderNo, len(succeeded), len(wi.refunds), succeeded, wi.refunds)
		}
		for key, amount := range wi.refunds {
			if got, ok := succeeded[key]; !ok || got != amount {
				t.Fatalf("order %s refund %s: ledger %d (found %v), declared %d", lo.OutOrderNo, key, got, ok, amount)
			}
		}
		if lo.RefundedAmount != refunded {
			t.Fatalf("order %s: ledger refunded %d, sum of refunds %d", lo.OutOrderNo, lo.RefundedAmount, refunded)
		}
		var settledOnce int
		for _, s := range lo.Settlements {
			if s.Executions > 1 || (s.Status == douyin.StatusSuccess) != (s.Executions == 1) {
				t.Fatalf("settlement %s of %s: %s with %d executions", s.OutSettleNo, lo.OutOrderNo, s.Status, s.Executions)
			}
			settledOnce += s.Executions
		}
		want := 0
		if wi.settle {
			want = 1
		}
		if settledOnce != want {
			t.Fatalf("order %s settled %d times, want %d", lo.OutOrderNo, settledOnce, want)
		}
		if wi.settle {
			if exp := wi.total - refunded - wi.cps; lo.SettledAmount != exp {
				t.Fatalf("order %s settled %d, want %d (total %d − refunds %d − cps %d)", lo.OutOrderNo, lo.SettledAmount, exp, wi.total, refunded, wi.cps)
			}
			settlements++
		}
	}
	for no := range wishes {
		if !seen[no] {
			t.Fatalf("declared order %s is not in the ledger", no)
		}
	}
	return refunds, settlements
}

// attemptKey strips payd's "-<attempt>" suffix from a merchant number.
func attemptKey(no string) string {
	i := strings.LastIndexByte(no, '-')
	if i < 0 {
		return no
	}
	for _, c := range no[i+1:] {
		if c < '0' || c > '9' {
			return no
		}
	}
	return no[:i]
}

// verifyStore checks that payd's own rows agree with the wishes: every
// declared refund succeeded with its amount, every settlement succeeded with
// the amount the ledger shows.
func verifyStore(t *testing.T, st *state.Store, app string, l douyinsim.Ledger, wishes map[string]wish) {
	t.Helper()
	ctx := context.Background()
	for _, lo := range l.Orders {
		h, err := st.History(ctx, app, lo.OutOrderNo)
		if err != nil {
			t.Fatalf("history of %s: %v", lo.OutOrderNo, err)
		}
		wi := wishes[lo.OutOrderNo]
		if len(h.Refunds) != len(wi.refunds) {
			t.Fatalf("order %s: payd has %d refunds, %d declared", lo.OutOrderNo, len(h.Refunds), len(wi.refunds))
		}
		for _, r := range h.Refunds {
			if r.Phase != state.PhaseSucceeded || r.Amount != wi.refunds[r.Key] {
				t.Fatalf("order %s refund %s: %s %d fen (%s), declared %d", lo.OutOrderNo, r.Key, r.Phase, r.Amount, r.ParkReason, wi.refunds[r.Key])
			}
		}
		if wi.settle {
			if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != lo.SettledAmount {
				t.Fatalf("order %s: payd's settlement %+v, ledger settled %d", lo.OutOrderNo, h.Settlement, lo.SettledAmount)
			}
		}
	}
}

// callsByOutcome groups payd's attempt log by API and outcome.
func callsByOutcome(t *testing.T, st *state.Store) map[string]int64 {
	t.Helper()
	var rows []struct {
		API     string
		Outcome string
		N       int64
	}
	if err := st.DB().Model(&state.Attempt{}).Select("api, outcome, COUNT(*) AS n").Group("api, outcome").Scan(&rows).Error; err != nil {
		t.Fatalf("group attempts: %v", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.API+"/"+r.Outcome] = r.N
	}
	return out
}

// formatCounts renders a map as "k=v" pairs in key order.
func formatCounts[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}

// simCalls renders the simulator's answers as "api/err_no=n".
func simCalls(st douyinsim.Stats) map[string]int64 {
	out := map[string]int64{}
	for api, byErr := range st.ByAPI {
		for errNo, n := range byErr {
			out[fmt.Sprintf("%s/%d", api, errNo)] = n
		}
	}
	return out
}
