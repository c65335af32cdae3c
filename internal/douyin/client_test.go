package douyin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Secrets that must never show up in an error or a formatted value.
const (
	testSalt  = "SALT-9f8e7d6c-never-print"
	testToken = "TOKEN-1a2b3c4d-never-print"
	testApp   = "tt-app-1"
)

// fakeDouyin is an httptest server that checks every request as Douyin would
// (POST, JSON, known path, sign recomputed with the app's SALT from what was
// received) and answers through reply.
type fakeDouyin struct {
	t     *testing.T
	srv   *httptest.Server
	salts map[string]string // app_id -> SALT
	reply func(w http.ResponseWriter, r *http.Request, api API, values map[string]string)

	mu  sync.Mutex
	got []received
}

// received is one request as the server saw it.
type received struct {
	api    API
	values map[string]string // every body field, sign included
}

func newFakeDouyin(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, api API, values map[string]string)) *fakeDouyin {
	t.Helper()
	f := &fakeDouyin{t: t, salts: map[string]string{testApp: testSalt}, reply: reply}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDouyin) serve(w http.ResponseWriter, r *http.Request) {
	api := API(strings.TrimPrefix(r.URL.Path, PathPrefix))
	switch {
	case r.Method != http.MethodPost:
		f.t.Errorf("%s: method %s, want POST", r.URL.Path, r.Method)
	case r.Header.Get("Content-Type") != "application/json":
		f.t.Errorf("%s: Content-Type %q, want application/json", r.URL.Path, r.Header.Get("Content-Type"))
	case !strings.HasPrefix(r.URL.Path, PathPrefix) || !knownAPI(api):
		f.t.Errorf("unexpected path %s", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("%s: read body: %v", api, err)
		return
	}
	values, err := decodeSent(body)
	if err != nil {
		f.t.Errorf("%s: %v", api, err)
		writeJSON(w, `{"err_no":2010,"err_tips":"bad body"}`)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, received{api: api, values: values})
	f.mu.Unlock()
	salt, ok := f.salts[values["app_id"]]
	if !ok {
		writeJSON(w, `{"err_no":2042,"err_tips":"app_id invalid"}`)
		return
	}
	if want := Sign(values, salt); values["sign"] != want {
		f.t.Errorf("%s: sign %q, recomputed %q from %s", api, values["sign"], want, body)
		writeJSON(w, `{"err_no":2008,"err_tips":"sign error"}`)
		return
	}
	f.reply(w, r, api, values)
}

func (f *fakeDouyin) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

func knownAPI(api API) bool {
	for _, a := range APIs {
		if a == api {
			return true
		}
	}
	return false
}

// decodeSent is sentValues for a handler goroutine, which may not call
// t.Fatal.
func decodeSent(body []byte) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decode body %s: %w", body, err)
	}
	out := make(map[string]string, len(m))
	for k, raw := range m {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out[k] = s
			continue
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("field %s: %s is neither string nor number", k, raw)
		}
		out[k] = n.String()
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

// replyFile answers each API with testdata/responses/<api>.json.
func replyFile(t *testing.T) func(http.ResponseWriter, *http.Request, API, map[string]string) {
	files := map[API]string{}
	for _, api := range APIs {
		files[api] = readTestdata(t, "responses/"+string(api)+".json")
	}
	return func(w http.ResponseWriter, _ *http.Request, api API, _ map[string]string) { writeJSON(w, files[api]) }
}

