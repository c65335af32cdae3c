package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func paidOrder() state.Order {
	return state.Order{
		ID: 1, AppID: "tt1", OutOrderNo: "o1", TotalAmount: 1000, Status: state.OrderSuccess,
		PaidAt: ptr(t0), SettleAfter: ptr(t0.Add(7 * 24 * time.Hour)), CPSKnown: true, CheckedAt: ptr(t0),
	}
}

func refund(id int64, key string, amount int64, phase state.Phase) state.Refund {
	return state.Refund{ID: id, OrderID: 1, Key: key, Amount: amount, Phase: phase, Attempt: 1, OutRefundNo: key + "-1"}
}

func settlement(phase state.Phase) *state.Settlement {
	return &state.Settlement{ID: 9, OrderID: 1, Phase: phase, Attempt: 1, OutSettleNo: "st-1"}
}

func kinds(acts []Action) string {
	var ks []string
	for _, a := range acts {
		k := string(a.Kind)
		if !a.Due(t0) {
			k += "@later"
		}
		ks = append(ks, k)
	}
	return strings.Join(ks, ",")
}

func TestPlan(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		name       string
		view       state.OrderView
		want       string
		wantReason string // a part of the first action's reason
	}{
		{
			name:       "unknown order is queried first",
			view:       state.OrderView{Order: state.Order{ID: 1, OutOrderNo: "o1", Status: state.OrderUnknown}, Refunds: []state.Refund{refund(1, "r1", 100, state.PhasePending)}},
			want:       "query_order",
			wantReason: "first query",
		},
		{
			name: "processing order waits for its poll time",
			view: state.OrderView{Order: state.Order{ID: 1, OutOrderNo: "o1", Status: state.OrderProcessing, CheckAt: ptr(t0.Add(time.Minute)), Checks: 2}},
			want: "query_order@later",
		},
		{
			name:       "paid order with a pending refund submits it",
			view:       state.OrderView{Order: paidOrder(), Refunds: []state.Refund{refund(1, "r1", 300, state.PhasePending)}},
			want:       "create_refund",
			wantReason: "submit 300 fen",
		},
		{
			name:       "submitting refund is queried before anything is resent",
			view:       state.OrderView{Order: paidOrder(), Refunds: []state.Refund{refund(1, "r1", 300, state.PhaseSubmitting)}},
			want:       "query_refund",
			wantReason: "query before any resend",
		},
		{
			name: "second attempt after a channel failure, once its back-off passed",
			view: state.OrderView{Order: paidOrder(), Refunds: []state.Refund{func() state.Refund {
				r := refund(1, "r-17", 300, state.PhasePending)
				r.Attempt, r.OutRefundNo, r.ErrTips = 2, "r-17-2", "channel failure"
				r.NextActionAt = ptr(t0.Add(-time.Second))
				return r
			}()}},
			want:       "create_refund",
			wantReason: "refund r-17 attempt 2: attempt 1 FAILED (channel failure), back-off passed",
		},
		{
			name: "refund beyond what remains is parked",
			view: state.OrderView{Order: paidOrder(), Refunds: []state.Refund{
				refund(1, "r1", 800, state.PhaseSucceeded), refund(2, "r2", 300, state.PhasePending),
			}},
			want:       "park_refund",
			wantReason: "refund 300 exceeds what remains of order o1: 200 of 1000 fen",
		},
		{
			name:       "refund of a timed-out order is parked",
			view:       state.OrderView{Order: state.Order{ID: 1, OutOrderNo: "o1", Status: state.OrderTimeout}, Refunds: []state.Refund{refund(1, "r1", 100, state.PhasePending)}},
			want:       "park_refund",
			wantReason: "order o1 is TIMEOUT at Douyin",
		},
		{
			name:       "wish on an order Douyin does not know is parked with that reason",
			view:       state.OrderView{Order: state.Order{ID: 1, OutOrderNo: "o1", Status: state.OrderNotFound}, Settlement: settlement(state.PhasePending)},
			want:       "park_settlement",
			wantReason: "Douyin does not know order o1",
		},
		{
			name: "settlement waits for T+7",
			view: state.OrderView{Order: paidOrder(), Settlement: settlement(state.PhasePending)},
			want: "settle@later",
		},
		{
			name: "settlement waits while a refund is open",
			view: state.OrderView{Order: func() state.Order { o := paidOrder(); o.SettleAfter = ptr(t0.Add(-time.Hour)); return o }(),
				Refunds: []state.Refund{refund(1, "r1", 100, state.PhaseProcessing)}, Settlement: settlement(state.PhasePending)},
			want: "query_refund",
		},
		{
			name: "due settlement settles what is left after refunds and CPS",
			view: state.OrderView{Order: func() state.Order {
				o := paidOrder()
				o.SettleAfter, o.CPSShare = ptr(t0.Add(-time.Hour)), 50
				return o
			}(), Refunds: []state.Refund{refund(1, "r1", 100, state.PhaseSucceeded)}, Settlement: settlement(state.PhasePending)},
			want:       "settle",
			wantReason: "settle 850 fen",
		},
		{
			name: "cps_info is refreshed before settling when not known",
			view: state.OrderView{Order: func() state.Order {
				o := paidOrder()
				o.SettleAfter, o.CPSKnown, o.CheckedAt = ptr(t0.Add(-time.Hour)), false, ptr(t0.Add(-2*time.Hour))
				return o
			}(), Settlement: settlement(state.PhasePending)},
			want:       "query_order",
			wantReason: "refresh the CPS share",
		},
		{
			name: "refund waits while a settlement is in flight, then goes after the settlement",
			view: state.OrderView{Order: paidOrder(), Refunds: []state.Refund{refund(1, "r1", 100, state.PhasePending)},
				Settlement: settlement(state.PhaseProcessing)},
			want: "query_settle",
		},
		{
			name: "receivers over 30% park the settlement",
			view: state.OrderView{Order: func() state.Order { o := paidOrder(); o.SettleAfter = ptr(t0.Add(-time.Hour)); return o }(),
				Settlement: func() *state.Settlement {
					s := settlement(state.PhasePending)
					s.Receivers = `[{"merchant_uid":"m1","amount":301}]`
					return s
				}()},
			want:       "park_settlement",
			wantReason: "receivers take 301 of 1000 fen: more than 30% of the order",
		},
		{
			name: "fully refunded order has nothing to settle",
			view: state.OrderView{Order: func() state.Order { o := paidOrder(); o.SettleAfter = ptr(t0.Add(-time.Hour)); return o }(),
				Refunds: []state.Refund{refund(1, "r1", 1000, state.PhaseSucceeded)}, Settlement: settlement(state.PhasePending)},
			want:       "skip_settlement",
			wantReason: "nothing left to settle",
		},
		{
			name: "converged order has nothing to do",
			view: state.OrderView{Order: paidOrder(), Refunds: []state.Refund{refund(1, "r1", 100, state.PhaseSucceeded)},
				Settlement: settlement(state.PhaseSucceeded)},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts := Plan(tt.view, t0, p)
			if got := kinds(acts); got != tt.want {
				t.Fatalf("actions = %q, want %q (%v)", got, tt.want, acts)
			}
			if tt.wantReason != "" && !strings.Contains(acts[0].Reason, tt.wantReason) {
				t.Fatalf("reason = %q, want it to contain %q", acts[0].Reason, tt.wantReason)
			}
		})
	}
}

