package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// Report is what a run did and found.
type Report struct {
	// Elapsed is the run's wall time up to the final checks.
	Elapsed time.Duration
	// Summary is payd's summary over every app.
	Summary *state.Summary
	// Apps are the per-app figures, in config order.
	Apps []AppReport
	// Calls and Busy count the simulator's ecpay calls and those answered
	// 1001 (over the rate limit).
	Calls, Busy int64
	// Violations are the simulator's ledger check; empty when clean.
	Violations []string
	// Events and Delivered count the events written to the outbox and
	// accepted by the built-in receiver; EventTypes renders the accepted
	// ones by type; EventsErr is the receiver's check.
	Events, Delivered int
	EventTypes        string
	EventsErr         error
}

// AppReport is one app's figures, in payd's view and in Douyin's.
type AppReport struct {
	AppID string
	// API is the Douyin API the app speaks (ecpay, trade); SettledBy who
	// settles its orders (payd, or douyin: payd observes).
	API, SettledBy string
	// UserRefunds counts the refunds buyers started (trade apps);
	// AuditsAsked those that needed the merchant's audit, Audited those
	// whose decision payd sent (refund_audit_callback) and Douyin took.
	UserRefunds, AuditsAsked, Audited int
	// Orders is how many paid orders were seeded; Success how many are
	// SUCCESS in payd.
	Orders, Success int
	// Refunds and Late count the refunds declared before and after
	// settlement.
	Refunds, Late int
	// RefundsSucceeded and RefundsParked count payd's refunds by outcome;
	// Refunded sums the succeeded ones (fen).
	RefundsSucceeded, RefundsParked int
	Refunded                        int64
	// Settled counts payd's succeeded settlements; SettledAmount sums them
	// (fen). Observed counts those Douyin made itself, which payd found
	// and adopted (source douyin) rather than sent.
	Settled, Observed int
	SettledAmount     int64
	// SettleCalls counts the settle_create calls payd made for the app.
	SettleCalls int
	// DouyinRefunded and DouyinSettled are the same sums in the
	// simulator's ledger; DouyinAutoSettled counts the settlements Douyin
	// made itself there (trade apps).
	DouyinRefunded, DouyinSettled int64
	DouyinAutoSettled             int
}

// Agrees reports whether payd's and Douyin's sums are the same.
func (a AppReport) Agrees() bool {
	return a.Refunded == a.DouyinRefunded && a.SettledAmount == a.DouyinSettled
}