// fixedClock is a clock that only moves when told to.
type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFixedClock() *fixedClock {
	return &fixedClock{now: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestClient returns a client for testApp against baseURL; edit adjusts
// the options first.
func newTestClient(t *testing.T, baseURL string, edit func(*Options)) *Client {
	t.Helper()
	opts := Options{
		BaseURL: baseURL,
		Timeout: 2 * time.Second,
		Apps:    []App{{AppID: testApp, Salt: testSalt, Token: testToken}},
		Limits:  map[API]float64{}, // defaults
		Now:     newFixedClock().Now,
	}
	if edit != nil {
		edit(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// assertNoSecrets fails when err, in any rendering, carries a secret.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, testSalt) || strings.Contains(s, testToken) {
			t.Errorf("error leaks a secret: %s", s)
		}
	}
}

func TestClient_Methods(t *testing.T) {
	f := newFakeDouyin(t, replyFile(t))
	c := newTestClient(t, f.srv.URL, nil)
	ctx := context.Background()
	cases := []struct {
		api  API
		call func() (any, error)
		sent map[string]string // every field but sign
		want any
	}{
		{APICreateOrder, func() (any, error) {
			return c.CreateOrder(ctx, CreateOrderRequest{AppID: testApp, OutOrderNo: "ord-1", TotalAmount: 10_000_000_000,
				Subject: "肉夹馍", Body: "团购", ValidTime: 900, NotifyURL: "https://example.com/notify"})
		}, map[string]string{"app_id": testApp, "out_order_no": "ord-1", "total_amount": "10000000000", "subject": "肉夹馍",
			"body": "团购", "valid_time": "900", "notify_url": "https://example.com/notify"},
			&CreateOrderResponse{OrderID: "6819903302604491021",
				OrderToken: "CgsIARCABRgBIAQoARJOCkzjJ7vzk0Gq0UWVl7J2/3oA4gYgOb2dxVcq2WJ+6uJ9XzKgKjoG0bZD+dyrOHTxjVx+gpb4cnbXQyvDEw1XoSNpS6CKiE1C7uObPnFCGgA="}},
		{APIQueryOrder, func() (any, error) {
			return c.QueryOrder(ctx, QueryOrderRequest{AppID: testApp, OutOrderNo: "ord-20240501-0001"})
		}, map[string]string{"app_id": testApp, "out_order_no": "ord-20240501-0001"},
			&QueryOrderResponse{OutOrderNo: "ord-20240501-0001", OrderID: "N7055227341234567890",
				PaymentInfo: PaymentInfo{TotalFee: 10_000_000_000, OrderStatus: StatusSuccess, PayTime: "2024-05-01 08:30:00", Way: "10",
					ChannelNo: "4200001234202405010000000001", ChannelGatewayNo: "12106090149746618265",
					SellerUID: "69664700453838051970", CPExtra: "refund-test"},
				CPSInfo: `{"share_amount":"1234","douyin_id":"dy42","nickname":"达人"}`}},
		{APICreateRefund, func() (any, error) {
			return c.CreateRefund(ctx, CreateRefundRequest{AppID: testApp, OutOrderNo: "ord-1", OutRefundNo: "ord-1-r1-1",
				Reason: "顾客取消", RefundAmount: 1_000_000, AllSettle: true})
		}, map[string]string{"app_id": testApp, "out_order_no": "ord-1", "out_refund_no": "ord-1-r1-1", "reason": "顾客取消",
			"refund_amount": "1000000", "all_settle": "1"},
			&CreateRefundResponse{RefundNo: "7202226296817125691"}},
		{APIQueryRefund, func() (any, error) {
			return c.QueryRefund(ctx, QueryRefundRequest{AppID: testApp, OutRefundNo: "ord-1-r1-1"})
		}, map[string]string{"app_id": testApp, "out_refund_no": "ord-1-r1-1"},
			&RefundInfo{RefundNo: "7202226296817125691", RefundAmount: 1_000_000, RefundStatus: StatusSuccess,
				RefundedAt: 1676899286, IsAllSettled: true}},
		{APISettle, func() (any, error) {
			return c.Settle(ctx, SettleRequest{AppID: testApp, OutSettleNo: "ord-1-s1", OutOrderNo: "ord-1", SettleDesc: "T+7 结算",
				SettleParams: []Receiver{{MerchantUID: "m-42", Amount: 60}}})
		}, map[string]string{"app_id": testApp, "out_settle_no": "ord-1-s1", "out_order_no": "ord-1", "settle_desc": "T+7 结算",
			"settle_params": `[{"merchant_uid":"m-42","amount":60}]`},
			&SettleResponse{SettleNo: "6830098766183483650"}},
		{APIQuerySettle, func() (any, error) {
			return c.QuerySettle(ctx, QuerySettleRequest{AppID: testApp, OutSettleNo: "ord-1-s1"})
		}, map[string]string{"app_id": testApp, "out_settle_no": "ord-1-s1"},
			&SettleInfo{SettleNo: "6830098766183483650", SettleAmount: 9_999_998_766, SettleStatus: StatusSuccess,
				SettledAt: 1715100000, Rake: 100, SettleDetail: "商户号69664700453838051970-分账金额(分)9999998766"}},
		{APIUnsettleAmount, func() (any, error) {
			return c.UnsettleAmount(ctx, UnsettleAmountRequest{AppID: testApp, OutOrderNo: "ord-20240501-0001"})
		}, map[string]string{"app_id": testApp, "out_order_no": "ord-20240501-0001"},
			&UnsettleAmountResponse{OutOrderNo: "ord-20240501-0001", UnsettleAmount: 9_999_998_766}},
	}
	if len(cases) != len(APIs) {
		t.Fatalf("%d cases for %d APIs", len(cases), len(APIs))
	}
	for i, tc := range cases {
		t.Run(string(tc.api), func(t *testing.T) {
			got, err := tc.call()
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("result =\n%+v\nwant\n%+v", got, tc.want)
			}
			reqs := f.requests()
			if len(reqs) != i+1 {
				t.Fatalf("server saw %d requests, want %d", len(reqs), i+1)
			}
			r := reqs[i]
			if r.api != tc.api {
				t.Errorf("path %s, want %s", r.api, tc.api)
			}
			delete(r.values, "sign")
			if !reflect.DeepEqual(r.values, tc.sent) {
				t.Errorf("sent %q, want %q", r.values, tc.sent)
			}
		})
	}
}

func TestClient_UnsettleAmountTopLevel(t *testing.T) {
	f := newFakeDouyin(t, func(w http.ResponseWriter, _ *http.Request, _ API, _ map[string]string) {
		writeJSON(w, `{"err_no":0,"err_tips":"","out_order_no":"o1","unsettle_amount":4200}`)
	})
	c := newTestClient(t, f.srv.URL, nil)
	got, err := c.UnsettleAmount(context.Background(), UnsettleAmountRequest{OutOrderNo: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.UnsettleAmount != 4200 || got.OutOrderNo != "o1" {
		t.Errorf("UnsettleAmount = %+v, want 4200 for o1", got)
	}
}

func TestClient_Apps(t *testing.T) {
	f := newFakeDouyin(t, replyFile(t))
	f.salts["tt-app-2"] = "SALT-two"
	c := newTestClient(t, f.srv.URL, func(o *Options) {
		o.Apps = append(o.Apps, App{AppID: "tt-app-2", Salt: "SALT-two", ThirdpartyID: "tp-9"})
	})
	ctx := context.Background()
	if _, err := c.QueryOrder(ctx, QueryOrderRequest{AppID: "tt-app-2", OutOrderNo: "o2"}); err != nil {
		t.Fatalf("app 2: %v", err)
	}
	if _, err := c.QueryOrder(ctx, QueryOrderRequest{AppID: testApp, OutOrderNo: "o1"}); err != nil {
		t.Fatalf("app 1: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(reqs))
	}
	if v := reqs[0].values; v["app_id"] != "tt-app-2" || v["thirdparty_id"] != "tp-9" {
		t.Errorf("app 2 sent %q, want app_id tt-app-2 and thirdparty_id tp-9", v)
	}
	if _, ok := reqs[1].values["thirdparty_id"]; ok {
		t.Errorf("app 1 sent a thirdparty_id: %q", reqs[1].values)
	}

	// With two apps an empty AppID is ambiguous; an unknown one is refused.
	for _, id := range []string{"", "tt-unknown"} {
		_, err := c.QueryOrder(ctx, QueryOrderRequest{AppID: id, OutOrderNo: "o"})
		if !errors.Is(err, ErrUnknownApp) || Classify(err) != ClassConfig {
			t.Errorf("AppID %q: err = %v (class %v), want ErrUnknownApp, config", id, err, Classify(err))
		}
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("unknown apps reached the server: %d requests", n)
	}

	// With one app an empty AppID means that app.
	one := newTestClient(t, f.srv.URL, nil)
	if _, err := one.QueryOrder(ctx, QueryOrderRequest{OutOrderNo: "o"}); err != nil {
		t.Errorf("single app, empty AppID: %v", err)
	}
	if a, ok := one.App(""); !ok || a.AppID != testApp {
		t.Errorf("App(\"\") = %v, %v; want %s", a, ok, testApp)
	}
}

// TestClient_ErrorAnswers covers every answer Douyin can give to a request
// that reached it, and checks the class the reconciler will act on.
func TestClient_ErrorAnswers(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		class  Class
		errNo  int // ErrNo(err)
		http   int // TransportError.Status, 0 when not a TransportError or no status
	}{
		{"1000 internal error", 200, `{"err_no":1000,"err_tips":"internal error"}`, ClassUnknown, 1000, 0},
		{"1001 busy", 200, `{"err_no":1001,"err_tips":"busy"}`, ClassRetryable, 1001, 0},
		{"2000 not found", 200, `{"err_no":2000,"err_tips":"order not exist"}`, ClassPermanent, 2000, 0},
		{"2008 bad signature", 200, `{"err_no":2008,"err_tips":"sign error"}`, ClassConfig, 2008, 0},
		{"2010 bad parameter", 200, `{"err_no":2010,"err_tips":"param error"}`, ClassPermanent, 2010, 0},
		{"2042 bad app_id", 200, `{"err_no":2042,"err_tips":"app_id invalid"}`, ClassConfig, 2042, 0},
		{"2047 bad thirdparty_id", 200, `{"err_no":2047,"err_tips":"thirdparty_id invalid"}`, ClassConfig, 2047, 0},
		{"2048 no authority", 200, `{"err_no":2048,"err_tips":"no authority"}`, ClassConfig, 2048, 0},
		{"3101 refund not found", 200, `{"err_no":3101,"err_tips":"refund not exist"}`, ClassPermanent, 3101, 0},
		{"HTTP 502", 502, `<html><body>502 Bad Gateway</body></html>`, ClassUnknown, -1, 502},
		{"HTTP 500 with a success body", 500, `{"err_no":0,"err_tips":"","refund_no":"x"}`, ClassUnknown, -1, 500},
		{"HTML instead of JSON", 200, `<!DOCTYPE html><html><body>maintenance</body></html>`, ClassUnknown, -1, 0},
		{"empty body", 200, ``, ClassUnknown, -1, 0},
		{"truncated JSON", 200, `{"err_no":0,"refund_no":"7`, ClassUnknown, -1, 0},
		{"no err_no", 200, `{"refund_no":"7202226296817125691"}`, ClassUnknown, -1, 0},
		{"err_no 0 but data of the wrong type", 200, `{"err_no":0,"err_tips":"","refund_no":7202226296817125691}`, ClassUnknown, -1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDouyin(t, func(w http.ResponseWriter, _ *http.Request, _ API, _ map[string]string) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			clock := newFixedClock()
			var infos []CallInfo
			c := newTestClient(t, f.srv.URL, func(o *Options) {
				o.Now = clock.Now
				o.Observe = func(ci CallInfo) { infos = append(infos, ci) }
			})
			_, err := c.CreateRefund(context.Background(), CreateRefundRequest{
				OutOrderNo: "o1", OutRefundNo: "o1-r-1", Reason: "r", RefundAmount: 100})
			if err == nil {
				t.Fatal("no error")
			}
			assertNoSecrets(t, err)
			if got := Classify(err); got != tc.class {
				t.Errorf("Classify(%v) = %v, want %v", err, got, tc.class)
			}
			if got := ErrNo(err); got != tc.errNo {
				t.Errorf("ErrNo = %d, want %d", got, tc.errNo)
			}
			var te *TransportError
			if errors.As(err, &te) {
				if te.Status != tc.http || !te.Sent {
					t.Errorf("TransportError status %d sent %v, want status %d sent true", te.Status, te.Sent, tc.http)
				}
			} else if tc.errNo < 0 {
				t.Errorf("err %T (%v), want a TransportError", err, err)
			}
			if len(infos) != 1 || infos[0].Class != tc.class || infos[0].ErrNo != tc.errNo ||
				infos[0].API != APICreateRefund || infos[0].AppID != testApp {
				t.Errorf("observed %+v, want one call of class %v, err_no %d", infos, tc.class, tc.errNo)
			}
			wantRate := DefaultLimits[APICreateRefund]
			if tc.errNo == ErrNoBusy {
				wantRate /= 2
			}
			if got := c.Limiter().Rate(testApp, APICreateRefund); got != wantRate {
				t.Errorf("create_refund rate after the answer = %v, want %v", got, wantRate)
			}
			if got := c.Limiter().Rate(testApp, APIQueryRefund); got != DefaultLimits[APIQueryRefund] {
				t.Errorf("query_refund rate = %v, want it untouched at %v", got, DefaultLimits[APIQueryRefund])
			}
		})
	}
}

func TestClient_Redirect(t *testing.T) {
	var elsewhere int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			mu.Lock()
			elsewhere++
			mu.Unlock()
			writeJSON(w, `{"err_no":0}`)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, nil)
	_, err := c.QueryOrder(context.Background(), QueryOrderRequest{OutOrderNo: "o"})
	var te *TransportError
	if !errors.As(err, &te) || te.Status != http.StatusFound || Classify(err) != ClassUnknown {
		t.Fatalf("err = %v, want an unknown TransportError with status 302", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if elsewhere != 0 {
		t.Errorf("the redirect was followed %d times", elsewhere)
	}
}

// TestClient_TransportFailures covers calls that got no answer: which of
// them certainly never reached Douyin decides whether a write may be resent.
func TestClient_TransportFailures(t *testing.T) {
	ctx := context.Background()
	refund := CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: "o1-r-1", Reason: "r", RefundAmount: 100}

	// check asserts the class and, for a TransportError, whether it says sent.
	check := func(t *testing.T, err error, class Class, sent bool) {
		t.Helper()
		assertNoSecrets(t, err)
		if got := Classify(err); got != class {
			t.Errorf("Classify(%v) = %v, want %v", err, got, class)
		}
		var te *TransportError
		if !errors.As(err, &te) {
			t.Fatalf("err %T (%v), want a TransportError", err, err)
		}
		if te.Sent != sent {
			t.Errorf("Sent = %v, want %v (%v)", te.Sent, sent, err)
		}
	}

	t.Run("slow server hits the timeout", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		f := newFakeDouyin(t, func(w http.ResponseWriter, r *http.Request, _ API, _ map[string]string) {
			arrived <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		c := newTestClient(t, f.srv.URL, func(o *Options) { o.Timeout = 200 * time.Millisecond })
		start := time.Now()
		_, err := c.CreateRefund(ctx, refund)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("call took %v with a 200ms timeout", d)
		}
		check(t, err, ClassUnknown, true)
		select {
		case <-arrived:
		default:
			t.Error("the request never reached the server")
		}
	})

	t.Run("context cancelled before sending", func(t *testing.T) {
		f := newFakeDouyin(t, replyFile(t))
		c := newTestClient(t, f.srv.URL, nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.CreateRefund(cctx, refund)
		check(t, err, ClassRetryable, false)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want it to wrap context.Canceled", err)
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("server saw %d requests", n)
		}
	})

	t.Run("context cancelled in flight", func(t *testing.T) {
		arrived := make(chan struct{})
		f := newFakeDouyin(t, func(w http.ResponseWriter, r *http.Request, _ API, _ map[string]string) {
			close(arrived)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		c := newTestClient(t, f.srv.URL, nil)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
			}
			cancel()
		}()
		_, err := c.CreateRefund(cctx, refund)
		check(t, err, ClassUnknown, true)
	})

	t.Run("deadline too short for a rate-limit token", func(t *testing.T) {
		f := newFakeDouyin(t, replyFile(t))
		c := newTestClient(t, f.srv.URL, func(o *Options) { o.Limits = map[API]float64{APICreateRefund: 0.5} })
		if _, err := c.CreateRefund(ctx, refund); err != nil {
			t.Fatalf("first call: %v", err)
		}
		dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := c.CreateRefund(dctx, refund)
		check(t, err, ClassRetryable, false)
		if n := len(f.requests()); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		c := newTestClient(t, "http://"+addr, nil)
		_, err = c.CreateRefund(ctx, refund)
		check(t, err, ClassRetryable, false)
	})

	t.Run("TLS handshake fails: the request was never written", func(t *testing.T) {
		f := newFakeDouyin(t, replyFile(t))
		c := newTestClient(t, strings.Replace(f.srv.URL, "http://", "https://", 1), nil)
		_, err := c.CreateRefund(ctx, refund)
		check(t, err, ClassRetryable, false)
		if n := len(f.requests()); n != 0 {
			t.Errorf("server saw %d requests", n)
		}
	})

	t.Run("custom transport: dial failure is not sent", func(t *testing.T) {
		c := newTestClient(t, "http://douyin.invalid", func(o *Options) {
			o.HTTPClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route")}
			})}
		})
		_, err := c.CreateRefund(ctx, refund)
		check(t, err, ClassRetryable, false)
	})

	t.Run("custom transport: other failure may have been sent", func(t *testing.T) {
		c := newTestClient(t, "http://douyin.invalid", func(o *Options) {
			o.HTTPClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return nil, errors.New("connection reset by peer")
			})}
		})
		_, err := c.CreateRefund(ctx, refund)
		check(t, err, ClassUnknown, true)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClient_RefusesInvalidUTF8(t *testing.T) {
	f := newFakeDouyin(t, replyFile(t))
	c := newTestClient(t, f.srv.URL, nil)
	_, err := c.CreateRefund(context.Background(), CreateRefundRequest{
		OutOrderNo: "o1", OutRefundNo: "o1-r-1", Reason: "bad \xff byte", RefundAmount: 100})
	if err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("err = %v, want one naming the reason field", err)
	}
	if got := Classify(err); got != ClassPermanent {
		t.Errorf("Classify = %v, want permanent", got)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestNew_Options(t *testing.T) {
	good := App{AppID: "tt1", Salt: testSalt, Token: testToken}
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no base URL", Options{Apps: []App{good}}, "base URL"},
		{"bad scheme", Options{BaseURL: "ftp://x", Apps: []App{good}}, "base URL"},
		{"no app_id", Options{BaseURL: "http://x", Apps: []App{{Salt: testSalt}}}, "apps[0].app_id"},
		{"no salt", Options{BaseURL: "http://x", Apps: []App{good, {AppID: "tt2", Token: testToken}}}, "apps[1].salt"},
		{"app twice", Options{BaseURL: "http://x", Apps: []App{good, good}}, "apps[1].app_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: err = %v, want one naming %s", err, tc.want)
			}
			assertNoSecrets(t, err)
		})
	}
	// No app: a config of trade apps only still has the client, whose
	// limiter the trade client shares; every call is refused unsent.
	none, err := New(Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatalf("New without apps: %v", err)
	}
	if _, err := none.QueryOrder(context.Background(), QueryOrderRequest{AppID: "tt1", OutOrderNo: "o"}); !errors.Is(err, ErrUnknownApp) || Classify(err) != ClassConfig {
		t.Errorf("a call without apps: err = %v (class %v), want ErrUnknownApp, config", err, Classify(err))
	}
	c, err := New(Options{BaseURL: "https://x/", Apps: []App{good}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.http.Timeout != DefaultTimeout || c.base != "https://x" {
		t.Errorf("timeout %v base %q, want %v and no trailing slash", c.http.Timeout, c.base, DefaultTimeout)
	}
}

func TestApp_FormatHidesSecrets(t *testing.T) {
	a := App{AppID: "tt1", Salt: testSalt, Token: testToken, ThirdpartyID: "tp"}
	opts := Options{BaseURL: "http://x", Apps: []App{a}}
	for _, s := range []string{
		fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a), fmt.Sprintf("%v %+v", &a, &a),
		fmt.Sprintf("%v %+v", opts, opts),
	} {
		if strings.Contains(s, testSalt) || strings.Contains(s, testToken) {
			t.Errorf("formatted app leaks a secret: %s", s)
		}
		if !strings.Contains(s, "tt1") {
			t.Errorf("formatted app lacks its id: %s", s)
		}
	}
}

func TestClass_String(t *testing.T) {
	want := map[Class]string{ClassOK: "ok", ClassRetryable: "retryable", ClassUnknown: "unknown",
		ClassPermanent: "permanent", ClassConfig: "config", Class(99): "class(99)"}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), c.String(), s)
		}
	}
	if Classify(nil) != ClassOK || ErrNo(nil) != -1 {
		t.Errorf("Classify(nil) = %v, ErrNo(nil) = %d; want ok, -1", Classify(nil), ErrNo(nil))
	}
	wrapped := fmt.Errorf("create refund r1: %w", &APIError{API: APICreateRefund, ErrNo: 2010, ErrTips: "bad"})
	if Classify(wrapped) != ClassPermanent || ErrNo(wrapped) != 2010 {
		t.Errorf("wrapped APIError: class %v err_no %d", Classify(wrapped), ErrNo(wrapped))
	}
}
