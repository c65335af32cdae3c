package reconcile

import (
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

// TestPlan_SettleRules: where a pending settlement's due time comes from
// under each rule, and what Waits says it waits for.
func TestPlan_SettleRules(t *testing.T) {
	day := 24 * time.Hour
	payment := AppPolicy{SettlePeriod: 7 * day}
	fulfilment := AppPolicy{SettlePeriod: 7 * day, Rule: RuleFulfilment, CPSFulfilment: true}
	fulfilled := func(item string, at time.Time) state.Fulfilment {
		return state.Fulfilment{OrderID: 1, ItemOrderID: item, FulfilledAt: at}
	}
	withItems := func(o state.Order) state.Order {
		o.SetItems([]state.ItemOrder{{ID: "i1", Amount: 400}, {ID: "i2", Amount: 600}})
		return o
	}
	cps := paidOrder()
	cps.CPSShare = 100
	tests := []struct {
		name      string
		app       AppPolicy
		order     state.Order
		fulfils   []state.Fulfilment
		refunds   []state.Refund
		item      string
		byDouyin  bool   // the app is marked settled by Douyin (23117)
		want      string // kinds of the actions
		wantWait  WaitFor
		wantUntil time.Time // zero: no Until
	}{
		{name: "payment rule: paid + 7d", app: payment, order: paidOrder(), want: "settle@later", wantWait: WaitPeriod, wantUntil: t0.Add(7 * day)},
		{name: "fulfilment rule, not fulfilled: no action, waits", app: fulfilment, order: paidOrder(), want: "", wantWait: WaitFulfilment},
		{name: "fulfilment rule: fulfilled + 7d", app: fulfilment, order: paidOrder(), fulfils: []state.Fulfilment{fulfilled("", t0.Add(2*day))},
			want: "settle@later", wantWait: WaitPeriod, wantUntil: t0.Add(9 * day)},
		{name: "fulfilment rule, due: settle now", app: fulfilment, order: paidOrder(), fulfils: []state.Fulfilment{fulfilled("", t0.Add(-8*day))},
			want: "settle"},
		{name: "one item of two fulfilled: waits", app: fulfilment, order: withItems(paidOrder()), fulfils: []state.Fulfilment{fulfilled("i1", t0)},
			want: "", wantWait: WaitFulfilment},
		{name: "every item fulfilled: the last one + 7d", app: fulfilment, order: withItems(paidOrder()),
			fulfils: []state.Fulfilment{fulfilled("i1", t0), fulfilled("i2", t0.Add(day))}, want: "settle@later", wantWait: WaitPeriod, wantUntil: t0.Add(8 * day)},
		{name: "item settlement: its item's fulfilment", app: fulfilment, order: withItems(paidOrder()), item: "i2",
			fulfils: []state.Fulfilment{fulfilled("i2", t0.Add(day))}, want: "settle@later", wantWait: WaitPeriod, wantUntil: t0.Add(8 * day)},
		{name: "item settlement: the whole order's fulfilment counts", app: fulfilment, order: withItems(paidOrder()), item: "i2",
			fulfils: []state.Fulfilment{fulfilled("", t0)}, want: "settle@later", wantWait: WaitPeriod, wantUntil: t0.Add(7 * day)},
		{name: "CPS order on a payment app: fulfilment + 3d", app: AppPolicy{SettlePeriod: 7 * day, CPSFulfilment: true}, order: cps,
			fulfils: []state.Fulfilment{fulfilled("", t0)}, want: "settle@later", wantWait: WaitPeriod, wantUntil: t0.Add(3 * day)},
		{name: "CPS order, not fulfilled: waits", app: AppPolicy{SettlePeriod: 7 * day, CPSFulfilment: true}, order: cps, want: "", wantWait: WaitFulfilment},
		{name: "CPS order of an ecpay app: payment rule", app: payment, order: cps, want: "settle@later", wantWait: WaitPeriod, wantUntil: t0.Add(7 * day)},
		{name: "fully refunded: skip without fulfilment", app: fulfilment, order: paidOrder(), refunds: []state.Refund{refund(1, "r1", 1000, state.PhaseSucceeded)},
			want: "skip_settlement"},
		{name: "refund open: waits for refunds", app: fulfilment, order: paidOrder(), refunds: []state.Refund{refund(1, "r1", 100, state.PhaseProcessing)},
			want: "query_refund", wantWait: WaitRefunds},
		{name: "item settlement on a payment-rule app: parked", app: payment, order: withItems(paidOrder()), item: "i1", want: "park_settlement"},
		{name: "item settlement due: the item's amount", app: fulfilment, order: withItems(paidOrder()), item: "i1",
			fulfils: []state.Fulfilment{fulfilled("i1", t0.Add(-8*day))}, want: "settle"},
		{name: "item settlement of an item the order lacks: parked", app: fulfilment, order: withItems(paidOrder()), item: "i9",
			fulfils: []state.Fulfilment{fulfilled("", t0.Add(-8*day))}, want: "park_settlement"},
		{name: "item settlement, items not known yet: Douyin judges the id", app: fulfilment, order: paidOrder(), item: "i9",
			fulfils: []state.Fulfilment{fulfilled("i9", t0.Add(-8*day))}, want: "settle"},
		{name: "app marked settled by Douyin: observe, never settle", app: payment, order: paidOrder(), byDouyin: true, want: "observe_settlement"},
		{name: "app settled_by douyin: observe", app: AppPolicy{SettlePeriod: 7 * day, SettledByDouyin: true}, order: paidOrder(), want: "observe_settlement"},
		{name: "order not paid yet: waits for payment", app: fulfilment, order: state.Order{ID: 1, OutOrderNo: "o1", Status: state.OrderUnknown},
			want: "query_order", wantWait: WaitPayment},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := settlement(state.PhasePending)
			st.ItemOrderID = tc.item
			p := DefaultPolicy()
			p.Apps = map[string]AppPolicy{"tt1": tc.app}
			tc.order.AppID = "tt1"
			v := state.OrderView{Order: tc.order, Settlement: st, Fulfilments: tc.fulfils, Refunds: tc.refunds, AppSettledByDouyin: tc.byDouyin}
			acts := Plan(v, t0, p)
			if got := kinds(acts); got != tc.want {
				t.Fatalf("plan %q, want %q", got, tc.want)
			}
			if tc.want == "settle" && tc.item == "i1" && acts[0].Amount != 400 {
				t.Fatalf("item settlement amount %d, want the item's 400", acts[0].Amount)
			}
			waits := Waits(v, t0, p)
			if tc.wantWait == "" {
				if len(waits) != 0 {
					t.Fatalf("waits %+v, want none", waits)
				}
				return
			}
			if len(waits) != 1 || waits[0].For != tc.wantWait || waits[0].MerchantNo != "st-1" || waits[0].Reason == "" {
				t.Fatalf("waits %+v, want one for %s", waits, tc.wantWait)
			}
			if got := waits[0].Until; (got == nil) != tc.wantUntil.IsZero() || (got != nil && !got.Equal(tc.wantUntil)) {
				t.Fatalf("until %v, want %v", got, tc.wantUntil)
			}
		})
	}
}

// TestPlan_ObservedSettlement: a settlement Douyin makes is only queried,
// even when a FAIL sent it back to pending.
func TestPlan_ObservedSettlement(t *testing.T) {
	p := DefaultPolicy()
	for _, tc := range []struct {
		phase state.Phase
		want  string
	}{{state.PhaseProcessing, "query_settle"}, {state.PhasePending, "observe_settlement"}} {
		st := settlement(tc.phase)
		st.Source = state.SettleByDouyin
		acts := Plan(state.OrderView{Order: paidOrder(), Settlement: st}, t0, p)
		if got := kinds(acts); got != tc.want {
			t.Errorf("%s: plan %q, want %q", tc.phase, got, tc.want)
		}
	}
}
