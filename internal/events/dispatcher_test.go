package events

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
	"github.com/payd/payd/webhook"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const secret = "0123456789abcdef-secret"

// bundle is one test's store, clock and receiver.
type bundle struct {
	st    *state.Store
	clock *clock.Fake
	rcv   *receiver
	srv   *httptest.Server
}

func setup(t *testing.T) *bundle {
	t.Helper()
	clk := clock.NewFake(t0)
	st := storetest.Open(t, clk.Now)
	rcv := &receiver{v: &webhook.Verifier{Secret: secret, Tolerance: 5 * time.Minute, Now: clk.Now}, status: http.StatusOK}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	return &bundle{st: st, clock: clk, rcv: rcv, srv: srv}
}

func (b *bundle) dispatcher(t *testing.T, retry []time.Duration) *Dispatcher {
	t.Helper()
	d := New(Options{
		Store: b.st, Clock: b.clock, SignClock: b.clock, Retry: retry, Jitter: -1, Timeout: 5 * time.Second, Concurrency: 3,
		Endpoints: []Endpoint{{Name: "backend", URL: b.srv.URL + "/payd", Secret: secret}},
	})
	// The endpoint's cursor starts at the end of the (empty) outbox.
	b.runOnce(t, d)
	return d
}

func (b *bundle) runOnce(t *testing.T, d *Dispatcher) PassStats {
	t.Helper()
	ps, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return ps
}

