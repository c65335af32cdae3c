package server

import (
	"strings"
	"testing"

	"github.com/payd/payd/internal/state"
)

// TestAdminHandler_itemSettlementOps: the settlement cancel and retry
// routes take item_order_id for an order settled item by item; without
// it, or with one that is not the order's, they answer 400 naming the
// order's item settlements, and nothing changes. The refund routes refuse
// an item_order_id.
func TestAdminHandler_itemSettlementOps(t *testing.T) {
	b := newAdminBundle(t)
	if _, _, err := b.store.UpsertOrder(t.Context(), state.OrderInput{AppID: appID, OutOrderNo: "o-1", TotalAmount: 1000, Status: state.OrderSuccess}, b.sim.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/v1/orders/o-1/settlement", `{"item_order_id":"it-1"}`},
		{"PUT", "/v1/orders/o-1/settlement", `{"item_order_id":"it-2"}`},
		{"POST", "/v1/orders/o-1/refunds", `{"key":"k1","amount":100,"reason":"size"}`},
	} {
		if status, body := b.do(t, c.method, c.path, adminToken, c.body); status != 201 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, status, body)
		}
	}
	if err := b.store.DB().Model(&state.Settlement{}).Where("item_order_id = ?", "it-1").Update("phase", state.PhaseParked).Error; err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, b.store)
	items := "its item settlements: it-1 (parked), it-2 (pending)"
	for _, c := range []struct{ path, body, want string }{
		{"/v1/orders/o-1/settlement/cancel", "", "cancel settlement of order o-1: order o-1 is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); " + items},
		{"/v1/orders/o-1/settlement/retry", `{}`, "retry settlement of order o-1: order o-1 is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); " + items},
		{"/v1/orders/o-1/settlement/retry", `{"item_order_id":"it-9"}`, "retry settlement of item order it-9 of order o-1: item order it-9 is not one of the settlements of order o-1; " + items},
		{"/v1/orders/o-1/settlement/retry", `{"item_order_id":"it-2"}`, "retry settlement of item order it-2 of order o-1: settlement of item order it-2 of order o-1 is pending: only a parked settlement can be retried"},
		{"/v1/refunds/k1/cancel", `{"item_order_id":"it-1"}`, "item_order_id: names the item order of a settlement; a refund is named by its key in the path"},
		{"/v1/refunds/k1/retry", ``, "retry refund k1: refund k1 is pending: only a parked refund can be retried"},
	} {
		status, body := b.do(t, "POST", c.path, adminToken, c.body)
		if got := apiError(t, body); status != 400 || got != c.want {
			t.Errorf("POST %s %s: %d %q\nwant 400 %q", c.path, c.body, status, got, c.want)
		}
	}
	if fingerprint(t, b.store) != before {
		t.Fatal("a refused cancel or retry changed the database")
	}
	status, body := b.do(t, "POST", "/v1/orders/o-1/settlement/retry", adminToken, `{"item_order_id":"it-1"}`)
	if status != 200 || !strings.Contains(body, `"item_order_id": "it-1"`) || !strings.Contains(body, `"phase": "pending"`) || !strings.Contains(body, `"attempt": 2`) {
		t.Fatalf("retry it-1: %d %s", status, body)
	}
	checkKeys(t, "retry settlement", status, body)
	status, body = b.do(t, "POST", "/v1/orders/o-1/settlement/cancel", adminToken, `{"item_order_id":"it-2","reason":"by hand"}`)
	if status != 200 || !strings.Contains(body, `"item_order_id": "it-2"`) || !strings.Contains(body, `"park_reason": "cancelled: by hand"`) {
		t.Fatalf("cancel it-2: %d %s", status, body)
	}
	if status, body = b.do(t, "POST", "/v1/orders/o-9/settlement/retry", adminToken, `{"item_order_id":"it-1"}`); status != 404 {
		t.Fatalf("retry of an unknown order: %d %s", status, body)
	}
}
