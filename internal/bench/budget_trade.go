package bench

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// The APIs a Budget run can measure (BudgetOptions.API).
const (
	APIEcpay = "ecpay"
	APITrade = "trade"
)

// TradeAppID is the trade app of the trade budget; its client_secret
// below is a test value, not a secret.
const TradeAppID = "ttbenchtrade0001"

const tradeSecret = "bench-trade-secret-not-a-secret"

// budgetWorld is what Budget drives: a simulator, a store and a
// reconciler wired for one API.
type budgetWorld struct {
	store *state.Store
	rec   *reconcile.Reconciler
	// seed is Rig.SeedStaggered for the world's app and simulator.
	seed func(ctx context.Context, prefix string, n int, k Kind, now time.Time, step time.Duration) error
	// answers counts the answers so far by API and err_no.
	answers func() map[douyin.API]map[int]int64
	// busy is the API's "too many calls" err_no.
	busy  int
	close func()
}

// newBudgetWorld wires o.API's world with every API of apis limited to
// o.Limit.
func newBudgetWorld(ctx context.Context, o BudgetOptions) (*budgetWorld, error) {
	if o.API == APITrade {
		return newTradeBudgetWorld(ctx, o)
	}
	limits := map[douyin.API]float64{}
	for _, api := range budgetAPIs {
		limits[api] = o.Limit
	}
	rig, err := NewRig(ctx, RigOptions{Dir: o.Dir, Synchronous: o.Synchronous, Limits: limits, Workers: o.Workers, Latency: o.Latency})
	if err != nil {
		return nil, err
	}
	return &budgetWorld{store: rig.Store, rec: rig.Rec, seed: rig.SeedStaggered, busy: douyin.ErrNoBusy, close: rig.Close,
		answers: func() map[douyin.API]map[int]int64 { return rig.Sim.Stats().ByAPI }}, nil
}

// newTradeBudgetWorld is the trade system's world: the trade simulator
// with its rate at o.Limit per API, payd's trade client held to o.Limit
// for every trade API (tokens shared through the store, as payd serve
// runs), its adapter behind the reconciler. Answers are counted as the
// client observes them.
func newTradeBudgetWorld(ctx context.Context, o BudgetOptions) (w *budgetWorld, err error) {
	sim := tradesim.New(tradesim.Config{Apps: []tradesim.App{{AppID: TradeAppID, Secret: tradeSecret}}, Rate: o.Limit, Seed: 1})
	var srv *loopback
	var st *state.Store
	closeAll := func() {
		if srv != nil {
			srv.Close()
		}
		_ = sim.Close()
		if st != nil {
			_ = st.Close()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	if srv, err = serveLoopback(sim.Handler(), o.Latency); err != nil {
		return nil, err
	}
	if st, err = openStore(ctx, filepath.Join(o.Dir, "payd.db"), o.Synchronous); err != nil {
		return nil, err
	}
	tokens, err := trade.NewTokens(trade.TokensOptions{BaseURL: srv.URL, Apps: []trade.Credential{{AppID: TradeAppID, Secret: tradeSecret}},
		Store: st.ClientTokens(), Holder: "bench", Log: quietLog()})
	if err != nil {
		return nil, err
	}
	// An idle daemon holds a token: fetch it before the pass.
	if _, err := tokens.Token(ctx, TradeAppID); err != nil {
		return nil, fmt.Errorf("client token: %w", err)
	}
	counts := &answerCounts{byAPI: map[douyin.API]map[int]int64{}}
	limits := map[douyin.API]float64{}
	for _, api := range douyin.TradeAPIs {
		limits[api] = o.Limit
	}
	c, err := trade.New(trade.Options{BaseURL: srv.URL, Tokens: tokens, Limits: limits, Burst: 1,
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}},
		Observe:    counts.observe})
	if err != nil {
		return nil, err
	}
	policy := reconcile.DefaultPolicy()
	policy.Poll, policy.Jitter = []time.Duration{time.Hour}, 0
	policy.Apps = map[string]reconcile.AppPolicy{TradeAppID: {SettlePeriod: 7 * 24 * time.Hour, SettleDesc: "payd bench",
		API: provider.APITrade, Rule: reconcile.RulePayment, CPSFulfilment: true}}
	workers := o.Workers
	if workers <= 0 {
		workers = 32
	}
	rec := reconcile.New(reconcile.Options{Store: st, Provider: trade.NewAdapter(c, trade.AdapterOptions{}), Clock: clock.Real{},
		Policy: policy, Workers: workers, Owner: "bench"})
	seed := func(ctx context.Context, prefix string, n int, k Kind, now time.Time, step time.Duration) error {
		return seedApp(ctx, st, TradeAppID, prefix, n, k, now, step, tradeSeeder(sim))
	}
	return &budgetWorld{store: st, rec: rec, seed: seed, answers: counts.snapshot, busy: trade.ErrNoTooFrequent, close: closeAll}, nil
}

// answerCounts counts the trade client's answers by API and err_no.
type answerCounts struct {
	mu    sync.Mutex
	byAPI map[douyin.API]map[int]int64
}

func (c *answerCounts) observe(ci trade.CallInfo) {
	if ci.ErrNo < 0 {
		return // no answer
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	api := ci.API.Limit()
	if c.byAPI[api] == nil {
		c.byAPI[api] = map[int]int64{}
	}
	c.byAPI[api][ci.ErrNo]++
}

// snapshot is a copy of the counts.
func (c *answerCounts) snapshot() map[douyin.API]map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[douyin.API]map[int]int64, len(c.byAPI))
	for api, byErr := range c.byAPI {
		out[api] = maps.Clone(byErr)
	}
	return out
}

// tradeSeeder seeds sim's paid trade orders, one item order of Amount
// each, on WeChat; known orders get what order_query tells payd (API,
// order_id, pay channel, item orders), so that a refund needs no query.
func tradeSeeder(sim *tradesim.Server) seeder {
	return func(orders []state.Order, paid time.Time, known bool) error {
		ago := sim.Now().Sub(paid).String()
		seeds := make([]tradesim.SeedOrder, len(orders))
		for i, o := range orders {
			seeds[i] = tradesim.SeedOrder{AppID: o.AppID, OutOrderNo: o.OutOrderNo, PaidAgo: ago, Items: []tradesim.SeedItem{{SKUID: "sku", Amount: Amount}}}
		}
		got, err := sim.Seed(seeds...)
		if err != nil || !known {
			return err
		}
		for i := range orders {
			o := &orders[i]
			o.API, o.DouyinOrderID, o.PayChannel = provider.APITrade, got[i].OrderID, trade.ChannelWeChat
			o.SetItems([]state.ItemOrder{{ID: got[i].Items[0].ItemOrderID, Amount: Amount}})
		}
		return nil
	}
}
