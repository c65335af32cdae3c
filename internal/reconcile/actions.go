package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/state"
)

// The writes after a call use a context that is not cancelled with the
// pass: an answer Douyin gave must be recorded even during shutdown.
func keep(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// queryOrder learns the order's status, amount, pay time and CPS share.
func (r *Reconciler) queryOrder(ctx context.Context, v *state.OrderView) (ActionResult, error) {
	o := v.Order
	start := time.Now()
	resp, err := r.dy.QueryOrder(ctx, douyin.QueryOrderRequest{AppID: o.AppID, OutOrderNo: o.OutOrderNo})
	att, class, errNo := r.attempt(v, "order", o.ID, douyin.APIQueryOrder, o.OutOrderNo, err, time.Since(start))
	res := ActionResult{Outcome: outcomeName(class, douyin.APIQueryOrder, errNo), ErrNo: errNo}
	now := r.clock.Now()
	var events []state.NewEvent
	switch {
	case err == nil:
		if perr := observeOrder(&o, resp, now, r.policy.App(o.AppID)); perr != nil {
			// A garbled answer is no observation: look again later.
			o.CheckAt = r.jittered(now, r.policy.Poll, o.Checks)
			o.Checks++
			res.Outcome = douyin.ClassUnknown.String()
			r.log.WithField("order", o.OutOrderNo).WithError(perr).Warn("query_order answer not understood")
			break
		}
		prev := v.Order.Status
		if o.Status != prev {
			switch o.Status {
			case state.OrderSuccess:
				events = append(events, orderEvent(state.EventOrderPaid, &o))
				if v.Settlement == nil && o.SettleAfter != nil {
					t := *o.SettleAfter
					o.AutoSettleAt = &t
				}
			case state.OrderFail, state.OrderTimeout:
				events = append(events, orderEvent(state.EventOrderClosed, &o))
			}
		}
		if o.Status.Final() && (o.Status != state.OrderSuccess || o.PaidAt != nil) {
			o.CheckAt = nil
			o.Checks = 0
		} else {
			// Not final, or paid without a pay time to count T+N from:
			// look again on the poll schedule, never in a tight loop.
			o.CheckAt = r.jittered(now, r.policy.Poll, o.Checks)
			o.Checks++
		}
	case errNo == douyin.ErrNoOrderNotFound:
		o.Status = state.OrderNotFound
		o.CheckAt = nil
		o.CheckedAt = &now
		events = append(events, orderEvent(state.EventOrderClosed, &o))
	default:
		o.CheckAt = r.jittered(now, r.policy.Poll, o.Checks)
		o.Checks++
	}
	return res, r.save(keep(ctx), att, func(tx *state.Store) error { return tx.UpdateOrder(keep(ctx), &o, events...) })
}

// observeOrder copies what query_order said onto o.
func observeOrder(o *state.Order, resp *douyin.QueryOrderResponse, now time.Time, app AppPolicy) error {
	pi := resp.PaymentInfo
	status := state.OrderStatus(pi.OrderStatus)
	switch status {
	case state.OrderSuccess, state.OrderProcessing, state.OrderFail, state.OrderTimeout:
	default:
		return fmt.Errorf("unknown order_status %q", pi.OrderStatus)
	}
	paidAt, havePaid, err := pi.PaidAt()
	if err != nil {
		return err
	}
	share, known, err := resp.CPSShare()
	if err != nil {
		return err
	}
	o.Status = status
	if resp.OrderID != "" {
		o.OrderID = resp.OrderID
	}
	if pi.TotalFee > 0 {
		o.TotalAmount = pi.TotalFee
	}
	if havePaid {
		o.PaidAt = &paidAt
		due := SettleDueAt(paidAt, app.SettlePeriod)
		o.SettleAfter = &due
	}
	if known {
		o.CPSShare = share
		o.CPSKnown = true
	}
	o.CheckedAt = &now
	return nil
}

// submitRefund persists the intent, sends create_refund, records the answer.
func (r *Reconciler) submitRefund(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	rf, err := findRefund(v, a.RefundID)
	if err != nil {
		return ActionResult{}, err
	}
	now := r.clock.Now()
	rf.Phase = state.PhaseSubmitting
	rf.AllSettle = a.AllSettle
	rf.Checks = 0
	rf.NextActionAt = r.jittered(now, r.policy.Poll, 0)
	if err := r.store.UpdateRefund(ctx, rf, state.PhasePending); err != nil {
		return ActionResult{}, fmt.Errorf("persist intent of refund %s: %w", rf.OutRefundNo, err)
	}
	return r.sendRefund(ctx, v, rf)
}

// sendRefund calls create_refund for a refund already persisted as
// submitting, and records what Douyin answered.
func (r *Reconciler) sendRefund(ctx context.Context, v *state.OrderView, rf *state.Refund) (ActionResult, error) {
	app := r.policy.App(v.Order.AppID)
	start := time.Now()
	resp, err := r.dy.CreateRefund(ctx, douyin.CreateRefundRequest{
		AppID: v.Order.AppID, OutOrderNo: v.Order.OutOrderNo, OutRefundNo: rf.OutRefundNo,
		Reason: rf.Reason, RefundAmount: rf.Amount, AllSettle: rf.AllSettle, NotifyURL: app.NotifyURL,
	})
	att, class, errNo := r.attempt(v, "refund", rf.ID, douyin.APICreateRefund, rf.OutRefundNo, err, time.Since(start))
	res := ActionResult{Outcome: outcomeName(class, douyin.APICreateRefund, errNo), ErrNo: errNo}
	now := r.clock.Now()
	var events []state.NewEvent
	ans := r.writeAnswer(class, errNo, err, now)
	rf.Phase, rf.ErrNo, rf.ErrTips, rf.NextActionAt = ans.phase, ans.errNo, ans.tips, ans.next
	if class == douyin.ClassOK {
		rf.RefundNo = resp.RefundNo
	}
	if ans.parked {
		rf.ParkReason = fmt.Sprintf("create_refund rejected (%s, err_no %d): %s", class, errNo, ans.tips)
		rf.DoneAt = &now
		events = append(events, refundEvent(state.EventRefundParked, v, rf))
	}
	return res, r.save(keep(ctx), att, func(tx *state.Store) error {
		return tx.UpdateRefund(keep(ctx), rf, state.PhaseSubmitting, events...)
	})
}

// answer is what Douyin's answer to a write call (create_refund, settle)
// makes of the item that was submitting.
type answer struct {
	phase  state.Phase
	errNo  int
	tips   string
	next   *time.Time // nil when parked
	parked bool       // rejected for good: the caller records why
}

// writeAnswer maps an answer's class to the item's next state: accepted →
// processing, polled; Douyin certainly did not act → pending, the same
// number goes again later; the outcome is unknown → still submitting, and
// the next step queries before anything is resent; rejected → failed.
func (r *Reconciler) writeAnswer(class douyin.Class, errNo int, err error, now time.Time) answer {
	switch class {
	case douyin.ClassOK:
		return answer{phase: state.PhaseProcessing, next: r.jittered(now, r.policy.Poll, 0)}
	case douyin.ClassRetryable:
		return answer{phase: state.PhasePending, errNo: errNo, tips: tipsOf(err), next: r.jittered(now, r.policy.Poll, 0)}
	case douyin.ClassPermanent, douyin.ClassConfig:
		return answer{phase: state.PhaseFailed, errNo: errNo, tips: tipsOf(err), parked: true}
	default: // douyin.ClassUnknown
		return answer{phase: state.PhaseSubmitting, errNo: errNo, tips: tipsOf(err), next: r.jittered(now, r.policy.Poll, 0)}
	}
}

// queryRefund resolves a refund that is submitting or processing.
func (r *Reconciler) queryRefund(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	rf, err := findRefund(v, a.RefundID)
	if err != nil {
		return ActionResult{}, err
	}
	start := time.Now()
	info, err := r.dy.QueryRefund(ctx, douyin.QueryRefundRequest{AppID: v.Order.AppID, OutRefundNo: rf.OutRefundNo})
	att, class, errNo := r.attempt(v, "refund", rf.ID, douyin.APIQueryRefund, rf.OutRefundNo, err, time.Since(start))
	res := ActionResult{Outcome: outcomeName(class, douyin.APIQueryRefund, errNo), ErrNo: errNo}
	from := rf.Phase
	now := r.clock.Now()
	var events []state.NewEvent
	switch {
	case err == nil:
		if info.RefundNo != "" {
			rf.RefundNo = info.RefundNo
		}
		switch info.RefundStatus {
		case douyin.StatusSuccess:
			rf.Phase = state.PhaseSucceeded
			rf.NextActionAt = nil
			rf.DoneAt = &now
			rf.ErrNo, rf.ErrTips = 0, ""
			events = append(events, refundEvent(state.EventRefundSucceeded, v, rf))
		case douyin.StatusFail:
			rf.ErrNo, rf.ErrTips = 0, orText(info.Msg, "FAIL")
			events = append(events, refundEvent(state.EventRefundAttemptFailed, v, rf))
			if rf.Attempt >= r.policy.RefundAttempts {
				rf.Phase = state.PhaseFailed
				rf.NextActionAt = nil
				rf.DoneAt = &now
				rf.ParkReason = fmt.Sprintf("attempt %d of %d FAILED at Douyin: %s", rf.Attempt, r.policy.RefundAttempts, rf.ErrTips)
				events = append(events, refundEvent(state.EventRefundParked, v, rf))
			} else {
				// A failed number fails forever: the next attempt needs a new one.
				rf.Phase = state.PhasePending
				rf.NextActionAt = r.jittered(now, r.policy.Retry, rf.Attempt-1)
				rf.Attempt++
				rf.OutRefundNo = state.RefundNo(rf.Key, rf.Attempt)
				rf.RefundNo = ""
				rf.Checks = 0
			}
		default: // PROCESSING
			rf.Phase = state.PhaseProcessing
			rf.Checks++
			rf.NextActionAt = r.jittered(now, r.policy.Poll, rf.Checks)
		}
	case errNo == douyin.ErrNoRefundNotFound && from == state.PhaseSubmitting:
		// Proven never to have happened: resend the same number.
		if err := r.save(keep(ctx), att, nil); err != nil {
			return res, err
		}
		sres, serr := r.sendRefund(ctx, v, rf)
		sres.Outcome = res.Outcome + "+" + sres.Outcome
		return sres, serr
	default:
		// No answer (or a strange one): the money may be moving; never park
		// an item in flight, look again later.
		rf.Checks++
		rf.ErrNo, rf.ErrTips = errNo, tipsOf(err)
		rf.NextActionAt = r.jittered(now, r.policy.Poll, rf.Checks)
	}
	return res, r.save(keep(ctx), att, func(tx *state.Store) error { return tx.UpdateRefund(keep(ctx), rf, from, events...) })
}

// submitSettle persists the intent, sends settle, records the answer.
func (r *Reconciler) submitSettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st := *v.Settlement
	now := r.clock.Now()
	st.Phase = state.PhaseSubmitting
	st.Amount = a.Amount
	st.Checks = 0
	st.NextActionAt = r.jittered(now, r.policy.Poll, 0)
	if err := r.store.UpdateSettlement(ctx, &st, state.PhasePending); err != nil {
		return ActionResult{}, fmt.Errorf("persist intent of settlement %s: %w", st.OutSettleNo, err)
	}
	return r.sendSettle(ctx, v, &st)
}

