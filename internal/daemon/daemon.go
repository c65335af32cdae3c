// Package daemon wires and runs payd serve: the store, the Douyin clients
// behind the provider seam, the reconciler, the cron jobs, the callback and
// admin listeners and the event dispatcher. Components start in order and
// stop in reverse. The wiring helpers are shared by the one-shot commands.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/console"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/events"
	"github.com/payd/payd/internal/jobs"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/ordersign"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/server"
	"github.com/payd/payd/internal/state"
)

// Options tune startDaemon for the demo and tests.
type Options struct {
	Log     *logrus.Entry
	Clock   clock.Clock
	BaseURL string // overrides douyin.base_url (the demo's simulator)
	Observe func(reconcile.ActionResult)
	// CallbackLn and AdminLn, when set, are used instead of listening on the
	// configured addresses.
	CallbackLn, AdminLn net.Listener
}

// Daemon is a running `payd serve`.
type Daemon struct {
	cfg   *config.Config
	log   *logrus.Entry
	store *state.Store
	// inbox is where the callback inbox writes: on SQLite the group commit
	// the reconciler writes through, so both share transactions.
	inbox     server.BatchStore
	rec       *reconcile.Reconciler
	metrics   *metrics.Metrics
	sched     *jobs.Scheduler
	events    *events.Dispatcher
	evCancel  context.CancelFunc
	evWG      sync.WaitGroup
	servers   []*http.Server
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	callbacks string // callback listener address
	admin     string // admin listener address
	release   func() // gives up the SQLite serve lock
	// callbackHandler is flushed at shutdown: its refused callbacks' counts.
	callbackHandler *server.CallbackHandler
}

// Start opens the database, wires the components and starts the
// listeners, the reconcile loop and the cron schedules.
func Start(ctx context.Context, cfg *config.Config, o Options) (_ *Daemon, err error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	log := o.Log
	m := metrics.New()
	release := func() {}
	if cfg.Database.Driver != state.DriverPostgres {
		if release, err = lockServe(cfg.Database.DSN); err != nil {
			return nil, err
		}
	}
	release = withProfile(release, log)
	var st *state.Store
	joined, started := false, false
	defer func() {
		// A failed start leaves nothing behind: no replica record, no lock.
		if started {
			return
		}
		if joined {
			_ = st.Leave(context.WithoutCancel(ctx), ProcessOwner())
		}
		if st != nil {
			st.Close()
		}
		release()
	}()
	if st, err = OpenStore(ctx, cfg, o.Clock, log); err != nil {
		return nil, err
	}
	client, err := NewClient(cfg, o.BaseURL, m)
	if err != nil {
		return nil, fmt.Errorf("douyin client: %w", err)
	}
	members, err := JoinReplicas(ctx, st, client, o.Clock, log, m)
	if err != nil {
		return nil, fmt.Errorf("join the replicas: %w", err)
	}
	joined = true
	writes := WriteStore(cfg, st) // shared with the callback inbox
	rec := NewReconciler(cfg, writes, client, o.Clock, log, m, o.Observe)
	m.RegisterItems(func(ctx context.Context) (metrics.Counts, error) { return itemCounts(ctx, st) }, 5*time.Second)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if !started {
			cancel()
		}
	}()
	d := &Daemon{cfg: cfg, log: log, store: st, inbox: inboxStore(writes, st), rec: rec, metrics: m, cancel: cancel, release: release}
	d.events = NewDispatcher(cfg, st, o.Clock, log, m)

	batch := &jobs.SettleBatch{Store: st, Clock: o.Clock, Policy: Policy(cfg), Limit: cfg.SettleBatch.Limit, Wake: rec.Wake, Log: log, Owner: ProcessOwner()}
	sweep := &jobs.Sweep{Store: st, Clock: o.Clock, StaleAfter: cfg.Sweep.StaleAfter.Duration, Wake: rec.Wake, Log: log}
	sched, err := jobs.NewScheduler(runCtx, log,
		jobs.Schedule{Name: "reconcile", Spec: cfg.Reconcile.Schedule, Run: func(context.Context) error { rec.Wake(); return nil }},
		jobs.Schedule{Name: "settle_batch", Spec: cfg.SettleBatch.Schedule, Run: func(ctx context.Context) error { _, err := batch.RunOnce(ctx); return err }},
		jobs.Schedule{Name: "sweep", Spec: cfg.Sweep.Schedule, Run: func(ctx context.Context) error { _, err := sweep.RunOnce(ctx); return err }},
	)
	if err != nil {
		return nil, err
	}
	d.sched = sched

	cbHandler, adminHandler := d.handlers(runCtx, o, client)
	cbLn, err := listen(o.CallbackLn, cfg.Server.CallbackListen)
	if err != nil {
		return nil, fmt.Errorf("callback listener: %w", err)
	}
	adLn, err := listen(o.AdminLn, cfg.Server.AdminListen)
	if err != nil {
		cbLn.Close()
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	started = true
	d.serve(ctx, runCtx, cbLn, adLn, cbHandler, adminHandler, members)
	log.WithFields(logrus.Fields{"callbacks": d.callbacks, "admin": d.admin, "db": cfg.Database.Driver}).Info("payd serving")
	return d, nil
}

