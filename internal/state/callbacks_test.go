package state

import (
	"context"
	"testing"
	"time"
)

func TestStore_InsertCallback(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// Two orders of app1 and one of app2 with the same number; a refund
		// on its second attempt; a settlement.
		paidOrder := e.order(t, "o1", 1000)
		paidOrder.Status, paidOrder.CheckAt = OrderProcessing, ptr(t0.Add(time.Hour))
		must(t, e.UpdateOrder(ctx, paidOrder))
		_, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app2", OutOrderNo: "o1"}, t0)
		must(t, err)
		r := refundIn(t, e, "rk", PhaseSubmitting, PhaseProcessing)
		must(t, e.AppendAttempt(ctx, &Attempt{OrderID: r.OrderID, Resource: "refund", ResourceID: r.ID, API: "create_refund", MerchantNo: r.OutRefundNo, Outcome: "ok"}))
		r.NextActionAt = ptr(t0.Add(time.Hour))
		must(t, e.UpdateRefund(ctx, r, PhaseProcessing))
		old := r.OutRefundNo
		r.Phase, r.Attempt = PhasePending, 2
		r.OutRefundNo = RefundNo(r.Key, 2)
		must(t, e.UpdateRefund(ctx, r, PhaseProcessing))
		e.order(t, "so", 1000)
		st, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "so"}, t0)
		must(t, err)
		st.Phase = PhaseSubmitting
		st.NextActionAt = ptr(t0.Add(time.Hour))
		must(t, e.UpdateSettlement(ctx, st, PhasePending))
		// All released with nothing due, so each hint shows.
		for _, id := range []int64{paidOrder.ID, r.OrderID, st.OrderID} {
			o := e.getOrder(t, id)
			o.NextActionAt = nil
			must(t, e.UpdateOrder(ctx, &o))
		}

		e.clock.Advance(time.Minute)
		now := e.clock.Now()
		for _, tc := range []struct {
			name, typ, app, subject string
			want                    int64
		}{
			{"payment", "payment", "app1", "o1", paidOrder.ID},
			{"refund by current number", "refund", "app1", r.OutRefundNo, r.OrderID},
			{"refund by an older attempt's number", "refund", "app1", old, r.OrderID},
			{"settle", "settle", "app1", st.OutSettleNo, st.OrderID},
			{"settle_finish by order", "settle_finish", "app1", "so", st.OrderID},
			{"unknown subject", "refund", "app1", "nobody-1", 0},
			{"another app's number", "refund", "app9", r.OutRefundNo, 0},
			{"unknown type", "mystery", "app1", "o1", 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var before Order
				if tc.want != 0 {
					before = e.getOrder(t, tc.want)
				}
				cb := &Callback{AppID: tc.app, Type: tc.typ, Signature: "sig-" + tc.name, SubjectNo: tc.subject, Raw: `{"msg":"..."}`}
				inserted, err := e.InsertCallback(ctx, cb, now)
				must(t, err)
				if !inserted || cb.ID == 0 || cb.OrderID != tc.want || !cb.ReceivedAt.Equal(now) {
					t.Fatalf("inserted=%v callback %+v, want order %d", inserted, cb, tc.want)
				}
				if tc.want == 0 {
					return
				}
				after := e.getOrder(t, tc.want)
				if after.HintSeq != before.HintSeq+1 || !timeEq(after.NextActionAt, &now) {
					t.Fatalf("order not hinted: hint_seq %d → %d, next %s", before.HintSeq, after.HintSeq, fmtTime(after.NextActionAt))
				}
			})
		}
		t.Run("the subject itself is due now", func(t *testing.T) {
			if o := e.getOrder(t, paidOrder.ID); !timeEq(o.CheckAt, &now) {
				t.Errorf("payment callback: order check_at %s, want now", fmtTime(o.CheckAt))
			}
			if got := e.getSettlement(t, st.ID); !timeEq(got.NextActionAt, &now) || got.Version != st.Version {
				t.Errorf("settle callback: next %s version %d, want now and version %d", fmtTime(got.NextActionAt), got.Version, st.Version)
			}
			// The refund is pending (waiting out its back-off): a callback about
			// its failed attempt does not hurry the next one.
			if got := e.getRefund(t, r.ID); timeEq(got.NextActionAt, &now) {
				t.Errorf("pending refund's next_action_at moved to now")
			}
		})
		t.Run("duplicate", func(t *testing.T) {
			before := e.getOrder(t, paidOrder.ID)
			cb := &Callback{AppID: "app1", Type: "payment", Signature: "sig-payment", SubjectNo: "o1", Raw: "{}"}
			inserted, err := e.InsertCallback(ctx, cb, now.Add(time.Second))
			must(t, err)
			if inserted || cb.ID != 0 {
				t.Fatalf("duplicate inserted=%v id %d", inserted, cb.ID)
			}
			if after := e.getOrder(t, paidOrder.ID); after.HintSeq != before.HintSeq {
				t.Fatal("a duplicate hinted the order")
			}
			var n int64
			must(t, e.DB().Model(&Callback{}).Where("signature = ?", "sig-payment").Count(&n).Error)
			if n != 1 {
				t.Fatalf("%d rows with the signature", n)
			}
		})
		t.Run("invalid", func(t *testing.T) {
			_, err := e.InsertCallback(ctx, &Callback{AppID: "app1", Type: "payment", SubjectNo: "o1"}, now)
			wantErr(t, err, ErrInvalid, "insert callback: signature, app_id and type are required")
		})
	})
}

func TestStore_InsertCallback_PaymentRecordsUnknownOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		cb := &Callback{AppID: "app1", Type: "payment", Signature: "sig-new-order", SubjectNo: "paid-elsewhere", Raw: "{}"}
		inserted, err := e.InsertCallback(ctx, cb, now)
		must(t, err)
		if !inserted || cb.OrderID == 0 {
			t.Fatalf("inserted=%v order %d, want a new order", inserted, cb.OrderID)
		}
		o, err := e.GetOrder(ctx, "app1", "paid-elsewhere")
		must(t, err)
		if o.ID != cb.OrderID || o.Status != OrderUnknown || !timeEq(o.NextActionAt, &now) {
			t.Fatalf("order %+v: want UNKNOWN and due now", o)
		}
		// A refund callback for an unknown number records nothing.
		cb2 := &Callback{AppID: "app1", Type: "refund", Signature: "sig-unknown-refund", SubjectNo: "nobody-1", Raw: "{}"}
		if _, err := e.InsertCallback(ctx, cb2, now); err != nil || cb2.OrderID != 0 {
			t.Fatalf("refund callback: err %v order %d", err, cb2.OrderID)
		}
		// A payment callback whose number Douyin would never send records nothing.
		cb3 := &Callback{AppID: "app1", Type: "payment", Signature: "sig-bad-no", SubjectNo: "no spaces allowed", Raw: "{}"}
		if _, err := e.InsertCallback(ctx, cb3, now); err != nil || cb3.OrderID != 0 {
			t.Fatalf("bad number: err %v order %d", err, cb3.OrderID)
		}
	})
}
