package reconcile

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/payd/payd/internal/state"
)

// Kind is what an action does.
type Kind string

// The actions Plan produces.
const (
	// KindQueryOrder: query_order, to learn an order's status, amount, pay time
	// or CPS share.
	KindQueryOrder Kind = "query_order"
	// KindSubmitRefund: persist submitting, then create_refund with the
	// attempt's out_refund_no.
	KindSubmitRefund Kind = "create_refund"
	// KindQueryRefund: query_refund for a refund submitting (outcome unknown)
	// or processing.
	KindQueryRefund Kind = "query_refund"
	// KindSubmitSettle: persist submitting, then settle.
	KindSubmitSettle Kind = "settle"
	// KindQuerySettle: query_settle for a settlement submitting or processing.
	KindQuerySettle Kind = "query_settle"
	// KindParkRefund: the refund can never succeed as declared; park it
	// (phase failed) with the reason. No call.
	KindParkRefund Kind = "park_refund"
	// KindParkSettle: the same for a settlement.
	KindParkSettle Kind = "park_settlement"
	// KindSkipSettle: nothing is left to settle (fully refunded); the
	// settlement is done without a call.
	KindSkipSettle Kind = "skip_settlement"
)

// Action is one step toward an order's desired state.
type Action struct {
	Kind Kind `json:"action"`
	// At is when the action becomes due; it is due now when At <= now.
	At time.Time `json:"at"`
	// RefundID or SettlementID names the item acted on (0 for order actions).
	RefundID     int64 `json:"refund_id,omitempty"`
	SettlementID int64 `json:"settlement_id,omitempty"`
	// MerchantNo is the out_order_no, out_refund_no or out_settle_no used.
	MerchantNo string `json:"target"`
	// Amount is the refund amount or the amount expected to be settled (fen).
	Amount int64 `json:"amount,omitempty"`
	// AfterSettlement is set on a refund of an order already settled: the
	// money comes from the merchant's settled balance.
	AfterSettlement bool `json:"after_settlement,omitempty"`
	// Reason explains the action in one line.
	Reason string `json:"reason"`
}

// Due reports whether a is due at now.
func (a Action) Due(now time.Time) bool { return !a.At.After(now) }

// String renders the action as one line, for logs and `payd plan`.
func (a Action) String() string {
	return fmt.Sprintf("%s %s: %s", a.Kind, a.MerchantNo, a.Reason)
}

// Plan computes an order's next actions from everything known about it. It
// is a pure function of its arguments: the same rows and time give the same
// plan. Actions come in the order they should run; those with At > now are
// scheduled for later. An order with nothing left to do has no actions.
func Plan(v state.OrderView, now time.Time, p Policy) []Action {
	pl := &planner{o: v.Order, st: v.Settlement, now: now, audit: p.App(v.Order.AppID).Audit}
	pl.refunds = append([]state.Refund(nil), v.Refunds...)
	sort.Slice(pl.refunds, func(i, j int) bool { return pl.refunds[i].ID < pl.refunds[j].ID })
	// Audit decisions first: a decision sent again after a back-off is due
	// with the refund's next query (both at its NextActionAt), and the
	// query, going first, would push it back every time.
	pl.planAudits()
	switch pl.o.Status {
	case state.OrderUnknown, state.OrderProcessing:
		pl.queryUnpaid()
	case state.OrderFail, state.OrderTimeout, state.OrderNotFound:
		pl.parkClosed()
	case state.OrderSuccess:
		committed, open := pl.planRefunds()
		pl.planSettlement(committed, open)
	}
	return pl.acts
}

// planner collects one order's actions.
type planner struct {
	o       state.Order
	refunds []state.Refund // in id order
	st      *state.Settlement
	now     time.Time
	audit   AuditPolicy
	acts    []Action
}

func (pl *planner) add(a Action) {
	if a.At.IsZero() {
		a.At = pl.now
	}
	pl.acts = append(pl.acts, a)
}

// queryUnpaid: the order is not known to be paid; query it, and keep
// resolving the items already in flight.
func (pl *planner) queryUnpaid() {
	o := pl.o
	reason := "order status not known yet: first query"
	if o.Status == state.OrderProcessing {
		reason = fmt.Sprintf("order PROCESSING at Douyin (buyer has not paid): check %d", o.Checks+1)
	}
	if o.Status == state.OrderUnknown && o.Checks > 0 {
		reason = fmt.Sprintf("order status still unknown after %d tries: query again", o.Checks)
	}
	pl.add(Action{Kind: KindQueryOrder, At: timeOr(o.CheckAt, pl.now), MerchantNo: o.OutOrderNo, Reason: reason})
	planInFlight(pl.refunds, pl.st, pl.add)
}

