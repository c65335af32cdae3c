// Package demo is the scenario of `payd demo`: the built-in Douyin
// simulators (ecpay and the general trade system) and payd's daemon in one
// process on loopback, with a fresh database in a temporary directory. A
// config without a trade app gets one (TradeDemoAppID, keys generated), so
// that an ecpay app and a trade app run side by side, and one without a
// trade app that Douyin settles itself gets one (TradeAutoDemoAppID,
// settled_by douyin): Douyin settles its orders when due and payd observes
// and adopts those settlements, never sending settle_create. For every app it
// seeds paid orders, declares refunds (some fail at the channel first and
// are retried with new numbers); buyers of trade orders start refunds of
// their own (answered by pre_create_refund, one audited by the demo's
// policy); it moves the clocks past the apps' settle periods, lets the
// daemon settle every order, declares a few refunds after settlement,
// waits for every event to reach a built-in merchant receiver and reports,
// per app, what payd and Douyin each hold, with both simulators' ledger
// checks.
//
// The daemon itself is wired by the caller (cmd/payd) through Options.Start,
// so this package knows payd's components only through Daemon.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/state"
)

// Daemon is the running payd the scenario drives.
type Daemon interface {
	// Store is the daemon's database.
	Store() *state.Store
	// Wake makes the reconciler look for due work now.
	Wake()
	// WakeEvents makes the event dispatcher look for due deliveries now.
	WakeEvents()
	// Stop stops the daemon and waits for it.
	Stop() error
}

// Env is what the scenario hands the daemon it starts.
type Env struct {
	// Clock is payd's clock; the scenario moves it past the settle period.
	Clock clock.Clock
	// BaseURL is the simulator's, in place of douyin.base_url.
	BaseURL string
	// CallbackLn and AdminLn are loopback listeners for the callback
	// listener and the admin API.
	CallbackLn, AdminLn net.Listener
}

// StartFunc starts payd's daemon on cfg in env.
type StartFunc func(ctx context.Context, cfg *config.Config, env Env) (Daemon, error)

// Options tune a run.
type Options struct {
	// Orders is how many paid orders are seeded per app; at least 1.
	Orders int
	// Timeout bounds the whole run; the run fails when not converged by then.
	Timeout time.Duration
	// Seed seeds the order amounts and refund choices.
	Seed int64
	// Out receives the progress lines; nil discards them.
	Out io.Writer
	// Log is the daemon's and the simulator's logger; nil discards.
	Log *logrus.Entry
	// Start starts the daemon; required.
	Start StartFunc
}

// ErrCheck wraps every failure of a run that finished: parked items, a
// ledger violation or an event delivery problem. The report is complete.
var ErrCheck = errors.New("demo check failed")

// Run adapts cfg to the demo (Configure, in place) and plays the scenario
// for every app of cfg.Douyin.Apps. It returns the report
// when the run got as far as the final checks (then a failed check is an
// error wrapping ErrCheck), and an error alone when it did not.
func Run(ctx context.Context, cfg *config.Config, o Options) (*Report, error) {
	switch {
	case o.Orders < 1:
		return nil, errors.New("--orders: want at least 1")
	case len(cfg.Douyin.Apps) == 0:
		return nil, errors.New("config: douyin.apps: the demo needs at least one app")
	case o.Start == nil:
		return nil, errors.New("demo: no daemon to start")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = logrus.NewEntry(l)
	}
	dir, err := os.MkdirTemp("", "payd-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	Configure(cfg, dir)
	keys, err := configureTrade(cfg, dir)
	if err != nil {
		return nil, err
	}
	w, err := startWorld(ctx, cfg, o, keys)
	if err != nil {
		return nil, err
	}
	defer w.close()
	s := newScenario(w, o)
	return s.run(ctx)
}

// world is what one run starts: the simulator, the receiver and the daemon.
type world struct {
	cfg      *config.Config
	clk      *clock.Offset
	sim      *douyinsim.Server
	trade    *tradesim.Server // the trade apps' simulator
	tradeURL string
	rcv      *receiver
	d        Daemon
	stopped  bool
}

// startWorld starts the simulators serving every app (ecpay apps with
// their own settle periods, trade apps signing with keys), the event
// receiver and the daemon.
func startWorld(ctx context.Context, cfg *config.Config, o Options, keys *tradeKeys) (_ *world, err error) {
	w := &world{cfg: cfg, clk: &clock.Offset{}}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	cbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	adLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cbLn.Close()
		return nil, err
	}
	closeLns := func() { cbLn.Close(); adLn.Close() }
	sb := cfg.Sandbox
	sb.ProcessingDelay = config.D(300 * time.Millisecond)
	sb.CallbackScale = 0.01
	sb.NotifyURL = "http://" + cbLn.Addr().String() + "/douyin/notify"
	sb.Faults.RefundChannelFail = channelFailures
	apps := config.SimulatorApps(cfg.Douyin.Apps)
	periods := map[string]time.Duration{}
	for _, a := range cfg.Douyin.Apps {
		periods[a.AppID] = a.SettlePeriod.Duration
	}
	for i := range apps {
		apps[i].SettlePeriod = periods[apps[i].AppID]
	}
	simCfg := sb.Simulator(apps)
	simCfg.Logger = o.Log.WithField("component", "sandbox")
	if w.sim, err = douyinsim.New(simCfg); err != nil {
		closeLns()
		return nil, fmt.Errorf("simulator: %w", err)
	}
	simURL, err := w.sim.Start("127.0.0.1:0")
	if err != nil {
		closeLns()
		return nil, fmt.Errorf("simulator: %w", err)
	}
	if err := w.startTrade(cfg, keys, sb.NotifyURL, sb.Seed); err != nil {
		closeLns()
		return nil, err
	}
	if w.rcv, err = startReceiver(); err != nil {
		closeLns()
		return nil, err
	}
	w.rcv.configure(cfg)
	if w.d, err = o.Start(ctx, cfg, Env{Clock: w.clk, BaseURL: simURL, CallbackLn: cbLn, AdminLn: adLn}); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "payd demo: simulators %s (ecpay), %s (trade), daemon callbacks %s, admin %s\n", simURL, w.tradeURL, cbLn.Addr(), adLn.Addr())
	return w, nil
}

// stop stops the daemon once.
func (w *world) stop() error {
	if w.d == nil || w.stopped {
		return nil
	}
	w.stopped = true
	return w.d.Stop()
}

func (w *world) close() {
	_ = w.stop()
	if w.rcv != nil {
		w.rcv.close()
	}
	if w.sim != nil {
		_ = w.sim.Close()
	}
	if w.trade != nil {
		_ = w.trade.Close()
	}
}
