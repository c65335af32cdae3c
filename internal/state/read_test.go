package state

import (
	"context"
	"testing"
	"time"
)

func TestStore_SummaryHistoryParkedEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "o1", 1000)
		e.order(t, "o2", 1000)
		_, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "u1"}, t0)
		must(t, err)
		ok := e.refund(t, "o1", "ok", 100)
		ok.Phase = PhaseSubmitting
		must(t, e.UpdateRefund(ctx, ok, PhasePending))
		ok.Phase = PhaseSucceeded
		must(t, e.UpdateRefund(ctx, ok, PhaseSubmitting, NewEvent{Type: EventRefundSucceeded}))
		e.clock.Advance(time.Minute)
		bad1 := e.refund(t, "o1", "bad1", 200)
		bad1.Phase = PhaseParked
		must(t, e.UpdateRefund(ctx, bad1, PhasePending, NewEvent{Type: EventRefundParked}))
		e.clock.Advance(time.Minute)
		bad2 := e.refund(t, "o2", "bad2", 300)
		bad2.Phase = PhaseParked
		must(t, e.UpdateRefund(ctx, bad2, PhasePending, NewEvent{Type: EventRefundParked}))
		e.refund(t, "o2", "wait", 50)
		st, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "o1"}, e.clock.Now())
		must(t, err)
		st.Phase, st.Amount = PhaseSubmitting, 700
		must(t, e.UpdateSettlement(ctx, st, PhasePending))
		st.Phase = PhaseSucceeded
		must(t, e.UpdateSettlement(ctx, st, PhaseSubmitting, NewEvent{Type: EventSettlementSucceeded}))
		must(t, e.AppendAttempt(ctx, &Attempt{OrderID: o.ID, Resource: "refund", ResourceID: ok.ID, API: "create_refund", MerchantNo: ok.OutRefundNo, Outcome: "ok"}))
		_, err = e.InsertCallback(ctx, &Callback{AppID: "app1", Type: "refund", Signature: "s1", SubjectNo: ok.OutRefundNo, Raw: "{}"}, e.clock.Now())
		must(t, err)

		t.Run("summary", func(t *testing.T) {
			sum, err := e.Summary(ctx)
			must(t, err)
			if sum.Orders[OrderSuccess] != 2 || sum.Orders[OrderUnknown] != 1 || len(sum.Orders) != 2 {
				t.Errorf("orders %v", sum.Orders)
			}
			if sum.Refunds[PhaseSucceeded] != 1 || sum.Refunds[PhaseParked] != 2 || sum.Refunds[PhasePending] != 1 {
				t.Errorf("refunds %v", sum.Refunds)
			}
			if sum.RefundAmount[PhaseParked] != 500 || sum.RefundAmount[PhaseSucceeded] != 100 || sum.RefundAmount[PhasePending] != 50 {
				t.Errorf("refund amounts %v", sum.RefundAmount)
			}
			if sum.Settlements[PhaseSucceeded] != 1 || sum.SettledAmount != 700 || sum.Events != 4 {
				t.Errorf("settlements %v settled %d events %d", sum.Settlements, sum.SettledAmount, sum.Events)
			}
		})
		t.Run("history", func(t *testing.T) {
			h, err := e.History(ctx, "", "o1")
			must(t, err)
			if h.Order.ID != o.ID || len(h.Refunds) != 2 || h.Settlement == nil || len(h.Attempts) != 1 || len(h.Callbacks) != 1 {
				t.Fatalf("history %+v", h)
			}
			var types []EventType
			for _, ev := range h.Events {
				types = append(types, ev.Type)
			}
			if len(types) != 3 || types[0] != EventRefundSucceeded || types[1] != EventRefundParked || types[2] != EventSettlementSucceeded {
				t.Fatalf("events of o1: %v", types)
			}
			_, err = e.History(ctx, "app1", "zz")
			wantErr(t, err, ErrNotFound, "history of order zz: not found")
		})
		t.Run("parked", func(t *testing.T) {
			refunds, settlements, err := e.Parked(ctx, 10)
			must(t, err)
			if len(refunds) != 2 || refunds[0].Key != "bad2" || refunds[1].Key != "bad1" || len(settlements) != 0 {
				t.Fatalf("parked %+v %+v", refunds, settlements)
			}
			refunds, _, err = e.Parked(ctx, 1)
			must(t, err)
			if len(refunds) != 1 || refunds[0].Key != "bad2" {
				t.Fatalf("parked with limit 1: %+v", refunds)
			}
		})
		t.Run("events", func(t *testing.T) {
			all, err := e.Events(ctx, 0, 100)
			must(t, err)
			if len(all) != 4 {
				t.Fatalf("%d events", len(all))
			}
			rest, err := e.Events(ctx, all[1].Seq, 1)
			must(t, err)
			if len(rest) != 1 || rest[0].Seq != all[2].Seq {
				t.Fatalf("events after %d: %+v", all[1].Seq, rest)
			}
		})
	})
}
