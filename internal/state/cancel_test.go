package state

import (
	"context"
	"testing"
)

func TestStore_CancelRefund(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.order(t, "o1", 1000)
		r := e.refund(t, "o1", "k1", 600)

		got, err := e.CancelRefund(ctx, "k1", "customer kept it", e.clock.Now())
		must(t, err)
		if got.Phase != PhaseCancelled || got.ParkReason != "cancelled: customer kept it" {
			t.Fatalf("cancelled refund %+v", got)
		}
		row := e.getRefund(t, r.ID)
		if row.Phase != PhaseCancelled || row.NextActionAt != nil || row.DoneAt == nil {
			t.Fatalf("row %+v", row)
		}
		if types := e.eventTypes(t); types != "refund.cancelled" {
			t.Fatalf("events %q, want refund.cancelled", types)
		}
		// Cancelling again changes nothing and writes no event.
		_, err = e.CancelRefund(ctx, "k1", "again", e.clock.Now())
		must(t, err)
		if after := e.getRefund(t, r.ID); after.Version != row.Version || e.eventTypes(t) != "refund.cancelled" {
			t.Fatalf("second cancel changed the row or wrote an event: %+v", after)
		}
		// A cancelled refund no longer takes from what can be refunded.
		e.refund(t, "o1", "k2", 1000)

		// Money may move: refused with the reason, nothing changed.
		must(t, e.DB().Model(&Refund{}).Where("idem_key = ?", "k2").Update("phase", PhaseProcessing).Error)
		_, err = e.CancelRefund(ctx, "k2", "x", e.clock.Now())
		wantErr(t, err, ErrInvalid, "cancel refund k2: refund k2 of order o1 cannot be cancelled: attempt 1 is processing at Douyin and money may move; wait until payd status shows it succeeded or parked")
		must(t, e.DB().Model(&Refund{}).Where("idem_key = ?", "k2").Update("phase", PhaseSucceeded).Error)
		_, err = e.CancelRefund(ctx, "k2", "x", e.clock.Now())
		wantErr(t, err, ErrInvalid, "cancel refund k2: refund k2 of order o1 has already succeeded: nothing to cancel")
		// A parked one can be withdrawn.
		e.order(t, "o2", 100)
		p := e.refund(t, "o2", "k3", 100)
		must(t, e.DB().Model(&Refund{}).Where("id = ?", p.ID).Update("phase", PhaseParked).Error)
		_, err = e.CancelRefund(ctx, "k3", "never", e.clock.Now())
		must(t, err)
		_, err = e.CancelRefund(ctx, "nope", "x", e.clock.Now())
		wantErr(t, err, ErrNotFound, "")
	})
}

func TestStore_CancelSettlement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "o1", 1000)
		st, _, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "o1"}, e.clock.Now())
		must(t, err)
		got, err := e.CancelSettlement(ctx, "", "o1", "settled by hand", e.clock.Now())
		must(t, err)
		if got.Phase != PhaseCancelled || e.eventTypes(t) != "settlement.cancelled" {
			t.Fatalf("cancelled settlement %+v, events %s", got, e.eventTypes(t))
		}
		// settle_batch never re-creates a cancelled settlement, even when
		// the order's auto-settle time comes around again.
		must(t, e.DB().Model(&Order{}).Where("id = ?", o.ID).Update("auto_settle_at", e.clock.Now().Add(-1)).Error)
		n, err := e.CreateDueSettlements(ctx, e.clock.Now(), []string{"app1"}, 10, "")
		must(t, err)
		var count int64
		must(t, e.DB().Model(&Settlement{}).Where("order_id = ?", o.ID).Count(&count).Error)
		if n != 0 || count != 1 || e.getSettlement(t, st.ID).Phase != PhaseCancelled {
			t.Fatalf("settle_batch created %d, %d settlements, phase %s", n, count, e.getSettlement(t, st.ID).Phase)
		}
		// Declaring it again is refused, with the phase.
		_, _, err = e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "o1", Desc: "again"}, e.clock.Now())
		wantErr(t, err, ErrInvalid, "")
		_, err = e.CancelSettlement(ctx, "", "o-none", "x", e.clock.Now())
		wantErr(t, err, ErrNotFound, "")
	})
}
