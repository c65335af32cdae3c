package api

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// FromOrder is the public shape of an order row.
func FromOrder(o state.Order) Order {
	return Order{
		AppID: o.AppID, OutOrderNo: o.OutOrderNo, DouyinOrderID: o.DouyinOrderID, TotalAmount: o.TotalAmount,
		Status: string(o.Status), PaidAt: o.PaidAt, CPSShare: o.CPSShare, CPSKnown: o.CPSKnown, PayChannel: o.PayChannel,
		SettleAfter: o.SettleAfter, NextActionAt: o.NextActionAt, CheckedAt: o.CheckedAt,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}
}

// FromRefund is the public shape of a refund row of order (appID,
// outOrderNo); both may be "" when the context names the order.
func FromRefund(r state.Refund, appID, outOrderNo string) Refund {
	var audit *RefundAudit
	if r.AuditPhase != state.AuditNone {
		audit = &RefundAudit{Phase: string(r.AuditPhase), Deadline: r.AuditDeadline, Decision: string(r.AuditDecision), Message: r.AuditMessage, By: r.AuditBy}
	}
	return Refund{
		Audit: audit,
		Key:   r.Key, AppID: appID, OutOrderNo: outOrderNo, Amount: r.Amount, Reason: r.Reason,
		Phase: string(r.Phase), Attempt: r.Attempt, OutRefundNo: r.OutRefundNo, RefundNo: r.RefundNo,
		AllSettle: r.AllSettle, Source: string(r.Source), NextActionAt: r.NextActionAt, ErrNo: r.ErrNo, ErrTips: r.ErrTips,
		ParkReason: r.ParkReason, DoneAt: r.DoneAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// FromSettlement is the public shape of a settlement row; its receivers
// become a JSON array (an unreadable column gives none).
func FromSettlement(s state.Settlement, appID, outOrderNo string) Settlement {
	receivers := []Receiver{}
	if s.Receivers != "" {
		var rs []state.Receiver
		if err := json.Unmarshal([]byte(s.Receivers), &rs); err == nil {
			for _, r := range rs {
				receivers = append(receivers, Receiver{MerchantUID: r.MerchantUID, Amount: r.Amount})
			}
		}
	}
	return Settlement{
		AppID: appID, OutOrderNo: outOrderNo, OutSettleNo: s.OutSettleNo, ItemOrderID: s.ItemOrderID, SettleNo: s.SettleNo, DueAt: s.DueAt,
		Receivers: receivers, Desc: s.Desc, Auto: s.Auto, Phase: string(s.Phase), Attempt: s.Attempt,
		Amount: s.Amount, NextActionAt: s.NextActionAt, ErrNo: s.ErrNo, ErrTips: s.ErrTips,
		ParkReason: s.ParkReason, DoneAt: s.DoneAt, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// FromEvent is the public shape of an outbox event.
func FromEvent(e state.Event) Event {
	data := json.RawMessage(e.Payload)
	if !json.Valid(data) {
		data = json.RawMessage("null")
	}
	return Event{ID: e.ID, Seq: e.Seq, Type: string(e.Type), AppID: e.AppID, OutOrderNo: e.OutOrderNo, Data: data, CreatedAt: e.CreatedAt}
}

// FromActions is the public shape of the actions planned for an order.
func FromActions(o state.Order, acts []reconcile.Action) []Action {
	out := make([]Action, 0, len(acts))
	for _, a := range acts {
		out = append(out, Action{OutOrderNo: o.OutOrderNo, AppID: o.AppID, Action: string(a.Kind), Target: a.MerchantNo, Amount: a.Amount, At: a.At, Reason: a.Reason})
	}
	return out
}

// FromHistory is the public shape of an order's history with its plan.
func FromHistory(h *state.History, plan []reconcile.Action) OrderDetail {
	o := h.Order
	d := OrderDetail{
		Order: FromOrder(o), Refunds: make([]Refund, 0, len(h.Refunds)), Calls: make([]Call, 0, len(h.Attempts)),
		Callbacks: make([]Callback, 0, len(h.Callbacks)), Events: make([]Event, 0, len(h.Events)), Plan: FromActions(o, plan),
	}
	for _, r := range h.Refunds {
		d.Refunds = append(d.Refunds, FromRefund(r, "", ""))
	}
	if h.Settlement != nil {
		s := FromSettlement(*h.Settlement, "", "")
		d.Settlement = &s
	}
	d.ItemSettlements, d.Fulfilments = []Settlement{}, []Fulfilment{}
	for _, st := range h.ItemSettlements {
		d.ItemSettlements = append(d.ItemSettlements, FromSettlement(st, "", ""))
	}
	for _, f := range h.Fulfilments {
		d.Fulfilments = append(d.Fulfilments, FromFulfilment(f, "", ""))
	}
	for _, a := range h.Attempts {
		d.Calls = append(d.Calls, Call{API: a.API, Resource: a.Resource, MerchantNo: a.MerchantNo, ErrNo: a.ErrNo,
			ErrTips: a.ErrTips, Outcome: a.Outcome, LatencyMS: a.LatencyMS, At: a.CreatedAt})
	}
	for _, c := range h.Callbacks {
		d.Callbacks = append(d.Callbacks, Callback{Type: c.Type, SubjectNo: c.SubjectNo, ReceivedAt: c.ReceivedAt})
	}
	for _, e := range h.Events {
		d.Events = append(d.Events, FromEvent(e))
	}
	return d
}

// FixCommand is the command that puts a parked item back to work once its
// cause is fixed.
func FixCommand(p state.ParkedItem) string {
	if p.Kind == "refund" {
		return "payd retry refund " + p.Key
	}
	if p.ItemOrderID != "" {
		return fmt.Sprintf("payd retry settlement %s --item %s --app %s", p.OutOrderNo, p.ItemOrderID, p.AppID)
	}
	return fmt.Sprintf("payd retry settlement %s --app %s", p.OutOrderNo, p.AppID)
}

// FromParked is the public shape of parked items.
func FromParked(items []state.ParkedItem) []Parked {
	out := make([]Parked, 0, len(items))
	for _, p := range items {
		out = append(out, Parked{Kind: p.Kind, AppID: p.AppID, OutOrderNo: p.OutOrderNo, Key: p.Key, ItemOrderID: p.ItemOrderID, Number: p.Number,
			Amount: p.Amount, Reason: p.Reason, Fix: FixCommand(p), At: p.At})
	}
	return out
}

// FromPlan is the public shape of a plan report and the parked items.
func FromPlan(rep *reconcile.PlanReport, parked []state.ParkedItem) PlanReport {
	conv := func(as []reconcile.PlannedAction) []Action {
		out := make([]Action, 0, len(as))
		for _, a := range as {
			out = append(out, Action{OutOrderNo: a.Order, AppID: a.AppID, Action: string(a.Kind), Target: a.Target, Amount: a.Amount, At: a.At, Reason: a.Reason})
		}
		return out
	}
	waits := make([]Wait, 0, len(rep.Waiting))
	for _, w := range rep.Waiting {
		waits = append(waits, Wait{OutOrderNo: w.Order, AppID: w.AppID, Target: w.Target, ItemOrderID: w.ItemOrderID,
			WaitsFor: string(w.For), Until: w.Until, Reason: w.Reason})
	}
	return PlanReport{Now: rep.Now, Due: conv(rep.Due), Later: conv(rep.Later), Parked: FromParked(parked), Waiting: waits, Truncated: rep.Truncated}
}

// Changes reports whether anything is due now or parked: plan's exit 2.
func (r PlanReport) Changes() bool { return len(r.Due) > 0 || len(r.Parked) > 0 }

// FromSummary is the public shape of a store summary, counts in
// state-machine order, apps by app_id.
func FromSummary(s *state.Summary) Summary {
	out := Summary{SettledAmount: s.SettledAmount, Events: s.Events, Apps: []AppSummary{}}
	out.Orders, out.Refunds, out.Settlements = counts(s.Orders, s.Refunds, s.RefundAmount, s.Settlements, s.SettlementAmount)
	for _, id := range sortedApps(s.Apps) {
		a := s.Apps[id]
		as := AppSummary{AppID: id, SettledAmount: a.SettlementAmount[state.PhaseSucceeded]}
		as.Orders, as.Refunds, as.Settlements = counts(a.Orders, a.Refunds, a.RefundAmount, a.Settlements, a.SettlementAmount)
		out.Apps = append(out.Apps, as)
	}
	return out
}

// counts lists orders by status and refunds and settlements by phase, with
// their sums, in state-machine order; what is zero is left out.
func counts(orders map[state.OrderStatus]int64, refunds, refunded, settlements, settled map[state.Phase]int64) (os, rs, ss []Count) {
	os, rs, ss = []Count{}, []Count{}, []Count{}
	for _, st := range allStatuses(orders) {
		if n := orders[st]; n > 0 {
			os = append(os, Count{Status: string(st), Count: n})
		}
	}
	for _, p := range allPhases(refunds, settlements) {
		if n := refunds[p]; n > 0 {
			rs = append(rs, Count{Phase: string(p), Count: n, Amount: refunded[p]})
		}
		if n := settlements[p]; n > 0 {
			ss = append(ss, Count{Phase: string(p), Count: n, Amount: settled[p]})
		}
	}
	return os, rs, ss
}

// allStatuses is the order statuses in their lifecycle's order, followed by
// any other status m holds (one a newer binary wrote), sorted.
func allStatuses(m map[state.OrderStatus]int64) []state.OrderStatus {
	out := []state.OrderStatus{state.OrderUnknown, state.OrderProcessing, state.OrderSuccess, state.OrderFail, state.OrderTimeout, state.OrderNotFound}
	known := map[state.OrderStatus]bool{}
	for _, st := range out {
		known[st] = true
	}
	var other []state.OrderStatus
	for st := range m {
		if !known[st] {
			other = append(other, st)
		}
	}
	sort.Slice(other, func(i, j int) bool { return other[i] < other[j] })
	return append(out, other...)
}

// sortedApps is the app_ids of m, sorted.
func sortedApps(m map[string]*state.AppSummary) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// allPhases is state.Phases and PhaseCancelled followed by any other
// phase the maps hold (one a newer binary wrote), sorted, so nothing
// counted is dropped.
func allPhases(ms ...map[state.Phase]int64) []state.Phase {
	ps := state.ListedPhases()
	known := map[state.Phase]bool{}
	for _, p := range ps {
		known[p] = true
	}
	var other []state.Phase
	for _, m := range ms {
		for p := range m {
			if !known[p] {
				known[p] = true
				other = append(other, p)
			}
		}
	}
	sort.Slice(other, func(i, j int) bool { return other[i] < other[j] })
	return append(ps, other...)
}

// FromDeliveries is the public shape of event deliveries.
func FromDeliveries(ds []state.Delivery) Deliveries {
	out := Deliveries{Deliveries: make([]Delivery, 0, len(ds))}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, Delivery{
			Endpoint: d.Endpoint, EventSeq: d.EventSeq, EventID: d.EventID, EventType: string(d.EventType),
			AppID: d.AppID, OutOrderNo: d.OutOrderNo, Status: string(d.Status), Attempts: d.Attempts,
			NextAttemptAt: d.NextAttemptAt, LastStatus: d.LastStatus, LastError: d.LastError, LatencyMS: d.LatencyMS,
			DeliveredAt: d.DeliveredAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		})
	}
	return out
}

// FromFulfilment is the public shape of a fulfilment of order no of appID.
func FromFulfilment(f state.Fulfilment, appID, no string) Fulfilment {
	return Fulfilment{AppID: appID, OutOrderNo: no, ItemOrderID: f.ItemOrderID, FulfilledAt: f.FulfilledAt}
}
