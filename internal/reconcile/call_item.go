package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// The calls on refunds and settlements follow one protocol: persist the
// intent (submitting, with the attempt's number), call, then record the
// attempt row and what Decide made of the answer in one transaction.

// submitRefund persists the intent, sends create_refund, records the answer.
func (r *Reconciler) submitRefund(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	rf, err := findRefund(v, a.RefundID)
	if err != nil {
		return ActionResult{}, err
	}
	rf.Phase = state.PhaseSubmitting
	rf.API = r.policy.App(v.Order.AppID).API // a new attempt goes through the app's API now
	rf.AllSettle = a.AfterSettlement
	rf.Checks = 0
	rf.NextActionAt = r.jittered(r.clock.Now(), r.policy.Poll, 0)
	if err := r.store.InTx(ctx, func(tx *state.Store) error { return tx.UpdateRefund(ctx, rf, state.PhasePending) }); err != nil {
		return ActionResult{}, fmt.Errorf("persist intent of refund %s: %w", rf.OutRefundNo, err)
	}
	return r.sendRefund(ctx, v, rf)
}

// sendRefund creates a refund already persisted as submitting and records
// what Douyin answered.
func (r *Reconciler) sendRefund(ctx context.Context, v *state.OrderView, rf *state.Refund) (ActionResult, error) {
	start := time.Now()
	info, err := r.dy.CreateRefund(ctx, provider.RefundRequest{
		Order: r.orderVia(v, rf.API), OutRefundNo: rf.OutRefundNo, Amount: rf.Amount, Reason: rf.Reason,
		AfterSettlement: rf.AllSettle, NotifyURL: r.policy.App(v.Order.AppID).NotifyURL,
	})
	att := attempt(v, "refund", rf.ID, provider.CallCreateRefund, rf.OutRefundNo, err, time.Since(start))
	if err == nil && info.DouyinRefundID != "" {
		rf.RefundNo = info.DouyinRefundID
	}
	out := Decide(rf.Lifecycle(), Answer{Call: provider.CallCreateRefund, Err: err}, r.clock.Now(), r.itemPolicy(r.policy.RefundAttempts, r.policy.Retry))
	return r.recordRefund(ctx, v, rf, att, out)
}

// queryRefund resolves a refund that is submitting or processing.
func (r *Reconciler) queryRefund(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	rf, err := findRefund(v, a.RefundID)
	if err != nil {
		return ActionResult{}, err
	}
	start := time.Now()
	info, err := r.dy.QueryRefund(ctx, r.orderVia(v, rf.API), provider.ItemRef{No: rf.OutRefundNo, DouyinID: rf.RefundNo})
	att := attempt(v, "refund", rf.ID, provider.CallQueryRefund, rf.OutRefundNo, err, time.Since(start))
	ans := Answer{Call: provider.CallQueryRefund, Err: err}
	if err == nil {
		ans.Status, ans.Message = info.Status, info.Message
		if info.DouyinRefundID != "" {
			rf.RefundNo = info.DouyinRefundID
		}
		observeAudit(rf, info.Audit)
	}
	out := Decide(rf.Lifecycle(), ans, r.clock.Now(), r.itemPolicy(refundAttempts(rf, r.policy.RefundAttempts), r.policy.Retry))
	if out.Item.Phase == state.PhaseParked && rf.AuditPhase == state.AuditSent && rf.AuditDecision == state.AuditDeny {
		out.Item.ParkReason = fmt.Sprintf("denied at the merchant's audit (by %s): %s", rf.AuditBy, orText(rf.AuditMessage, ans.Message))
	}
	if out.Resend {
		return r.resend(ctx, att, func() (ActionResult, error) { return r.sendRefund(ctx, v, rf) })
	}
	return r.recordRefund(ctx, v, rf, att, out)
}

// recordRefund applies out to rf and stores it with the attempt row and
// the events out reports.
func (r *Reconciler) recordRefund(ctx context.Context, v *state.OrderView, rf *state.Refund, att *state.Attempt, out Outcome) (ActionResult, error) {
	from, failed := rf.Phase, *rf // a failed attempt is reported as that attempt
	failed.ErrNo, failed.ErrTips = out.Item.ErrNo, out.Item.ErrTips
	rf.SetLifecycle(out.Item)
	var events []state.NewEvent
	for _, c := range out.Events {
		item := rf
		if c == AttemptFailed {
			item = &failed
		}
		events = append(events, refundEvent(c, v, item))
	}
	res := ActionResult{Outcome: att.Outcome, ErrNo: att.ErrNo, Parked: parkedBy(out)}
	answered(ctx, v, rf, nil)
	return res, r.save(keep(ctx), att, func(tx *state.Store) error { return tx.UpdateRefund(keep(ctx), rf, from, events...) })
}