// parkClosed: the order will never be paid; park what waits, resolve what
// is in flight.
func (pl *planner) parkClosed() {
	o := pl.o
	why := fmt.Sprintf("order %s is %s at Douyin", o.OutOrderNo, o.Status)
	if o.Status == state.OrderNotFound {
		why = fmt.Sprintf("Douyin does not know order %s", o.OutOrderNo)
	}
	for _, r := range pl.refunds {
		if r.Phase == state.PhasePending {
			pl.add(Action{Kind: KindParkRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, Reason: why})
		}
	}
	if st := pl.st; st != nil && st.Phase == state.PhasePending {
		pl.add(Action{Kind: KindParkSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Reason: why})
	}
	planInFlight(pl.refunds, pl.st, pl.add)
}

// planRefunds plans a paid order's refunds, the buyer's money before the
// merchant's. It returns what is refunded or on its way, and whether any
// refund is still open (the settlement waits for them all).
func (pl *planner) planRefunds() (committed int64, open bool) {
	o, st := pl.o, pl.st
	settleBusy := st != nil && (st.Phase == state.PhaseSubmitting || st.Phase == state.PhaseProcessing)
	// settled: Douyin moved the order's money to the merchant, so a refund
	// must come from the withdrawable balance.
	settled := st != nil && st.Phase == state.PhaseSucceeded && st.SettleNo != ""
	for _, r := range pl.refunds {
		switch r.Phase {
		case state.PhaseSucceeded, state.PhaseSubmitting, state.PhaseProcessing:
			committed += r.Amount
		}
	}
	var pendingAhead int64
	sent := state.RefundsSent(pl.refunds)
	for _, r := range pl.refunds {
		switch r.Phase {
		case state.PhaseSucceeded, state.PhaseParked, state.PhaseCancelled:
			continue
		case state.PhaseSubmitting:
			open = true
			pl.add(Action{Kind: KindQueryRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, At: timeOr(r.NextActionAt, pl.now),
				Reason: fmt.Sprintf("refund %s attempt %d: outcome of create_refund not known: query before any resend", r.Key, r.Attempt)})
		case state.PhaseProcessing:
			open = true
			pl.add(Action{Kind: KindQueryRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, At: timeOr(r.NextActionAt, pl.now),
				Reason: fmt.Sprintf("refund %s attempt %d: PROCESSING at Douyin: check %d", r.Key, r.Attempt, r.Checks+1)})
		case state.PhasePending:
			open = true
			remaining := o.TotalAmount - committed - pendingAhead
			if o.TotalAmount > 0 && r.Amount > remaining {
				pl.add(Action{Kind: KindParkRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount,
					Reason: state.ExceedsRemaining(r.Amount, o.OutOrderNo, remaining, o.TotalAmount)})
				continue
			}
			// The number this attempt sends is one more refund at Douyin.
			if why := state.RefundLimit(o, sent, pl.now); why != "" {
				pl.add(Action{Kind: KindParkRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, Reason: why})
				continue
			}
			sent++
			pendingAhead += r.Amount
			if settleBusy {
				continue // waits for the settlement in flight; its answer decides how the refund is sent
			}
			at := timeOr(r.NextActionAt, pl.now)
			pl.add(Action{Kind: KindSubmitRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, AfterSettlement: settled,
				At: at, Reason: refundReason(r, settled, backoff(at, pl.now))})
		}
	}
	return committed, open
}

// backoff says where a retry stands against its back-off: passed, or when
// it ends.
func backoff(at, now time.Time) string {
	if at.After(now) {
		return "retry after the back-off, in " + fmtPeriod(at.Sub(now))
	}
	return "back-off passed"
}

// refundReason says why a pending refund is sent.
func refundReason(r state.Refund, settled bool, backoff string) string {
	reason := fmt.Sprintf("refund %s: submit %d fen (attempt %d)", r.Key, r.Amount, r.Attempt)
	if r.Attempt > 1 {
		reason = fmt.Sprintf("refund %s attempt %d: attempt %d FAILED (%s), %s", r.Key, r.Attempt, r.Attempt-1, orText(r.ErrTips, "no message"), backoff)
	}
	if r.ErrNo != 0 { // the last answer said it was not executed
		reason = fmt.Sprintf("refund %s attempt %d: resend the same number after err_no %d", r.Key, r.Attempt, r.ErrNo)
	}
	if settled {
		reason += "; order already settled: refund from the settled balance"
	}
	return reason
}

// planSettlement plans a paid order's settlement once its refunds are done.
func (pl *planner) planSettlement(committed int64, refundOpen bool) {
	o, st := pl.o, pl.st
	if st == nil {
		return
	}
	switch st.Phase {
	case state.PhaseSucceeded, state.PhaseParked, state.PhaseCancelled:
	case state.PhaseSubmitting:
		pl.add(Action{Kind: KindQuerySettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Amount: st.Amount, At: timeOr(st.NextActionAt, pl.now),
			Reason: fmt.Sprintf("settlement attempt %d: outcome of settle not known: query before any resend", st.Attempt)})
	case state.PhaseProcessing:
		pl.add(Action{Kind: KindQuerySettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Amount: st.Amount, At: timeOr(st.NextActionAt, pl.now),
			Reason: fmt.Sprintf("settlement attempt %d: PROCESSING at Douyin: check %d", st.Attempt, st.Checks+1)})
	case state.PhasePending:
		if refundOpen {
			return // waits until every refund of the order is final
		}
		if o.SettleAfter == nil || o.TotalAmount <= 0 {
			pl.add(Action{Kind: KindQueryOrder, At: timeOr(o.CheckAt, pl.now), MerchantNo: o.OutOrderNo,
				Reason: "pay time or amount unknown: query the order before settling"})
			return
		}
		pl.settlePending(committed)
	}
}

