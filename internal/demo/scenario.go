package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/state"
)

// scenario is one run's progress.
type scenario struct {
	w        *world
	o        Options
	rng      *rand.Rand
	started  time.Time
	deadline time.Time
	apps     []*appRun
}

// appRun is what the scenario did for one app.
type appRun struct {
	app     config.App
	orders  []seeded
	refunds int // declared before settlement
	late    int // declared after settlement (all_settle=1)
	// user and audits count the refunds buyers started (trade apps) and
	// those that needed the merchant's audit; douyinIDs are the trade
	// orders' order_id by out_order_no.
	user, audits int
	douyinIDs    map[string]string
}

// seeded is one paid order placed at the simulator.
type seeded struct {
	no    string
	total int64
}

func newScenario(w *world, o Options) *scenario {
	s := &scenario{w: w, o: o, rng: rand.New(rand.NewPCG(uint64(o.Seed), 7)), started: time.Now()}
	s.deadline = s.started.Add(o.Timeout)
	for _, a := range w.cfg.Douyin.Apps {
		s.apps = append(s.apps, &appRun{app: a, douyinIDs: map[string]string{}})
	}
	return s
}

// orders is how many orders the run seeded over all apps.
func (s *scenario) orders() int64 { return int64(len(s.apps) * s.o.Orders) }

// run plays the scenario from seeding to the final checks.
func (s *scenario) run(ctx context.Context) (*Report, error) {
	refunds := 0
	for i, a := range s.apps {
		if err := s.seed(ctx, i, a); err != nil {
			return nil, err
		}
		n, err := s.declareRefunds(ctx, a)
		if err != nil {
			return nil, err
		}
		refunds += n
	}
	s.w.d.Wake()
	fmt.Fprintf(s.o.Out, "seeded %d paid orders in %d app(s), declared %d refunds (%d%% of refund attempts fail at the channel)\n",
		s.orders(), len(s.apps), refunds, int(channelFailures*100))
	if _, err := s.wait(ctx, "refunds", func(sum *state.Summary) bool {
		return sum.Orders[state.OrderSuccess] == s.orders() && open(sum.Refunds) == 0
	}); err != nil {
		return nil, err
	}
	s.w.sim.SetFaults(douyinsim.Faults{})
	s.w.trade.SetFaults(tradesim.Faults{})
	users, err := s.userRefunds(ctx)
	if err != nil {
		return nil, err
	}
	audits := 0
	for _, a := range s.apps {
		audits += a.audits
	}
	fmt.Fprintf(s.o.Out, "refunds final after %s; buyers started %d refunds of trade orders (%d need the merchant's audit)\n", s.since(), users, audits)
	if _, err := s.wait(ctx, "user refunds", func(sum *state.Summary) bool { return open(sum.Refunds) == 0 }); err != nil {
		return nil, err
	}
	period := s.longestSettlePeriod()
	fmt.Fprintf(s.o.Out, "buyers' refunds final after %s; moving the clocks past the settle period (%s)\n", s.since(), config.D(period))
	s.w.sim.Advance(period + time.Hour)
	s.w.trade.Advance(period + time.Hour)
	s.w.clk.Advance(period + time.Hour)
	if _, err := s.wait(ctx, "settlements", func(sum *state.Summary) bool {
		return sum.Settlements[state.PhaseSucceeded] == s.orders()
	}); err != nil {
		return nil, err
	}
	fmt.Fprintf(s.o.Out, "every order settled after %s; declaring refunds after settlement (all_settle=1)\n", s.since())
	for _, a := range s.apps {
		if err := s.declareLate(ctx, a); err != nil {
			return nil, err
		}
	}
	s.w.d.Wake()
	if _, err := s.wait(ctx, "late refunds", func(sum *state.Summary) bool { return open(sum.Refunds) == 0 }); err != nil {
		return nil, err
	}
	return s.finish(ctx)
}