// submitSettle persists the intent, sends settle, records the answer.
func (r *Reconciler) submitSettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st, err := findSettlement(v, a.SettlementID)
	if err != nil {
		return ActionResult{}, err
	}
	st.Phase = state.PhaseSubmitting
	st.API = r.policy.App(v.Order.AppID).API // a new attempt goes through the app's API now
	st.Amount = a.Amount
	st.Checks = 0
	st.NextActionAt = r.jittered(r.clock.Now(), r.policy.Poll, 0)
	if err := r.store.InTx(ctx, func(tx *state.Store) error { return tx.UpdateSettlement(ctx, &st, state.PhasePending) }); err != nil {
		return ActionResult{}, fmt.Errorf("persist intent of settlement %s: %w", st.OutSettleNo, err)
	}
	return r.sendSettle(ctx, v, &st)
}

// sendSettle creates a settlement already persisted as submitting and
// records what Douyin answered.
func (r *Reconciler) sendSettle(ctx context.Context, v *state.OrderView, st *state.Settlement) (ActionResult, error) {
	receivers, err := st.ReceiverList()
	if err != nil {
		return ActionResult{}, err
	}
	req := provider.SettleRequest{
		Order: r.orderVia(v, st.API), OutSettleNo: st.OutSettleNo, Amount: st.Amount, ItemOrderID: st.ItemOrderID,
		Desc: settleDesc(st, r.policy.App(v.Order.AppID)), NotifyURL: r.policy.App(v.Order.AppID).NotifyURL,
	}
	for _, rc := range receivers {
		req.Receivers = append(req.Receivers, provider.Receiver{MerchantUID: rc.MerchantUID, Amount: rc.Amount})
	}
	start := time.Now()
	info, err := r.dy.CreateSettle(ctx, req)
	att := attempt(v, "settlement", st.ID, provider.CallCreateSettle, st.OutSettleNo, err, time.Since(start))
	if err == nil && info.DouyinSettleID != "" {
		st.SettleNo = info.DouyinSettleID
	}
	out := Decide(st.Lifecycle(), Answer{Call: provider.CallCreateSettle, Err: err}, r.clock.Now(), r.itemPolicy(r.policy.SettleAttempts, r.policy.SettleRetry))
	return r.recordSettle(ctx, v, st, att, out)
}

// settleDesc is the settlement's settle_desc: its own, the app's, or payd's.
func settleDesc(st *state.Settlement, app AppPolicy) string {
	return orText(st.Desc, orText(app.SettleDesc, DefaultApp.SettleDesc))
}

// querySettle resolves a settlement that is submitting or processing.
func (r *Reconciler) querySettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st, err := findSettlement(v, a.SettlementID)
	if err != nil {
		return ActionResult{}, err
	}
	ref := provider.ItemRef{No: st.OutSettleNo, DouyinID: st.SettleNo}
	if st.Source == state.SettleByDouyin {
		ref.ByOrder, ref.ItemOrderID = true, st.ItemOrderID
	}
	start := time.Now()
	info, err := r.dy.QuerySettle(ctx, r.orderVia(v, st.API), ref)
	att := attempt(v, "settlement", st.ID, provider.CallQuerySettle, st.OutSettleNo, err, time.Since(start))
	ans := Answer{Call: provider.CallQuerySettle, Err: err}
	var adopted []state.NewEvent
	if err == nil {
		ans.Status, ans.Message = info.Status, info.Message
		if st.Source == state.SettleByDouyin && info.Status == provider.StatusFail {
			// Douyin's own settlement failed: payd sends none; it keeps
			// looking for the one Douyin makes next.
			ans.Status = provider.StatusProcessing
		}
		if st.Source == state.SettleByDouyin && st.SettleNo == "" && info.DouyinSettleID != "" {
			st.SettleNo = info.DouyinSettleID
			adopted = append(adopted, state.AdoptedEvent(&v.Order, &st))
		}
		if info.DouyinSettleID != "" {
			st.SettleNo = info.DouyinSettleID
		}
		if info.Status == provider.StatusSuccess && info.Amount > 0 {
			st.Amount = info.Amount
		}
	}
	now := r.clock.Now()
	out := Decide(st.Lifecycle(), ans, now, r.itemPolicy(r.policy.SettleAttempts, r.policy.SettleRetry))
	if w := periodWarning(out, v.Order.PaidAt, now, r.policy.App(v.Order.AppID).SettlePeriod); w != "" {
		out.Item.ErrTips += "; " + w
		if out.Item.Phase == state.PhaseParked {
			out.Item.ParkReason += "; " + w
		}
		r.warnPeriod(v.Order.AppID, w)
	}
	if out.Resend {
		return r.resend(ctx, att, func() (ActionResult, error) { return r.sendSettle(ctx, v, &st) })
	}
	return r.recordSettle(ctx, v, &st, att, out, adopted...)
}

