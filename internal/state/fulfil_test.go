package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStore_DeclareFulfilment(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	o := &Order{AppID: "tt1", OutOrderNo: "o1", Status: OrderSuccess, TotalAmount: 1000}
	o.SetItems([]ItemOrder{{ID: "i1", Amount: 400}, {ID: "i2", Amount: 600}})
	if err := s.DB().Create(o).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Create(&Order{AppID: "tt1", OutOrderNo: "closed", Status: OrderTimeout}).Error; err != nil {
		t.Fatal(err)
	}
	earlier := t0.Add(-time.Hour)
	f, ch, err := s.DeclareFulfilment(ctx, FulfilmentWish{OutOrderNo: "o1", ItemOrderID: "i1", At: &earlier}, t0)
	if err != nil || ch != Created || !f.FulfilledAt.Equal(earlier) {
		t.Fatalf("first: %+v %s %v", f, ch, err)
	}
	if f2, ch, err := s.DeclareFulfilment(ctx, FulfilmentWish{OutOrderNo: "o1", ItemOrderID: "i1"}, t0.Add(time.Hour)); err != nil || ch != Unchanged || f2.ID != f.ID || !f2.FulfilledAt.Equal(earlier) {
		t.Fatalf("again: %+v %s %v", f2, ch, err)
	}
	v, err := s.LoadOrder(ctx, o.ID)
	if err != nil || len(v.Fulfilments) != 1 {
		t.Fatalf("view: %+v %v", v, err)
	}
	if _, ok := v.FulfilledAt(""); ok {
		t.Fatal("order fulfilled with one item of two")
	}
	if _, _, err := s.DeclareFulfilment(ctx, FulfilmentWish{OutOrderNo: "o1", ItemOrderID: "i2"}, t0); err != nil {
		t.Fatal(err)
	}
	if v, _ = s.LoadOrder(ctx, o.ID); true {
		if at, ok := v.FulfilledAt(""); !ok || !at.Equal(t0) {
			t.Fatalf("order fulfilled at %v %v, want %v", at, ok, t0)
		}
	}
	future := t0.Add(time.Minute)
	bad := []struct {
		w    FulfilmentWish
		want string
	}{
		{FulfilmentWish{OutOrderNo: "o1", ItemOrderID: "i9"}, "item_order_id: i9 is not an item order of order o1 (its items: i1, i2)"},
		{FulfilmentWish{OutOrderNo: "o1", ItemOrderID: "has space"}, "item_order_id:"},
		{FulfilmentWish{OutOrderNo: "o1", At: &future}, "fulfilled_at:"},
		{FulfilmentWish{OutOrderNo: "closed"}, "TIMEOUT at Douyin: nothing to fulfil"},
		{FulfilmentWish{OutOrderNo: "new"}, "app_id is required"},
		{FulfilmentWish{OutOrderNo: "bad no!"}, "out_order_no:"},
	}
	for _, tc := range bad {
		if _, _, err := s.DeclareFulfilment(ctx, tc.w, t0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalid with %q", tc.w, err, tc.want)
		}
	}
	var n int64
	if err := s.DB().Model(&Fulfilment{}).Count(&n).Error; err != nil || n != 2 {
		t.Fatalf("%d fulfilments after the refusals, want 2 (%v)", n, err)
	}
	// An order payd does not know is recorded, UNKNOWN, for the reconciler.
	if _, ch, err := s.DeclareFulfilment(ctx, FulfilmentWish{AppID: "tt1", OutOrderNo: "new"}, t0); err != nil || ch != Created {
		t.Fatalf("unknown order: %s %v", ch, err)
	}
	if got, err := s.GetOrder(ctx, "tt1", "new"); err != nil || got.Status != OrderUnknown {
		t.Fatalf("recorded order: %+v %v", got, err)
	}
}

// TestStore_IdleSettlementOrders: the orders with a pending settlement and
// nothing scheduled are listed, in order id order, at most limit; one with
// a next action, or whose settlement is not pending, is not.
func TestStore_IdleSettlementOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var ids []int64
		for _, no := range []string{"i1", "i2", "i3", "i4"} {
			o := e.order(t, no, 1000)
			_, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: no}, e.clock.Now())
			must(t, err)
			ids = append(ids, o.ID)
		}
		must(t, e.DB().Exec("UPDATE orders SET next_action_at = NULL WHERE out_order_no IN ('i1', 'i2', 'i4')").Error)
		must(t, e.DB().Exec("UPDATE settlements SET phase = ? WHERE order_id = ?", PhaseSucceeded, ids[3]).Error)
		got, err := e.IdleSettlementOrders(ctx, 10)
		must(t, err)
		if want := []int64{ids[0], ids[1]}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("IdleSettlementOrders = %v, want %v (i3 has a next action, i4's settlement succeeded)", got, want)
		}
		if got, err := e.IdleSettlementOrders(ctx, 1); err != nil || len(got) != 1 || got[0] != ids[0] {
			t.Fatalf("IdleSettlementOrders(limit 1) = %v, %v", got, err)
		}
	})
}
