package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

// TestCallbackHandler_refusalsCounted: refused callbacks are added up in
// memory and written as counters per configured app, reason and hour —
// an unknown or unverified app_id under "" — and nothing else is written.
func TestCallbackHandler_refusalsCounted(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC))
	st := storetest.Open(t, fc.Now)
	h := NewCallbackHandler(CallbackOptions{Inbox: st, Tokens: map[string]string{appID: token}, Clock: fc, Rate: 1000, Burst: 1000})
	b := &cbBundle{store: st}
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	before := fingerprint(t, st)
	for i := range 3 {
		b.post(t, signed(t, douyin.CallbackRefund, refundMsg(appID, "k1-1"), "not-the-token-0000", "n-bad-"+string(rune('a'+i))))
	}
	b.post(t, signed(t, douyin.CallbackRefund, refundMsg("tt-evil", "k1-1"), token, "n-evil"))
	b.post(t, []byte("<xml/>"))
	b.post(t, []byte(strings.Repeat("x", douyin.MaxCallbackBody+1)))
	if n := deltaRows(t, st); n != 0 {
		t.Fatalf("%d rows written before the flush: refused traffic must not cost a write each", n)
	}
	h.FlushRefusals(context.Background())
	if n := deltaRows(t, st); n != 4 {
		t.Fatalf("%d counter rows after the flush, want 4 (one per app and reason)", n)
	}
	if after := fingerprint(t, st); after != before {
		t.Fatal("refused callbacks changed payd's rows")
	}
	cs, err := st.Counters(context.Background(), state.CounterQuery{Kinds: []state.CounterKind{state.CountRefused}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range cs {
		if !c.Time().Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("counter %+v not in the hour of 12:30", c)
		}
		got[c.Scope+"/"+c.Label] = c.N
	}
	want := map[string]int64{appID + "/bad_signature": 3, "/unknown_app": 1, "/malformed": 1, "/too_large": 1}
	if len(got) != len(want) {
		t.Fatalf("refused counters %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("refused counters %v, want %v", got, want)
		}
	}
	h.FlushRefusals(context.Background()) // nothing new: no row
	if n := deltaRows(t, st); n != 4 {
		t.Fatalf("%d counter rows after an empty flush, want 4", n)
	}
}

func deltaRows(t *testing.T, st *state.Store) int64 {
	t.Helper()
	var n int64
	if err := st.DB().Table("counter_deltas").Where("kind = ?", state.CountRefused).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCallbackHandler_refusalsThroughBatchInbox: payd serve's inbox (the
// group-commit batcher) passes the counts to its store.
func TestCallbackHandler_refusalsThroughBatchInbox(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC))
	st := storetest.Open(t, fc.Now)
	h := NewCallbackHandler(CallbackOptions{Inbox: NewBatchInbox(st, BatchInboxOptions{}), Tokens: map[string]string{appID: token}, Clock: fc})
	b := &cbBundle{store: st, srv: httptest.NewServer(h)}
	t.Cleanup(b.srv.Close)
	b.post(t, signed(t, douyin.CallbackRefund, refundMsg(appID, "k1-1"), "not-the-token-0000", "n-batch"))
	h.FlushRefusals(context.Background())
	cs, err := st.Counters(context.Background(), state.CounterQuery{Kinds: []state.CounterKind{state.CountRefused}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Scope != appID || cs[0].Label != "bad_signature" || cs[0].N != 1 {
		t.Fatalf("refused counters through the batch inbox: %+v", cs)
	}
}