// recordSettle applies out to st and stores it with the attempt row and
// the events out reports.
func (r *Reconciler) recordSettle(ctx context.Context, v *state.OrderView, st *state.Settlement, att *state.Attempt, out Outcome, events ...state.NewEvent) (ActionResult, error) {
	from, failed := st.Phase, *st // a failed attempt is reported as that attempt
	failed.ErrNo, failed.ErrTips = out.Item.ErrNo, out.Item.ErrTips
	st.SetLifecycle(out.Item, v.Order.AppID, v.Order.OutOrderNo)
	if out.Adopt {
		st.Source = state.SettleByDouyin
	}
	for _, c := range out.Events {
		item := st
		if c == AttemptFailed {
			item = &failed
		}
		events = append(events, settleEvent(c, v, item))
	}
	res := ActionResult{Outcome: att.Outcome, ErrNo: att.ErrNo, Parked: parkedBy(out)}
	answered(ctx, v, nil, st)
	return res, r.save(keep(ctx), att, func(tx *state.Store) error {
		if out.Adopt {
			if err := tx.MarkSettledByDouyin(keep(ctx), v.Order.AppID, fmt.Sprintf("err_no %d: %s", att.ErrNo, att.ErrTips), r.clock.Now()); err != nil {
				return err
			}
		}
		return tx.UpdateSettlement(keep(ctx), st, from, events...)
	})
}

// resend records the query that proved a write never happened, then sends
// the same number again.
func (r *Reconciler) resend(ctx context.Context, att *state.Attempt, send func() (ActionResult, error)) (ActionResult, error) {
	if err := r.save(keep(ctx), att, nil); err != nil {
		return ActionResult{Outcome: att.Outcome, ErrNo: att.ErrNo}, err
	}
	res, err := send()
	res.Outcome = att.Outcome + "+" + res.Outcome
	return res, err
}

// itemPolicy is Decide's policy for an item that may use attempts numbers
// and waits retry after a FAIL (the policy's Retry when empty).
func (r *Reconciler) itemPolicy(attempts int, retry []time.Duration) ItemPolicy {
	if len(retry) == 0 {
		retry = r.policy.Retry
	}
	return ItemPolicy{Attempts: attempts, Retry: retry, Poll: r.policy.Poll, Jitter: r.policy.Jitter, Draw: r.rand()}
}

// parkedBy is the park reason when out parks its item, else "".
func parkedBy(out Outcome) string {
	if out.Item.Phase == state.PhaseParked {
		return out.Item.ParkReason
	}
	return ""
}

// douyinMinPeriod is the shortest withdrawal period Douyin documents (T+7).
const douyinMinPeriod = 7 * 24 * time.Hour

// periodWarning says, when a settlement attempt FAILed before paid_at +
// T+7, that the app's settle_period may be shorter than Douyin's: the
// likeliest cause, which retries will not cure.
func periodWarning(out Outcome, paidAt *time.Time, now time.Time, period time.Duration) string {
	failed := false
	for _, c := range out.Events {
		failed = failed || c == AttemptFailed
	}
	if !failed || paidAt == nil || !now.Before(paidAt.Add(douyinMinPeriod)) {
		return ""
	}
	return fmt.Sprintf("FAILed %s after payment, before T+7: the app's settle_period (%s) may be shorter than Douyin's",
		fmtPeriod(now.Sub(*paidAt).Truncate(time.Minute)), fmtPeriod(period))
}

// warnPeriod logs a period warning once per app and process.
func (r *Reconciler) warnPeriod(appID, warning string) {
	if _, seen := r.warned.LoadOrStore(appID, true); !seen {
		r.log.WithField(logkey.App, appID).Warn(warning)
	}
}
