package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/events"
	"github.com/payd/payd/internal/state"
)

// TestAdminHandler_publicKeys walks the JSON of every admin answer,
// errors included, and fails on a key that is not snake_case or names an
// internal field (version, lease, hint counter, an ambiguous order_id).
func TestAdminHandler_publicKeys(t *testing.T) {
	b := newAdminBundle(t)
	// Mount the event routes the daemon adds, behind the same token.
	h := NewAdminHandler(AdminOptions{
		Store: b.store, Policy: b.policy, Token: adminToken, DefaultApp: appID,
		Extra: events.AdminRoutes(b.store, []events.Endpoint{{Name: "be", URL: "http://127.0.0.1:1"}}, nil, nil),
	})
	evSrv := httptest.NewServer(h)
	t.Cleanup(evSrv.Close)

	calls := []struct{ method, path, body string }{
		{"POST", "/v1/orders", `{"out_order_no":"o-1","total_amount":1000,"subject":"shoes","body":"red shoes"}`},
		{"POST", "/v1/orders/o-1/refunds", `{"key":"k1","amount":100,"reason":"size"}`},
		{"POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":100,"reason":"color"}`},
		{"PUT", "/v1/orders/o-1/settlement", `{"at":"2030-01-01T00:00:00Z","receivers":[{"merchant_uid":"m-1","amount":100}]}`},
		{"GET", "/v1/orders/o-1", ""},
		{"GET", "/v1/plan", ""},
		{"GET", "/v1/status", ""},
		{"GET", "/v1/orders/o-none", ""},
		{"POST", "/v1/orders/o-1/refunds", `{"amount":-1}`},
		{"GET", "/v1/plan", "bad-token"},
	}
	park := func() {
		// A parked refund, as the reconciler leaves one, so plan and status
		// show their parked lists.
		if err := b.store.DB().Model(&state.Refund{}).Where("idem_key = ?", "k2").
			Updates(map[string]any{"phase": state.PhaseParked, "park_reason": "refund 100 exceeds what remains"}).Error; err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range calls {
		if c.path == "/v1/orders/o-1" {
			park()
		}
		tok := adminToken
		if c.body == "bad-token" {
			tok, c.body = "nope", ""
		}
		status, body := b.do(t, c.method, c.path, tok, c.body)
		checkKeys(t, c.method+" "+c.path, status, body)
		if i == len(calls)-1 && status != 401 {
			t.Fatalf("bad token: %d", status)
		}
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/events"}, {"POST", "/v1/events/evt_none/replay"}, {"POST", "/v1/events/replay?since=2026-01-01"},
		{"POST", "/v1/events/replay?since=soon"},
	} {
		status, body := do(t, evSrv.Client(), c.method, evSrv.URL+c.path, adminToken, "application/json", strings.NewReader(""))
		checkKeys(t, c.method+" "+c.path, status, body)
	}
}

func checkKeys(t *testing.T, what string, status int, body string) {
	t.Helper()
	bad, err := api.BadKeys([]byte(body))
	if err != nil {
		t.Fatalf("%s: %d, not JSON: %v\n%s", what, status, err, body)
	}
	if len(bad) > 0 {
		t.Fatalf("%s (%d): keys not fit for a public answer: %v\n%s", what, status, bad, body)
	}
}

// TestAdminHandler_bearerSchemeCaseInsensitive: RFC 7235 makes the scheme
// name case-insensitive, so "bearer" and "BEARER" are accepted; the token
// itself is not.
func TestAdminHandler_bearerSchemeCaseInsensitive(t *testing.T) {
	b := newAdminBundle(t)
	for _, h := range []string{"bearer " + adminToken, "BEARER " + adminToken, "Bearer  " + adminToken} {
		req := httptest.NewRequest("GET", "/v1/status", nil)
		req.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		b.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("Authorization %q: %d %s", h, rec.Code, rec.Body)
		}
	}
	for _, h := range []string{"bearer " + strings.ToUpper(adminToken), "bearer", "Bearer" + adminToken} {
		req := httptest.NewRequest("GET", "/v1/status", nil)
		req.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		b.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Fatalf("Authorization %q: %d, want 401", h, rec.Code)
		}
	}
}

// TestAdminHandler_cancel: the cancel routes withdraw a pending or parked
// wish and refuse, with the reason, one whose money may move.
func TestAdminHandler_cancel(t *testing.T) {
	b := newAdminBundle(t)
	if _, _, err := b.store.UpsertOrder(t.Context(), state.OrderInput{AppID: appID, OutOrderNo: "o-1", TotalAmount: 1000, Status: state.OrderSuccess}, b.sim.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/orders/o-1/refunds", `{"key":"k1","amount":100,"reason":"size"}`},
		{"POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":100,"reason":"size"}`},
		{"PUT", "/v1/orders/o-1/settlement", `{}`},
	} {
		if status, body := b.do(t, c.method, c.path, adminToken, c.body); status != 201 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, status, body)
		}
	}
	if err := b.store.DB().Model(&state.Refund{}).Where("idem_key = ?", "k2").Update("phase", state.PhaseSubmitting).Error; err != nil {
		t.Fatal(err)
	}
	status, body := b.do(t, "POST", "/v1/refunds/k1/cancel", adminToken, `{"reason":"kept it"}`)
	if status != 200 || !strings.Contains(body, `"phase": "cancelled"`) || !strings.Contains(body, `"park_reason": "cancelled: kept it"`) {
		t.Fatalf("cancel k1: %d %s", status, body)
	}
	before := fingerprint(t, b.store)
	status, body = b.do(t, "POST", "/v1/refunds/k2/cancel", adminToken, "")
	if status != 400 || !strings.Contains(apiError(t, body), "money may move") {
		t.Fatalf("cancel k2 in flight: %d %s", status, body)
	}
	if status, body = b.do(t, "POST", "/v1/refunds/nope/cancel", adminToken, ""); status != 404 {
		t.Fatalf("cancel unknown: %d %s", status, body)
	}
	if status, body = b.do(t, "POST", "/v1/refunds/k1/cancel", adminToken, `{"reasn":"x"}`); status != 400 {
		t.Fatalf("cancel with a misspelt field: %d %s", status, body)
	}
	if fingerprint(t, b.store) != before {
		t.Fatal("a refused cancel changed the database")
	}
	status, body = b.do(t, "POST", "/v1/orders/o-1/settlement/cancel", adminToken, "")
	if status != 200 || !strings.Contains(body, `"phase": "cancelled"`) {
		t.Fatalf("cancel settlement: %d %s", status, body)
	}
	checkKeys(t, "cancel settlement", status, body)
}
