package state

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStore_UpsertOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()

		o, created, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "o1"}, now)
		must(t, err)
		if !created || o.Status != OrderUnknown || o.TotalAmount != 0 || !timeEq(o.NextActionAt, &now) || o.Version != 1 {
			t.Fatalf("new order %+v", o)
		}
		paid := now.Add(-time.Hour)
		s, created, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "s1", TotalAmount: 500, Status: OrderSuccess, PaidAt: &paid, OrderID: "ord_77"}, now)
		must(t, err)
		if got := e.getOrder(t, s.ID); !created || got.Status != OrderSuccess || !timeEq(got.PaidAt, &paid) || got.DouyinOrderID != "ord_77" || !timeEq(got.NextActionAt, &now) {
			t.Fatalf("imported paid order stored as %+v", got)
		}

		t.Run("same facts are a no-op", func(t *testing.T) {
			again, created, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "s1", TotalAmount: 500, Status: OrderSuccess}, now)
			must(t, err)
			if created || again.Version != s.Version || again.HintSeq != s.HintSeq {
				t.Fatalf("created=%v version %d→%d hint %d→%d", created, s.Version, again.Version, s.HintSeq, again.HintSeq)
			}
		})
		t.Run("unknown facts are filled", func(t *testing.T) {
			e.clock.Advance(time.Minute)
			later := e.clock.Now()
			got, created, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "o1", TotalAmount: 800, Status: OrderSuccess, PaidAt: &paid, OrderID: "ord_1"}, later)
			must(t, err)
			stored := e.getOrder(t, o.ID)
			if created || stored.TotalAmount != 800 || stored.Status != OrderSuccess || stored.DouyinOrderID != "ord_1" || !timeEq(stored.PaidAt, &paid) ||
				stored.Version != 2 || got.Version != 2 || stored.HintSeq != 1 || !stored.UpdatedAt.Equal(later) {
				t.Fatalf("after fill: %+v", stored)
			}
		})
		t.Run("an observed status is not overwritten", func(t *testing.T) {
			_, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "s1", Status: OrderProcessing}, now)
			must(t, err)
			if got := e.getOrder(t, s.ID); got.Status != OrderSuccess {
				t.Fatalf("status became %s", got.Status)
			}
		})
		for _, tc := range []struct {
			name string
			in   OrderInput
			msg  string
		}{
			{"different amount", OrderInput{AppID: "app1", OutOrderNo: "s1", TotalAmount: 100}, "record order s1: order s1: total_amount 100 differs from recorded 500"},
			{"no app", OrderInput{OutOrderNo: "x1"}, "record order x1: app_id: required"},
			{"empty number", OrderInput{AppID: "app1"}, `record order : out_order_no: "" is not 1..64 of [0-9A-Za-z_-*]`},
			{"long number", OrderInput{AppID: "app1", OutOrderNo: strings.Repeat("1", 65)}, ""},
			{"bad character", OrderInput{AppID: "app1", OutOrderNo: "a.b"}, `record order a.b: out_order_no: "a.b" is not 1..64 of [0-9A-Za-z_-*]`},
			{"negative amount", OrderInput{AppID: "app1", OutOrderNo: "n1", TotalAmount: -1}, "record order n1: total_amount: -1 is negative"},
			{"bad status", OrderInput{AppID: "app1", OutOrderNo: "n1", Status: "PAID"}, `record order n1: status: "PAID" is not a known order status`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := e.UpsertOrder(ctx, tc.in, now)
				wantErr(t, err, ErrInvalid, tc.msg)
			})
		}
		t.Run("every merchant-number character is accepted", func(t *testing.T) {
			_, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "Az09_-*" + strings.Repeat("x", 57)}, now)
			must(t, err)
		})
	})
}

func TestStore_GetOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		for _, in := range []OrderInput{{AppID: "a", OutOrderNo: "one"}, {AppID: "a", OutOrderNo: "two"}, {AppID: "b", OutOrderNo: "two"}} {
			_, _, err := e.UpsertOrder(ctx, in, now)
			must(t, err)
		}
		if o, err := e.GetOrder(ctx, "", "one"); err != nil || o.AppID != "a" {
			t.Fatalf("GetOrder(\"\", one) = %+v, %v", o, err)
		}
		if o, err := e.GetOrder(ctx, "b", "two"); err != nil || o.AppID != "b" {
			t.Fatalf("GetOrder(b, two) = %+v, %v", o, err)
		}
		_, err := e.GetOrder(ctx, "", "two")
		wantErr(t, err, ErrInvalid, "get order two: order two exists in more than one app: app_id is required")
		_, err = e.GetOrder(ctx, "b", "one")
		wantErr(t, err, ErrNotFound, "get order one: not found")
		_, err = e.LoadOrder(ctx, 999)
		wantErr(t, err, ErrNotFound, "load order 999: not found")
	})
}

