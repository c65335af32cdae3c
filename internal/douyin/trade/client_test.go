package trade

import (
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// methodCase is one client method: the data served, the call, the body
// the server must see and what the call returns.
type methodCase struct {
	name string
	api  API
	data string
	call func(c *Client) (any, error)
	body map[string]any
	want any
}

func methodCases() []methodCase {
	order := `{"order_id":"motb1","out_order_no":"po-1","app_id":"tt1","merchant_uid":"7100","pay_status":"SUCCESS","pay_time":1767240000000,"pay_channel":1,"channel_pay_id":"42","trade_time":1767230000000,"total_amount":1990,"discount_amount":90,"item_order_list":[{"item_order_id":"motb2","sku_id":"s1","item_order_amount":1990}],"new_field":{"x":1}}`
	return []methodCase{
		{"order_query", APIOrderQuery, order, func(c *Client) (any, error) {
			o, err := c.QueryOrder(context.Background(), OrderQueryRequest{AppID: "tt1", OrderID: "motb1"})
			if err != nil {
				return nil, err
			}
			return []any{string(o.OrderID), o.Paid(), Millis(o.PayTime), string(o.ItemOrderList[0].ItemOrderID), string(o.Raw) == order}, nil
		}, map[string]any{"order_id": "motb1"}, []any{"motb1", int64(1900), time.Date(2026, 1, 1, 4, 0, 0, 0, time.UTC), "motb2", true}},
		{"query_cps", APIQueryCPS, `{"order_id":"motb1","total_commission_amount":"30","cps_item_list":[{"item_order_id":"motb2","commission_amount":30}]}`, func(c *Client) (any, error) {
			v, err := c.QueryCPS(context.Background(), QueryCPSRequest{AppID: "tt1", OutOrderNo: "po-1"})
			if err != nil {
				return nil, err
			}
			return []any{int64(v.TotalCommissionAmount), len(v.CPSItemList)}, nil
		}, map[string]any{"out_order_no": "po-1"}, []any{int64(30), 1}},
		{"refund_create", APIRefundCreate, `{"refund_id":"7400000000000000001","refund_audit_deadline":1767672000000}`, func(c *Client) (any, error) {
			v, err := c.CreateRefund(context.Background(), RefundCreateRequest{AppID: "tt1", OrderID: "motb1", OutRefundNo: "pr-1", RefundTotalAmount: 500,
				ItemOrderDetail: []ItemAmount{{"motb2", 500}}, RefundReason: []RefundReason{{999, "其他"}}})
			if err != nil {
				return nil, err
			}
			return string(v.RefundID), nil
		}, map[string]any{"order_id": "motb1", "out_refund_no": "pr-1", "refund_total_amount": 500.0,
			"item_order_detail": []any{map[string]any{"item_order_id": "motb2", "refund_amount": 500.0}},
			"refund_reason":     []any{map[string]any{"code": 999.0, "text": "其他"}}}, "7400000000000000001"},
		{"refund_query", APIRefundQuery, `{"refund_list":[{"refund_id":"r1","out_refund_no":"pr-1","refund_status":"SUCCESS","refund_total_amount":500,"merchant_audit_detail":{"need_refund_audit":2,"audit_status":"AGREE"}}]}`, func(c *Client) (any, error) {
			v, err := c.QueryRefund(context.Background(), RefundQueryRequest{AppID: "tt1", OutRefundNo: "pr-1"})
			if err != nil {
				return nil, err
			}
			return []any{string(v.RefundList[0].RefundStatus), string(v.RefundList[0].MerchantAuditDetail.AuditStatus)}, nil
		}, map[string]any{"out_refund_no": "pr-1"}, []any{"SUCCESS", "AGREE"}},
		{"refund_audit_callback", APIRefundAudit, "", func(c *Client) (any, error) {
			return nil, c.AuditRefund(context.Background(), RefundAuditRequest{AppID: "tt1", RefundID: "r1", RefundAuditStatus: 2, DenyMessage: "no"})
		}, map[string]any{"refund_id": "r1", "refund_audit_status": 2.0, "deny_message": "no"}, nil},
		{"settle_create", APISettleCreate, `{"settle_id":"ots1","wallet_settle_id":"w1"}`, func(c *Client) (any, error) {
			v, err := c.CreateSettle(context.Background(), SettleCreateRequest{AppID: "tt1", OutOrderNo: "po-1", OutSettleNo: "ps-1", SettleDesc: "结算",
				Receivers: []SettleReceiver{{"7200", 100}}})
			if err != nil {
				return nil, err
			}
			return string(v.SettleID), nil
		}, map[string]any{"out_order_no": "po-1", "out_settle_no": "ps-1", "settle_desc": "结算", "settle_params": `[{"merchant_uid":"7200","amount":100}]`}, "ots1"},
		{"settle_query", APISettleQuery, `[{"settle_id":"ots1","out_settle_id":"ps-1","out_order_id":"po-1","settle_status":"SUCCESS","settle_amount":1800}]`, func(c *Client) (any, error) {
			v, _, err := c.QuerySettle(context.Background(), SettleQueryRequest{AppID: "tt1", OrderID: "motb1", OutSettleNo: "ps-1"})
			if err != nil {
				return nil, err
			}
			return []any{string(v[0].OutSettleNo), string(v[0].OutOrderNo), int64(v[0].SettleAmount)}, nil
		}, map[string]any{"order_id": "motb1"}, []any{"ps-1", "po-1", int64(1800)}},
	}
}

func TestClient_Methods(t *testing.T) {
	cases := methodCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := ok(tc.data)
			if tc.data == "" {
				a = answer{body: `{"err_no":0,"err_msg":"success","log_id":"L0"}`}
			}
			f := newFake(t, a)
			got, err := tc.call(newTestClient(t, f.URL, nil))
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
			r := f.requests()
			if len(r) != 1 {
				t.Fatalf("%d requests, want 1", len(r))
			}
			want := seen{Method: "POST", Path: "/api/trade_basic/v1/developer/" + string(tc.api) + "/", Token: "clt.test", ContentType: "application/json", Body: tc.body}
			if !reflect.DeepEqual(r[0], want) {
				t.Errorf("request\n got %#v\nwant %#v", r[0], want)
			}
		})
	}
}

