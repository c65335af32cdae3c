package douyinsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// Test credentials. They are test values, not secrets.
const (
	testApp   = "tt-sim-app"
	testSalt  = "salt-for-tests"
	testToken = "token-for-tests"
	otherApp  = "tt-other-app"
)

var testStart = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// bundle is a running simulator with a real client pointed at it.
type bundle struct {
	sim    *Server
	url    string
	client *douyin.Client
}

// testConfig is a quiet, deterministic configuration: completion only when
// the clock is moved, no rate limits, fast callback retries.
func testConfig() Config {
	unlimited := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		unlimited[api] = -1
	}
	return Config{
		Apps: []App{
			{AppID: testApp, Salt: testSalt, Token: testToken},
			{AppID: otherApp, Salt: "other-salt", Token: "other-token"},
		},
		ProcessingDelay: time.Hour,
		Start:           testStart,
		CallbackScale:   0.001,
		Limits:          unlimited,
		Seed:            1,
	}
}

func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &bundle{sim: sim, url: url, client: newClient(t, url, 2*time.Second, douyin.App{AppID: testApp, Salt: testSalt, Token: testToken})}
}

func newClient(t *testing.T, url string, timeout time.Duration, apps ...douyin.App) *douyin.Client {
	t.Helper()
	limits := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		limits[api] = 100000
	}
	c, err := douyin.New(douyin.Options{BaseURL: url, Apps: apps, Limits: limits, Burst: 1000, Timeout: timeout})
	if err != nil {
		t.Fatalf("douyin.New: %v", err)
	}
	return c
}

func (b *bundle) seed(t *testing.T, o SeedOrder) {
	t.Helper()
	if o.AppID == "" {
		o.AppID = testApp
	}
	if err := b.sim.SeedOrder(o); err != nil {
		t.Fatalf("SeedOrder %s: %v", o.OutOrderNo, err)
	}
}

func (b *bundle) refund(orderNo, refundNo string, amount int64) (*douyin.CreateRefundResponse, error) {
	return b.client.CreateRefund(context.Background(), douyin.CreateRefundRequest{
		OutOrderNo: orderNo, OutRefundNo: refundNo, Reason: "test", RefundAmount: amount,
	})
}

func (b *bundle) queryRefund(t *testing.T, no string) *douyin.RefundInfo {
	t.Helper()
	info, err := b.client.QueryRefund(context.Background(), douyin.QueryRefundRequest{OutRefundNo: no})
	if err != nil {
		t.Fatalf("QueryRefund %s: %v", no, err)
	}
	return info
}

func (b *bundle) settle(orderNo, settleNo string, receivers ...douyin.Receiver) (*douyin.SettleResponse, error) {
	return b.client.Settle(context.Background(), douyin.SettleRequest{
		OutOrderNo: orderNo, OutSettleNo: settleNo, SettleDesc: "test settle", SettleParams: receivers,
	})
}

func (b *bundle) querySettle(t *testing.T, no string) *douyin.SettleInfo {
	t.Helper()
	info, err := b.client.QuerySettle(context.Background(), douyin.QuerySettleRequest{OutSettleNo: no})
	if err != nil {
		t.Fatalf("QuerySettle %s: %v", no, err)
	}
	return info
}

func (b *bundle) queryOrder(t *testing.T, no string) *douyin.QueryOrderResponse {
	t.Helper()
	resp, err := b.client.QueryOrder(context.Background(), douyin.QueryOrderRequest{OutOrderNo: no})
	if err != nil {
		t.Fatalf("QueryOrder %s: %v", no, err)
	}
	return resp
}

// ledgerOrder returns the ledger entry of an order.
func (b *bundle) ledgerOrder(t *testing.T, no string) LedgerOrder {
	t.Helper()
	for _, o := range b.sim.Ledger().Orders {
		if o.OutOrderNo == no {
			return o
		}
	}
	t.Fatalf("order %s not in the ledger", no)
	return LedgerOrder{}
}

func wantErrNo(t *testing.T, err error, want int) {
	t.Helper()
	if got := douyin.ErrNo(err); got != want {
		t.Fatalf("err_no = %d (err %v), want %d", got, err, want)
	}
}

func wantNoViolations(t *testing.T, s *Server) {
	t.Helper()
	if v := s.Check(); len(v) != 0 {
		t.Fatalf("Check = %q, want no violations", v)
	}
}

// waitUntil polls cond every 5 ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sink is a merchant callback endpoint that verifies and records what it
// receives.
type sink struct {
	srv   *httptest.Server
	token string

	mu  sync.Mutex
	got []received
	// answer decides the reply to the n-th attempt (1 based); nil acks all.
	answer func(n int) (status int, body string)
}

type received struct {
	at   time.Time
	body []byte
	cb   *douyin.Callback
	err  error
}

func newSink(t *testing.T, token string, answer func(n int) (int, string)) *sink {
	t.Helper()
	k := &sink{token: token, answer: answer}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cb, err := douyin.VerifyCallback(body, k.token)
		k.mu.Lock()
		k.got = append(k.got, received{at: time.Now(), body: body, cb: cb, err: err})
		n := len(k.got)
		k.mu.Unlock()
		status, reply := http.StatusOK, `{"err_no":0,"err_tips":"success"}`
		if k.answer != nil {
			status, reply = k.answer(n)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *sink) received() []received {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]received(nil), k.got...)
}

func (k *sink) count() int { return len(k.received()) }

// wantVerified fails unless every callback received carried a valid
// signature.
func (k *sink) wantVerified(t *testing.T) []*douyin.Callback {
	t.Helper()
	var out []*douyin.Callback
	for i, r := range k.received() {
		if r.err != nil {
			t.Fatalf("callback %d: %v (body %s)", i, r.err, r.body)
		}
		out = append(out, r.cb)
	}
	return out
}

// rawCall posts fields as a signed body, with the values as given (so a test
// can send a number as a string), and returns the decoded answer.
func rawCall(t *testing.T, baseURL string, api douyin.API, salt string, fields map[string]any) map[string]any {
	t.Helper()
	unsigned, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	params, err := douyin.BodyParams(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	signed := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		signed[k] = v
	}
	signed["sign"] = douyin.Sign(params, salt)
	body, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(baseURL+api.Path(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post %s: %v", api, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post %s: status %d", api, resp.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode %s answer: %v", api, err)
	}
	return out
}

// getJSON fetches a control endpoint and decodes it.
func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}

// postJSON posts body to a control endpoint and returns the status and the
// raw answer.
func postJSON(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("post %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
