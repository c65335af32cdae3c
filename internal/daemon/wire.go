package daemon

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/jobs"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// StoreOptions are the state.Options of cfg.
func StoreOptions(cfg *config.Config, clk clock.Clock, log *logrus.Entry, mustExist bool) state.Options {
	return state.Options{
		Driver:      cfg.Database.Driver,
		DSN:         cfg.Database.DSN,
		Synchronous: cfg.Database.Synchronous,
		BusyTimeout: cfg.Database.BusyTimeout.Duration,
		Now:         clk.Now,
		Logger:      log,
		MustExist:   mustExist,
	}
}

// NewLogger builds the logger of cfg.Log writing to w.
func NewLogger(c config.Log, w io.Writer) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(w)
	if c.Format == "text" {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	} else {
		l.SetFormatter(&logrus.JSONFormatter{})
	}
	lvl, err := logrus.ParseLevel(c.Level)
	if err != nil {
		lvl = logrus.InfoLevel
	}
	l.SetLevel(lvl)
	return logrus.NewEntry(l)
}

// OpenStore opens the configured database, creating it if need be, and
// brings its schema up to date: for migrate and serve only.
func OpenStore(ctx context.Context, cfg *config.Config, clk clock.Clock, log *logrus.Entry) (*state.Store, error) {
	st, err := state.Open(ctx, StoreOptions(cfg, clk, log, false))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return st, nil
}

// douyinApps converts the configured ecpay apps (and trade apps that keep
// their ecpay salt, migrated ones).
func douyinApps(cfg *config.Config) []douyin.App {
	apps := make([]douyin.App, 0, len(cfg.Douyin.Apps))
	for _, a := range cfg.Douyin.Apps {
		if a.IsTrade() && a.Salt == "" {
			continue
		}
		apps = append(apps, douyin.App{AppID: a.AppID, Salt: a.Salt, Token: a.Token, ThirdpartyID: a.ThirdpartyID})
	}
	return apps
}

// apiLimits converts a config limits map.
func apiLimits(m map[string]float64) map[douyin.API]float64 {
	out := make(map[douyin.API]float64, len(m))
	for k, v := range m {
		out[douyin.API(k)] = v
	}
	return out
}

// NewClient builds the Douyin client; baseURL overrides the configured one
// when not empty (the demo's simulator).
func NewClient(cfg *config.Config, baseURL string, m *metrics.Metrics) (*douyin.Client, error) {
	if baseURL == "" {
		baseURL = cfg.Douyin.URL()
	}
	o := douyin.Options{
		BaseURL:  baseURL,
		Timeout:  cfg.Douyin.Timeout.Duration,
		Apps:     douyinApps(cfg),
		Limits:   apiLimits(cfg.Douyin.Limits),
		Burst:    cfg.Douyin.Burst,
		InFlight: cfg.Douyin.InFlightWindow.Duration,
	}
	maps.Copy(o.Limits, cfg.Douyin.Trade.LimiterLimits()) // one limiter for both APIs: replicas share both
	if m != nil {
		o.Observe = m.ObserveCall
	}
	return douyin.New(o)
}

// Policy builds the reconciler's Policy from the config.
func Policy(cfg *config.Config) reconcile.Policy {
	p := reconcile.Policy{
		Apps:           map[string]reconcile.AppPolicy{},
		RefundAttempts: cfg.Reconcile.RefundAttempts,
		SettleAttempts: cfg.Reconcile.SettleAttempts,
		Retry:          durations(cfg.Reconcile.Retry),
		SettleRetry:    durations(cfg.Reconcile.SettleRetry),
		Poll:           durations(cfg.Reconcile.Poll),
		Jitter:         cfg.Reconcile.Jitter,
	}
	for _, a := range cfg.Douyin.Apps {
		ap := reconcile.AppPolicy{
			SettlePeriod: a.SettlePeriod.Duration, AutoSettle: a.AutoSettle,
			SettleDesc: a.SettleDesc, NotifyURL: a.NotifyURL, API: provider.APIEcpay,
		}
		tradePolicy(&ap, a)
		p.Apps[a.AppID] = ap
	}
	return p
}