// TestClient_ErrorTable is the facts file's error table: every row, on a
// read and on a write, with HTTP 200 and 400.
func TestClient_ErrorTable(t *testing.T) {
	R, U, P := douyin.ClassRetryable, douyin.ClassUnknown, douyin.ClassPermanent
	rows := []struct {
		errNos      []int
		read, write Class
	}{
		{[]int{10000, 10002}, P, P},
		{[]int{12001, 28003018}, R, R},
		{[]int{13000, 28001005, 28001006, 23000}, U, U},
		{[]int{28001003, 28001008, 2190002, 2190008, 11002}, R, R},
		{[]int{20000, 20001}, P, P},
		{[]int{23101, 23102, 23024, 23025, 23107, 23111, 23112, 23113, 23117, 23118}, P, P},
		{[]int{99999, 1}, P, U},
	}
	for _, row := range rows {
		for _, n := range row.errNos {
			for _, status := range []int{200, 400} {
				for _, api := range []API{APIOrderQuery, APISettleCreate} {
					want := row.read
					if api.Write() {
						want = row.write
					}
					f := newFake(t, fail(status, n))
					c := newTestClient(t, f.URL, &staticTokens{tok: "a"})
					var err error
					if api == APIOrderQuery {
						_, err = c.QueryOrder(context.Background(), OrderQueryRequest{OrderID: "motb1"})
					} else {
						_, err = c.CreateSettle(context.Background(), SettleCreateRequest{OutOrderNo: "po", OutSettleNo: "ps", SettleDesc: "d"})
					}
					if got := Classify(err); got != want || ErrNo(err) != n || LogID(err) != "LOG-1" {
						t.Errorf("%s err_no %d http %d: class %v err_no %d log_id %q, want %v %d LOG-1", api, n, status, got, ErrNo(err), LogID(err), want, n)
					}
				}
			}
		}
	}
}

func TestClient_NoEnvelope(t *testing.T) {
	cases := []struct {
		name string
		a    answer
	}{
		{"html", answer{status: 200, body: "<html>502 Bad Gateway</html>"}},
		{"empty", answer{status: 200, body: ""}},
		{"bad json", answer{status: 200, body: `{"err_no":`}},
		{"no err_no", answer{status: 200, body: `{"data":{}}`}},
		{"5xx with envelope", answer{status: 502, body: `{"err_no":10000,"log_id":"LOG-1"}`}},
		{"5xx html", answer{status: 500, body: "<html>oops</html>"}},
		{"ok without data", answer{status: 200, body: `{"err_no":0,"log_id":"L"}`}},
		{"ok with http 400", answer{status: 400, body: `{"err_no":0,"log_id":"L","data":{}}`}},
		{"data not an object", ok(`[1,2]`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.a)
			_, err := newTestClient(t, f.URL, nil).QueryOrder(context.Background(), OrderQueryRequest{OrderID: "x"})
			if Classify(err) != douyin.ClassUnknown {
				t.Fatalf("class %v (%v), want unknown", Classify(err), err)
			}
		})
	}
}

