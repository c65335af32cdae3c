package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"strconv"
	"strings"
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

// loadConfig reads the config file named by --config, $PAYD_CONFIG or
// ./config.yaml, expands ${ENV} and validates it.
func (g *globals) loadConfig() (*config.Config, error) {
	path := config.ResolvePath(g.configPath, g.getenv)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config: %w (name the config file with --config FILE or %s, or run payd in the directory of config.yaml)", err, config.PathEnv)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := config.ParseWithEnv(f, g.getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	if g.logFormat != "" {
		cfg.Log.Format = g.logFormat
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// open loads the config and opens its database, for a one-shot command;
// the caller closes the store.
func (g *globals) open(ctx context.Context) (*config.Config, *state.Store, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := g.openExisting(ctx, cfg, clock.Real{})
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// openExisting opens the configured database for any command but migrate
// and serve: a missing one is refused (naming the path and payd migrate),
// never created. One at an older schema is brought up to date.
func (g *globals) openExisting(ctx context.Context, cfg *config.Config, clk clock.Clock) (*state.Store, error) {
	log := newLogger(cfg.Log, g.stderr)
	st, err := state.Open(ctx, storeOptions(cfg, clk, log, true))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	v, err := st.AppliedVersion(ctx)
	if err == nil && v < state.SchemaVersion {
		err = st.Migrate(ctx)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return st, nil
}

// storeOptions are the state.Options of cfg.
func storeOptions(cfg *config.Config, clk clock.Clock, log *logrus.Entry, mustExist bool) state.Options {
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

// newLogger builds the logger of cfg.Log writing to w.
func newLogger(c config.Log, w io.Writer) *logrus.Entry {
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

// openStore opens the configured database, creating it if need be, and
// brings its schema up to date: for migrate and serve only.
func openStore(ctx context.Context, cfg *config.Config, clk clock.Clock, log *logrus.Entry) (*state.Store, error) {
	st, err := state.Open(ctx, storeOptions(cfg, clk, log, false))
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

// newClient builds the Douyin client; baseURL overrides the configured one
// when not empty (the demo's simulator).
func newClient(cfg *config.Config, baseURL string, m *metrics.Metrics) (*douyin.Client, error) {
	if baseURL == "" {
		baseURL = cfg.Douyin.URL()
	}
	o := douyin.Options{
		BaseURL: baseURL,
		Timeout: cfg.Douyin.Timeout.Duration,
		Apps:    douyinApps(cfg),
		Limits:  apiLimits(cfg.Douyin.Limits),
		Burst:   cfg.Douyin.Burst,
	}
	maps.Copy(o.Limits, cfg.Douyin.Trade.LimiterLimits()) // one limiter for both APIs: replicas share both
	if m != nil {
		o.Observe = m.ObserveCall
	}
	return douyin.New(o)
}

// policy builds the reconciler's policy from the config.
func policy(cfg *config.Config) reconcile.Policy {
	p := reconcile.Policy{
		Apps:           map[string]reconcile.AppPolicy{},
		RefundAttempts: cfg.Reconcile.RefundAttempts,
		SettleAttempts: cfg.Reconcile.SettleAttempts,
		Retry:          durations(cfg.Reconcile.Retry),
		Poll:           durations(cfg.Reconcile.Poll),
		Jitter:         cfg.Reconcile.Jitter,
	}
	for _, a := range cfg.Douyin.Apps {
		ap := reconcile.AppPolicy{
			SettlePeriod: a.SettlePeriod.Duration, AutoSettle: a.AutoSettle,
			SettleDesc: a.SettleDesc, NotifyURL: a.NotifyURL,
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

// providers routes each app's calls to the adapter of the API it speaks.
func providers(cfg *config.Config, client *douyin.Client, trade map[string]provider.Provider) provider.Provider {
	ecpay := douyin.NewProvider(client)
	byApp := map[string]provider.Provider{}
	for _, a := range cfg.Douyin.Apps {
		switch a.API {
		case "", config.APIEcpay:
			byApp[a.AppID] = ecpay
		case config.APITrade:
			byApp[a.AppID] = trade[a.AppID]
		}
	}
	return provider.NewRouter(byApp, nil)
}

// newReconciler wires a reconciler.
func newReconciler(cfg *config.Config, st reconcile.Store, client *douyin.Client, clk clock.Clock, log *logrus.Entry, m *metrics.Metrics, observe func(reconcile.ActionResult)) *reconcile.Reconciler {
	o := reconcile.Options{
		Store: st, Provider: providers(cfg, client, tradeProviders(cfg, st, client, log, m)), Clock: clk, Policy: policy(cfg),
		Workers: cfg.Reconcile.Workers, Lease: cfg.Reconcile.Lease.Duration, MaxOrders: cfg.Reconcile.Batch,
		Owner: processOwner(), Log: log.WithField("component", "reconcile"),
	}
	o.Observe = observe
	if m != nil {
		o.Observe = func(r reconcile.ActionResult) {
			m.Actions.WithLabelValues(string(r.Action.Kind), r.Outcome).Inc()
			if observe != nil {
				observe(r)
			}
		}
		o.ObservePass = func(ps reconcile.PassStats) { m.PassDuration.Observe(ps.Duration.Seconds()) }
	}
	return reconcile.New(o)
}

// defaultApp is the app used when a command names none: the only one
// configured, else "".
func defaultApp(cfg *config.Config) string {
	if len(cfg.Douyin.Apps) == 1 {
		return cfg.Douyin.Apps[0].AppID
	}
	return ""
}

// appFlag resolves an --app flag value.
func appFlag(cfg *config.Config, flag string) (string, error) {
	if flag != "" {
		for _, a := range cfg.Douyin.Apps {
			if a.AppID == flag {
				return flag, nil
			}
		}
		return "", fmt.Errorf("--app %s: not configured in douyin.apps", flag)
	}
	if id := defaultApp(cfg); id != "" {
		return id, nil
	}
	ids := make([]string, 0, len(cfg.Douyin.Apps))
	for _, a := range cfg.Douyin.Apps {
		ids = append(ids, a.AppID)
	}
	return "", fmt.Errorf("--app: required when several apps are configured (%s)", strings.Join(ids, ", "))
}

// processOwner names this process in leases and in the replica list:
// host/pid.
func processOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// joinReplicas counts this process among the replicas sharing the
// database, and so the apps' Douyin budgets, before it makes any call.
func joinReplicas(ctx context.Context, st *state.Store, client *douyin.Client, clk clock.Clock, log *logrus.Entry, mx *metrics.Metrics) (*jobs.Membership, error) {
	m := &jobs.Membership{Store: st, Limiter: client.Limiter(), Owner: processOwner(), Clock: clk, Log: log.WithField("component", "replicas")}
	if mx != nil {
		m.Observe = func(n int) { mx.Replicas.Set(float64(n)) }
	}
	forgetDeadLocalReplicas(ctx, st, log)
	n, err := m.RunOnce(ctx)
	if err != nil {
		return nil, err
	}
	if n > 1 {
		log.WithField("replicas", n).Infof("%d replicas share this database: each takes 1/%d of every Douyin budget", n, n)
	}
	return m, nil
}

// forgetDeadLocalReplicas removes the replicas of this host whose process
// is gone: a payd that was killed and restarted by its supervisor would
// otherwise share the budgets with its own ghost until the TTL passed. A
// failure only costs that wait, so it is logged, not returned.
func forgetDeadLocalReplicas(ctx context.Context, st *state.Store, log *logrus.Entry) {
	host, _ := os.Hostname()
	owners, err := st.ReplicaOwners(ctx)
	if err != nil {
		log.WithError(err).Warn("could not read the replicas")
		return
	}
	for _, o := range owners {
		i := strings.LastIndexByte(o, '/')
		if i < 0 || o[:i] != host {
			continue
		}
		pid, err := strconv.Atoi(o[i+1:])
		if err != nil || pid == os.Getpid() || !processGone(pid) {
			continue
		}
		if err := st.Leave(ctx, o); err != nil {
			log.WithError(err).Warn("could not forget a dead replica")
			continue
		}
		log.WithField("replica", o).Info("forgot a replica of this host whose process is gone")
	}
}
