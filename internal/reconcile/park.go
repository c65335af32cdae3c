package reconcile

import (
	"context"
	"time"

	"github.com/payd/payd/internal/state"
)

// The actions that need no call: waitRoom a wish that can never be carried
// out as declared, and completing a settlement with nothing left to settle.

func (r *Reconciler) parkRefund(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	rf, err := findRefund(v, a.RefundID)
	if err != nil {
		return ActionResult{}, err
	}
	from := rf.Phase
	rf.SetLifecycle(parked(rf.Lifecycle(), a.Reason, r.clock.Now()))
	return ActionResult{Outcome: "local"}, r.store.InTx(ctx, func(tx *state.Store) error { return tx.UpdateRefund(ctx, rf, from, refundEvent(Parked, v, rf)) })
}

func (r *Reconciler) parkSettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st, err := findSettlement(v, a.SettlementID)
	if err != nil {
		return ActionResult{}, err
	}
	from := st.Phase
	st.SetLifecycle(parked(st.Lifecycle(), a.Reason, r.clock.Now()), v.Order.AppID, v.Order.OutOrderNo)
	return ActionResult{Outcome: "local"}, r.store.InTx(ctx, func(tx *state.Store) error { return tx.UpdateSettlement(ctx, &st, from, settleEvent(Parked, v, &st)) })
}

func (r *Reconciler) skipSettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st, err := findSettlement(v, a.SettlementID)
	if err != nil {
		return ActionResult{}, err
	}
	from := st.Phase
	l := parked(st.Lifecycle(), a.Reason, r.clock.Now())
	l.Phase = state.PhaseSucceeded
	st.SetLifecycle(l, v.Order.AppID, v.Order.OutOrderNo)
	st.Amount = 0
	return ActionResult{Outcome: "local"}, r.store.InTx(ctx, func(tx *state.Store) error {
		return tx.UpdateSettlement(ctx, &st, from, settleEvent(Succeeded, v, &st))
	})
}

// parked is l parked now for reason.
func parked(l state.Lifecycle, reason string, now time.Time) state.Lifecycle {
	l.Phase, l.ParkReason, l.NextActionAt, l.DoneAt = state.PhaseParked, reason, nil, &now
	return l
}

// observeSettle turns a pending settlement of an app Douyin settles
// itself into an observed one: processing, found at Douyin by the order.
func (r *Reconciler) observeSettle(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	st, err := findSettlement(v, a.SettlementID)
	if err != nil {
		return ActionResult{}, err
	}
	now := r.clock.Now()
	l := st.Lifecycle()
	l.Phase, l.NextActionAt, l.Checks = state.PhaseProcessing, &now, 0
	st.SetLifecycle(l, v.Order.AppID, v.Order.OutOrderNo)
	st.Source = state.SettleByDouyin
	return ActionResult{Outcome: "local"}, r.store.InTx(ctx, func(tx *state.Store) error { return tx.UpdateSettlement(ctx, &st, state.PhasePending) })
}