func (r *Reconciler) sendSettle(ctx context.Context, v *state.OrderView, st *state.Settlement) (ActionResult, error) {
	app := r.policy.App(v.Order.AppID)
	receivers, err := decodeReceivers(st.Receivers)
	if err != nil {
		return ActionResult{}, err
	}
	req := douyin.SettleRequest{
		AppID: v.Order.AppID, OutSettleNo: st.OutSettleNo, OutOrderNo: v.Order.OutOrderNo,
		SettleDesc: orText(st.Desc, app.SettleDesc), NotifyURL: app.NotifyURL,
	}
	for _, rc := range receivers {
		req.SettleParams = append(req.SettleParams, douyin.Receiver{MerchantUID: rc.MerchantUID, Amount: rc.Amount})
	}
	if req.SettleDesc == "" {
		req.SettleDesc = DefaultApp.SettleDesc
	}
	start := time.Now()
	resp, err := r.dy.Settle(ctx, req)
	att, class, errNo := r.attempt(v, "settlement", st.ID, douyin.APISettle, st.OutSettleNo, err, time.Since(start))
	res := ActionResult{Outcome: outcomeName(class, douyin.APISettle, errNo), ErrNo: errNo}
	now := r.clock.Now()
	var events []state.NewEvent
	ans := r.writeAnswer(class, errNo, err, now)
	st.Phase, st.ErrNo, st.ErrTips, st.NextActionAt = ans.phase, ans.errNo, ans.tips, ans.next
	if class == douyin.ClassOK {
		st.SettleNo = resp.SettleNo
	}
	if ans.parked {
		st.ParkReason = fmt.Sprintf("settle rejected (%s, err_no %d): %s", class, errNo, ans.tips)
		st.DoneAt = &now
		events = append(events, settleEvent(state.EventSettlementParked, v, st))
	}
	return res, r.save(keep(ctx), att, func(tx *state.Store) error {
		return tx.UpdateSettlement(keep(ctx), st, state.PhaseSubmitting, events...)
	})
}