// seed places the app's paid orders at Douyin and tells payd about them.
// Numbers carry the app's position: payd's refund keys are unique across
// apps.
func (s *scenario) seed(ctx context.Context, index int, a *appRun) error {
	paidAt := s.w.sim.Now().Add(-time.Hour)
	now := s.w.clk.Now()
	a.orders = make([]seeded, s.o.Orders)
	for i := range a.orders {
		no := fmt.Sprintf("demo-%d-%05d", index+1, i+1)
		total := int64(100 + s.rng.IntN(100000))
		var cps int64
		if s.rng.IntN(5) == 0 {
			cps = total / 20
		}
		o := douyinsim.SeedOrder{AppID: a.app.AppID, OutOrderNo: no, TotalAmount: total, Status: "SUCCESS", PaidAt: paidAt, CPSShare: cps}
		seed := func() error { return s.w.sim.SeedOrder(o) }
		if a.app.IsTrade() {
			seed = func() error { return s.seedTrade(a, no, total) }
		}
		if err := seed(); err != nil {
			return fmt.Errorf("seed order %s of %s: %w", no, a.app.AppID, err)
		}
		if _, _, err := s.w.d.Store().UpsertOrder(ctx, state.OrderInput{AppID: a.app.AppID, OutOrderNo: no}, now); err != nil {
			return fmt.Errorf("import order %s of %s: %w", no, a.app.AppID, err)
		}
		a.orders[i] = seeded{no, total}
	}
	return nil
}

// declareRefunds declares a refund of up to half the total for about 3 in
// 10 of the app's orders.
func (s *scenario) declareRefunds(ctx context.Context, a *appRun) (int, error) {
	now := s.w.clk.Now()
	for _, so := range a.orders {
		if s.rng.IntN(10) >= 3 {
			continue
		}
		amount := 1 + s.rng.Int64N(so.total/2+1)
		w := state.RefundWish{AppID: a.app.AppID, OutOrderNo: so.no, Key: so.no + "-r1", Amount: amount, Reason: "demo refund"}
		if _, _, err := s.w.d.Store().DeclareRefund(ctx, w, now); err != nil {
			return 0, fmt.Errorf("declare refund of %s: %w", so.no, err)
		}
		a.refunds++
	}
	return a.refunds, nil
}

// declareLate declares, after settlement, a refund of a tenth of what is
// left on every 20th order.
func (s *scenario) declareLate(ctx context.Context, a *appRun) error {
	now := s.w.clk.Now()
	for i, so := range a.orders {
		if i%20 != 0 {
			continue
		}
		h, err := s.w.d.Store().History(ctx, a.app.AppID, so.no)
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
		w := state.RefundWish{AppID: a.app.AppID, OutOrderNo: so.no, Key: so.no + "-late", Amount: 1 + left/10, Reason: "after settlement"}
		if _, _, err := s.w.d.Store().DeclareRefund(ctx, w, now); err != nil {
			return fmt.Errorf("declare late refund of %s: %w", so.no, err)
		}
		a.late++
	}
	return nil
}

// wait polls payd's summary until done holds, the deadline passes or ctx
// ends.
func (s *scenario) wait(ctx context.Context, what string, done func(*state.Summary) bool) (*state.Summary, error) {
	for {
		sum, err := s.w.d.Store().Summary(ctx)
		if err != nil {
			return nil, err
		}
		if done(sum) {
			return sum, nil
		}
		if time.Now().After(s.deadline) {
			return sum, fmt.Errorf("demo: not converged after %s waiting for %s", s.o.Timeout, what)
		}
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// longestSettlePeriod is the longest of the apps' settle periods: moving
// the clocks past it makes every order settleable.
func (s *scenario) longestSettlePeriod() time.Duration {
	var d time.Duration
	for _, a := range s.apps {
		p := a.app.SettlePeriod.Duration
		if a.app.IsTrade() {
			p = time.Duration(a.app.SettleDays) * 24 * time.Hour
		}
		d = max(d, p)
	}
	return d
}

func (s *scenario) since() time.Duration { return time.Since(s.started).Round(time.Millisecond) }

// open counts the items not yet final.
func open(m map[state.Phase]int64) int64 {
	return m[state.PhasePending] + m[state.PhaseSubmitting] + m[state.PhaseProcessing]
}
