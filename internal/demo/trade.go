package demo

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/sandbox"
	"github.com/payd/payd/internal/state"
)

// TradeDemoAppID is the trade app the demo adds when the config has none,
// so that every run plays an ecpay app and a trade app side by side.
const TradeDemoAppID = "tt0000000000tradedemo"

// TradeAutoDemoAppID is the trade app the demo adds, settled_by: douyin,
// when the config has no trade app that Douyin settles itself: Douyin
// (the simulator) settles its orders when due, and payd observes and
// adopts those settlements instead of sending settle_create.
const TradeAutoDemoAppID = "tt0000000000tradeauto"

// demoAuditMax is the demo's audit policy: payd agrees to every refund a
// user starts up to this many fen (the demo's refunds are all smaller).
const demoAuditMax = 10_000_000

// tradeKeys are the keys of one run's trade simulator: the platform key it
// signs callbacks with and each app's public key, which verifies the
// order data payd signs.
type tradeKeys struct {
	platform *rsa.PrivateKey
	apps     map[string]*rsa.PublicKey
}

// configureTrade adds the demo's trade app when cfg has none, and one
// that Douyin settles itself (TradeAutoDemoAppID) when no trade app is
// settled_by douyin, and points every trade app at keys generated into
// dir: the platform public key that verifies the simulator's callbacks,
// an application private key, a client_secret when none is set and the
// demo's audit policy (agree). Trade apps keep their settled_by.
func configureTrade(cfg *config.Config, dir string) (*tradeKeys, error) {
	has, byDouyin := false, false
	for _, a := range cfg.Douyin.Apps {
		has = has || a.IsTrade()
		byDouyin = byDouyin || a.IsTrade() && a.SettledBy == config.SettledByDy
	}
	add := func(id, settledBy string) {
		a := config.DefaultApp()
		a.AppID, a.API, a.SettledBy = id, config.APITrade, settledBy
		cfg.Douyin.Apps = append(cfg.Douyin.Apps, a)
	}
	if !has {
		add(TradeDemoAppID, config.SettledByPayd)
	}
	if !byDouyin {
		add(TradeAutoDemoAppID, config.SettledByDy)
	}
	platform, pubFile, err := sandbox.PlatformKey(filepath.Join(dir, "platform.pem"))
	if err != nil {
		return nil, fmt.Errorf("demo: trade platform key: %w", err)
	}
	keys := &tradeKeys{platform: platform, apps: map[string]*rsa.PublicKey{}}
	for i := range cfg.Douyin.Apps {
		a := &cfg.Douyin.Apps[i]
		if !a.IsTrade() {
			continue
		}
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		privFile := filepath.Join(dir, a.AppID+".pem")
		if err := os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
			return nil, err
		}
		keys.apps[a.AppID] = &k.PublicKey
		a.PlatformPublicKeyFile, a.PlatformPublicKey = pubFile, ""
		a.PrivateKeyFile, a.PrivateKey = privFile, ""
		if a.ClientSecret == "" {
			var b [16]byte
			_, _ = rand.Read(b[:])
			a.ClientSecret = hex.EncodeToString(b[:])
		}
		a.Audit = config.AuditPolicy{Rules: []config.AuditRule{{MaxAmount: demoAuditMax, Action: string(state.AuditAgree)}}}
	}
	return keys, nil
}

// startTrade starts the trade simulator for cfg's trade apps, their
// callbacks and pre_create_refund to notify, and points
// douyin.trade.base_url at it.
func (w *world) startTrade(cfg *config.Config, keys *tradeKeys, notify string, seed int64) error {
	apps := config.TradeSimulatorApps(cfg.Douyin.Apps, notify)
	for i := range apps {
		apps[i].OrderKey = keys.apps[apps[i].AppID]
	}
	w.trade = tradesim.New(tradesim.Config{
		Apps: apps, PlatformKey: keys.platform, ProcessingDelay: 300 * time.Millisecond, Seed: seed,
		RetrySchedule: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, time.Second},
		Faults:        tradesim.Faults{RefundChannelFail: channelFailures},
	})
	url, err := w.trade.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("trade simulator: %w", err)
	}
	w.tradeURL = url
	cfg.Douyin.Trade.BaseURL = url
	return nil
}