// emit records order no (if new) and writes one event of typ for it.
func (b *bundle) emit(t *testing.T, no string, typ state.EventType) {
	t.Helper()
	ctx := context.Background()
	o, _, err := b.st.UpsertOrder(ctx, state.OrderInput{AppID: "app1", OutOrderNo: no, TotalAmount: 1000, Status: state.OrderSuccess}, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.UpdateOrder(ctx, o, state.NewEvent{Type: typ, Payload: map[string]any{"total_amount": 1000}}); err != nil {
		t.Fatal(err)
	}
}

// receiver is a merchant's endpoint: it verifies each request with
// webhook.Verifier and records what it accepted.
type receiver struct {
	v        *webhook.Verifier
	mu       sync.Mutex
	status   int // answered to valid requests
	requests int
	accepted []webhook.Event
	rejected []error
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if req.Method != http.MethodPost || req.URL.Path != "/payd" || req.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request line", http.StatusBadRequest)
		return
	}
	if r.status != http.StatusOK {
		http.Error(w, "down for maintenance", r.status)
		return
	}
	ev, err := r.v.Verify(req.Header, body)
	if err != nil {
		r.rejected = append(r.rejected, err)
		w.WriteHeader(webhook.StatusFor(err))
		return
	}
	r.accepted = append(r.accepted, *ev)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) set(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func (r *receiver) snapshot() (int, []webhook.Event, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, slices.Clone(r.accepted), slices.Clone(r.rejected)
}

func TestDispatcher_RetriesUntilAcknowledged(t *testing.T) {
	b := setup(t)
	d := b.dispatcher(t, []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, time.Hour})
	b.emit(t, "o1", state.EventRefundSucceeded)
	b.rcv.set(http.StatusInternalServerError)

	for i, wait := range []time.Duration{0, 10 * time.Second, 30 * time.Second} {
		b.clock.Advance(wait)
		if ps := b.runOnce(t, d); ps.Failed != 1 {
			t.Fatalf("pass %d: %+v, want one failed delivery", i, ps)
		}
		// Not due again before its back-off has passed.
		b.clock.Advance(time.Second)
		if ps := b.runOnce(t, d); ps != (PassStats{}) {
			t.Fatalf("pass %d+1s: %+v, want nothing due", i, ps)
		}
		b.clock.Advance(-time.Second)
	}
	if n, _, _ := b.rcv.snapshot(); n != 3 {
		t.Fatalf("receiver saw %d requests, want 3", n)
	}
	b.rcv.set(http.StatusOK)
	b.clock.Advance(time.Minute)
	if ps := b.runOnce(t, d); ps.Delivered != 1 {
		t.Fatalf("fourth pass: %+v, want delivered", ps)
	}
	n, accepted, rejected := b.rcv.snapshot()
	if n != 4 || len(accepted) != 1 || len(rejected) != 0 {
		t.Fatalf("receiver: %d requests, accepted %v, rejected %v", n, accepted, rejected)
	}
	ev := accepted[0]
	if ev.Type != "refund.succeeded" || ev.OutOrderNo != "o1" || ev.AppID != "app1" || string(ev.Data) != `{"total_amount":1000}` || !strings.HasPrefix(ev.ID, "evt_") {
		t.Fatalf("accepted event %+v", ev)
	}
	ds, err := b.st.ListDeliveries(context.Background(), state.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != state.DeliveryDelivered || ds[0].Attempts != 4 || ds[0].LastStatus != http.StatusNoContent {
		t.Fatalf("deliveries %+v", ds)
	}
	log, err := b.st.DeliveryLog(context.Background(), ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 4 || log[0].StatusCode != 500 || !strings.Contains(log[0].Snippet, "down for maintenance") || !log[3].OK {
		t.Fatalf("delivery log %+v", log)
	}
	// Acknowledged: never sent again.
	b.clock.Advance(24 * time.Hour)
	b.runOnce(t, d)
	if n, _, _ := b.rcv.snapshot(); n != 4 {
		t.Fatalf("receiver saw %d requests after acknowledgement, want still 4", n)
	}
}

func TestDispatcher_DeadAfterSchedule(t *testing.T) {
	b := setup(t)
	d := b.dispatcher(t, []time.Duration{time.Minute})
	b.emit(t, "o1", state.EventOrderPaid)
	b.emit(t, "o1", state.EventRefundParked)
	b.rcv.set(http.StatusServiceUnavailable)
	b.runOnce(t, d)
	b.clock.Advance(time.Minute)
	// The dead event no longer holds back the order's next one: it is
	// tried in the same pass.
	if ps := b.runOnce(t, d); ps.Dead != 1 || ps.Failed != 1 {
		t.Fatalf("second failure: %+v, want one dead and the next event tried", ps)
	}
	b.rcv.set(http.StatusOK)
	b.clock.Advance(time.Minute)
	if ps := b.runOnce(t, d); ps.Delivered != 1 {
		t.Fatalf("after dead: %+v, want the next event delivered", ps)
	}
	failed, err := b.st.ListDeliveries(context.Background(), state.DeliveryFilter{Failed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].EventType != state.EventOrderPaid || failed[0].Status != state.DeliveryDead {
		t.Fatalf("failed %+v", failed)
	}
}

func TestDispatcher_ReceiverDownForADay(t *testing.T) {
	b := setup(t)
	d := b.dispatcher(t, DefaultRetry)
	d.o.Jitter = 0.1
	types := []state.EventType{state.EventOrderPaid, state.EventRefundAttemptFailed, state.EventRefundSucceeded, state.EventSettlementSucceeded}
	for _, typ := range types {
		for i := range 8 {
			b.emit(t, fmt.Sprintf("o%d", i), typ)
		}
	}
	b.rcv.set(http.StatusBadGateway)
	for range 24 * 4 { // a day in 15-minute steps
		b.runOnce(t, d)
		b.clock.Advance(15 * time.Minute)
	}
	down, accepted, _ := b.rcv.snapshot()
	if len(accepted) != 0 || down < 8 {
		t.Fatalf("while down: %d requests, %d accepted", down, len(accepted))
	}
	b.rcv.set(http.StatusOK)
	for range 24 * 4 { // at most another day: the longest retry delay is 12h
		b.runOnce(t, d)
		if _, acc, _ := b.rcv.snapshot(); len(acc) == len(types)*8 {
			break
		}
		b.clock.Advance(15 * time.Minute)
	}
	_, accepted, rejected := b.rcv.snapshot()
	if len(rejected) != 0 {
		t.Fatalf("receiver rejected %v", rejected)
	}
	outbox, err := b.st.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{} // order → ids in outbox order
	for _, ev := range outbox {
		want[ev.OutOrderNo] = append(want[ev.OutOrderNo], ev.ID)
	}
	got := map[string][]string{}
	seen := map[string]bool{}
	for _, ev := range accepted {
		if seen[ev.ID] {
			t.Fatalf("event %s accepted twice", ev.ID)
		}
		seen[ev.ID] = true
		got[ev.OutOrderNo] = append(got[ev.OutOrderNo], ev.ID)
	}
	if len(seen) != len(outbox) {
		t.Fatalf("accepted %d distinct events, want all %d", len(seen), len(outbox))
	}
	for no, ids := range want {
		if !slices.Equal(got[no], ids) {
			t.Fatalf("order %s: received %v, want %v (outbox order)", no, got[no], ids)
		}
	}
	counts, err := b.st.DeliveryCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[state.DeliveryDelivered] != int64(len(outbox)) || counts[state.DeliveryDead] != 0 {
		t.Fatalf("delivery counts %v", counts)
	}
}

func TestDispatcher_RedirectIsAFailure(t *testing.T) {
	b := setup(t)
	var hits int
	var mu sync.Mutex
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer target.Close()
	redir := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redir.Close()
	d := New(Options{Store: b.st, Clock: b.clock, SignClock: b.clock, Jitter: -1, Endpoints: []Endpoint{{Name: "backend", URL: redir.URL, Secret: secret}}})
	b.runOnce(t, d)
	b.emit(t, "o1", state.EventOrderPaid)
	if ps := b.runOnce(t, d); ps.Failed != 1 {
		t.Fatalf("pass %+v, want one failure", ps)
	}
	ds, err := b.st.ListDeliveries(context.Background(), state.DeliveryFilter{Failed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].LastStatus != http.StatusTemporaryRedirect || !strings.Contains(ds[0].LastError, "redirect") {
		t.Fatalf("deliveries %+v", ds)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("redirect target got %d requests, want 0", hits)
	}
}

func TestDispatcher_TypesAndNewEndpoint(t *testing.T) {
	b := setup(t)
	b.emit(t, "old", state.EventOrderPaid) // before the endpoint existed
	d := New(Options{Store: b.st, Clock: b.clock, SignClock: b.clock, Jitter: -1, Endpoints: []Endpoint{
		{Name: "backend", URL: b.srv.URL + "/payd", Secret: secret, Types: []string{"refund.parked"}},
	}})
	b.runOnce(t, d)
	b.emit(t, "o1", state.EventOrderPaid)
	b.emit(t, "o1", state.EventRefundParked)
	b.runOnce(t, d)
	_, accepted, _ := b.rcv.snapshot()
	if len(accepted) != 1 || accepted[0].Type != "refund.parked" {
		t.Fatalf("accepted %+v, want only o1's refund.parked", accepted)
	}
}

// TestDispatcher_NewEndpointGetsWhatItsProcessWrote: events written after
// the dispatcher was made but before its first pass (the reconciler of the
// same daemon is quicker) are delivered by that first pass; older ones are
// history, for replay.
func TestDispatcher_NewEndpointGetsWhatItsProcessWrote(t *testing.T) {
	b := setup(t)
	b.emit(t, "old", state.EventOrderPaid)
	b.clock.Advance(time.Second)
	d := New(Options{Store: b.st, Clock: b.clock, SignClock: b.clock, Jitter: -1, Endpoints: []Endpoint{
		{Name: "backend", URL: b.srv.URL + "/payd", Secret: secret},
	}})
	b.emit(t, "o1", state.EventOrderPaid)
	if ps := b.runOnce(t, d); ps.Delivered != 1 {
		t.Fatalf("first pass %+v, want o1's event delivered", ps)
	}
	_, accepted, _ := b.rcv.snapshot()
	if len(accepted) != 1 || accepted[0].OutOrderNo != "o1" {
		t.Fatalf("accepted %+v, want only o1's order.paid", accepted)
	}
}

func TestDispatcher_RunStopsWithContext(t *testing.T) {
	b := setup(t)
	d := New(Options{Store: b.st, Clock: b.clock, SignClock: b.clock, Interval: time.Hour, Endpoints: []Endpoint{{Name: "backend", URL: b.srv.URL + "/payd", Secret: secret}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	b.emit(t, "o1", state.EventOrderPaid) // may land before or after the cursor is set
	b.emit(t, "o2", state.EventOrderPaid)
	deadline := time.After(10 * time.Second)
	for {
		d.Wake()
		if _, acc, _ := b.rcv.snapshot(); len(acc) >= 1 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("Run delivered nothing after Wake")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestEncode(t *testing.T) {
	ev := state.Event{Seq: 7, ID: "evt_1", Type: state.EventRefundSucceeded, AppID: "app1", OutOrderNo: "o1", Payload: `{"amount":300}`, CreatedAt: t0}
	b, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_1","seq":7,"type":"refund.succeeded","created_at":"2026-03-01T10:00:00Z","app_id":"app1","out_order_no":"o1","data":{"amount":300}}`
	if string(b) != want {
		t.Fatalf("body\n got %s\nwant %s", b, want)
	}
	if _, err := Encode(state.Event{ID: "evt_2", Payload: "not json"}); err != nil {
		t.Fatalf("invalid payload: %v, want data null", err)
	}
}

// TestDispatcher_KeepsItsConnections: deliveries in flight at once each
// keep their connection to the endpoint between passes (net/http keeps
// two per host, so with three in flight one dialled anew for every event).
func TestDispatcher_KeepsItsConnections(t *testing.T) {
	clk := clock.NewFake(t0)
	rcv := &receiver{v: &webhook.Verifier{Secret: secret, Tolerance: 5 * time.Minute, Now: clk.Now}, status: http.StatusOK}
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(rcv)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	b := &bundle{st: storetest.Open(t, clk.Now), clock: clk, rcv: rcv, srv: srv}
	d := New(Options{
		Store: b.st, Clock: b.clock, SignClock: b.clock, Jitter: -1, Timeout: 5 * time.Second, Concurrency: 3,
		Endpoints: []Endpoint{{Name: "backend", URL: srv.URL + "/payd", Secret: secret}},
	})
	b.runOnce(t, d)
	const events = 60
	for i := range events {
		b.emit(t, fmt.Sprintf("conn-%02d", i), state.EventOrderPaid)
	}
	for pass := 0; pass < 100; pass++ {
		if _, accepted, _ := rcv.snapshot(); len(accepted) == events {
			break
		}
		b.runOnce(t, d)
	}
	if _, accepted, rejected := rcv.snapshot(); len(accepted) != events || len(rejected) != 0 {
		t.Fatalf("accepted %d of %d events, rejected %v", len(accepted), events, rejected)
	}
	if got := opened.Load(); got > 4 {
		t.Errorf("%d events, 3 in flight at once, opened %d connections; want at most 4 (one per delivery in flight, kept)", events, got)
	}
}
