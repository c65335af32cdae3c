package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

// cbBundle is a callback handler on a real store, served on loopback.
type cbBundle struct {
	store *state.Store
	wakes *wakes
	srv   *httptest.Server
	m     *metrics.Metrics
	clock *clock.Fake
}

func newCallbackBundle(t *testing.T, rate float64, burst int) *cbBundle {
	t.Helper()
	fc := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := &cbBundle{store: storetest.Open(t, fc.Now), wakes: &wakes{}, m: metrics.New(), clock: fc}
	h := NewCallbackHandler(CallbackOptions{
		Inbox: b.store, Tokens: map[string]string{appID: token}, Waker: b.wakes, Clock: fc,
		Metrics: b.m, Rate: rate, Burst: burst,
	})
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *cbBundle) post(t *testing.T, body []byte) (int, string) {
	t.Helper()
	return do(t, b.srv.Client(), "POST", b.srv.URL+"/douyin/notify", "", "application/json", bytes.NewReader(body))
}

// signed builds a callback signed with tok.
func signed(t *testing.T, typ douyin.CallbackType, msg any, tok, nonce string) []byte {
	t.Helper()
	b, err := douyin.EncodeCallback(typ, msg, tok, "1767225600", nonce)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func refundMsg(app, no string) douyin.RefundMsg {
	return douyin.RefundMsg{AppID: app, CPRefundNo: no, Status: "SUCCESS", RefundAmount: 100, RefundedAt: 1767225600, RefundNo: "rn-1"}
}

// errTips decodes the handler's JSON answer.
func errTips(t *testing.T, body string) (int, string) {
	t.Helper()
	var a struct {
		ErrNo   int    `json:"err_no"`
		ErrTips string `json:"err_tips"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("answer is not JSON: %q", body)
	}
	return a.ErrNo, a.ErrTips
}

func TestCallbackHandler_hostile(t *testing.T) {
	b := newCallbackBundle(t, 1000, 1000)
	ctx := context.Background()
	now := b.clock.Now()
	// A known order with a refund in flight: the subject forgers aim at.
	if _, _, err := b.store.UpsertOrder(ctx, state.OrderInput{AppID: appID, OutOrderNo: "o-1", TotalAmount: 1000, Status: state.OrderSuccess}, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.store.DeclareRefund(ctx, state.RefundWish{AppID: appID, OutOrderNo: "o-1", Key: "k1", Amount: 100, Reason: "x"}, now); err != nil {
		t.Fatal(err)
	}
	genuine := signed(t, douyin.CallbackRefund, refundMsg(appID, "k1-1"), token, "n-1")
	truncated := genuine[:len(genuine)/2]
	var env map[string]any
	if err := json.Unmarshal(genuine, &env); err != nil {
		t.Fatal(err)
	}
	env["msg_signature"] = strings.Repeat("0", 40)
	forged, _ := json.Marshal(env)
	// A forger who changes the msg but keeps a real signature.
	env = map[string]any{}
	_ = json.Unmarshal(genuine, &env)
	env["msg"] = strings.Replace(env["msg"].(string), `"refund_amount":100`, `"refund_amount":99999`, 1)
	tampered, _ := json.Marshal(env)
	oversized := signed(t, douyin.CallbackRefund, douyin.RefundMsg{AppID: appID, CPRefundNo: "k1-1", Message: strings.Repeat("x", douyin.MaxCallbackBody)}, token, "n-2")

	before := fingerprint(t, b.store)
	tests := []struct {
		name   string
		body   []byte
		status int
		tips   string
	}{
		{"forged signature", forged, 401, "signature check failed"},
		{"tampered msg", tampered, 401, "signature check failed"},
		{"signed with another token", signed(t, douyin.CallbackRefund, refundMsg(appID, "k1-1"), "not-the-token-0000", "n-3"), 401, "signature check failed"},
		{"truncated", truncated, 400, "malformed callback: decode envelope: unexpected end of JSON input"},
		{"oversized", oversized, 413, "callback body over 64 KiB or unreadable"},
		{"not JSON", []byte("<xml>hello</xml>"), 400, "malformed callback: decode envelope: invalid character '<' looking for beginning of value"},
		{"empty", nil, 400, "malformed callback: decode envelope: unexpected end of JSON input"},
		{"missing signature", []byte(`{"timestamp":"1","nonce":"n","type":"refund","msg":"{}"}`), 400, "malformed callback: msg_signature: required"},
		{"unknown type", signed(t, "chargeback", refundMsg(appID, "k1-1"), token, "n-4"), 400, ""},
		{"unknown app", signed(t, douyin.CallbackRefund, refundMsg("tt-evil", "k1-1"), token, "n-5"), 400, "callback for an app_id payd does not serve"},
		{"unknown order, forged", signed(t, douyin.CallbackPayment, douyin.PaymentMsg{AppID: appID, CPOrderNo: "o-unknown", TotalAmount: 1, Status: "SUCCESS"}, "guess-0000000000", "n-6"), 401, "signature check failed"},
		{"SQL in the subject, forged", signed(t, douyin.CallbackRefund, refundMsg(appID, "k1-1'; DROP TABLE refunds;--"), "guess-0000000000", "n-7"), 401, "signature check failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.post(t, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, body)
			}
			errNo, tips := errTips(t, body)
			if errNo == 0 {
				t.Fatalf("refused callback answered err_no 0: Douyin would take it as delivered")
			}
			if tc.tips != "" && tips != tc.tips {
				t.Fatalf("err_tips %q, want %q", tips, tc.tips)
			}
			if tc.tips == "" && !strings.HasPrefix(tips, "malformed callback: ") {
				t.Fatalf("err_tips %q", tips)
			}
			if strings.Contains(body, token) || strings.Contains(body, salt) {
				t.Fatal("answer holds a secret")
			}
		})
	}
	if after := fingerprint(t, b.store); after != before {
		t.Fatalf("hostile callbacks changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := b.wakes.n.Load(); n != 0 {
		t.Fatalf("hostile callbacks woke the reconciler %d times", n)
	}
	if n := testutilCount(t, b.m, "bad_signature"); n != 5 {
		t.Fatalf("payd_callbacks_total{result=bad_signature} = %v, want 5", n)
	}

	t.Run("genuine then replayed", func(t *testing.T) {
		status, body := b.post(t, genuine)
		if status != 200 || body != `{"err_no":0,"err_tips":"success"}` {
			t.Fatalf("genuine: %d %s", status, body)
		}
		if n := b.wakes.n.Load(); n != 1 {
			t.Fatalf("genuine callback woke %d times, want 1", n)
		}
		// The callback is a hint only: the refund's phase is untouched.
		h, err := b.store.History(ctx, appID, "o-1")
		if err != nil {
			t.Fatal(err)
		}
		if h.Refunds[0].Phase != state.PhasePending || len(h.Callbacks) != 1 {
			t.Fatalf("after a genuine callback: phase %s, %d callbacks", h.Refunds[0].Phase, len(h.Callbacks))
		}
		mid := fingerprint(t, b.store)
		for i := 0; i < 3; i++ {
			status, body = b.post(t, genuine)
			if status != 200 || body != `{"err_no":0,"err_tips":"success"}` {
				t.Fatalf("replay: %d %s (Douyin must see it acknowledged)", status, body)
			}
		}
		if after := fingerprint(t, b.store); after != mid {
			t.Fatalf("a replay changed the database:\nbefore:\n%s\nafter:\n%s", mid, after)
		}
		if n := b.wakes.n.Load(); n != 1 {
			t.Fatalf("replays woke the reconciler: %d wakes", n)
		}
	})

	t.Run("genuine for unknown subjects", func(t *testing.T) {
		// Authentic callbacks about numbers payd never issued are
		// acknowledged (or Douyin retries for a day) and kept in the inbox
		// for audit, but create no refund or settlement and wake nothing.
		wakes := b.wakes.n.Load()
		refunds, settlements := count(t, b.store, "refunds"), count(t, b.store, "settlements")
		for _, body := range [][]byte{
			signed(t, douyin.CallbackRefund, refundMsg(appID, "never-issued-1"), token, "u-1"),
			signed(t, douyin.CallbackSettle, douyin.SettleMsg{AppID: appID, CPSettleNo: "st-never-1", Status: "SUCCESS"}, token, "u-2"),
		} {
			if status, answer := b.post(t, body); status != 200 {
				t.Fatalf("status %d %s", status, answer)
			}
		}
		if b.wakes.n.Load() != wakes || count(t, b.store, "refunds") != refunds || count(t, b.store, "settlements") != settlements {
			t.Fatal("a callback about an unknown number changed desired state or woke the reconciler")
		}
		var orphans int64
		if err := b.store.DB().Table("callbacks").Where("order_id = 0").Count(&orphans).Error; err != nil {
			t.Fatal(err)
		}
		if orphans != 2 {
			t.Fatalf("%d inbox rows without an order, want 2", orphans)
		}
	})
}

// testutilCount reads payd_callbacks_total summed over types for result.
func testutilCount(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "payd_callbacks_total" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					sum += metric.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func TestCallbackHandler_storm(t *testing.T) {
	b := newCallbackBundle(t, 200, 400) // the shipped defaults
	ctx := context.Background()
	if _, _, err := b.store.UpsertOrder(ctx, state.OrderInput{AppID: appID, OutOrderNo: "o-1", TotalAmount: 1000, Status: state.OrderSuccess}, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	forged := make([][]byte, 64)
	for i := range forged {
		forged[i] = signed(t, douyin.CallbackPayment, douyin.PaymentMsg{AppID: appID, CPOrderNo: fmt.Sprintf("o-%d", i), TotalAmount: 1, Status: "SUCCESS"}, "attacker-guess-000", fmt.Sprintf("f-%d", i))
	}
	before := fingerprint(t, b.store)

	const total, workers = 10_000, 8
	var (
		next                   atomic.Int64
		limited, refused, errs atomic.Int64
		other                  atomic.Int64
		wg                     sync.WaitGroup
	)
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	stormCtx, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for stormCtx.Err() == nil {
				i := next.Add(1)
				if i > total {
					return
				}
				req, _ := http.NewRequestWithContext(stormCtx, "POST", b.srv.URL+"/douyin/notify", bytes.NewReader(forged[i%int64(len(forged))]))
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io_Discard(resp)
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					limited.Add(1)
				case http.StatusUnauthorized:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}

	// While the storm rages, /healthz and a genuine callback answer promptly.
	genuine := signed(t, douyin.CallbackPayment, douyin.PaymentMsg{AppID: appID, CPOrderNo: "o-1", TotalAmount: 1000, Status: "SUCCESS"}, token, "genuine-1")
	probe := &http.Client{Timeout: 5 * time.Second}
	waitUntil(t, 10*time.Second, func() bool { return limited.Load() > 100 })
	t0 := time.Now()
	if status, _ := do(t, probe, "GET", b.srv.URL+"/healthz", "", "", nil); status != 200 {
		t.Fatalf("/healthz during the storm: %d", status)
	}
	healthz := time.Since(t0)
	t0 = time.Now()
	status, body := do(t, probe, "POST", b.srv.URL+"/douyin/notify", "", "application/json", bytes.NewReader(genuine))
	genuineTook := time.Since(t0)
	if status != 200 {
		t.Fatalf("genuine callback during the storm: %d %s", status, body)
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("storm: %d requests in %s (%.0f/s): %d limited (429), %d refused (401), %d other, %d transport errors; /healthz %s, genuine callback %s",
		min(next.Load(), total), took.Round(time.Millisecond), float64(total)/took.Seconds(), limited.Load(), refused.Load(), other.Load(), errs.Load(), healthz, genuineTook)
	if stormCtx.Err() != nil {
		t.Fatalf("storm not finished within its time bound")
	}
	if healthz > 2*time.Second || genuineTook > 2*time.Second {
		t.Fatalf("daemon not responsive during the storm: /healthz %s, genuine callback %s", healthz, genuineTook)
	}
	if got := limited.Load() + refused.Load(); got != total || other.Load() != 0 || errs.Load() != 0 {
		t.Fatalf("%d limited + %d refused of %d; %d other, %d errors", limited.Load(), refused.Load(), total, other.Load(), errs.Load())
	}
	// At most the burst plus the refill during the storm got past the limiter.
	if max := int64(400 + 200*took.Seconds() + 50); refused.Load() > max {
		t.Fatalf("%d forged callbacks reached the signature check; the limiter allows about %d", refused.Load(), max)
	}
	if limited.Load() < total/2 {
		t.Fatalf("only %d of %d were rate limited", limited.Load(), total)
	}
	// Only the genuine callback was stored; the forged ones touched nothing.
	if n := count(t, b.store, "callbacks"); n != 1 {
		t.Fatalf("%d callbacks stored, want the genuine one only", n)
	}
	var orders int64
	if err := b.store.DB().Table("orders").Count(&orders).Error; err != nil || orders != 1 {
		t.Fatalf("orders %d (%v): forged payment callbacks must not create orders", orders, err)
	}
	// Replaying the genuine callback changes nothing either.
	mid := fingerprint(t, b.store)
	if status, _ := b.post(t, genuine); status != 200 {
		t.Fatalf("replay after the storm: %d", status)
	}
	if fingerprint(t, b.store) != mid || mid == before {
		t.Fatal("replay changed the database, or the genuine callback did not")
	}
}

func io_Discard(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	var buf [512]byte
	var n int64
	for {
		k, err := resp.Body.Read(buf[:])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
