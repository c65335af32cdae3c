package config

import (
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
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

// SimulatorApps are the simulator's apps for apps, each with its own keys;
// they take the sandbox section's settle period.
func SimulatorApps(apps []App) []douyinsim.App {
	out := make([]douyinsim.App, len(apps))
	for i, a := range apps {
		out[i] = douyinsim.App{AppID: a.AppID, Salt: a.Salt, Token: a.Token}
	}
	return out
}
