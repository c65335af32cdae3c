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

// TestStore_settlementOf: which settlement an operator's cancel or retry
// names: an --item on an order settled whole is refused, as is none on an
// order whose whole-order settlement was cancelled and which is now settled
// item by item; an order with no settlement is not found.
func TestStore_settlementOf(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		e.order(t, "w1", 1000)
		_, _, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "w1"}, now)
		must(t, err)
		_, err = e.CancelItemSettlement(ctx, "", "w1", "it-1", "x", now)
		wantErr(t, err, ErrInvalid, "cancel settlement of item order it-1 of order w1: order w1 is settled whole, not item by item: it has no settlement of item order it-1; leave out --item (admin API: \"item_order_id\")")
		_, err = e.CancelSettlement(ctx, "", "w1", "whole no more", now)
		must(t, err)
		_, _, err = e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "w1", ItemOrderID: "it-1"}, now)
		must(t, err)
		_, err = e.RetryParkedSettlement(ctx, "", "w1", now)
		wantErr(t, err, ErrInvalid, "retry settlement of order w1: order w1 is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); its item settlements: it-1 (pending)")
		got, err := e.CancelItemSettlement(ctx, "", "w1", "it-1", "x", now)
		must(t, err)
		if got.Phase != PhaseCancelled || got.ItemOrderID != "it-1" || e.eventTypes(t) != "settlement.cancelled,settlement.cancelled" {
			t.Fatalf("cancelled item settlement %+v, events %s", got, e.eventTypes(t))
		}
		e.order(t, "w2", 1000)
		_, err = e.RetryParkedItemSettlement(ctx, "", "w2", "it-1", now)
		wantErr(t, err, ErrNotFound, "")
	})
}
