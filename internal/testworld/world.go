// Package testworld is the end-to-end test world that the reconciler's,
// the jobs' and the reliability tests share: a reconciler wired to a real
// SQLite store and the Douyin simulator (and, when asked, payd's callback
// handler), with payd's clock and the simulator's moved together. Only
// tests import it.
package testworld

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/jobs"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/server"
	"github.com/payd/payd/internal/state"
)

// The world's one app and its secrets.
const (
	AppID = "tt-e2e"
	Salt  = "e2e-salt-0123456789"
	Token = "e2e-token-0123456789"
)

// World is a reconciler, its store, the simulator and their clocks.
type World struct {
	t       *testing.T
	Clock   *clock.Fake
	Sim     *douyinsim.Server
	SimURL  string
	Client  *douyin.Client
	Store   *state.Store
	DBPath  string
	Rec     *reconcile.Reconciler
	Batch   *jobs.SettleBatch
	Policy  reconcile.Policy
	Notify  string // the callback handler's URL, when wired
	Handler http.Handler
	// Trade, TradeURL and TradeClient are the trade simulator and payd's
	// trade client, when Options.Trade is set.
	Trade       *tradesim.Server
	TradeURL    string
	TradeClient *trade.Client
}

// Options shape a World; the zero value is a fast, fault-free world.
type Options struct {
	Sim    func(*douyinsim.Config)
	Policy func(*reconcile.Policy)
	// Limits are payd's client limits; 900/s for every API when nil.
	Limits  map[douyin.API]float64
	Timeout time.Duration // of payd's client; 5s when zero
	Workers int
	// Seed seeds the simulator's faults; 42 when zero.
	Seed int64
	// Callbacks serves payd's callback handler and points the simulator at it.
	Callbacks bool
	Busy      time.Duration // the store's busy timeout
	// Wrap wraps the provider the reconciler uses.
	Wrap func(provider.Provider) provider.Provider
	// Trade adds a trade-system app (TradeAppID) beside the ecpay one.
	Trade *TradeOptions
	// DB is the store's database (its Now is the world's clock); a SQLite
	// file in t.TempDir() when nil.
	DB *state.Options
}

// New builds a world and registers its teardown with t.
func New(t *testing.T, o Options) *World {
	t.Helper()
	w := &World{t: t, DBPath: filepath.Join(t.TempDir(), "payd.db")}
	// The callback listener comes first: the simulator needs its URL.
	var cbLn net.Listener
	if o.Callbacks {
		var err error
		if cbLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		w.Notify = "http://" + cbLn.Addr().String() + "/douyin/notify"
	}
	w.startSim(o)
	if o.Trade != nil {
		w.startTrade(o.Trade)
	}
	w.Clock = clock.NewFake(w.Sim.Now())
	w.openStore(o)
	w.newClient(o)
	p := reconcile.DefaultPolicy()
	p.Apps = map[string]reconcile.AppPolicy{AppID: {SettlePeriod: 7 * 24 * time.Hour, AutoSettle: true, SettleDesc: "e2e", API: provider.APIEcpay}}
	p.Jitter = 0
	p.SettleRetry = nil // settlements retry on Retry, as the tests' schedules expect
	if o.Trade != nil {
		w.tradePolicy(o.Trade, &p)
	}
	if o.Policy != nil {
		o.Policy(&p)
	}
	w.Policy = p
	var dy provider.Provider = douyin.NewProvider(w.Client)
	if o.Trade != nil {
		dy = w.tradeProvider(o.Trade, dy)
	}
	if o.Wrap != nil {
		dy = o.Wrap(dy)
	}
	w.Rec = reconcile.New(reconcile.Options{Store: reconcile.GroupCommit(w.Store, o.Workers, 0), Provider: dy, Clock: w.Clock, Policy: p, Workers: o.Workers})
	w.Batch = &jobs.SettleBatch{Store: w.Store, Clock: w.Clock, Policy: p, Wake: w.Rec.Wake}
	if o.Callbacks {
		w.serveCallbacks(cbLn)
	}
	return w
}

func (w *World) startSim(o Options) {
	seed := o.Seed
	if seed == 0 {
		seed = 42
	}
	cfg := douyinsim.Config{
		Apps:            []douyinsim.App{{AppID: AppID, Salt: Salt, Token: Token}},
		SettlePeriod:    7 * 24 * time.Hour,
		ProcessingDelay: time.Second,
		CallbackScale:   0.001,
		Seed:            seed,
		NotifyURL:       w.Notify,
		Limits:          map[douyin.API]float64{},
	}
	for _, api := range douyin.APIs {
		cfg.Limits[api] = 1000
	}
	if o.Sim != nil {
		o.Sim(&cfg)
	}
	sim, err := douyinsim.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { sim.Close() })
	w.Sim, w.SimURL = sim, url
}

func (w *World) openStore(o Options) {
	ctx := context.Background()
	so := state.Options{DSN: w.DBPath, Synchronous: "NORMAL", BusyTimeout: o.Busy}
	if o.DB != nil {
		so = *o.DB
	}
	so.Now = w.Clock.Now
	st, err := state.Open(ctx, so)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { st.Close() })
	w.Store = st
}

