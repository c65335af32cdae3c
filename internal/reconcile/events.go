package reconcile

import (
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/webhook"
)

// The events the reconciler writes, in the same transaction as the change
// they report; their payloads are the public webhook types.
const (
	eventOrderPaid   = state.EventOrderPaid
	eventOrderClosed = state.EventOrderClosed
)

func orderEvent(t state.EventType, o *state.Order) state.NewEvent {
	return state.NewEvent{Type: t, AppID: o.AppID, OutOrderNo: o.OutOrderNo, Payload: webhook.OrderData{
		OutOrderNo: o.OutOrderNo, DouyinOrderID: o.DouyinOrderID, AppID: o.AppID, Status: string(o.Status),
		TotalAmount: o.TotalAmount, PaidAt: o.PaidAt, CPSShare: o.CPSShare,
	}}
}

// refundEvents and settleEvents name the event of each lifecycle change.
var (
	refundEvents = map[Change]state.EventType{
		Succeeded: state.EventRefundSucceeded, AttemptFailed: state.EventRefundAttemptFailed, Parked: state.EventRefundParked,
	}
	settleEvents = map[Change]state.EventType{
		Succeeded: state.EventSettlementSucceeded, AttemptFailed: state.EventSettlementAttemptFailed, Parked: state.EventSettlementParked,
	}
)

func refundEvent(c Change, v *state.OrderView, rf *state.Refund) state.NewEvent {
	return state.NewEvent{Type: refundEvents[c], AppID: v.Order.AppID, OutOrderNo: v.Order.OutOrderNo, Payload: webhook.RefundData{
		OutOrderNo: v.Order.OutOrderNo, Key: rf.Key, OutRefundNo: rf.OutRefundNo, DouyinRefundID: rf.RefundNo,
		Amount: rf.Amount, Attempt: rf.Attempt, Phase: string(rf.Phase), AfterSettlement: rf.AllSettle,
		ErrNo: rf.ErrNo, ErrTips: rf.ErrTips, ParkReason: rf.ParkReason,
	}}
}

func settleEvent(c Change, v *state.OrderView, st *state.Settlement) state.NewEvent {
	d := webhook.SettlementData{
		OutOrderNo: v.Order.OutOrderNo, OutSettleNo: st.OutSettleNo, ItemOrderID: st.ItemOrderID, DouyinSettleID: st.SettleNo,
		Amount: st.Amount, Attempt: st.Attempt, Phase: string(st.Phase),
		ErrNo: st.ErrNo, ErrTips: st.ErrTips, ParkReason: st.ParkReason,
	}
	if rs, err := st.ReceiverList(); err == nil {
		for _, rc := range rs {
			d.Receivers = append(d.Receivers, webhook.Receiver{MerchantUID: rc.MerchantUID, Amount: rc.Amount})
		}
	}
	return state.NewEvent{Type: settleEvents[c], AppID: v.Order.AppID, OutOrderNo: v.Order.OutOrderNo, Payload: d}
}
