package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/state"
)

// TestAdminHandler_auditRefund: POST /v1/refunds/{key}/audit stores a
// person's decision on a refund awaiting audit, named by Douyin's
// refund_id or payd's key; bad input is refused naming the field, with
// nothing written.
func TestAdminHandler_auditRefund(t *testing.T) {
	b := newAdminBundle(t)
	ctx := context.Background()
	rf, _, err := b.store.AdoptForeignRefund(ctx, state.ForeignRefund{AppID: appID, OutOrderNo: "o-a", RefundID: "motb-a1", Amount: 500, Source: state.SourceUser, NeedAudit: true}, b.sim.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, b.store)
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/v1/refunds/motb-a1/audit", `{"decision":"deny"}`, 400, "message: required to deny"},
		{"/v1/refunds/motb-a1/audit", `{"decision":"maybe"}`, 400, `decision "maybe": want agree or deny`},
		{"/v1/refunds/motb-a1/audit", `{"decision":"agree","note":"x"}`, 400, "unknown field"},
		{"/v1/refunds/nope/audit", `{"decision":"agree"}`, 404, "not found"},
	} {
		status, body := b.do(t, "POST", tc.path, adminToken, tc.body)
		if status != tc.status || !strings.Contains(apiError(t, body), tc.want) {
			t.Fatalf("%s %s: %d %s, want %d %q", tc.path, tc.body, status, body, tc.status, tc.want)
		}
	}
	if fingerprint(t, b.store) != before {
		t.Fatal("a refused decision wrote something")
	}
	status, body := b.do(t, "POST", "/v1/refunds/"+rf.Key+"/audit", adminToken, `{"decision":"deny","message":"已发货"}`)
	var got api.Refund
	if err := json.Unmarshal([]byte(body), &got); status != 200 || err != nil || got.Audit == nil || got.Audit.Phase != "decided" ||
		got.Audit.Decision != "deny" || got.Audit.By != "operator" || got.Audit.Deadline == nil {
		t.Fatalf("decision: %d %s", status, body)
	}
	if !strings.Contains(body, `"audit": {`) || !strings.Contains(body, `"deadline": "`) {
		t.Fatalf("not snake_case: %s", body)
	}
	if b.wakes.n.Load() == 0 {
		t.Fatal("the reconciler was not woken")
	}
	if status, _ := b.do(t, "POST", "/v1/refunds/motb-a1/audit", "wrong", `{"decision":"agree"}`); status != 401 {
		t.Fatalf("without the token: %d", status)
	}
}

type stubSigner struct{ got api.SignOrderRequest }

func (s *stubSigner) Sign(_ context.Context, req api.SignOrderRequest, _ time.Time) (*api.SignedOrder, error) {
	s.got = req
	if req.AppID == "bad" {
		return nil, fmt.Errorf("sign: %w", state.ErrInvalid)
	}
	return &api.SignedOrder{AppID: req.AppID, OutOrderNo: "os-1", TotalAmount: 100, Data: string(req.Data), ByteAuthorization: "SHA256-RSA2048 x"}, nil
}

// TestAdminHandler_signOrder: POST /v1/orders/sign hands the order data to
// the signer and answers its snake_case result; without a signer (no trade
// app) it is 404, bad input 400.
func TestAdminHandler_signOrder(t *testing.T) {
	b := newAdminBundle(t)
	if status, body := b.do(t, "POST", "/v1/orders/sign", adminToken, `{"data":{}}`); status != 404 || !strings.Contains(body, "no trade app") {
		t.Fatalf("without a signer: %d %s", status, body)
	}
	sg := &stubSigner{}
	h := NewAdminHandler(AdminOptions{Store: b.store, Policy: b.policy, Token: adminToken, Signer: sg})
	srv := httptest.NewServer(h)
	defer srv.Close()
	status, body := do(t, srv.Client(), "POST", srv.URL+"/v1/orders/sign", adminToken, "application/json", strings.NewReader(`{"app_id":"tt1","data":{"outOrderNo":"os-1"}}`))
	if status != 200 || !strings.Contains(body, `"byte_authorization": "SHA256-RSA2048 x"`) || string(sg.got.Data) != `{"outOrderNo":"os-1"}` {
		t.Fatalf("sign: %d %s (signer got %s)", status, body, sg.got.Data)
	}
	if status, _ := do(t, srv.Client(), "POST", srv.URL+"/v1/orders/sign", adminToken, "application/json", strings.NewReader(`{"app_id":"bad","data":{}}`)); status != 400 {
		t.Fatalf("invalid: %d", status)
	}
}
