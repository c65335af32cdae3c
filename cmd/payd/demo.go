package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/state"
)

func newDemoCmd(g *globals) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--orders N]",
		Short: "Run the simulator and the daemon together on loopback until every order converges",
		Long: `demo starts the built-in Douyin simulator and payd's daemon in one process on loopback,
with a fresh database in a temporary directory. It seeds N paid orders, declares refunds
(some fail at the channel first and are retried with new numbers), moves both clocks past
the settle period, lets the settle_batch job and the reconciler settle every order, declares
a few refunds after settlement (all_settle=1), and prints a summary. It exits 0 only when
every order converged and the simulator's ledger check is clean.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			o.out = g.stdout
			o.logOut = g.stderr
			return runDemo(cmd.Context(), cfg, o)
		},
	}
	cmd.Flags().IntVar(&o.orders, "orders", 200, "how many paid orders to seed")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when not converged by then")
	cmd.Flags().Int64Var(&o.seed, "seed", 1, "seed of the order amounts and refund choices")
	cmd.Flags().BoolVar(&o.verbose, "verbose", false, "log the daemon's and simulator's lines (JSON) to stderr")
	return cmd
}

type demoOptions struct {
	orders  int
	timeout time.Duration
	seed    int64
	verbose bool
	out     io.Writer
	logOut  io.Writer
}

// demoConfig adapts the shipped config to a demo: a fresh database, fast
// schedules, loopback listeners.
func demoConfig(cfg *config.Config, dir string) {
	cfg.Database.Driver = "sqlite"
	cfg.Database.DSN = dir + "/demo.db"
	cfg.Database.Synchronous = "NORMAL"
	cfg.Reconcile.Schedule = "@every 1s"
	cfg.Reconcile.Poll = config.Backoff{config.D(300 * time.Millisecond), config.D(700 * time.Millisecond), config.D(2 * time.Second)}
	cfg.Reconcile.Retry = config.Backoff{config.D(time.Second), config.D(2 * time.Second)}
	cfg.Reconcile.Workers = 16
	// 35% of refund attempts fail at the channel in the demo: with 8
	// attempts a refund parks with odds of 0.35^8 (2 in 10,000).
	cfg.Reconcile.RefundAttempts = 8
	cfg.SettleBatch.Schedule = "@every 1s"
	cfg.Sweep.Schedule = "@every 5s"
	cfg.Sweep.StaleAfter = config.D(5 * time.Second)
	cfg.Server.CallbackListen = "127.0.0.1:0"
	cfg.Server.AdminListen = "127.0.0.1:0"
	if cfg.Server.AdminToken == "" {
		var b [16]byte
		_, _ = crand.Read(b[:])
		cfg.Server.AdminToken = hex.EncodeToString(b[:])
	}
	cfg.Server.ShutdownTimeout = config.D(10 * time.Second)
	for i := range cfg.Douyin.Apps {
		cfg.Douyin.Apps[i].NotifyURL = ""
		cfg.Douyin.Apps[i].AutoSettle = true
	}
}

func runDemo(ctx context.Context, cfg *config.Config, o demoOptions) error {
	if o.orders < 1 {
		return errors.New("--orders: want at least 1")
	}
	if len(cfg.Douyin.Apps) == 0 {
		return errors.New("config: douyin.apps: the demo needs one app")
	}
	dir, err := os.MkdirTemp("", "payd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	demoConfig(cfg, dir)
	logOut := io.Discard
	if o.verbose {
		logOut = o.logOut
	}
	log := newLogger(cfg.Log, logOut)
	out := o.out
	app := cfg.Douyin.Apps[0]
	clk := &clock.Offset{}
	started := time.Now()

	cbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	adLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cbLn.Close()
		return err
	}
	sb := cfg.Sandbox
	sb.SettlePeriod = app.SettlePeriod
	sb.ProcessingDelay = config.D(300 * time.Millisecond)
	sb.CallbackScale = 0.01
	sb.NotifyURL = "http://" + cbLn.Addr().String() + "/douyin/notify"
	sb.Faults.RefundChannelFail = 0.35 // some refunds fail at the channel first
	sim, err := douyinsim.New(simConfig(sb, []douyinsim.App{{AppID: app.AppID, Salt: app.Salt, Token: app.Token}}, log.WithField("component", "sandbox")))
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer sim.Close()
	rcv, err := startDemoReceiver() // events: a built-in merchant backend
	if err != nil {
		return err
	}
	defer rcv.close()
	rcv.configure(cfg)

	d, err := startDaemon(ctx, cfg, daemonOptions{log: log, clock: clk, baseURL: simURL, callbackLn: cbLn, adminLn: adLn})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = d.Stop()
		}
	}()
	fmt.Fprintf(out, "payd demo: simulator %s, daemon callbacks %s, admin %s\n", simURL, d.callbacks, d.admin)

	// Seed paid orders at Douyin and tell payd about them.
	rng := rand.New(rand.NewPCG(uint64(o.seed), 7))
	paidAt := sim.Now().Add(-time.Hour)
	type seeded struct {
		no    string
		total int64
	}
	orders := make([]seeded, o.orders)
	now := clk.Now()
	for i := range orders {
		no := fmt.Sprintf("demo-%05d", i+1)
		total := int64(100 + rng.IntN(100000))
		var cps int64
		if rng.IntN(5) == 0 {
			cps = total / 20
		}
		if err := sim.SeedOrder(douyinsim.SeedOrder{AppID: app.AppID, OutOrderNo: no, TotalAmount: total, Status: "SUCCESS", PaidAt: paidAt, CPSShare: cps}); err != nil {
			return fmt.Errorf("seed order %s: %w", no, err)
		}
		if _, _, err := d.store.UpsertOrder(ctx, state.OrderInput{AppID: app.AppID, OutOrderNo: no}, now); err != nil {
			return fmt.Errorf("import order %s: %w", no, err)
		}
		orders[i] = seeded{no, total}
	}
	refunds := 0
	for _, so := range orders {
		if rng.IntN(10) < 3 {
			amount := 1 + rng.Int64N(so.total/2+1)
			if _, _, err := d.store.DeclareRefund(ctx, state.RefundWish{AppID: app.AppID, OutOrderNo: so.no, Key: so.no + "-r1", Amount: amount, Reason: "demo refund"}, now); err != nil {
				return fmt.Errorf("declare refund of %s: %w", so.no, err)
			}
			refunds++
		}
	}
	d.rec.Wake()
	fmt.Fprintf(out, "seeded %d paid orders, declared %d refunds (35%% of refund attempts fail at the channel)\n", len(orders), refunds)

	deadline := time.Now().Add(o.timeout)
	wait := func(what string, done func(*state.Summary) bool) (*state.Summary, error) {
		for {
			s, err := d.store.Summary(ctx)
			if err != nil {
				return nil, err
			}
			if done(s) {
				return s, nil
			}
			if time.Now().After(deadline) {
				return s, fmt.Errorf("demo: not converged after %s waiting for %s", o.timeout, what)
			}
			select {
			case <-ctx.Done():
				return s, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	open := func(m map[state.Phase]int64) int64 {
		return m[state.PhasePending] + m[state.PhaseSubmitting] + m[state.PhaseProcessing]
	}
	if _, err := wait("refunds", func(s *state.Summary) bool {
		return s.Orders[state.OrderSuccess] == int64(len(orders)) && open(s.Refunds) == 0
	}); err != nil {
		return err
	}
	sim.SetFaults(douyinsim.Faults{})
	fmt.Fprintf(out, "refunds final after %s; moving both clocks past the settle period (%s)\n", time.Since(started).Round(time.Millisecond), app.SettlePeriod)
	jump := app.SettlePeriod.Duration + time.Hour
	sim.Advance(jump)
	clk.Advance(jump)
	if _, err := wait("settlements", func(s *state.Summary) bool {
		return s.Settlements[state.PhaseSucceeded] == int64(len(orders))
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "every order settled after %s; declaring refunds after settlement (all_settle=1)\n", time.Since(started).Round(time.Millisecond))
	late := 0
	now = clk.Now()
	for i, so := range orders {
		if i%20 != 0 {
			continue
		}
		h, err := d.store.History(ctx, app.AppID, so.no)
		if err != nil {
			return err
		}
		left := so.total
		for _, r := range h.Refunds {
			if r.Phase == state.PhaseSucceeded {
				left -= r.Amount
			}
		}
		if left <= 1 {
			continue
		}
		if _, _, err := d.store.DeclareRefund(ctx, state.RefundWish{AppID: app.AppID, OutOrderNo: so.no, Key: so.no + "-late", Amount: 1 + left/10, Reason: "after settlement"}, now); err != nil {
			return fmt.Errorf("declare late refund of %s: %w", so.no, err)
		}
		late++
	}
	d.rec.Wake()
	final, err := wait("late refunds", func(s *state.Summary) bool { return open(s.Refunds) == 0 })
	if err != nil {
		return err
	}
	parkedRefunds, parkedSettlements, err := d.store.Parked(ctx, 20)
	if err != nil {
		return err
	}
	d.events.Wake()
	if final, err = wait("event deliveries", func(s *state.Summary) bool { return int64(rcv.received()) >= s.Events }); err != nil {
		return err
	}
	written, eventsErr := rcv.check(ctx, d.store)
	elapsed := time.Since(started)
	stopped = true
	if err := d.Stop(); err != nil {
		return fmt.Errorf("stop daemon: %w", err)
	}
	violations := sim.Check()
	stats := sim.Stats()
	printDemoSummary(out, demoSummary{
		orders: len(orders), refunds: refunds + late, late: late, sum: final,
		calls: stats.Calls(), busy: stats.Busy(), violations: violations, elapsed: elapsed,
		events: written, delivered: rcv.received(), eventTypes: rcv.countsByType(), eventsErr: eventsErr,
	})
	if eventsErr != nil {
		return &exitError{Code: 1, Err: eventsErr}
	}
	if len(violations) > 0 {
		return &exitError{Code: 1, Err: fmt.Errorf("demo: simulator ledger check found %d violations", len(violations))}
	}
	if len(parkedRefunds)+len(parkedSettlements) > 0 {
		var why []string
		for _, r := range parkedRefunds {
			why = append(why, fmt.Sprintf("refund %s: %s", r.Key, r.ParkReason))
		}
		for _, st := range parkedSettlements {
			why = append(why, fmt.Sprintf("settlement %s: %s", st.OutSettleNo, st.ParkReason))
		}
		return &exitError{Code: 1, Err: fmt.Errorf("demo: %d items were parked: %s", len(why), strings.Join(why, "; "))}
	}
	return nil
}

type demoSummary struct {
	orders, refunds, late int
	sum                   *state.Summary
	calls, busy           int64
	violations            []string
	elapsed               time.Duration
	events, delivered     int    // written to the outbox, accepted by the built-in receiver
	eventTypes            string // accepted events by type
	eventsErr             error  // the receiver's check
}

func printDemoSummary(w io.Writer, s demoSummary) {
	fmt.Fprintf(w, "\npayd demo summary (%s)\n", s.elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  orders:        %d paid, %d SUCCESS in payd\n", s.orders, s.sum.Orders[state.OrderSuccess])
	fmt.Fprintf(w, "  refunds:       %d declared (%d after settlement): %d succeeded, %d parked, %d fen refunded\n",
		s.refunds, s.late, s.sum.Refunds[state.PhaseSucceeded], s.sum.Refunds[state.PhaseParked], s.sum.RefundAmount[state.PhaseSucceeded])
	fmt.Fprintf(w, "  settlements:   %d succeeded, %d parked, %d fen settled\n", s.sum.Settlements[state.PhaseSucceeded], s.sum.Settlements[state.PhaseParked], s.sum.SettledAmount)
	fmt.Fprintf(w, "  douyin calls:  %d (%d answered 1001 busy)\n", s.calls, s.busy)
	if s.eventsErr == nil {
		fmt.Fprintf(w, "  events:        %d written, %d delivered to the built-in receiver (verified, in order, no duplicates)\n", s.events, s.delivered)
	} else {
		fmt.Fprintf(w, "  events:        %d written, %d delivered to the built-in receiver: CHECK FAILED\n", s.events, s.delivered)
	}
	if s.eventTypes != "" {
		fmt.Fprintf(w, "                 %s\n", s.eventTypes)
	}
	if len(s.violations) == 0 {
		fmt.Fprintln(w, "  ledger check:  clean (every number executed at most once, no money beyond any order)")
		return
	}
	fmt.Fprintf(w, "  ledger check:  %d VIOLATIONS\n", len(s.violations))
	for _, v := range s.violations {
		fmt.Fprintf(w, "    - %s\n", v)
	}
}
