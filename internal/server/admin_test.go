package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

type adminBundle struct {
	store  *state.Store
	sim    *douyinsim.Server
	srv    *httptest.Server
	wakes  *wakes
	policy reconcile.Policy
}

func newAdminBundle(t *testing.T) *adminBundle {
	t.Helper()
	sim, err := douyinsim.New(douyinsim.Config{Apps: []douyinsim.App{{AppID: appID, Salt: salt, Token: token}}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	client, err := douyin.New(douyin.Options{BaseURL: url, Timeout: 5 * time.Second, Apps: []douyin.App{{AppID: appID, Salt: salt, Token: token}}})
	if err != nil {
		t.Fatal(err)
	}
	fc := clock.NewFake(sim.Now())
	b := &adminBundle{store: storetest.Open(t, fc.Now), sim: sim, wakes: &wakes{}}
	p := reconcile.DefaultPolicy()
	p.Apps = map[string]reconcile.AppPolicy{appID: {SettlePeriod: 7 * 24 * time.Hour, SettleDesc: "test"}}
	h := NewAdminHandler(AdminOptions{
		Store: b.store, Douyin: client, Waker: b.wakes, Policy: p, Clock: fc, Metrics: metrics.New(),
		Token: adminToken, DefaultApp: appID,
	})
	b.policy = p
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *adminBundle) do(t *testing.T, method, path, bearer, body string) (int, string) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	return do(t, b.srv.Client(), method, b.srv.URL+path, bearer, "application/json", rd)
}

// apiError decodes {"error": ...}.
func apiError(t *testing.T, body string) string {
	t.Helper()
	var e APIError
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %q", body)
	}
	return e.Error
}

func TestAdminHandler_routes(t *testing.T) {
	b := newAdminBundle(t)
	ctx := context.Background()

	status, body := b.do(t, "POST", "/v1/orders", adminToken, `{"out_order_no":"o-1","total_amount":1000,"subject":"shoes","body":"red shoes"}`)
	if status != 201 {
		t.Fatalf("create order: %d %s", status, body)
	}
	var co CreateOrderResponse
	if err := json.Unmarshal([]byte(body), &co); err != nil || co.DouyinOrderID == "" || co.OrderToken == "" || co.OutOrderNo != "o-1" {
		t.Fatalf("create order answer %s", body)
	}
	o, err := b.store.GetOrder(ctx, appID, "o-1")
	if err != nil || o.DouyinOrderID != co.DouyinOrderID || o.TotalAmount != 1000 {
		t.Fatalf("order recorded as %+v (%v)", o, err)
	}
	if err := b.sim.Pay(appID, "o-1"); err != nil {
		t.Fatal(err)
	}

	status, body = b.do(t, "POST", "/v1/orders/o-1/refunds", adminToken, `{"key":"k1","amount":100,"reason":"size"}`)
	if status != 201 || !strings.Contains(body, `"k1"`) {
		t.Fatalf("declare refund: %d %s", status, body)
	}
	status, _ = b.do(t, "POST", "/v1/orders/o-1/refunds", adminToken, `{"key":"k1","amount":100,"reason":"size"}`)
	if status != 200 {
		t.Fatalf("repeated refund: %d, want 200", status)
	}
	status, body = b.do(t, "PUT", "/v1/orders/o-1/settlement", adminToken, `{"at":"2030-01-01T00:00:00Z","receivers":[{"merchant_uid":"m-1","amount":100}]}`)
	if status != 201 {
		t.Fatalf("declare settlement: %d %s", status, body)
	}
	if b.wakes.n.Load() != 3 {
		t.Fatalf("declarations woke the reconciler %d times, want 3", b.wakes.n.Load())
	}
	status, body = b.do(t, "GET", "/v1/orders/o-1", adminToken, "")
	if status != 200 {
		t.Fatalf("get order: %d %s", status, body)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"order", "refunds", "settlement", "calls", "callbacks", "events", "plan"} {
		if _, ok := got[k]; !ok {
			t.Fatalf("get order lacks %q: %s", k, body)
		}
	}
	status, body = b.do(t, "GET", "/v1/plan", adminToken, "")
	var rep api.PlanReport
	if status != 200 || json.Unmarshal([]byte(body), &rep) != nil || len(rep.Due) == 0 {
		t.Fatalf("plan: %d %s", status, body)
	}
	status, body = b.do(t, "GET", "/v1/status", adminToken, "")
	var sum api.Status
	if status != 200 || json.Unmarshal([]byte(body), &sum) != nil || len(sum.Summary.Refunds) != 1 ||
		sum.Summary.Refunds[0] != (api.Count{Phase: string(state.PhasePending), Count: 1, Amount: 100}) {
		t.Fatalf("status: %d %s", status, body)
	}
	if status, body = b.do(t, "GET", "/healthz", "", ""); status != 200 {
		t.Fatalf("healthz: %d %s", status, body)
	}
	if status, body = b.do(t, "GET", "/metrics", "", ""); status != 200 || !strings.Contains(body, "# TYPE") {
		t.Fatalf("metrics: %d", status)
	}
}

