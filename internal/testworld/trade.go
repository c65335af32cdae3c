package testworld

import (
	"context"
	"net/http"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/jobs"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// The world's trade app, served beside the ecpay app when Options.Trade is
// set.
const (
	TradeAppID  = "tt-e2e-trade"
	TradeSecret = "e2e-trade-secret-0123"
)

// TradeOptions add a trade-system app and its simulator to a World.
type TradeOptions struct {
	// Sim changes the trade simulator's config (its one app is
	// Apps[0]: payment D+7 unless changed).
	Sim func(*tradesim.Config)
	// App changes the reconciler's policy of the trade app.
	App func(*reconcile.AppPolicy)
	// Adapter are the trade adapter's options.
	Adapter trade.AdapterOptions
	// Migrate makes the trade simulator serve the ecpay app (AppID) too,
	// for MoveToTrade.
	Migrate bool
}

// startTrade starts the trade simulator on its own listener; the
// simulator's clock starts at the ecpay simulator's.
func (w *World) startTrade(o *TradeOptions) {
	cfg := tradesim.Config{
		Apps:          []tradesim.App{{AppID: TradeAppID, Secret: TradeSecret, NotifyURL: w.Notify, PreRefundURL: w.Notify}},
		Start:         w.Sim.Now(),
		Rate:          1000,
		RetrySchedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		Hang:          2 * time.Second,
		Seed:          7,
	}
	if o.Migrate {
		cfg.Apps = append(cfg.Apps, tradesim.App{AppID: AppID, Secret: TradeSecret, NotifyURL: w.Notify, PreRefundURL: w.Notify})
	}
	if o.Sim != nil {
		o.Sim(&cfg)
	}
	sim := tradesim.New(cfg)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = sim.Close() })
	w.Trade, w.TradeURL = sim, url
}