// seedTrade places a trade app's paid order (one to three item orders) at
// the trade simulator.
func (s *scenario) seedTrade(a *appRun, no string, total int64) error {
	items := []tradesim.SeedItem{{SKUID: "demo-sku-1", Amount: total}}
	if n := 1 + s.rng.IntN(3); n > 1 && total >= int64(n) {
		items = nil
		left := total
		for i := 1; i < n; i++ {
			part := total / int64(n)
			items = append(items, tradesim.SeedItem{SKUID: fmt.Sprintf("demo-sku-%d", i), Amount: part})
			left -= part
		}
		items = append(items, tradesim.SeedItem{SKUID: fmt.Sprintf("demo-sku-%d", n), Amount: left})
	}
	got, err := s.w.trade.Seed(tradesim.SeedOrder{AppID: a.app.AppID, OutOrderNo: no, PaidAgo: "1h", Items: items})
	if err != nil {
		return err
	}
	a.douyinIDs[no] = got[0].OrderID
	return nil
}

// userRefunds starts, as buyers would, a refund of a fifth of what is left
// on every 10th order of each trade app; the first needs the merchant's
// audit, which the demo's policy agrees to. Each is answered by payd's
// pre_create_refund from the database before Douyin creates it.
func (s *scenario) userRefunds(ctx context.Context) (int, error) {
	n := 0
	for _, a := range s.apps {
		if !a.app.IsTrade() {
			continue
		}
		for i, so := range a.orders {
			if i%10 != 5 {
				continue
			}
			left, err := s.leftOf(ctx, a, so)
			if err != nil || left < 5 {
				continue
			}
			u := tradesim.UserRefund{AppID: a.app.AppID, OrderID: a.douyinIDs[so.no], Amount: left / 5, Source: 1, NeedAudit: a.user == 0}
			res, err := s.w.trade.StartUserRefund(u)
			if err != nil {
				return n, fmt.Errorf("user refund of %s: %w", so.no, err)
			}
			if !res.Accepted {
				return n, fmt.Errorf("user refund of %s: payd did not take it: %+v", so.no, res)
			}
			if u.NeedAudit {
				a.audits++
			}
			a.user++
			n++
		}
	}
	return n, nil
}

// leftOf is what payd has not refunded of an order yet.
func (s *scenario) leftOf(ctx context.Context, a *appRun, so seeded) (int64, error) {
	h, err := s.w.d.Store().History(ctx, a.app.AppID, so.no)
	if err != nil {
		return 0, err
	}
	left := so.total
	for _, r := range h.Refunds {
		if r.Phase == state.PhaseSucceeded {
			left -= r.Amount
		}
	}
	return left, nil
}

// tradeCheck reads the trade simulator's ledger check through its control
// API (GET /_sim/trade/check).
func (w *world) tradeCheck(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.tradeURL+"/_sim/trade/check", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("trade simulator check: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Violations []string `json:"violations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("trade simulator check: HTTP %d: %v", resp.StatusCode, err)
	}
	return out.Violations, nil
}

// tradeSums fills each trade app's Douyin sums from the trade simulator's
// ledger.
func tradeSums(apps []AppReport, l tradesim.Ledger) {
	byApp := make(map[string]*AppReport, len(apps))
	for i := range apps {
		byApp[apps[i].AppID] = &apps[i]
	}
	for _, o := range l.Orders {
		a := byApp[o.AppID]
		if a == nil {
			continue
		}
		for _, r := range o.Refunds {
			if r.Status == "SUCCESS" {
				a.DouyinRefunded += r.Amount
			}
		}
		for _, st := range o.Settlements {
			if st.Status == "SUCCESS" {
				a.DouyinSettled += st.Amount
				if st.No == st.ID { // Douyin's own: out_settle_no = settle_id
					a.DouyinAutoSettled++
				}
			}
		}
	}
}