// Store is the daemon's database.
func (d *Daemon) Store() *state.Store { return d.store }

// Wake makes the reconciler look for due work now.
func (d *Daemon) Wake() { d.rec.Wake() }

// WakeEvents makes the event dispatcher look for due deliveries now.
func (d *Daemon) WakeEvents() { d.events.Wake() }

// CallbackAddr is the callback listener's address.
func (d *Daemon) CallbackAddr() string { return d.callbacks }

// AdminAddr is the admin listener's address.
func (d *Daemon) AdminAddr() string { return d.admin }

// inboxStore is where the callback inbox writes: writes, the reconciler's
// store, when it stores callback batches (the group commit on SQLite),
// else st.
func inboxStore(writes reconcile.Store, st *state.Store) server.BatchStore {
	if b, ok := writes.(server.BatchStore); ok {
		return b
	}
	return st
}

// handlers builds the callback and admin handlers; the callback inbox runs
// until runCtx ends.
func (d *Daemon) handlers(runCtx context.Context, o Options, client *douyin.Client) (http.Handler, http.Handler) {
	cfg, st, rec, m, log := d.cfg, d.store, d.rec, d.metrics, d.log
	tokens := map[string]string{}
	for _, a := range cfg.Douyin.Apps {
		tokens[a.AppID] = a.Token
	}
	ready := func() error { return st.Ping(context.Background()) }
	inbox := server.NewBatchInbox(d.inbox, server.BatchInboxOptions{}) // group commit: one fsync for many callbacks
	d.wg.Add(1)
	go func() { defer d.wg.Done(); inbox.Run(runCtx) }()
	cbHandler := server.NewCallbackHandler(server.CallbackOptions{
		Inbox: inbox, Tokens: tokens, Waker: rec, Clock: o.Clock, Metrics: m, Log: log.WithField("component", "callbacks"),
		Rate: cfg.Server.CallbackRate, Burst: cfg.Server.CallbackBurst, Ready: ready,
		PlatformKeys: tradePlatformKeys(cfg, log), PreRefund: tradePreRefunder(cfg, st, rec, o.Clock),
	})
	d.callbackHandler = cbHandler
	adminHandler := server.NewAdminHandler(server.AdminOptions{
		Store: st, Douyin: client, Waker: rec, Policy: Policy(cfg), Clock: o.Clock, Metrics: m,
		Log: log.WithField("component", "admin"), Token: cfg.Server.AdminToken, DefaultApp: DefaultAppID(cfg), Ready: ready,
		Extra: events.AdminRoutes(st, EventEndpoints(cfg), o.Clock, d.events.Wake), Signer: ordersign.New(cfg, st),
		Console: console.Mount(runCtx, console.Wiring{Config: cfg, Store: st, Policy: Policy(cfg), Endpoints: EventEndpoints(cfg),
			Clock: o.Clock, Log: log, Metrics: m, Wake: rec.Wake, WakeEvents: d.events.Wake, Group: &d.wg}),
	})
	return cbHandler, adminHandler
}

