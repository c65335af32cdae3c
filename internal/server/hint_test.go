package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

// TestCallbackHandler_hintRequeries wires the real pieces — simulator,
// store, client, a reconciler looping on Run (no cron) and the callback
// handler — with a one-hour poll interval, so that only the callback's hint
// can explain a prompt query_refund.
func TestCallbackHandler_hintRequeries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limits := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		limits[api] = 1000
	}
	sim, err := douyinsim.New(douyinsim.Config{
		Apps:            []douyinsim.App{{AppID: appID, Salt: salt, Token: token}},
		ProcessingDelay: 700 * time.Millisecond,
		NotifyURL:       "http://" + ln.Addr().String() + "/douyin/notify",
		CallbackScale:   0.001,
		Limits:          limits,
		Seed:            5,
	})
	if err != nil {
		t.Fatal(err)
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	clk := clock.Real{}
	st := storetest.Open(t, clk.Now)
	client, err := douyin.New(douyin.Options{BaseURL: simURL, Timeout: 5 * time.Second, Apps: []douyin.App{{AppID: appID, Salt: salt, Token: token}}, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	p := reconcile.DefaultPolicy()
	p.Apps = map[string]reconcile.AppPolicy{appID: {SettlePeriod: 7 * 24 * time.Hour, SettleDesc: "test"}}
	p.Poll = []time.Duration{time.Hour}
	p.Retry = []time.Duration{time.Hour}
	p.Jitter = 0
	rec := reconcile.New(reconcile.Options{Store: st, Provider: douyin.NewProvider(client), Clock: clk, Policy: p, Workers: 2})
	runDone := make(chan struct{})
	go func() { defer close(runDone); rec.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	// Record when each of the simulator's refund callbacks arrives, and its
	// body.
	var mu sync.Mutex
	var refundBodies [][]byte
	var firstRefundAt time.Time
	h := NewCallbackHandler(CallbackOptions{Inbox: st, Tokens: map[string]string{appID: token}, Waker: rec, Clock: clk})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/douyin/notify" && bytes.Contains(body, []byte(`"type":"refund"`)) && !bytes.Contains(body, []byte(`"nonce":"forged"`)) {
			mu.Lock()
			if firstRefundAt.IsZero() {
				firstRefundAt = time.Now()
			}
			refundBodies = append(refundBodies, body)
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	if err := sim.SeedOrder(douyinsim.SeedOrder{AppID: appID, OutOrderNo: "o-1", TotalAmount: 1000, Status: "SUCCESS", PaidAt: sim.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DeclareRefund(ctx, state.RefundWish{AppID: appID, OutOrderNo: "o-1", Key: "k1", Amount: 300, Reason: "size"}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	rec.Wake()
	refund := func() state.Refund {
		t.Helper()
		hist, err := st.History(ctx, appID, "o-1")
		if err != nil {
			t.Fatal(err)
		}
		return hist.Refunds[0]
	}
	waitUntil(t, 5*time.Second, func() bool { return refund().Phase == state.PhaseProcessing })
	// The payment callback of the seeded order arrives on its own; let it.
	waitUntil(t, 5*time.Second, func() bool { return count(t, st, "callbacks") == 1 })
	queries := func() int64 { return sim.Stats().ByAPI[douyin.APIQueryRefund][0] }

	// A forged callback claiming SUCCESS while the refund is processing: 401,
	// no row, no query.
	callbacks := count(t, st, "callbacks")
	forged, err := douyin.EncodeCallback(douyin.CallbackRefund, douyin.RefundMsg{AppID: appID, CPRefundNo: "k1-1", Status: "SUCCESS", RefundAmount: 300}, "forger-token-00000", "1767225600", "forged")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := do(t, http.DefaultClient, "POST", "http://"+ln.Addr().String()+"/douyin/notify", "", "application/json", bytes.NewReader(forged)); status != 401 {
		t.Fatalf("forged callback: %d %s", status, body)
	}
	time.Sleep(200 * time.Millisecond)
	if q := queries(); q != 0 {
		t.Fatalf("a forged callback caused %d query_refund calls", q)
	}
	if r := refund(); r.Phase != state.PhaseProcessing {
		t.Fatalf("a forged callback moved the refund to %s", r.Phase)
	}
	if n := count(t, st, "callbacks"); n != callbacks {
		t.Fatalf("a forged callback was stored")
	}

	// The simulator finishes the refund and sends its callback: payd
	// queries and commits SUCCESS well within a second of it.
	waitUntil(t, 10*time.Second, func() bool { return refund().Phase == state.PhaseSucceeded })
	committed := time.Now()
	mu.Lock()
	arrived := firstRefundAt
	mu.Unlock()
	if arrived.IsZero() {
		t.Fatal("the refund succeeded without a refund callback: something else re-queried it")
	}
	if lag := committed.Sub(arrived); lag > time.Second {
		t.Fatalf("SUCCESS committed %s after the callback, want < 1s", lag)
	}
	t.Logf("callback to committed SUCCESS: %s", committed.Sub(arrived))
	if q := queries(); q != 1 {
		t.Fatalf("%d query_refund calls, want the 1 the hint caused", q)
	}
	if r := refund(); r.Phase != state.PhaseSucceeded {
		t.Fatalf("phase %s", r.Phase)
	}

	// Replaying the genuine callback: acknowledged, nothing stored, no query.
	mu.Lock()
	genuine := refundBodies[0]
	mu.Unlock()
	var env map[string]any
	if err := json.Unmarshal(genuine, &env); err != nil || !strings.Contains(env["msg"].(string), "k1-1") {
		t.Fatalf("captured callback %s", genuine)
	}
	// Let the pass that committed SUCCESS release the order first.
	before := fingerprint(t, st)
	waitUntil(t, 5*time.Second, func() bool {
		time.Sleep(100 * time.Millisecond)
		now := fingerprint(t, st)
		settled := now == before
		before = now
		return settled
	})
	callbacks = count(t, st, "callbacks")
	if status, body := do(t, http.DefaultClient, "POST", "http://"+ln.Addr().String()+"/douyin/notify", "", "application/json", bytes.NewReader(genuine)); status != 200 {
		t.Fatalf("replayed callback: %d %s", status, body)
	}
	time.Sleep(200 * time.Millisecond)
	if q := queries(); q != 1 {
		t.Fatalf("the replay caused a query: %d query_refund calls", q)
	}
	if n := count(t, st, "callbacks"); n != callbacks {
		t.Fatalf("the replay was stored: %d callbacks, want %d", n, callbacks)
	}
	if after := fingerprint(t, st); after != before {
		t.Fatalf("the replay changed the database:\n%s\n%s", before, after)
	}
	if problems := sim.Check(); len(problems) != 0 {
		t.Fatalf("ledger: %v", problems)
	}
}
