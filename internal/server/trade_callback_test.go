package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

const tradeApp = "tt-server-trade"

// tradeBundle is a callback handler serving an ecpay app and a trade app
// (migrated from ecpay: it keeps its token for legacy callbacks).
type tradeBundle struct {
	*cbBundle
	key *rsa.PrivateKey
}

func newTradeBundle(t *testing.T, pre PreRefunder) *tradeBundle {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	fc := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := &cbBundle{store: storetest.Open(t, fc.Now), wakes: &wakes{}, clock: fc}
	h := NewCallbackHandler(CallbackOptions{
		Inbox: b.store, Tokens: map[string]string{appID: token, tradeApp: token}, Waker: b.wakes, Clock: fc,
		PlatformKeys: map[string]*rsa.PublicKey{tradeApp: &key.PublicKey}, PreRefund: pre, Rate: 1000, Burst: 1000,
	})
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return &tradeBundle{cbBundle: b, key: key}
}

func (b *tradeBundle) postTrade(t *testing.T, body []byte, h trade.Headers) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+"/douyin/notify", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(trade.HeaderTimestamp, h.Timestamp)
	req.Header.Set(trade.HeaderNonce, h.Nonce)
	req.Header.Set(trade.HeaderSignature, h.Signature)
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

func (b *tradeBundle) encode(t *testing.T, key *rsa.PrivateKey, typ trade.CallbackType, msg any, nonce string) ([]byte, trade.Headers) {
	t.Helper()
	body, h, err := trade.EncodeCallback(key, typ, msg, "1767225600", nonce)
	if err != nil {
		t.Fatal(err)
	}
	return body, h
}

// TestCallbackHandler_Trade routes by the body: version 3.0 to the RSA
// check with the app's platform key, msg_signature to the ecpay token;
// verified trade callbacks hint their subject (a payment: the order, made
// UNKNOWN when new; a refund: by Douyin's refund_id).
func TestCallbackHandler_Trade(t *testing.T) {
	b := newTradeBundle(t, nil)
	ctx := context.Background()
	now := b.clock.Now()

	body, h := b.encode(t, b.key, trade.CallbackPayment, trade.PaymentMsg{AppID: tradeApp, OutOrderNo: "to-1", OrderID: "motb1", Status: "SUCCESS", TotalAmount: 100}, "n1")
	if code, ans := b.postTrade(t, body, h); code != 200 || ans != string(trade.Ack) {
		t.Fatalf("payment: %d %s", code, ans)
	}
	hist, err := b.store.History(ctx, tradeApp, "to-1")
	if err != nil || hist.Order.Status != state.OrderUnknown {
		t.Fatalf("order from a trade payment callback: %+v %v", hist, err)
	}
	if code, _ := b.postTrade(t, body, h); code != 200 || count(t, b.store, "callbacks") != 1 {
		t.Fatalf("duplicate: %d, %d rows", code, count(t, b.store, "callbacks"))
	}

	// A refund payd sent, known by Douyin's refund_id once accepted.
	if _, _, err := b.store.UpsertOrder(ctx, state.OrderInput{AppID: tradeApp, OutOrderNo: "to-2", TotalAmount: 1000, Status: state.OrderSuccess}, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.store.DeclareRefund(ctx, state.RefundWish{AppID: tradeApp, OutOrderNo: "to-2", Key: "tk", Amount: 100, Reason: "x"}, now); err != nil {
		t.Fatal(err)
	}
	if err := b.store.DB().Exec("UPDATE refunds SET refund_no = ? WHERE idem_key = ?", "rf-douyin-1", "tk").Error; err != nil {
		t.Fatal(err)
	}
	body, h = b.encode(t, b.key, trade.CallbackRefund, trade.RefundMsg{AppID: tradeApp, Status: "SUCCESS", OrderID: "motb2", RefundID: "rf-douyin-1", RefundTotalAmount: 100}, "n2")
	if code, ans := b.postTrade(t, body, h); code != 200 {
		t.Fatalf("refund: %d %s", code, ans)
	}
	var row state.Callback
	if err := b.store.DB().Where("subject_no = ?", "rf-douyin-1").Take(&row).Error; err != nil || row.OrderID == 0 || row.Type != "refund" {
		t.Fatalf("refund callback row: %+v %v", row, err)
	}

	// A legacy body of an order migrated from ecpay: the token check.
	legacy := signed(t, douyin.CallbackRefund, refundMsg(tradeApp, "tk-1"), token, "n3")
	if code, ans := b.post(t, legacy); code != 200 {
		t.Fatalf("legacy callback of a trade app: %d %s", code, ans)
	}

	before := count(t, b.store, "callbacks")
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged, fh := b.encode(t, other, trade.CallbackPayment, trade.PaymentMsg{AppID: tradeApp, OutOrderNo: "to-9", Status: "SUCCESS"}, "n4")
	unknown, uh := b.encode(t, b.key, trade.CallbackPayment, trade.PaymentMsg{AppID: "tt-nobody", OutOrderNo: "to-9", Status: "SUCCESS"}, "n5")
	tampered := bytes.Replace(body, []byte(`100`), []byte(`999`), 1)
	for _, tc := range []struct {
		name string
		body []byte
		h    trade.Headers
		want int
	}{
		{"another key", forged, fh, 401},
		{"tampered", tampered, h, 401},
		{"no headers", body, trade.Headers{}, 401},
		{"unknown app", unknown, uh, 400},
	} {
		if code, ans := b.postTrade(t, tc.body, tc.h); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, ans, tc.want)
		}
	}
	if n := count(t, b.store, "callbacks"); n != before {
		t.Fatalf("refused callbacks stored: %d rows, want %d", n, before)
	}
}

// TestCallbackHandler_PreCreateRefundUnconfigured: without an answerer a
// pre_create_refund gets no valid answer, so Douyin asks again.
func TestCallbackHandler_PreCreateRefundUnconfigured(t *testing.T) {
	b := newTradeBundle(t, nil)
	body, h := b.encode(t, b.key, trade.CallbackPreCreateRefund, trade.PreCreateRefundMsg{AppID: tradeApp, RefundID: "rf-u1", OrderID: "motb1", OutOrderNo: "to-1", RefundTotalAmount: 100}, "n1")
	if code, _ := b.postTrade(t, body, h); code != http.StatusServiceUnavailable {
		t.Fatalf("pre_create_refund without an answerer: %d", code)
	}
	if n := count(t, b.store, "callbacks"); n != 0 {
		t.Fatalf("%d callbacks stored", n)
	}
}