func TestPlan_RefundAfterSettlement(t *testing.T) {
	o := paidOrder()
	st := settlement(state.PhaseSucceeded)
	st.SettleNo = "douyin-settle-1"
	acts := Plan(state.OrderView{Order: o, Refunds: []state.Refund{refund(1, "r1", 100, state.PhasePending)}, Settlement: st}, t0, DefaultPolicy())
	if len(acts) != 1 || acts[0].Kind != KindSubmitRefund || !acts[0].AfterSettlement {
		t.Fatalf("want one create_refund after the settlement, got %+v", acts)
	}
}

func TestPlan_IsPure(t *testing.T) {
	v := state.OrderView{Order: paidOrder(), Refunds: []state.Refund{refund(2, "b", 100, state.PhasePending), refund(1, "a", 100, state.PhasePending)}}
	a1 := Plan(v, t0, DefaultPolicy())
	a2 := Plan(v, t0, DefaultPolicy())
	if kinds(a1) != kinds(a2) || a1[0].MerchantNo != "a-1" {
		t.Fatalf("plans differ or not in id order: %v / %v", a1, a2)
	}
	if v.Refunds[0].ID != 2 {
		t.Fatal("Plan reordered its input")
	}
}

func TestNextAt(t *testing.T) {
	sched := []time.Duration{time.Minute, 5 * time.Minute}
	if got := NextAt(t0, sched, 0, 0, 0.9); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("no jitter: %v", got)
	}
	if got := NextAt(t0, sched, 7, 0, 0); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("last entry repeats: %v", got)
	}
	lo, hi := NextAt(t0, sched, 0, 0.2, 0), NextAt(t0, sched, 0, 0.2, 0.999999)
	if !lo.Equal(t0.Add(48*time.Second)) || hi.Before(t0.Add(71*time.Second)) || hi.After(t0.Add(72*time.Second)) {
		t.Fatalf("jitter bounds: %v %v", lo, hi)
	}
	if got := SettleDueAt(t0, 7*24*time.Hour); !got.Equal(t0.Add(168 * time.Hour)) {
		t.Fatalf("SettleDueAt: %v", got)
	}
}