// querySettle resolves a settlement that is submitting or processing.
func (r *Reconciler) querySettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st := *v.Settlement
	start := time.Now()
	info, err := r.dy.QuerySettle(ctx, douyin.QuerySettleRequest{AppID: v.Order.AppID, OutSettleNo: st.OutSettleNo})
	att, class, errNo := r.attempt(v, "settlement", st.ID, douyin.APIQuerySettle, st.OutSettleNo, err, time.Since(start))
	res := ActionResult{Outcome: outcomeName(class, douyin.APIQuerySettle, errNo), ErrNo: errNo}
	from := st.Phase
	now := r.clock.Now()
	var events []state.NewEvent
	switch {
	case err == nil:
		if info.SettleNo != "" {
			st.SettleNo = info.SettleNo
		}
		switch info.SettleStatus {
		case douyin.StatusSuccess:
			st.Phase = state.PhaseSucceeded
			if info.SettleAmount > 0 {
				st.Amount = info.SettleAmount
			}
			st.NextActionAt = nil
			st.DoneAt = &now
			st.ErrNo, st.ErrTips = 0, ""
			events = append(events, settleEvent(state.EventSettlementSucceeded, v, &st))
		case douyin.StatusFail:
			st.ErrNo, st.ErrTips = 0, orText(info.Msg, "FAIL")
			events = append(events, settleEvent(state.EventSettlementAttemptFailed, v, &st))
			if st.Attempt >= r.policy.SettleAttempts {
				st.Phase = state.PhaseFailed
				st.NextActionAt = nil
				st.DoneAt = &now
				st.ParkReason = fmt.Sprintf("attempt %d of %d FAILED at Douyin: %s", st.Attempt, r.policy.SettleAttempts, st.ErrTips)
				events = append(events, settleEvent(state.EventSettlementParked, v, &st))
			} else {
				st.Phase = state.PhasePending
				st.NextActionAt = r.jittered(now, r.policy.Retry, st.Attempt-1)
				st.Attempt++
				st.OutSettleNo = state.SettleNo(v.Order.AppID, v.Order.OutOrderNo, st.Attempt)
				st.SettleNo = ""
				st.Checks = 0
			}
		default:
			st.Phase = state.PhaseProcessing
			st.Checks++
			st.NextActionAt = r.jittered(now, r.policy.Poll, st.Checks)
		}
	case errNo == douyin.ErrNoOrderNotFound && from == state.PhaseSubmitting:
		// Douyin does not know this number: the settle never happened.
		if err := r.save(keep(ctx), att, nil); err != nil {
			return res, err
		}
		sres, serr := r.sendSettle(ctx, v, &st)
		sres.Outcome = res.Outcome + "+" + sres.Outcome
		return sres, serr
	default:
		st.Checks++
		st.ErrNo, st.ErrTips = errNo, tipsOf(err)
		st.NextActionAt = r.jittered(now, r.policy.Poll, st.Checks)
	}
	return res, r.save(keep(ctx), att, func(tx *state.Store) error { return tx.UpdateSettlement(keep(ctx), &st, from, events...) })
}