// finish waits for the events, reads the per-app figures, stops the daemon
// and checks the ledger.
func (s *scenario) finish(ctx context.Context) (*Report, error) {
	st := s.w.d.Store()
	parkedRefunds, parkedSettlements, err := st.Parked(ctx, 20)
	if err != nil {
		return nil, err
	}
	s.w.d.WakeEvents()
	final, err := s.wait(ctx, "event deliveries", func(sum *state.Summary) bool { return int64(s.w.rcv.received()) >= sum.Events })
	if err != nil {
		return nil, err
	}
	r := &Report{Summary: final, Delivered: s.w.rcv.received(), EventTypes: s.w.rcv.countsByType()}
	r.Events, r.EventsErr = s.w.rcv.check(ctx, st)
	for _, a := range s.apps {
		ar, err := appReport(ctx, st, a)
		if err != nil {
			return nil, err
		}
		r.Apps = append(r.Apps, ar)
	}
	r.Elapsed = time.Since(s.started)
	if err := s.w.stop(); err != nil {
		return nil, fmt.Errorf("stop daemon: %w", err)
	}
	r.Violations = s.w.sim.Check()
	tv, err := s.w.tradeCheck(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range tv {
		r.Violations = append(r.Violations, "trade: "+v)
	}
	stats := s.w.sim.Stats()
	r.Calls, r.Busy = stats.Calls(), stats.Busy()
	douyinSums(r.Apps, s.w.sim.Ledger())
	tradeSums(r.Apps, s.w.trade.Ledger())
	return r, r.check(parkedRefunds, parkedSettlements)
}

// appReport reads payd's figures for one app from its orders' histories.
func appReport(ctx context.Context, st *state.Store, a *appRun) (AppReport, error) {
	r := AppReport{AppID: a.app.AppID, API: orAPI(a.app.API), SettledBy: settledBy(a.app), Orders: len(a.orders), Refunds: a.refunds, Late: a.late, UserRefunds: a.user, AuditsAsked: a.audits}
	for _, so := range a.orders {
		h, err := st.History(ctx, a.app.AppID, so.no)
		if err != nil {
			return r, err
		}
		if h.Order.Status == state.OrderSuccess {
			r.Success++
		}
		for _, rf := range h.Refunds {
			if rf.AuditPhase == state.AuditSent {
				r.Audited++
			}
			switch rf.Phase {
			case state.PhaseSucceeded:
				r.RefundsSucceeded++
				r.Refunded += rf.Amount
			case state.PhaseParked:
				r.RefundsParked++
			}
		}
		for _, at := range h.Attempts {
			if at.API == string(provider.CallCreateSettle) {
				r.SettleCalls++
			}
		}
		if h.Settlement != nil && h.Settlement.Phase == state.PhaseSucceeded {
			r.Settled++
			r.SettledAmount += h.Settlement.Amount
			if h.Settlement.Source == state.SettleByDouyin {
				r.Observed++
			}
		}
	}
	return r, nil
}

// douyinSums fills each app's sums from the simulator's ledger.
func douyinSums(apps []AppReport, l douyinsim.Ledger) {
	byApp := make(map[string]*AppReport, len(apps))
	for i := range apps {
		byApp[apps[i].AppID] = &apps[i]
	}
	for _, o := range l.Orders {
		if a := byApp[o.AppID]; a != nil {
			a.DouyinRefunded += o.RefundedAmount
			a.DouyinSettled += o.SettledAmount
		}
	}
}

// check turns what the report found into an error wrapping ErrCheck.
func (r *Report) check(parkedRefunds []state.Refund, parkedSettlements []state.Settlement) error {
	var problems []error
	if r.EventsErr != nil {
		problems = append(problems, r.EventsErr)
	}
	if len(r.Violations) > 0 {
		problems = append(problems, fmt.Errorf("simulator ledger check found %d violations", len(r.Violations)))
	}
	for _, a := range r.Apps {
		if a.Audited != a.AuditsAsked {
			problems = append(problems, fmt.Errorf("app %s: %d refunds awaited the merchant's audit, payd's decision reached Douyin for %d", a.AppID, a.AuditsAsked, a.Audited))
		}
		if a.SettledBy == config.SettledByDy && (a.Observed != a.Settled || a.DouyinAutoSettled != a.Settled || a.SettleCalls > 0) {
			problems = append(problems, fmt.Errorf("app %s is settled by Douyin: of %d settlements payd observed %d, Douyin made %d itself; payd sent %d settle_create",
				a.AppID, a.Settled, a.Observed, a.DouyinAutoSettled, a.SettleCalls))
		}
		if !a.Agrees() {
			problems = append(problems, fmt.Errorf("app %s: payd refunded %d and settled %d fen, Douyin %d and %d",
				a.AppID, a.Refunded, a.SettledAmount, a.DouyinRefunded, a.DouyinSettled))
		}
	}
	if len(parkedRefunds)+len(parkedSettlements) > 0 {
		var why []string
		for _, p := range parkedRefunds {
			why = append(why, fmt.Sprintf("refund %s: %s", p.Key, p.ParkReason))
		}
		for _, p := range parkedSettlements {
			why = append(why, fmt.Sprintf("settlement %s: %s", p.OutSettleNo, p.ParkReason))
		}
		problems = append(problems, fmt.Errorf("%d items were parked: %s", len(why), strings.Join(why, "; ")))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrCheck, errors.Join(problems...))
}

// Print writes the summary: totals over every app, then one block per app.
func (r *Report) Print(w io.Writer) {
	s := r.Summary
	orders, refunds, late, users := 0, 0, 0, 0
	for _, a := range r.Apps {
		orders, refunds, late, users = orders+a.Orders, refunds+a.Refunds+a.Late, late+a.Late, users+a.UserRefunds
	}
	fmt.Fprintf(w, "\npayd demo summary (%s)\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  orders:        %d paid, %d SUCCESS in payd\n", orders, s.Orders[state.OrderSuccess])
	fmt.Fprintf(w, "  refunds:       %d declared (%d after settlement), %d started by buyers: %d succeeded, %d parked, %d fen refunded\n",
		refunds, late, users, s.Refunds[state.PhaseSucceeded], s.Refunds[state.PhaseParked], s.RefundAmount[state.PhaseSucceeded])
	observed := 0
	for _, a := range r.Apps {
		observed += a.Observed
	}
	fmt.Fprintf(w, "  settlements:   %d succeeded (%d made by Douyin itself, observed by payd), %d parked, %d fen settled\n",
		s.Settlements[state.PhaseSucceeded], observed, s.Settlements[state.PhaseParked], s.SettledAmount)
	fmt.Fprintf(w, "  ecpay calls:   %d (%d answered 1001 busy)\n", r.Calls, r.Busy)
	if r.EventsErr == nil {
		fmt.Fprintf(w, "  events:        %d written, %d delivered to the built-in receiver (verified, in order, no duplicates)\n", r.Events, r.Delivered)
	} else {
		fmt.Fprintf(w, "  events:        %d written, %d delivered to the built-in receiver: CHECK FAILED\n", r.Events, r.Delivered)
	}
	if r.EventTypes != "" {
		fmt.Fprintf(w, "                 %s\n", r.EventTypes)
	}
	for _, a := range r.Apps {
		a.print(w)
	}
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "  ledger check:  clean, ecpay and trade (/_sim/trade/check): every number executed at most once, every audit decision sent once, no money beyond any order")
		return
	}
	fmt.Fprintf(w, "  ledger check:  %d VIOLATIONS\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(w, "    - %s\n", v)
	}
}

