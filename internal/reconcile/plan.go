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
	// KindObserveSettle: Douyin settles the order's app itself; the
	// pending settlement becomes an observed one (processing, found at
	// Douyin by the order). No call.
	KindObserveSettle Kind = "observe_settlement"
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
	return plan(v, now, p).acts
}

// Waits says what each of the order's pending settlements waits for (the
// payment, its refunds, fulfilment, the settle period). Like Plan it is
// pure; it runs the same planner.
func Waits(v state.OrderView, now time.Time, p Policy) []Wait {
	return plan(v, now, p).waits
}

func plan(v state.OrderView, now time.Time, p Policy) *planner {
	pl := &planner{v: v, o: v.Order, sts: v.Settlements(), now: now, app: p.App(v.Order.AppID)}
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
		for _, st := range pl.sts {
			pl.st = st
			pl.planSettlement(committed, open)
		}
	}
	return pl
}

// planner collects one order's actions.
type planner struct {
	v       state.OrderView
	app     AppPolicy
	waits   []Wait
	o       state.Order
	refunds []state.Refund // in id order
	sts     []*state.Settlement
	st      *state.Settlement // the settlement being planned
	now     time.Time
	acts    []Action
}

func (pl *planner) add(a Action) {
	if a.At.IsZero() {
		a.At = pl.now
	}
	if a.Kind == KindQueryOrder {
		for _, b := range pl.acts {
			if b.Kind == KindQueryOrder && !b.At.After(a.At) {
				return // one query of the order answers every settlement
			}
		}
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
	planInFlight(pl.refunds, pl.sts, pl.add)
	for _, st := range pl.sts {
		if pl.st = st; st.Phase == state.PhasePending {
			pl.wait(WaitPayment, nil, fmt.Sprintf("order %s is not known to be paid yet (%s)", o.OutOrderNo, o.Status))
		}
	}
}

// wait records what the pending settlement waits for.
func (pl *planner) wait(f WaitFor, until *time.Time, reason string) {
	pl.waits = append(pl.waits, Wait{SettlementID: pl.st.ID, MerchantNo: pl.st.OutSettleNo, ItemOrderID: pl.st.ItemOrderID, For: f, Until: until, Reason: reason})
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
	for _, st := range pl.sts {
		if st.Phase == state.PhasePending {
			pl.add(Action{Kind: KindParkSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Reason: why})
		}
	}
	planInFlight(pl.refunds, pl.sts, pl.add)
}

// planRefunds plans a paid order's refunds, the buyer's money before the
// merchant's. It returns what is refunded or on its way, and whether any
// refund is still open (the settlement waits for them all).
func (pl *planner) planRefunds() (committed int64, open bool) {
	o := pl.o
	// settled: Douyin moved (some of) the order's money to the merchant,
	// so a refund must come from the withdrawable balance.
	settleBusy, settled := false, false
	for _, st := range pl.sts {
		settleBusy = settleBusy || st.Phase == state.PhaseSubmitting || st.Phase == state.PhaseProcessing
		settled = settled || (st.Phase == state.PhaseSucceeded && st.SettleNo != "")
	}
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
		reason := fmt.Sprintf("settlement attempt %d: PROCESSING at Douyin: check %d", st.Attempt, st.Checks+1)
		if st.Source == state.SettleByDouyin {
			reason = fmt.Sprintf("Douyin settles order %s itself: look for its settlement (settle_query by order_id): check %d", o.OutOrderNo, st.Checks+1)
		}
		pl.add(Action{Kind: KindQuerySettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Amount: st.Amount, At: timeOr(st.NextActionAt, pl.now), Reason: reason})
	case state.PhasePending:
		if st.Source == state.SettleByDouyin || pl.v.AppSettledByDouyin || pl.app.SettledByDouyin {
			pl.add(Action{Kind: KindObserveSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo,
				Reason: fmt.Sprintf("Douyin settles app %s itself: observe its settlement of order %s, send none", o.AppID, o.OutOrderNo)})
			return
		}
		if refundOpen {
			pl.wait(WaitRefunds, nil, fmt.Sprintf("order %s has refunds still open: settles once they end", o.OutOrderNo))
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
	due, waitFulfil := pl.settleDue()
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
	left, base := o.TotalAmount-committed-o.CPSShare, o.TotalAmount
	if st.ItemOrderID != "" {
		amount, why := pl.itemAmount()
		if why != "" {
			park(why)
			return
		}
		left, base = min(left, amount), amount
	}
	switch {
	case state.OverReceiverCap(share, base):
		park(fmt.Sprintf("receivers take %d of %d fen: more than 30%% of the order", share, base))
	case left <= 0:
		pl.add(Action{Kind: KindSkipSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, At: due,
			Reason: fmt.Sprintf("nothing left to settle: %d fen refunded, %d fen CPS share", committed, o.CPSShare)})
	case share > left:
		park(fmt.Sprintf("receivers take %d fen but only %d fen is left to settle", share, left))
	case waitFulfil != "":
		pl.wait(WaitFulfilment, nil, waitFulfil)
	case !o.CPSKnown && (o.CheckedAt == nil || o.CheckedAt.Before(due)):
		pl.add(Action{Kind: KindQueryOrder, At: laterOf(due, o.CheckAt), MerchantNo: o.OutOrderNo,
			Reason: "refresh the CPS share before settling: it is not settled to the merchant"})
	default:
		at := laterOf(due, st.NextActionAt)
		pl.add(Action{Kind: KindSubmitSettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, Amount: left,
			At: at, Reason: settleReason(st, o, left, due, backoff(at, pl.now))})
		if at.After(pl.now) {
			pl.wait(WaitPeriod, &at, fmt.Sprintf("settle %d fen from %s", left, at.Format(time.RFC3339)))
		}
	}
}

// itemAmount is the amount of the item order the pending settlement
// settles, or why it cannot be settled: Douyin settles item orders only
// under the fulfilment rule (a payment-rule app's orders are settled
// whole), and only item orders of the order. What is left of an item is
// taken as at most its amount and at most what is left of the order: payd
// does not know how Douyin spread earlier refunds over the items, and
// Douyin settles what is left of the item (23112 when nothing is).
func (pl *planner) itemAmount() (int64, string) {
	o, st := pl.o, pl.st
	if pl.app.Rule != RuleFulfilment {
		return 0, fmt.Sprintf("settlement of item order %s: the app settles on payment (支付 D+N), where Douyin settles whole orders only: cancel it (payd cancel) and settle the order", st.ItemOrderID)
	}
	items := o.ItemList()
	for _, it := range items {
		if it.ID == st.ItemOrderID {
			return it.Amount, ""
		}
	}
	if len(items) == 0 {
		return o.TotalAmount, "" // not listed yet: Douyin judges the id
	}
	return 0, fmt.Sprintf("settlement of item order %s: order %s has no such item order", st.ItemOrderID, o.OutOrderNo)
}

// settleDue is when the pending settlement may first be sent under the
// app's rule — the pay time plus the period (the order's SettleAfter), or
// the fulfilment plus the period, CPS orders of CPSFulfilment apps on
// fulfilment D+3 — and never before its DueAt. While the fulfilment it
// counts from is not declared, wait says so and the command that declares it.
func (pl *planner) settleDue() (due time.Time, wait string) {
	o, st := pl.o, pl.st
	rule, period := pl.app.Rule, pl.app.SettlePeriod
	if pl.app.CPSFulfilment && o.CPSShare > 0 {
		rule, period = RuleFulfilment, CPSSettlePeriod
	}
	due = *o.SettleAfter
	if rule == RuleFulfilment {
		at, ok := pl.v.FulfilledAt(st.ItemOrderID)
		if !ok {
			cmd := "payd fulfil " + o.OutOrderNo
			if st.ItemOrderID != "" {
				cmd += " --item " + st.ItemOrderID
			}
			return time.Time{}, fmt.Sprintf("waits for fulfilment (settles %s after it): %s", fmtPeriod(period), cmd)
		}
		due = at.Add(period)
	}
	if st.DueAt != nil && st.DueAt.After(due) {
		due = *st.DueAt
	}
	return due, ""
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
func planInFlight(refunds []state.Refund, sts []*state.Settlement, add func(Action)) {
	for _, r := range refunds {
		if r.Phase == state.PhaseSubmitting || r.Phase == state.PhaseProcessing {
			add(Action{Kind: KindQueryRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, At: timeOr(r.NextActionAt, time.Time{}),
				Reason: fmt.Sprintf("refund %s attempt %d is %s: resolve it", r.Key, r.Attempt, r.Phase)})
		}
	}
	for _, st := range sts {
		if st.Phase == state.PhaseSubmitting || st.Phase == state.PhaseProcessing {
			add(Action{Kind: KindQuerySettle, SettlementID: st.ID, MerchantNo: st.OutSettleNo, At: timeOr(st.NextActionAt, time.Time{}),
				Reason: fmt.Sprintf("settlement attempt %d is %s: resolve it", st.Attempt, st.Phase)})
		}
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