// serve starts the HTTP servers on their listeners, the reconcile loop,
// the replica heartbeat, the cron schedules and the event dispatcher.
func (d *Daemon) serve(ctx, runCtx context.Context, cbLn, adLn net.Listener, cbHandler, adminHandler http.Handler, members *jobs.Membership) {
	log, rec := d.log, d.rec
	d.callbacks, d.admin = cbLn.Addr().String(), adLn.Addr().String()
	for _, p := range []struct {
		ln net.Listener
		h  http.Handler
	}{{cbLn, cbHandler}, {adLn, adminHandler}} {
		srv := &http.Server{Handler: p.h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
		d.servers = append(d.servers, srv)
		d.wg.Add(1)
		go func(ln net.Listener) {
			defer d.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.WithError(err).Error("http server stopped")
			}
		}(p.ln)
	}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		rec.Run(runCtx)
	}()
	go func() {
		defer d.wg.Done()
		members.Run(runCtx) // leaves when the daemon stops
	}()
	d.sched.Start()
	rec.Wake()
	evCtx, evCancel := context.WithCancel(context.WithoutCancel(ctx))
	d.evCancel = evCancel
	d.evWG.Add(1)
	go func() {
		defer d.evWG.Done()
		d.events.Run(evCtx)
	}()
}

func listen(ln net.Listener, addr string) (net.Listener, error) {
	if ln != nil {
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// Stop shuts down in reverse order of start: no new HTTP requests, no new
// cron runs, the reconcile pass in flight finishes, then the database closes.
func (d *Daemon) Stop() error {
	timeout := d.cfg.Server.ShutdownTimeout.Duration
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d.log.Info("payd shutting down")
	var errs []error
	// The event dispatcher started last: it stops first. A delivery cut
	// short keeps its lease and is sent again by the next run.
	d.evCancel()
	evDone := make(chan struct{})
	go func() { d.evWG.Wait(); close(evDone) }()
	select {
	case <-evDone:
	case <-ctx.Done():
		errs = append(errs, errors.New("event delivery still running at shutdown timeout"))
	}
	for _, s := range d.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if err := d.sched.Stop(timeout); err != nil {
		errs = append(errs, err)
	}
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, errors.New("reconcile pass still running at shutdown timeout"))
	}
	if d.callbackHandler != nil {
		d.callbackHandler.FlushRefusals(ctx) // the last seconds' refused callbacks
	}
	if err := d.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close database: %w", err))
	}
	d.release()
	return errors.Join(errs...)
}

// itemCounts reads the store's summary for the payd_items gauges.
func itemCounts(ctx context.Context, st *state.Store) (metrics.Counts, error) {
	s, err := st.Summary(ctx)
	if err != nil {
		return metrics.Counts{}, err
	}
	c := metrics.Counts{Orders: map[string]int64{}, Refunds: map[string]int64{}, Settlements: map[string]int64{}}
	for k, v := range s.Orders {
		c.Orders[string(k)] = v
	}
	for k, v := range s.Refunds {
		c.Refunds[string(k)] = v
	}
	for k, v := range s.Settlements {
		c.Settlements[string(k)] = v
	}
	deliveries, err := st.DeliveryCounts(ctx)
	if err != nil {
		return metrics.Counts{}, err
	}
	c.Events = map[string]int64{}
	for k, v := range deliveries {
		c.Events[string(k)] = v
	}
	return c, nil
}

// EventEndpoints converts the configured event endpoints.
func EventEndpoints(cfg *config.Config) []events.Endpoint {
	eps := make([]events.Endpoint, len(cfg.Events.Endpoints))
	for i, e := range cfg.Events.Endpoints {
		eps[i] = events.Endpoint{Name: e.Name, URL: e.URL, Secret: e.Secret, Types: e.Types}
	}
	return eps
}

// NewDispatcher wires the event dispatcher of cfg.Events.
func NewDispatcher(cfg *config.Config, st events.Store, clk clock.Clock, log *logrus.Entry, m *metrics.Metrics) *events.Dispatcher {
	return events.New(events.Options{
		Store: st, Endpoints: EventEndpoints(cfg), Clock: clk,
		Timeout: cfg.Events.Timeout.Duration, Retry: durations(cfg.Events.Retry), Concurrency: cfg.Events.Concurrency,
		Owner: ProcessOwner(), Metrics: m, Log: log.WithField("component", "events"),
	})
}