// settlePending plans a pending settlement of a paid order whose refunds
// are final: park it if it cannot be carried out, skip it if nothing is
// left, refresh the CPS share if need be, else settle when due.
func (pl *planner) settlePending(committed int64) {
	o, st := pl.o, pl.st
	due := *o.SettleAfter
	if st.DueAt != nil && st.DueAt.After(due) {
		due = *st.DueAt
	}
	park := func(reason string) {
		pl.add(Action{Kind: KindParkSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Reason: reason})
	}
	receivers, err := st.ReceiverList()
	if err != nil {
		park(err.Error())
		return
	}
	var share int64
	for _, rc := range receivers {
		share += rc.Amount
	}
	left := o.TotalAmount - committed - o.CPSShare
	switch {
	case state.OverReceiverCap(share, o.TotalAmount):
		park(fmt.Sprintf("receivers take %d of %d fen: more than 30%% of the order", share, o.TotalAmount))
	case left <= 0:
		pl.add(Action{Kind: KindSkipSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, At: due,
			Reason: fmt.Sprintf("nothing left to settle: %d fen refunded, %d fen CPS share", committed, o.CPSShare)})
	case share > left:
		park(fmt.Sprintf("receivers take %d fen but only %d fen is left to settle", share, left))
	case !o.CPSKnown && (o.CheckedAt == nil || o.CheckedAt.Before(due)):
		pl.add(Action{Kind: KindQueryOrder, At: laterOf(due, o.CheckAt), MerchantNo: o.OutOrderNo,
			Reason: "refresh the CPS share before settling: it is not settled to the merchant"})
	default:
		at := laterOf(due, st.NextActionAt)
		pl.add(Action{Kind: KindSubmitSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Amount: left,
			At: at, Reason: settleReason(st, o, left, due, backoff(at, pl.now))})
	}
}

// settleReason says why a settlement is sent.
func settleReason(st *state.Settlement, o state.Order, left int64, due time.Time, backoff string) string {
	if st.Attempt > 1 {
		return fmt.Sprintf("settlement attempt %d: attempt %d FAILED (%s), %s", st.Attempt, st.Attempt-1, orText(st.ErrTips, "no message"), backoff)
	}
	if o.PaidAt != nil {
		return fmt.Sprintf("settle %d fen at T+%s (due %s)", left, fmtPeriod(due.Sub(*o.PaidAt)), due.Format(time.RFC3339))
	}
	return fmt.Sprintf("settle %d fen, due %s", left, due.Format(time.RFC3339))
}

// planInFlight adds the queries that resolve items already sent to Douyin.
func planInFlight(refunds []state.Refund, st *state.Settlement, add func(Action)) {
	for _, r := range refunds {
		if r.Phase == state.PhaseSubmitting || r.Phase == state.PhaseProcessing {
			add(Action{Kind: KindQueryRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, At: timeOr(r.NextActionAt, time.Time{}),
				Reason: fmt.Sprintf("refund %s attempt %d is %s: resolve it", r.Key, r.Attempt, r.Phase)})
		}
	}
	if st != nil && (st.Phase == state.PhaseSubmitting || st.Phase == state.PhaseProcessing) {
		add(Action{Kind: KindQuerySettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, At: timeOr(st.NextActionAt, time.Time{}),
			Reason: fmt.Sprintf("settlement attempt %d is %s: resolve it", st.Attempt, st.Phase)})
	}
}

// NextAfter returns the earliest At of the actions that are not due at now,
// or nil when none is scheduled.
func NextAfter(acts []Action, now time.Time) *time.Time {
	var next *time.Time
	for _, a := range acts {
		if a.Due(now) {
			continue
		}
		if next == nil || a.At.Before(*next) {
			t := a.At
			next = &t
		}
	}
	return next
}

// DueNow returns the actions due at now, in plan order.
func DueNow(acts []Action, now time.Time) []Action {
	var out []Action
	for _, a := range acts {
		if a.Due(now) {
			out = append(out, a)
		}
	}
	return out
}

func timeOr(t *time.Time, def time.Time) time.Time {
	if t == nil {
		return def
	}
	return *t
}

func laterOf(t time.Time, u *time.Time) time.Time {
	if u != nil && u.After(t) {
		return *u
	}
	return t
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fmtPeriod writes a duration as people read one: 7d, 6d23h, 2h30m, 45s.
func fmtPeriod(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}
