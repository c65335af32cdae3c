package config

import (
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/douyin/tradesim"
)

// Simulator returns the simulator's config for this sandbox section serving
// apps. The caller sets the logger.
func (s Sandbox) Simulator(apps []douyinsim.App) douyinsim.Config {
	limits := make(map[douyin.API]float64, len(s.Limits))
	for k, v := range s.Limits {
		limits[douyin.API(k)] = v
	}
	return douyinsim.Config{
		Apps:            apps,
		SettlePeriod:    s.SettlePeriod.Duration,
		ProcessingDelay: s.ProcessingDelay.Duration,
		NotifyURL:       s.NotifyURL,
		CallbackScale:   s.CallbackScale,
		Limits:          limits,
		Seed:            s.Seed,
		Faults:          s.Faults,
	}
}

// SimulatorApps are the ecpay simulator's apps for apps, each with its own
// keys; they take the sandbox section's settle period. A trade app is
// among them only when it keeps a salt (migrated from ecpay).
func SimulatorApps(apps []App) []douyinsim.App {
	out := make([]douyinsim.App, 0, len(apps))
	for _, a := range apps {
		if a.IsTrade() && a.Salt == "" {
			continue
		}
		out = append(out, douyinsim.App{AppID: a.AppID, Salt: a.Salt, Token: a.Token})
	}
	return out
}

// TradeSimulatorApps are the trade simulator's apps: every trade app of
// apps with its secret, settle rule and settler; notify receives the
// callbacks and pre_create_refund.
func TradeSimulatorApps(apps []App, notify string) []tradesim.App {
	var out []tradesim.App
	for _, a := range apps {
		if !a.IsTrade() {
			continue
		}
		out = append(out, tradesim.App{AppID: a.AppID, Secret: a.ClientSecret, Rule: tradesim.SettleRule(a.SettleRule),
			SettleDays: a.SettleDays, AutoSettle: a.SettledBy == SettledByDy, NotifyURL: notify, PreRefundURL: notify})
	}
	return out
}