func durations(b config.Backoff) []time.Duration {
	out := make([]time.Duration, len(b))
	for i, d := range b {
		out[i] = d.Duration
	}
	return out
}

// Providers routes each app's calls to the adapter of the API it speaks;
// a trade app that keeps its ecpay salt (one moved from ecpay) also routes
// the items its orders sent under ecpay to the ecpay adapter, so that they
// finish there.
func Providers(cfg *config.Config, client *douyin.Client, trade map[string]provider.Provider) provider.Provider {
	ecpay := douyin.NewProvider(client)
	byApp := map[string]provider.Provider{}
	var legacy []string
	for _, a := range cfg.Douyin.Apps {
		switch a.API {
		case "", config.APIEcpay:
			byApp[a.AppID] = ecpay
		case config.APITrade:
			byApp[a.AppID] = trade[a.AppID]
			if a.Salt != "" {
				legacy = append(legacy, a.AppID)
			}
		}
	}
	r := provider.NewRouter(byApp, nil)
	for _, id := range legacy {
		r.Legacy(id, ecpay)
	}
	return r
}

// WriteStore is st as the reconciler and the callback inbox write to it
// under cfg: grouped and paced on SQLite (reconcile.GroupCommit).
func WriteStore(cfg *config.Config, st *state.Store) reconcile.Store {
	return reconcile.GroupCommit(st, cfg.Workers(), cfg.Database.GroupCommitWait.Duration)
}

// NewReconciler wires a reconciler.
func NewReconciler(cfg *config.Config, st reconcile.Store, client *douyin.Client, clk clock.Clock, log *logrus.Entry, m *metrics.Metrics, observe func(reconcile.ActionResult)) *reconcile.Reconciler {
	if s, ok := st.(*state.Store); ok {
		st = WriteStore(cfg, s)
	}
	o := reconcile.Options{
		Store: st, Provider: Providers(cfg, client, tradeProviders(cfg, st, client, log, m)), Clock: clk, Policy: Policy(cfg),
		Workers: cfg.Workers(), Lease: cfg.Reconcile.Lease.Duration, MaxOrders: cfg.Reconcile.Batch,
		Owner: ProcessOwner(), Log: log.WithField("component", "reconcile"),
	}
	o.Observe = observe
	if m != nil {
		o.Observe = func(r reconcile.ActionResult) {
			m.Actions.WithLabelValues(r.App, string(r.Action.Kind), r.Outcome).Inc()
			if observe != nil {
				observe(r)
			}
		}
		o.ObservePass = func(ps reconcile.PassStats) { m.PassDuration.Observe(ps.Duration.Seconds()) }
	}
	return reconcile.New(o)
}

// ProcessOwner names this process in leases and in the replica list.
func ProcessOwner() string { return jobs.Owner() }

// JoinReplicas counts this process among the replicas sharing the
// database, and so the apps' Douyin budgets, before it makes any call.
func JoinReplicas(ctx context.Context, st *state.Store, client *douyin.Client, clk clock.Clock, log *logrus.Entry, mx *metrics.Metrics) (*jobs.Membership, error) {
	m := &jobs.Membership{Store: st, Limiter: client.Limiter(), Owner: ProcessOwner(), Clock: clk, Log: log.WithField("component", "replicas")}
	if mx != nil {
		m.Observe = func(n int) { mx.Replicas.Set(float64(n)) }
	}
	jobs.ForgetDeadLocal(ctx, st, log)
	n, err := m.Join(ctx)
	if err != nil {
		return nil, err
	}
	if n > 1 {
		log.WithField("replicas", n).Infof("%d replicas share this database: each takes 1/%d of every Douyin budget", n, n)
	}
	return m, nil
}

// DefaultAppID is the app used when a command names none: the only one
// configured, else "".
func DefaultAppID(cfg *config.Config) string {
	if len(cfg.Douyin.Apps) == 1 {
		return cfg.Douyin.Apps[0].AppID
	}
	return ""
}
