package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/state"
)

// countingInbox takes every callback, storing nothing: the benchmark
// measures the handler, not the database.
type countingInbox struct{ n int }

func (c *countingInbox) InsertCallback(_ context.Context, cb *state.Callback, _ time.Time) (bool, error) {
	if cb.SubjectNo == "" || cb.Signature == "" {
		return false, nil
	}
	c.n++
	return true, nil
}

// BenchmarkCallbackHandler_Settle serves one verified settle callback per
// op through the handler (read, parse, verify, the row to the inbox, the
// answer), without the network.
func BenchmarkCallbackHandler_Settle(b *testing.B) {
	inbox := &countingInbox{}
	h := NewCallbackHandler(CallbackOptions{Inbox: inbox, Tokens: map[string]string{appID: token}})
	msg := douyin.SettleMsg{AppID: appID, CPSettleNo: "st0123456789abcdef-1", OutOrderNo: "o-1", Status: "SUCCESS", SettleAmount: 9000, SettledAt: 1767225600, OrderID: "dy-1"}
	body, err := douyin.EncodeCallback(douyin.CallbackSettle, msg, token, "1767225600", "nonce-1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/douyin/notify", bytes.NewReader(body)))
		if w.Code != http.StatusOK {
			b.Fatalf("answered %d: %s", w.Code, w.Body)
		}
	}
	if inbox.n == 0 {
		b.Fatal("no callback reached the inbox")
	}
}