func (a AppReport) print(w io.Writer) {
	agree := "Douyin agrees"
	if !a.Agrees() {
		agree = fmt.Sprintf("DOUYIN DIFFERS: %d fen refunded, %d fen settled", a.DouyinRefunded, a.DouyinSettled)
	}
	if a.SettledBy == config.SettledByDy {
		fmt.Fprintf(w, "  app %s (%s, settled by Douyin):\n", a.AppID, a.API)
	} else {
		fmt.Fprintf(w, "  app %s (%s):\n", a.AppID, a.API)
	}
	fmt.Fprintf(w, "    orders:      %d paid, %d SUCCESS in payd\n", a.Orders, a.Success)
	fmt.Fprintf(w, "    refunds:     %d declared (%d after settlement): %d succeeded, %d parked, %d fen refunded\n",
		a.Refunds+a.Late, a.Late, a.RefundsSucceeded, a.RefundsParked, a.Refunded)
	if a.API == config.APITrade {
		fmt.Fprintf(w, "    by buyers:   %d refunds started by users (pre_create_refund); %d of %d awaiting audit decided by payd's policy\n", a.UserRefunds, a.Audited, a.AuditsAsked)
	}
	if a.SettledBy == config.SettledByDy {
		fmt.Fprintf(w, "    settlements: %d succeeded, %d fen settled, all by Douyin itself: %d observed and adopted by payd (settlement.adopted), %d settle_create sent; %s\n",
			a.Settled, a.SettledAmount, a.Observed, a.SettleCalls, agree)
		return
	}
	fmt.Fprintf(w, "    settlements: %d succeeded, %d fen settled; %s\n", a.Settled, a.SettledAmount, agree)
}

// settledBy is who settles the app's orders: douyin for a trade app
// settled_by douyin, else payd.
func settledBy(a config.App) string {
	if a.IsTrade() && a.SettledBy == config.SettledByDy {
		return config.SettledByDy
	}
	return config.SettledByPayd
}

// orAPI is the app's API, ecpay when not said.
func orAPI(api string) string {
	if api == "" {
		return config.APIEcpay
	}
	return api
}