func (r *Reconciler) parkRefund(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	rf, err := findRefund(v, a.RefundID)
	if err != nil {
		return ActionResult{}, err
	}
	now := r.clock.Now()
	from := rf.Phase
	rf.Phase = state.PhaseFailed
	rf.ParkReason = a.Reason
	rf.NextActionAt = nil
	rf.DoneAt = &now
	return ActionResult{Outcome: "local"}, r.store.UpdateRefund(ctx, rf, from, refundEvent(state.EventRefundParked, v, rf))
}

func (r *Reconciler) parkSettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st := *v.Settlement
	now := r.clock.Now()
	from := st.Phase
	st.Phase = state.PhaseFailed
	st.ParkReason = a.Reason
	st.NextActionAt = nil
	st.DoneAt = &now
	return ActionResult{Outcome: "local"}, r.store.UpdateSettlement(ctx, &st, from, settleEvent(state.EventSettlementParked, v, &st))
}

func (r *Reconciler) skipSettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st := *v.Settlement
	now := r.clock.Now()
	from := st.Phase
	st.Phase = state.PhaseSucceeded
	st.Amount = 0
	st.ParkReason = a.Reason
	st.NextActionAt = nil
	st.DoneAt = &now
	return ActionResult{Outcome: "local"}, r.store.UpdateSettlement(ctx, &st, from, settleEvent(state.EventSettlementSucceeded, v, &st))
}