// tradeProvider routes the ecpay app to ecpay and the trade app to a trade
// adapter whose client tokens are shared through the world's store.
func (w *World) tradeProvider(o *TradeOptions, ecpay provider.Provider) provider.Provider {
	tokens, err := trade.NewTokens(trade.TokensOptions{BaseURL: w.TradeURL, Apps: []trade.Credential{{AppID: TradeAppID, Secret: TradeSecret}},
		Store: w.Store.ClientTokens(), Now: w.Clock.Now, Holder: "testworld"})
	if err != nil {
		w.t.Fatal(err)
	}
	limits := map[douyin.API]float64{}
	for _, a := range douyin.TradeAPIs {
		limits[a] = 900
	}
	c, err := trade.New(trade.Options{BaseURL: w.TradeURL, Tokens: tokens, Limits: limits, Timeout: 5 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	w.TradeClient = c
	return provider.NewRouter(map[string]provider.Provider{AppID: ecpay, TradeAppID: trade.NewAdapter(c, o.Adapter)}, nil)
}

func (w *World) tradePolicy(o *TradeOptions, p *reconcile.Policy) {
	ap := reconcile.AppPolicy{SettlePeriod: 7 * 24 * time.Hour, AutoSettle: true, SettleDesc: "e2e trade", API: provider.APITrade}
	if o.App != nil {
		o.App(&ap)
	}
	p.Apps[TradeAppID] = ap
}

// SeedTrade creates an order at the trade simulator (paid, on WeChat,
// unless so says otherwise) and tells payd about it; it returns the order
// with Douyin's ids.
func (w *World) SeedTrade(so tradesim.SeedOrder) tradesim.SeedOrder {
	w.t.Helper()
	so.AppID = TradeAppID
	got, err := w.Trade.Seed(so)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, _, err := w.Store.UpsertOrder(context.Background(), state.OrderInput{AppID: TradeAppID, OutOrderNo: so.OutOrderNo}, w.Clock.Now()); err != nil {
		w.t.Fatal(err)
	}
	return got[0]
}

// RefundTrade declares a refund of amount fen of trade order no under key.
func (w *World) RefundTrade(no, key string, amount int64) {
	w.t.Helper()
	if _, _, err := w.Store.DeclareRefund(context.Background(), state.RefundWish{AppID: TradeAppID, OutOrderNo: no, Key: key, Amount: amount, Reason: "e2e"}, w.Clock.Now()); err != nil {
		w.t.Fatal(err)
	}
}

// TradeView is the trade order's history as payd stores it.
func (w *World) TradeView(no string) *state.History {
	w.t.Helper()
	h, err := w.Store.History(context.Background(), TradeAppID, no)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

// TradeLedgerOrder is the trade simulator's ledger entry of order no.
func (w *World) TradeLedgerOrder(no string) tradesim.LedgerOrder {
	w.t.Helper()
	for _, o := range w.Trade.Ledger().Orders {
		if o.OutOrderNo == no {
			return o
		}
	}
	w.t.Fatalf("trade order %s not in the ledger", no)
	return tradesim.LedgerOrder{}
}

// TradeCheckClean fails unless the trade simulator's check finds no
// violation, read through its control API.
func (w *World) TradeCheckClean() {
	w.t.Helper()
	if v := w.Trade.Check(); len(v) != 0 {
		w.t.Fatalf("trade simulator check: %v", v)
	}
	resp, err := http.Get(w.TradeURL + "/_sim/trade/check")
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("/_sim/trade/check: HTTP %d", resp.StatusCode)
	}
}

// FulfilTrade fulfils trade order no (or its item order item, when not
// "") now: at the simulator, as the merchant's own flow tells Douyin, and
// at payd, as `payd fulfil` declares it.
func (w *World) FulfilTrade(no, item string) {
	w.t.Helper()
	if err := w.Trade.Fulfil(w.TradeLedgerOrder(no).OrderID, item); err != nil {
		w.t.Fatal(err)
	}
	now := w.Clock.Now()
	if _, _, err := w.Store.DeclareFulfilment(context.Background(), state.FulfilmentWish{AppID: TradeAppID, OutOrderNo: no, ItemOrderID: item, At: &now}, now); err != nil {
		w.t.Fatal(err)
	}
}

// Waiting is the plan report's waits of trade order no.
func (w *World) Waiting(no string) []reconcile.PlannedWait {
	w.t.Helper()
	rep, err := reconcile.Report(context.Background(), w.Store, w.Clock.Now(), w.Policy, 100)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []reconcile.PlannedWait
	for _, wt := range rep.Waiting {
		if wt.Order == no {
			out = append(out, wt)
		}
	}
	return out
}

// MoveToTrade switches the ecpay app (AppID) to the trade system, as a
// merchant does in config (api: trade, the salt kept): from now on the
// world's reconciler and settle_batch send its new attempts through the
// trade simulator, while items sent under ecpay finish at the ecpay
// simulator. orders are seeded at the trade simulator as Douyin migrates
// them: same order_id, one item order of the whole amount. Options.Trade
// must have Migrate set.
func (w *World) MoveToTrade(orders ...string) {
	w.t.Helper()
	ctx := context.Background()
	for _, no := range orders {
		o, err := w.Store.GetOrder(ctx, AppID, no)
		if err != nil {
			w.t.Fatal(err)
		}
		if _, err := w.Trade.Seed(tradesim.SeedOrder{AppID: AppID, OrderID: o.DouyinOrderID, OutOrderNo: no,
			PaidAgo: w.Clock.Now().Sub(*o.PaidAt).String(), Items: []tradesim.SeedItem{{SKUID: "sku", Amount: o.TotalAmount}}}); err != nil {
			w.t.Fatal(err)
		}
	}
	tokens, err := trade.NewTokens(trade.TokensOptions{BaseURL: w.TradeURL, Apps: []trade.Credential{{AppID: TradeAppID, Secret: TradeSecret}, {AppID: AppID, Secret: TradeSecret}},
		Store: w.Store.ClientTokens(), Now: w.Clock.Now, Holder: "testworld-moved"})
	if err != nil {
		w.t.Fatal(err)
	}
	limits := map[douyin.API]float64{}
	for _, a := range douyin.TradeAPIs {
		limits[a] = 900
	}
	c, err := trade.New(trade.Options{BaseURL: w.TradeURL, Tokens: tokens, Limits: limits, Timeout: 5 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	adapter := trade.NewAdapter(c, trade.AdapterOptions{})
	router := provider.NewRouter(map[string]provider.Provider{AppID: adapter, TradeAppID: adapter}, nil).Legacy(AppID, douyin.NewProvider(w.Client))
	p := w.Policy
	p.Apps = map[string]reconcile.AppPolicy{}
	for id, ap := range w.Policy.Apps {
		p.Apps[id] = ap
	}
	ap := p.Apps[AppID]
	ap.API = provider.APITrade
	p.Apps[AppID] = ap
	w.Policy = p
	w.Rec = reconcile.New(reconcile.Options{Store: reconcile.GroupCommit(w.Store, 8, 0), Provider: router, Clock: w.Clock, Policy: p})
	w.Batch = &jobs.SettleBatch{Store: w.Store, Clock: w.Clock, Policy: p, Wake: w.Rec.Wake}
}