func TestAdminHandler_auth(t *testing.T) {
	b := newAdminBundle(t)
	before := fingerprint(t, b.store)
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/orders", `{"out_order_no":"o-1","total_amount":1000,"subject":"s","body":"b"}`},
		{"GET", "/v1/orders/o-1", ""},
		{"POST", "/v1/orders/o-1/refunds", `{"key":"k1","amount":100,"reason":"x"}`},
		{"PUT", "/v1/orders/o-1/settlement", `{}`},
		{"GET", "/v1/plan", ""},
		{"GET", "/v1/status", ""},
	}
	for _, r := range routes {
		for _, tok := range []string{"", "wrong-token-0123456789", adminToken + "x", strings.ToUpper(adminToken)} {
			status, body := b.do(t, r.method, r.path, tok, r.body)
			if status != 401 || apiError(t, body) != "missing or wrong bearer token" {
				t.Fatalf("%s %s with token %q: %d %s", r.method, r.path, tok, status, body)
			}
		}
		// A token in another scheme is refused too.
		req, _ := http.NewRequest(r.method, b.srv.URL+r.path, strings.NewReader(r.body))
		req.Header.Set("Authorization", "Basic "+adminToken)
		resp, err := b.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s %s with Basic: %d", r.method, r.path, resp.StatusCode)
		}
	}
	if fingerprint(t, b.store) != before || b.wakes.n.Load() != 0 {
		t.Fatal("unauthenticated requests changed the database or woke the reconciler")
	}
	if b.sim.Stats().Calls() != 0 {
		t.Fatal("an unauthenticated request reached Douyin")
	}
}