// Event payloads: what the merchant's backend receives.

// OrderPayload is the resource of order.* events.
type OrderPayload struct {
	OutOrderNo  string     `json:"out_order_no"`
	OrderID     string     `json:"order_id,omitempty"`
	AppID       string     `json:"app_id"`
	Status      string     `json:"status"`
	TotalAmount int64      `json:"total_amount"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
	CPSShare    int64      `json:"cps_share"`
}

// RefundPayload is the resource of refund.* events.
type RefundPayload struct {
	OutOrderNo  string `json:"out_order_no"`
	Key         string `json:"key"`
	OutRefundNo string `json:"out_refund_no"`
	RefundNo    string `json:"refund_no,omitempty"`
	Amount      int64  `json:"amount"`
	Attempt     int    `json:"attempt"`
	Phase       string `json:"phase"`
	AllSettle   bool   `json:"all_settle"`
	ErrNo       int    `json:"err_no,omitempty"`
	ErrTips     string `json:"err_tips,omitempty"`
	Reason      string `json:"park_reason,omitempty"`
}

// SettlementPayload is the resource of settlement.* events.
type SettlementPayload struct {
	OutOrderNo  string          `json:"out_order_no"`
	OutSettleNo string          `json:"out_settle_no"`
	SettleNo    string          `json:"settle_no,omitempty"`
	Amount      int64           `json:"amount"`
	Attempt     int             `json:"attempt"`
	Phase       string          `json:"phase"`
	Receivers   json.RawMessage `json:"receivers,omitempty"`
	ErrNo       int             `json:"err_no,omitempty"`
	ErrTips     string          `json:"err_tips,omitempty"`
	Reason      string          `json:"park_reason,omitempty"`
}

func orderEvent(t state.EventType, o *state.Order) state.NewEvent {
	return state.NewEvent{Type: t, AppID: o.AppID, OutOrderNo: o.OutOrderNo, Payload: OrderPayload{
		OutOrderNo: o.OutOrderNo, OrderID: o.OrderID, AppID: o.AppID, Status: string(o.Status),
		TotalAmount: o.TotalAmount, PaidAt: o.PaidAt, CPSShare: o.CPSShare,
	}}
}

func refundEvent(t state.EventType, v *state.OrderView, rf *state.Refund) state.NewEvent {
	return state.NewEvent{Type: t, AppID: v.Order.AppID, OutOrderNo: v.Order.OutOrderNo, Payload: RefundPayload{
		OutOrderNo: v.Order.OutOrderNo, Key: rf.Key, OutRefundNo: rf.OutRefundNo, RefundNo: rf.RefundNo,
		Amount: rf.Amount, Attempt: rf.Attempt, Phase: string(rf.Phase), AllSettle: rf.AllSettle,
		ErrNo: rf.ErrNo, ErrTips: rf.ErrTips, Reason: rf.ParkReason,
	}}
}

func settleEvent(t state.EventType, v *state.OrderView, st *state.Settlement) state.NewEvent {
	p := SettlementPayload{
		OutOrderNo: v.Order.OutOrderNo, OutSettleNo: st.OutSettleNo, SettleNo: st.SettleNo,
		Amount: st.Amount, Attempt: st.Attempt, Phase: string(st.Phase),
		ErrNo: st.ErrNo, ErrTips: st.ErrTips, Reason: st.ParkReason,
	}
	if st.Receivers != "" {
		p.Receivers = json.RawMessage(st.Receivers)
	}
	return state.NewEvent{Type: t, AppID: v.Order.AppID, OutOrderNo: v.Order.OutOrderNo, Payload: p}
}
