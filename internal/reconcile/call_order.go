package reconcile

import (
	"context"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// The writes after a call use a context that is not cancelled with the
// pass: an answer Douyin gave must be recorded even during shutdown.
func keep(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// orderRef names v's order for the provider.
func orderRef(v *state.OrderView) provider.OrderRef {
	return provider.OrderRef{AppID: v.Order.AppID, OutOrderNo: v.Order.OutOrderNo, DouyinOrderID: v.Order.DouyinOrderID}
}

// orderVia names v's order for a call of an item sent under itemAPI: an
// item in flight finishes on the API it was sent under (before schema 12
// items recorded none: their order's, the API it was created under); the
// order is Migrated when it was created under ecpay and its app now
// speaks the trade system.
func (r *Reconciler) orderVia(v *state.OrderView, itemAPI string) provider.OrderRef {
	ref := orderRef(v)
	ref.API = itemAPI
	if ref.API == "" {
		ref.API = v.Order.API
	}
	ref.Migrated = v.Order.API == provider.APIEcpay && r.policy.App(v.Order.AppID).API == provider.APITrade
	return ref
}

// queryOrder learns the order's status, amount, pay time and CPS share.
func (r *Reconciler) queryOrder(ctx context.Context, v *state.OrderView) (ActionResult, error) {
	o := v.Order
	start := time.Now()
	ref := orderRef(v) // through the app's API now
	ref.Migrated = v.Order.API == provider.APIEcpay && r.policy.App(o.AppID).API == provider.APITrade
	info, err := r.dy.QueryOrder(ctx, ref)
	att := attempt(v, "order", o.ID, provider.CallQueryOrder, o.OutOrderNo, err, time.Since(start))
	res := ActionResult{Outcome: att.Outcome, ErrNo: att.ErrNo}
	now := r.clock.Now()
	var events []state.NewEvent
	class, reason := provider.Outcome(err)
	switch {
	case err == nil:
		observeOrder(&o, info, now, r.policy.App(o.AppID))
		events = orderChanged(v, &o)
		if o.Status.Final() && (o.Status != state.OrderSuccess || o.PaidAt != nil) {
			o.CheckAt = nil
			o.Checks = 0
		} else {
			// Not final, or paid without a pay time to count T+N from:
			// look again on the poll schedule, never in a tight loop.
			o.CheckAt = r.jittered(now, r.policy.Poll, o.Checks)
			o.Checks++
		}
	case class == provider.Refused && reason == provider.NotFound:
		o.Status = state.OrderNotFound
		o.CheckAt = nil
		o.CheckedAt = &now
		events = append(events, orderEvent(eventOrderClosed, &o))
	default:
		o.CheckAt = r.jittered(now, r.policy.Poll, o.Checks)
		o.Checks++
	}
	return res, r.save(keep(ctx), att, func(tx *state.Store) error { return tx.UpdateOrder(keep(ctx), &o, events...) })
}

// orderChanged returns the events of o's status change from v's, and
// schedules the settle_batch look at a newly paid order.
func orderChanged(v *state.OrderView, o *state.Order) []state.NewEvent {
	if o.Status == v.Order.Status {
		return nil
	}
	switch o.Status {
	case state.OrderSuccess:
		if len(v.Settlements()) == 0 && o.SettleAfter != nil {
			t := *o.SettleAfter
			o.AutoSettleAt = &t
		}
		return []state.NewEvent{orderEvent(eventOrderPaid, o)}
	case state.OrderFail, state.OrderTimeout:
		return []state.NewEvent{orderEvent(eventOrderClosed, o)}
	}
	return nil
}

// observeOrder copies what query_order said onto o.
func observeOrder(o *state.Order, info *provider.OrderInfo, now time.Time, app AppPolicy) {
	o.Status = state.OrderStatus(info.Status)
	if o.API == "" {
		o.API = app.API // the API the order was created under
	}
	if info.DouyinOrderID != "" {
		o.DouyinOrderID = info.DouyinOrderID
	}
	if info.TotalAmount > 0 {
		o.TotalAmount = info.TotalAmount
	}
	if info.PaidAt != nil {
		paidAt := *info.PaidAt
		o.PaidAt = &paidAt
		due := SettleDueAt(paidAt, app.SettlePeriod)
		o.SettleAfter = &due
	}
	if len(info.Items) > 0 {
		items := make([]state.ItemOrder, len(info.Items))
		for i, it := range info.Items {
			items[i] = state.ItemOrder{ID: it.ID, Amount: it.Amount}
		}
		o.SetItems(items)
	}
	if info.CPSKnown {
		o.CPSShare = info.CPSShare
		o.CPSKnown = true
	}
	if info.PayChannel != 0 {
		o.PayChannel = info.PayChannel
	}
	o.CheckedAt = &now
}
