package trade

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/provider"
)

// router answers each trade path with its own answer and records bodies.
type router struct {
	mu      sync.Mutex
	answers map[API]answer
	bodies  map[API][]map[string]any
}

func newRouter(t *testing.T, answers map[API]answer) (*router, *Adapter) {
	t.Helper()
	r := &router{answers: answers, bodies: map[API][]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		api := API(req.URL.Path[len(PathPrefix) : len(req.URL.Path)-1])
		r.mu.Lock()
		r.bodies[api] = append(r.bodies[api], body)
		a, ok := r.answers[api]
		r.mu.Unlock()
		if !ok {
			http.Error(w, "no answer", 500)
			return
		}
		w.WriteHeader(max(a.status, 200))
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return r, NewAdapter(newTestClient(t, srv.URL, nil), AdapterOptions{EntryPath: "pages/order"})
}

const paidOrder = `{"order_id":"motb1","out_order_no":"po-1","pay_status":"SUCCESS","pay_time":1767240000000,"pay_channel":2,"total_amount":3000,"discount_amount":0,
"item_order_list":[{"item_order_id":"i1","sku_id":"s","item_order_amount":1000},{"item_order_id":"i2","sku_id":"s","item_order_amount":2000}]}`

func TestAdapter_QueryOrder(t *testing.T) {
	r, a := newRouter(t, map[API]answer{APIOrderQuery: ok(paidOrder), APIQueryCPS: ok(`{"total_commission_amount":120,"cps_item_list":[]}`)})
	info, err := a.QueryOrder(context.Background(), provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1"})
	if err != nil {
		t.Fatal(err)
	}
	paid := time.UnixMilli(1767240000000).UTC()
	want := &provider.OrderInfo{Status: provider.OrderSuccess, DouyinOrderID: "motb1", TotalAmount: 3000, PaidAt: &paid, CPSShare: 120, CPSKnown: true, PayChannel: 2,
		Items: []provider.ItemOrder{{ID: "i1", SKUID: "s", Amount: 1000}, {ID: "i2", SKUID: "s", Amount: 2000}}}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("got %+v\nwant %+v", info, want)
	}
	if b := r.bodies[APIOrderQuery][0]; !reflect.DeepEqual(b, map[string]any{"out_order_no": "po-1"}) {
		t.Errorf("by out_order_no without Douyin's id: %v", b)
	}
	_, _ = a.QueryOrder(context.Background(), provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1", DouyinOrderID: "motb1"})
	if b := r.bodies[APIOrderQuery][1]; !reflect.DeepEqual(b, map[string]any{"order_id": "motb1"}) {
		t.Errorf("by order_id when known: %v", b)
	}
}

func TestAdapter_CreateRefund(t *testing.T) {
	t.Run("first and whole: refund_all", func(t *testing.T) {
		r, a := newRouter(t, map[API]answer{APIOrderQuery: ok(paidOrder), APIRefundQuery: ok(`{"refund_list":[]}`), APIRefundCreate: ok(`{"refund_id":"rf1"}`)})
		info, err := a.CreateRefund(context.Background(), provider.RefundRequest{Order: provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1"}, OutRefundNo: "pr-1", Amount: 3000})
		if err != nil || info.DouyinRefundID != "rf1" || info.Status != provider.StatusProcessing {
			t.Fatalf("%+v %v", info, err)
		}
		b := r.bodies[APIRefundCreate][0]
		if b["refund_all"] != true || b["order_id"] != "motb1" || b["item_order_detail"] != nil || b["order_entry_schema"] == nil {
			t.Errorf("body %v", b)
		}
	})
	t.Run("later: spread over what is left", func(t *testing.T) {
		r, a := newRouter(t, map[API]answer{APIOrderQuery: ok(paidOrder),
			APIRefundQuery:  ok(`{"refund_list":[{"refund_id":"rf0","refund_status":"SUCCESS","item_order_detail":[{"item_order_id":"i1","refund_amount":600}]},{"refund_id":"rfx","refund_status":"FAIL","item_order_detail":[{"item_order_id":"i2","refund_amount":2000}]}]}`),
			APIRefundCreate: ok(`{"refund_id":"rf2"}`)})
		_, err := a.CreateRefund(context.Background(), provider.RefundRequest{Order: provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1", DouyinOrderID: "motb1"}, OutRefundNo: "pr-2", Amount: 1000})
		if err != nil {
			t.Fatal(err)
		}
		want := []any{map[string]any{"item_order_id": "i1", "refund_amount": 400.0}, map[string]any{"item_order_id": "i2", "refund_amount": 600.0}}
		if got := r.bodies[APIRefundCreate][0]["item_order_detail"]; !reflect.DeepEqual(got, want) {
			t.Errorf("items %v, want %v", got, want)
		}
	})
	t.Run("given items, known order: no queries", func(t *testing.T) {
		r, a := newRouter(t, map[API]answer{APIRefundCreate: ok(`{"refund_id":"rf3"}`)})
		_, err := a.CreateRefund(context.Background(), provider.RefundRequest{Order: provider.OrderRef{AppID: "tt1", DouyinOrderID: "motb1"}, OutRefundNo: "pr-3", Amount: 5,
			Items: []provider.ItemAmount{{ItemOrderID: "i2", Amount: 5}}})
		if err != nil || len(r.bodies[APIOrderQuery]) != 0 || len(r.bodies[APIRefundQuery]) != 0 {
			t.Fatalf("%v, %d order queries", err, len(r.bodies[APIOrderQuery]))
		}
	})
	t.Run("more than is left", func(t *testing.T) {
		_, a := newRouter(t, map[API]answer{APIOrderQuery: ok(paidOrder),
			APIRefundQuery: ok(`{"refund_list":[{"refund_id":"rf0","refund_status":"PROCESSING","item_order_detail":[{"item_order_id":"i1","refund_amount":1000}]}]}`)})
		_, err := a.CreateRefund(context.Background(), provider.RefundRequest{Order: provider.OrderRef{AppID: "tt1", DouyinOrderID: "motb1"}, OutRefundNo: "pr-4", Amount: 2500})
		if c, reason := provider.Outcome(err); c != provider.Refused || reason != provider.NothingLeft {
			t.Fatalf("%v %v (%v)", c, reason, err)
		}
	})
}

func TestAdapter_Outcomes(t *testing.T) {
	settle := func(a *Adapter) error {
		_, err := a.CreateSettle(context.Background(), provider.SettleRequest{Order: provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1"}, OutSettleNo: "ps-1"})
		return err
	}
	query := func(a *Adapter) error {
		_, err := a.QueryOrder(context.Background(), provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1"})
		return err
	}
	cases := []struct {
		name   string
		api    API
		a      answer
		do     func(*Adapter) error
		class  provider.Class
		reason provider.Reason
	}{
		{"23111 exists", APISettleCreate, fail(400, 23111), settle, provider.Refused, provider.Exists},
		{"23112 nothing left", APISettleCreate, fail(400, 23112), settle, provider.Refused, provider.NothingLeft},
		{"23107 not yet", APISettleCreate, fail(400, 23107), settle, provider.Refused, provider.NotYet},
		{"23117 settled by Douyin", APISettleCreate, fail(400, 23117), settle, provider.Refused, provider.SettledByProvider},
		{"23118 whole barred", APISettleCreate, fail(400, 23118), settle, provider.Refused, ""},
		{"12001 retryable", APISettleCreate, fail(200, 12001), settle, provider.Retryable, ""},
		{"28003018 retryable", APISettleCreate, fail(200, 28003018), settle, provider.Retryable, ""},
		{"13000 unknown", APISettleCreate, fail(200, 13000), settle, provider.Unknown, ""},
		{"23000 unknown", APISettleCreate, fail(400, 23000), settle, provider.Unknown, ""},
		{"5xx unknown", APISettleCreate, answer{status: 503, body: "busy"}, settle, provider.Unknown, ""},
		{"no envelope unknown", APISettleCreate, answer{body: "<html>"}, settle, provider.Unknown, ""},
		{"undocumented on a write unknown", APISettleCreate, fail(400, 23999), settle, provider.Unknown, ""},
		{"10000 refused", APIOrderQuery, fail(200, 10000), query, provider.Refused, ""},
		{"20000 not found", APIOrderQuery, fail(200, 20000), query, provider.Refused, provider.NotFound},
		{"other on a read: not found yet", APIOrderQuery, fail(200, 40001), query, provider.Refused, provider.NotFound},
		{"token refused twice retryable", APIOrderQuery, fail(200, 28001008), query, provider.Retryable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, a := newRouter(t, map[API]answer{tc.api: tc.a})
			err := tc.do(a)
			c, reason := provider.Outcome(err)
			if c != tc.class || reason != tc.reason {
				t.Fatalf("%v %q (%v), want %v %q", c, reason, err, tc.class, tc.reason)
			}
			if tc.a.status < 500 && tc.a.body != "<html>" && provider.ErrNo(err) == -1 {
				t.Errorf("err_no lost: %v", err)
			}
		})
	}
}

func TestAdapter_QueryRefundAndSettle(t *testing.T) {
	_, a := newRouter(t, map[API]answer{
		APIRefundQuery: ok(`{"refund_list":[{"refund_id":"rf1","out_refund_no":"pr-1","refund_status":"PROCESSING","refund_total_amount":500,"merchant_audit_detail":{"audit_status":"DENY","deny_message":"no"}}]}`),
		APISettleQuery: ok(`[{"settle_id":"ots1","out_settle_no":"ps-1","settle_status":"SUCCESS","settle_amount":2900}]`)})
	ctx, o := context.Background(), provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1"}
	ri, err := a.QueryRefund(ctx, o, provider.ItemRef{No: "pr-1"})
	if err != nil || ri.Status != provider.StatusFail || ri.Message != "no" {
		t.Errorf("denied refund: %+v %v", ri, err)
	}
	if _, err := a.QueryRefund(ctx, o, provider.ItemRef{No: "pr-9"}); provider.OutcomeName(err) != "not_found" {
		t.Errorf("absent refund: %v", err)
	}
	si, err := a.QuerySettle(ctx, o, provider.ItemRef{No: "ps-1"})
	if err != nil || si.Status != provider.StatusSuccess || si.Amount != 2900 || si.DouyinSettleID != "ots1" {
		t.Errorf("settle: %+v %v", si, err)
	}
	if _, err := a.QuerySettle(ctx, o, provider.ItemRef{No: "ps-9"}); provider.OutcomeName(err) != "not_found" {
		t.Errorf("absent settlement: %v", err)
	}
}

func TestAdapter_Budget(t *testing.T) {
	_, a := newRouter(t, nil)
	if r := a.Rate("tt1", provider.CallCreateRefund); r != 30 {
		t.Errorf("rate %v, want the default 30", r)
	}
	if d := a.Delay("tt1", provider.CallQueryOrder); d != 0 {
		t.Errorf("delay %v before any call", d)
	}
}

type configTokens struct{}

func (configTokens) Token(context.Context, string) (string, error) {
	return "", ErrConfig
}

func (configTokens) Refused(context.Context, string, string) (string, error) {
	return "", ErrConfig
}

func TestAdapter_BadSecretIsConfiguration(t *testing.T) {
	a := NewAdapter(newTestClient(t, "http://127.0.0.1:1", configTokens{}), AdapterOptions{})
	_, err := a.QueryOrder(context.Background(), provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1"})
	if c, _ := provider.Outcome(err); c != provider.Configuration {
		t.Fatalf("%v (%v), want configuration", c, err)
	}
}

func TestRefundReason(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RefundReason
	}{
		{"用户申请", RefundReason{Code: 999, Text: "用户申请"}},
		{"102: 缺货", RefundReason{Code: 102, Text: "缺货"}},
		{"101:", RefundReason{Code: 101, Text: "其他"}},
		{"order 7: late", RefundReason{Code: 999, Text: "order 7: late"}},
		{"", RefundReason{Code: 999, Text: "其他"}},
	} {
		if got := refundReason(tc.in); got != tc.want {
			t.Errorf("refundReason(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// TestAdapter_QuerySettleByOrder: a migrated order's settlement and a
// settlement payd did not make are read by order_id; the latter picks the
// order's (or item's) best entry: SUCCESS before in progress before FAIL.
func TestAdapter_QuerySettleByOrder(t *testing.T) {
	r, a := newRouter(t, map[API]answer{APISettleQuery: ok(`[
		{"settle_id":"ots1","out_settle_no":"ots1","order_id":"motb1","settle_status":"FAIL","settle_amount":2900},
		{"settle_id":"ots2","out_settle_no":"ots2","order_id":"motb1","settle_status":"SUCCESS","settle_amount":2900},
		{"settle_id":"ots3","out_settle_no":"ps-1","order_id":"motb1","item_order_id":"i1","settle_status":"PROCESSING","settle_amount":900}]`)})
	ctx := context.Background()
	migrated := provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1", DouyinOrderID: "motb1", Migrated: true}
	si, err := a.QuerySettle(ctx, migrated, provider.ItemRef{No: "ps-1"})
	if err != nil || si.DouyinSettleID != "ots3" || si.Status != provider.StatusProcessing {
		t.Fatalf("migrated order's settlement: %+v %v", si, err)
	}
	o := provider.OrderRef{AppID: "tt1", OutOrderNo: "po-1", DouyinOrderID: "motb1"}
	si, err = a.QuerySettle(ctx, o, provider.ItemRef{ByOrder: true})
	if err != nil || si.DouyinSettleID != "ots2" || si.Status != provider.StatusSuccess || si.Amount != 2900 {
		t.Fatalf("Douyin's settlement of the order: %+v %v", si, err)
	}
	if si, err = a.QuerySettle(ctx, o, provider.ItemRef{ByOrder: true, ItemOrderID: "i1"}); err != nil || si.DouyinSettleID != "ots3" {
		t.Fatalf("Douyin's settlement of item i1: %+v %v", si, err)
	}
	if _, err := a.QuerySettle(ctx, o, provider.ItemRef{ByOrder: true, ItemOrderID: "i2"}); provider.OutcomeName(err) != "not_found" {
		t.Fatalf("no settlement of item i2: %v", err)
	}
	for i, b := range r.bodies[APISettleQuery] {
		if b["order_id"] != "motb1" || b["out_settle_no"] != nil {
			t.Errorf("query %d: %v, want by order_id only", i, b)
		}
	}
}