func TestAdminHandler_badInput(t *testing.T) {
	b := newAdminBundle(t)
	ctx := context.Background()
	if _, _, err := b.store.UpsertOrder(ctx, state.OrderInput{AppID: appID, OutOrderNo: "o-1", TotalAmount: 1000, Status: state.OrderSuccess}, b.sim.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.store.DeclareRefund(ctx, state.RefundWish{AppID: appID, OutOrderNo: "o-1", Key: "k1", Amount: 100, Reason: "x"}, b.sim.Now()); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, b.store)
	long := strings.Repeat("a", 200)
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"unknown order", "GET", "/v1/orders/o-none", "", 404, "history of order o-none: not found"},
		{"SQL in the path", "GET", "/v1/orders/o-1'%20OR%20'1'='1", "", 404, "history of order o-1' OR '1'='1: not found"},
		{"not JSON", "POST", "/v1/orders/o-1/refunds", "amount=5", 400, "request body: invalid character 'a' looking for beginning of value"},
		{"unknown field", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":5,"reason":"x","admin":true}`, 400, `request body: json: unknown field "admin"`},
		{"trailing data", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":5,"reason":"x"}{}`, 400, "request body: trailing data after the JSON object"},
		{"amount as string", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":"5","reason":"x"}`, 400, "request body: json: cannot unmarshal string into Go struct field RefundRequest.amount of type int64"},
		{"negative amount", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":-5,"reason":"x"}`, 400, "declare refund k2: amount: -5 is not positive"},
		{"zero amount", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":0,"reason":"x"}`, 400, "declare refund k2: amount: 0 is not positive"},
		{"amount beyond the order", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":901,"reason":"x"}`, 400, "declare refund k2: refund 901 exceeds what remains of order o-1: 900 of 1000 fen"},
		{"amount beyond int64", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":99999999999999999999,"reason":"x"}`, 400, "request body: json: cannot unmarshal number 99999999999999999999 into Go struct field RefundRequest.amount of type int64"},
		{"huge amount", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":9223372036854775807,"reason":"x"}`, 400, "declare refund k2: refund 9223372036854775807 exceeds what remains of order o-1: 900 of 1000 fen"},
		{"SQL-looking key", "POST", "/v1/orders/o-1/refunds", `{"key":"k'; DROP TABLE refunds;--","amount":5,"reason":"x"}`, 400, `declare refund k'; DROP TABLE refunds;--: key: "k'; DROP TABLE refunds;--" is not 1..60 of [0-9A-Za-z_-]`},
		{"over-long reason", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":5,"reason":"` + long + `"}`, 400, "declare refund k2: reason: 200 characters, at most 100"},
		{"key reused", "POST", "/v1/orders/o-1/refunds", `{"key":"k1","amount":7,"reason":"x"}`, 409, `declare refund k1: idempotency key reused with different content: key k1 was declared for order o-1, amount 100, reason "x"`},
		{"unknown app", "POST", "/v1/orders/o-1/refunds", `{"app_id":"tt-evil","key":"k2","amount":5,"reason":"x"}`, 400, `app_id: "tt-evil" is not configured in douyin.apps`},
		{"unknown app, settlement", "PUT", "/v1/orders/o-1/settlement", `{"app_id":"tt-evil"}`, 400, `app_id: "tt-evil" is not configured in douyin.apps`},
		{"unknown app, order", "POST", "/v1/orders", `{"app_id":"tt-evil","out_order_no":"o-2","total_amount":1,"subject":"s","body":"b"}`, 400, `app_id: "tt-evil" is not configured in douyin.apps`},
		{"settlement receivers too many", "PUT", "/v1/orders/o-1/settlement", `{"receivers":[{"merchant_uid":"a","amount":1},{"merchant_uid":"b","amount":1},{"merchant_uid":"c","amount":1},{"merchant_uid":"d","amount":1},{"merchant_uid":"e","amount":1}]}`, 400, "declare settlement of order o-1: receivers: 5 given, at most 4"},
		{"settlement negative receiver", "PUT", "/v1/orders/o-1/settlement", `{"receivers":[{"merchant_uid":"a","amount":-1}]}`, 400, "declare settlement of order o-1: receivers[0].amount: -1 is not positive"},
		{"settlement bad time", "PUT", "/v1/orders/o-1/settlement", `{"at":"tomorrow"}`, 400, ""},
		{"order zero amount", "POST", "/v1/orders", `{"out_order_no":"o-2","total_amount":0,"subject":"s","body":"b"}`, 400, "total_amount: 0 fen is out of range 1..10000000000"},
		{"order negative amount", "POST", "/v1/orders", `{"out_order_no":"o-2","total_amount":-1,"subject":"s","body":"b"}`, 400, "total_amount: -1 fen is out of range 1..10000000000"},
		{"order huge amount", "POST", "/v1/orders", `{"out_order_no":"o-2","total_amount":10000000001,"subject":"s","body":"b"}`, 400, "total_amount: 10000000001 fen is out of range 1..10000000000"},
		{"order long subject", "POST", "/v1/orders", `{"out_order_no":"o-2","total_amount":1,"subject":"` + long + `","body":"b"}`, 400, "subject: required, at most 128 bytes"},
		{"order SQL number", "POST", "/v1/orders", `{"out_order_no":"o-2' OR 1=1;--","total_amount":1,"subject":"s","body":"b"}`, 400, ""},
		{"order long number", "POST", "/v1/orders", `{"out_order_no":"` + long + `","total_amount":1,"subject":"s","body":"b"}`, 400, ""},
		{"order valid_time", "POST", "/v1/orders", `{"out_order_no":"o-2","total_amount":1,"subject":"s","body":"b","valid_time":5}`, 400, "valid_time: 5 seconds is out of range 300..172800"},
		{"oversized body", "POST", "/v1/orders/o-1/refunds", `{"key":"k2","amount":5,"reason":"` + strings.Repeat("x", 2<<20) + `"}`, 400, "request body: http: request body too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.do(t, tc.method, tc.path, adminToken, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			msg := apiError(t, body)
			if tc.want != "" && msg != tc.want {
				t.Fatalf("error:\n got  %q\n want %q", msg, tc.want)
			}
			if msg == "internal error" {
				t.Fatal("bad input answered as an internal error")
			}
			t.Logf("%d %s", status, msg)
		})
	}
	if after := fingerprint(t, b.store); after != before {
		t.Fatalf("bad requests changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if c := b.sim.Stats().Calls(); c != 0 {
		t.Fatalf("bad requests made %d Douyin calls", c)
	}
}