func TestStore_LoadOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "o1", 1000)
		e.order(t, "o2", 1000)
		e.refund(t, "o1", "k2", 100)
		e.refund(t, "o1", "k1", 200)
		e.refund(t, "o2", "x1", 300)
		v, err := e.LoadOrder(ctx, o.ID)
		must(t, err)
		if v.Order.OutOrderNo != "o1" || len(v.Refunds) != 2 || v.Refunds[0].Key != "k2" || v.Refunds[1].Key != "k1" || v.Settlement != nil {
			t.Fatalf("view %+v", v)
		}
		if got := v.Remaining(0); got != 700 {
			t.Fatalf("Remaining(0) = %d, want 700", got)
		}
		if got := v.Remaining(v.Refunds[0].ID); got != 800 {
			t.Fatalf("Remaining(k2) = %d, want 800", got)
		}
		_, _, err = e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "o1"}, e.clock.Now())
		must(t, err)
		v, err = e.LoadOrder(ctx, o.ID)
		must(t, err)
		if v.Settlement == nil || v.Settlement.OrderID != o.ID {
			t.Fatalf("settlement %+v", v.Settlement)
		}
	})
}

// TestStore_LoadOrders: the views read in sets are the views LoadOrder
// reads one by one, across a chunk boundary, in one snapshot; an id that
// does not exist is left out.
func TestStore_LoadOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var ids []int64
		for i := range viewChunk + 3 {
			no := fmt.Sprintf("o%04d", i)
			o := e.order(t, no, 1000)
			ids = append(ids, o.ID)
			if i%3 == 0 {
				e.refund(t, no, no+"-a", 100)
				e.refund(t, no, no+"-b", 50)
			}
			if i%2 == 0 {
				_, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: no}, e.clock.Now())
				must(t, err)
			}
		}
		views, err := e.LoadOrders(ctx, append(ids, 987654))
		must(t, err)
		if len(views) != len(ids) {
			t.Fatalf("LoadOrders: %d views, want %d (the missing id left out)", len(views), len(ids))
		}
		for _, id := range ids {
			one, err := e.LoadOrder(ctx, id)
			must(t, err)
			if got := views[id]; !reflect.DeepEqual(emptyAsNil(got), emptyAsNil(one)) {
				t.Fatalf("order %d: LoadOrders gave %+v, LoadOrder %+v", id, got, one)
			}
		}
	})
}

// emptyAsNil makes v's empty lists nil, so that views compare by content.
func emptyAsNil(v *OrderView) *OrderView {
	c := *v
	if len(c.Refunds) == 0 {
		c.Refunds = nil
	}
	if len(c.ItemSettlements) == 0 {
		c.ItemSettlements = nil
	}
	if len(c.Fulfilments) == 0 {
		c.Fulfilments = nil
	}
	return &c
}

func TestStore_Hint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "o1", 1000)
		later := t0.Add(time.Hour)
		o.NextActionAt = &later
		must(t, e.UpdateOrder(ctx, o))

		e.clock.Advance(time.Minute)
		now := e.clock.Now()
		must(t, e.Hint(ctx, o.ID, now))
		got := e.getOrder(t, o.ID)
		if got.HintSeq != 1 || !timeEq(got.NextActionAt, &now) || got.Version != o.Version {
			t.Fatalf("after hint: hint_seq %d next %s version %d (want 1, %s, %d)", got.HintSeq, fmtTime(got.NextActionAt), got.Version, now, o.Version)
		}
		// An earlier time is kept.
		must(t, e.Hint(ctx, o.ID, now.Add(time.Minute)))
		if got := e.getOrder(t, o.ID); got.HintSeq != 2 || !timeEq(got.NextActionAt, &now) {
			t.Fatalf("second hint moved next_action_at to %s", fmtTime(got.NextActionAt))
		}
		// A leased order keeps its lease expiry: only HintSeq moves.
		claims, err := e.ClaimDue(ctx, now, 1, time.Minute, "w")
		must(t, err)
		must(t, e.Hint(ctx, o.ID, now))
		if got := e.getOrder(t, o.ID); got.HintSeq != 3 || !timeEq(got.NextActionAt, &claims[0].LeaseUntil) {
			t.Fatalf("hint on a leased order: hint_seq %d next %s", got.HintSeq, fmtTime(got.NextActionAt))
		}
		wantErr(t, e.Hint(ctx, 999, now), ErrNotFound, "hint order 999: order 999: not found")
	})
}

func TestStore_TimesAreStoredInUTC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		shanghai := time.FixedZone("CST", 8*3600)
		// 10:00:30 in Shanghai is before 10:00 UTC (t0), though its text sorts after.
		local := time.Date(2026, 3, 1, 10, 0, 30, 123456789, shanghai)
		o, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "o1"}, local)
		must(t, err)
		ids, err := e.DueOrders(ctx, t0, 10)
		must(t, err)
		if len(ids) != 1 || ids[0] != o.ID {
			t.Fatalf("DueOrders(t0) = %v: a time stored with its zone broke the comparison", ids)
		}
		got := e.getOrder(t, o.ID)
		if want := local.Truncate(time.Microsecond); !got.NextActionAt.Equal(want) || got.NextActionAt.Nanosecond()%1000 != 0 {
			t.Fatalf("next_action_at %s, want %s at microsecond precision", fmtTime(got.NextActionAt), want)
		}
	})
}