func TestNextAfter(t *testing.T) {
	acts := []Action{{At: t0}, {At: t0.Add(time.Hour)}, {At: t0.Add(time.Minute)}}
	if got := NextAfter(acts, t0); got == nil || !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("NextAfter = %v", got)
	}
	if got := DueNow(acts, t0); len(got) != 1 {
		t.Fatalf("DueNow = %v", got)
	}
	if NextAfter(nil, t0) != nil {
		t.Fatal("NextAfter(nil) should be nil")
	}
}

// TestPlan_CancelledIsDone: a cancelled refund is neither sent nor counted
// against what remains, and does not hold the settlement back; a cancelled
// settlement is never submitted.
func TestPlan_CancelledIsDone(t *testing.T) {
	o := paidOrder()
	now := t0.Add(8 * 24 * time.Hour)
	v := state.OrderView{Order: o, Refunds: []state.Refund{refund(1, "r1", 1000, state.PhaseCancelled)}, Settlement: settlement(state.PhasePending)}
	acts := Plan(v, now, DefaultPolicy())
	if len(acts) != 1 || acts[0].Kind != KindSubmitSettle || acts[0].Amount != 1000 {
		t.Fatalf("want one settle of 1000 fen, got %+v", acts)
	}
	v.Settlement = settlement(state.PhaseCancelled)
	if acts := Plan(v, now, DefaultPolicy()); len(acts) != 0 {
		t.Fatalf("a cancelled settlement planned %+v", acts)
	}
}

func TestFmtPeriod(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7 * 24 * time.Hour:                 "7d",
		7*24*time.Hour - 12*time.Minute:    "6d23h48m",
		2*time.Hour + 30*time.Minute:       "2h30m",
		45 * time.Second:                   "45s",
		25*time.Hour + 90*time.Second:      "1d1h1m",
		time.Minute + 400*time.Millisecond: "1m",
		1500 * time.Millisecond:            "2s",
	} {
		if got := fmtPeriod(d); got != want {
			t.Errorf("fmtPeriod(%s) = %s, want %s", d, got, want)
		}
	}
}