func TestClient_SlowServerAndCancel(t *testing.T) {
	f := newFake(t, answer{delay: 5 * time.Second, body: `{}`})
	c, err := New(Options{BaseURL: f.URL, Tokens: &staticTokens{tok: "a"}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSettle(context.Background(), SettleCreateRequest{OutOrderNo: "po", OutSettleNo: "ps", SettleDesc: "d"})
	if Classify(err) != douyin.ClassUnknown {
		t.Errorf("timeout: class %v (%v), want unknown", Classify(err), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.QueryOrder(ctx, OrderQueryRequest{OrderID: "x"})
	if Classify(err) != douyin.ClassRetryable || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before sending: class %v (%v), want retryable", Classify(err), err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c2 := newTestClient(t, f.URL, nil)
	_, err = c2.QueryOrder(ctx, OrderQueryRequest{OrderID: "x"})
	if Classify(err) != douyin.ClassUnknown {
		t.Errorf("cancelled in flight: class %v (%v), want unknown", Classify(err), err)
	}
}

func TestClient_NotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = newTestClient(t, "http://"+addr, nil).CreateSettle(context.Background(), SettleCreateRequest{OutOrderNo: "po", OutSettleNo: "ps", SettleDesc: "d"})
	if Classify(err) != douyin.ClassRetryable {
		t.Errorf("connection refused: class %v (%v), want retryable", Classify(err), err)
	}
}

func TestClient_TokenRefusedResentOnce(t *testing.T) {
	f := newFake(t, fail(200, ErrNoTokenExpired), ok(`{"order_id":"motb1"}`))
	tokens := &staticTokens{tok: "old", next: "new"}
	o, err := newTestClient(t, f.URL, tokens).QueryOrder(context.Background(), OrderQueryRequest{OrderID: "motb1"})
	if err != nil || o.OrderID != "motb1" {
		t.Fatalf("query: %v", err)
	}
	r := f.requests()
	if len(r) != 2 || r[0].Token != "old" || r[1].Token != "new" || tokens.refused != 1 {
		t.Fatalf("requests %+v refused %d: want old then new, refused once", r, tokens.refused)
	}

	f2 := newFake(t, fail(200, ErrNoTokenInvalid))
	tokens2 := &staticTokens{tok: "old", next: "new"}
	_, err = newTestClient(t, f2.URL, tokens2).QueryOrder(context.Background(), OrderQueryRequest{OrderID: "motb1"})
	if Classify(err) != douyin.ClassRetryable || len(f2.requests()) != 2 || tokens2.refused != 1 {
		t.Fatalf("refused twice: class %v, %d requests, refused %d; want retryable, 2, 1", Classify(err), len(f2.requests()), tokens2.refused)
	}
}

func TestClient_BadRequests(t *testing.T) {
	f := newFake(t, ok(`{}`))
	c := newTestClient(t, f.URL, nil)
	ctx := context.Background()
	reason := []RefundReason{{101, "x"}}
	checks := map[string]error{
		"order both": func() error {
			_, err := c.QueryOrder(ctx, OrderQueryRequest{OrderID: "a", OutOrderNo: "b"})
			return err
		}(),
		"order none": func() error { _, err := c.QueryOrder(ctx, OrderQueryRequest{}); return err }(),
		"refund sum": func() error {
			_, err := c.CreateRefund(ctx, RefundCreateRequest{OrderID: "o", OutRefundNo: "r", RefundTotalAmount: 2, ItemOrderDetail: []ItemAmount{{"i", 1}}, RefundReason: reason})
			return err
		}(),
		"refund all+items": func() error {
			_, err := c.CreateRefund(ctx, RefundCreateRequest{OrderID: "o", OutRefundNo: "r", RefundTotalAmount: 1, RefundAll: true, ItemOrderDetail: []ItemAmount{{"i", 1}}, RefundReason: reason})
			return err
		}(),
		"refund no reason": func() error {
			_, err := c.CreateRefund(ctx, RefundCreateRequest{OrderID: "o", OutRefundNo: "r", RefundTotalAmount: 1, RefundAll: true})
			return err
		}(),
		"audit deny empty": c.AuditRefund(ctx, RefundAuditRequest{RefundID: "r", RefundAuditStatus: 2}),
		"settle desc": func() error {
			_, err := c.CreateSettle(ctx, SettleCreateRequest{OutOrderNo: "o", OutSettleNo: "s"})
			return err
		}(),
		"settle query none": func() error { _, _, err := c.QuerySettle(ctx, SettleQueryRequest{}); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrBadRequest) || Classify(err) != douyin.ClassPermanent {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

func TestClient_TooFrequentBacksOff(t *testing.T) {
	f := newFake(t, fail(http.StatusOK, ErrNoTooFrequent))
	c := newTestClient(t, f.URL, nil)
	before := c.Limiter().Rate("tt1", APIRefundCreate.Limit())
	_, err := c.CreateRefund(context.Background(), RefundCreateRequest{AppID: "tt1", OrderID: "o", OutRefundNo: "r", RefundTotalAmount: 1, RefundAll: true, RefundReason: []RefundReason{{101, "x"}}})
	if Classify(err) != douyin.ClassRetryable {
		t.Fatalf("class %v", Classify(err))
	}
	if after := c.Limiter().Rate("tt1", APIRefundCreate.Limit()); after >= before {
		t.Errorf("rate %v after 12001, want below %v", after, before)
	}
}