func (w *World) newClient(o Options) {
	limits := o.Limits
	if limits == nil {
		limits = map[douyin.API]float64{}
		for _, api := range douyin.APIs {
			limits[api] = 900
		}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	c, err := douyin.New(douyin.Options{BaseURL: w.SimURL, Timeout: timeout, Apps: []douyin.App{{AppID: AppID, Salt: Salt, Token: Token}}, Limits: limits})
	if err != nil {
		w.t.Fatal(err)
	}
	w.Client = c
}

func (w *World) serveCallbacks(ln net.Listener) {
	o := server.CallbackOptions{
		Inbox: w.Store, Tokens: map[string]string{AppID: Token}, Waker: w.Rec, Clock: w.Clock,
		Rate: 100000, Burst: 100000,
	}
	if w.Trade != nil {
		o.PlatformKeys = map[string]*rsa.PublicKey{TradeAppID: w.Trade.PublicKey()}
		o.PreRefund = &server.StorePreRefunder{Store: w.Store, Clock: w.Clock, Waker: w.Rec}
	}
	w.Handler = server.NewCallbackHandler(o)
	srv := &http.Server{Handler: w.Handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	w.t.Cleanup(func() { srv.Close() })
}

// Advance moves both clocks.
func (w *World) Advance(d time.Duration) {
	w.Clock.Advance(d)
	w.Sim.Advance(d)
	if w.Trade != nil {
		w.Trade.Advance(d)
	}
}

// Pass runs one reconcile pass and fails the test on its error.
func (w *World) Pass() reconcile.PassStats {
	w.t.Helper()
	ps, err := w.Rec.RunOnce(context.Background())
	if err != nil {
		w.t.Fatalf("RunOnce: %v", err)
	}
	return ps
}

// SeedPaid creates a paid order at Douyin and tells payd about it.
func (w *World) SeedPaid(no string, total, cps int64, paidAt time.Time) {
	w.t.Helper()
	if err := w.Sim.SeedOrder(douyinsim.SeedOrder{AppID: AppID, OutOrderNo: no, TotalAmount: total, Status: "SUCCESS", PaidAt: paidAt, CPSShare: cps}); err != nil {
		w.t.Fatal(err)
	}
	if _, _, err := w.Store.UpsertOrder(context.Background(), state.OrderInput{AppID: AppID, OutOrderNo: no}, w.Clock.Now()); err != nil {
		w.t.Fatal(err)
	}
}

// Refund declares a refund of amount fen of order no under key.
func (w *World) Refund(no, key string, amount int64) {
	w.t.Helper()
	if _, _, err := w.Store.DeclareRefund(context.Background(), state.RefundWish{AppID: AppID, OutOrderNo: no, Key: key, Amount: amount, Reason: "e2e"}, w.Clock.Now()); err != nil {
		w.t.Fatal(err)
	}
}

// View is the order's history as payd stores it.
func (w *World) View(no string) *state.History {
	w.t.Helper()
	h, err := w.Store.History(context.Background(), AppID, no)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

// Converge runs passes, moving time by step between them, until done holds
// (nothing open, when done is nil) or rounds run out; it returns the passes
// run.
func (w *World) Converge(rounds int, step time.Duration, done func() bool) int {
	w.t.Helper()
	if done == nil {
		done = func() bool { return w.OpenItems() == 0 }
	}
	for i := 0; i < rounds; i++ {
		w.Pass()
		if done() {
			return i + 1
		}
		w.Advance(step)
	}
	w.logOpen()
	s, _ := w.Store.Summary(context.Background())
	w.t.Fatalf("not converged after %d rounds: %+v", rounds, s)
	return rounds
}

// logOpen logs every refund still open, with its calls.
func (w *World) logOpen() {
	for _, o := range w.Sim.Ledger().Orders {
		h := w.View(o.OutOrderNo)
		for _, r := range h.Refunds {
			if r.Phase.Final() {
				continue
			}
			w.t.Logf("open refund %+v", r)
			for _, a := range h.Attempts {
				w.t.Logf("  attempt %s %s %s %d %s", a.API, a.MerchantNo, a.Outcome, a.ErrNo, a.ErrTips)
			}
			w.t.Logf("  ledger %+v", o)
		}
	}
}

// OpenItems counts what is not final yet: orders not known, refunds and
// settlements not succeeded or parked.
func (w *World) OpenItems() int64 {
	w.t.Helper()
	s, err := w.Store.Summary(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return OpenIn(s)
}

// OpenIn counts what s shows not final yet.
func OpenIn(s *state.Summary) int64 {
	var n int64
	for _, p := range []state.Phase{state.PhasePending, state.PhaseSubmitting, state.PhaseProcessing} {
		n += s.Refunds[p] + s.Settlements[p]
	}
	return n + s.Orders[state.OrderUnknown] + s.Orders[state.OrderProcessing]
}

// LedgerOrder is the simulator's ledger entry of order no.
func (w *World) LedgerOrder(no string) douyinsim.LedgerOrder {
	w.t.Helper()
	for _, o := range w.Sim.Ledger().Orders {
		if o.OutOrderNo == no {
			return o
		}
	}
	w.t.Fatalf("order %s not in the ledger", no)
	return douyinsim.LedgerOrder{}
}

// CheckClean fails unless the simulator's GET /_sim/check reports no
// violation of its ledger's invariants.
func (w *World) CheckClean() {
	w.t.Helper()
	resp, err := http.Get(w.SimURL + "/_sim/check")
	if err != nil {
		w.t.Fatalf("/_sim/check: %v", err)
	}
	defer resp.Body.Close()
	var c struct {
		Violations *[]string `json:"violations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK || c.Violations == nil {
		w.t.Fatalf("/_sim/check: HTTP %d, %v", resp.StatusCode, err)
	}
	if len(*c.Violations) != 0 {
		w.t.Fatalf("simulator check: %v", *c.Violations)
	}
}
