package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/state"
	"github.com/sirupsen/logrus"
)

// apply runs one action against Douyin and records its result.
func (r *Reconciler) apply(ctx context.Context, v *state.OrderView, a Action, ps *PassStats) error {
	ps.Actions[a.Kind]++
	var res ActionResult
	var err error
	switch a.Kind {
	case KindQueryOrder:
		res, err = r.queryOrder(ctx, v)
	case KindSubmitRefund:
		res, err = r.submitRefund(ctx, v, a)
	case KindQueryRefund:
		res, err = r.queryRefund(ctx, v, a)
	case KindSubmitSettle:
		res, err = r.submitSettle(ctx, v, a)
	case KindQuerySettle:
		res, err = r.querySettle(ctx, v, a)
	case KindParkRefund:
		res, err = r.parkRefund(ctx, v, a)
		res.Parked = a.Reason
	case KindParkSettle:
		res, err = r.parkSettle(ctx, v, a)
		res.Parked = a.Reason
	case KindSkipSettle:
		res, err = r.skipSettle(ctx, v, a)
	case KindObserveSettle:
		res, err = r.observeSettle(ctx, v, a)
	case KindAuditRefund:
		res, err = r.auditRefund(ctx, v, a)
	case KindAwaitAudit:
		res = ActionResult{Outcome: "local"} // never due: a person decides
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	res.Action = a
	res.Order, res.App = v.Order.OutOrderNo, v.Order.AppID
	if res.Outcome != "" {
		ps.Outcomes[res.Outcome]++
	}
	if r.observe != nil {
		res.Err = err
		r.observe(res)
	}
	entry := r.log.WithFields(logrus.Fields{
		logkey.App: v.Order.AppID, logkey.Order: v.Order.OutOrderNo, logkey.Action: a.Kind,
		logkey.No: a.MerchantNo, logkey.Outcome: res.Outcome,
	})
	if res.ErrNo != 0 {
		entry = entry.WithField(logkey.ErrNo, res.ErrNo)
	}
	entry.Debug(a.Reason)
	if res.Parked != "" && err == nil {
		entry.WithField(logkey.Reason, res.Parked).Warn("parked: a person must act (payd status, then payd retry)")
	}
	if errors.Is(err, state.ErrConflict) {
		// Someone else moved the row: re-plan from what is stored now.
		return nil
	}
	return err
}

// findSettlement returns a copy of the settlement with id from the view.
func findSettlement(v *state.OrderView, id int64) (state.Settlement, error) {
	for _, st := range v.Settlements() {
		if st.ID == id {
			return *st, nil
		}
	}
	return state.Settlement{}, fmt.Errorf("settlement %d of order %s: %w", id, v.Order.OutOrderNo, state.ErrNotFound)
}

// findRefund returns the refund with id from the view.
func findRefund(v *state.OrderView, id int64) (*state.Refund, error) {
	for i := range v.Refunds {
		if v.Refunds[i].ID == id {
			r := v.Refunds[i]
			return &r, nil
		}
	}
	return nil, fmt.Errorf("refund %d of order %s: %w", id, v.Order.OutOrderNo, state.ErrNotFound)
}
