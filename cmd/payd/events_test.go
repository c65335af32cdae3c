package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/webhook"
)

// TestEvents: payd events lists the deliveries a daemon attempted, with
// --failed and --json; payd events replay makes them due again; a daemon
// started afterwards delivers every event once to a receiver that is back.
func TestEvents(t *testing.T) {
	const secret = "events-secret-0123456789"
	var mu sync.Mutex
	up := false
	received := map[string]int{} // event id → verified deliveries acknowledged
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := webhook.VerifyEvent(secret, r.Header, body, 5*time.Minute)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			http.Error(w, err.Error(), webhook.StatusFor(err))
		case !up:
			// Accepted but not processed: payd's retry must be accepted.
			webhook.Forget(ev.ID)
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		default:
			received[ev.ID]++
		}
	}))
	defer recv.Close()
	cfg := baseConfig + `events:
  endpoints:
    - name: backend
      url: ` + recv.URL + `
      secret: ` + secret + `
  retry: [1h]
`
	e := newEnv(t, cfg).withSim()
	e.seedPaid("o-1", 1000)
	e.run("refund", "o-1", "--amount", "300", "--reason", "x", "--key", "k1").ok(t)
	e.run("apply").ok(t)
	time.Sleep(50 * time.Millisecond) // the simulator's processing delay
	e.run("apply").ok(t)
	has(t, e.run("events").ok(t).stdout, "No deliveries.") // no daemon has run yet

	deliveries := func() []api.Delivery {
		t.Helper()
		var ds api.Deliveries
		if err := json.Unmarshal([]byte(e.run("events", "--json").ok(t).stdout), &ds); err != nil {
			t.Fatal(err)
		}
		return ds.Deliveries
	}
	serveUntil := func(what string, cond func([]api.Delivery) bool) {
		t.Helper()
		_, stderr, cancel, done := e.background("serve")
		defer func() {
			if t.Failed() {
				t.Logf("serve log:\n%s\nevents: %s", stderr.String(), e.run("events", "--json").stdout)
			}
		}()
		waitFor(t, 15*time.Second, what, func() bool { return cond(deliveries()) })
		cancel()
		if err := stopped(t, done, 10*time.Second); err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
	// The receiver is down: one attempt each, then a retry an hour away.
	// The endpoint is new to this database, so its first daemon starts at
	// the end of the outbox: events from before it are sent by a replay.
	serveUntil("a first attempt at every delivery", func(ds []api.Delivery) bool {
		for _, d := range ds {
			if d.Attempts == 0 {
				return false
			}
		}
		return len(ds) > 0
	})
	ds := deliveries()
	for _, d := range ds {
		if d.Status != string(state.DeliveryPending) || d.Attempts != 1 || d.LastStatus != http.StatusServiceUnavailable || d.Endpoint != "backend" {
			t.Fatalf("delivery %+v: want pending after one 503", d)
		}
	}
	table := e.run("events", "--failed").ok(t).stdout
	has(t, table, "EVENT", "STATUS", "ATTEMPTS", ds[0].EventType, "o-1", "backend", "pending", "503")
	if got := strings.Count(table, "\n") - 1; got != len(ds) {
		t.Fatalf("--failed lists %d deliveries, want %d:\n%s", got, len(ds), table)
	}

	// Bad input changes nothing.
	e.run("events", "replay").fails(t, "replay: give an event ID or --since TIME, not both")
	e.run("events", "replay", ds[0].EventID, "--since", "2026-03-01T10:00:00Z").fails(t, "replay: give an event ID or --since TIME, not both")
	e.run("events", "replay", "--since", "yesterday").fails(t, "--since yesterday: want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD")
	e.run("events", "replay", "evt-nope").fails(t, "replay event evt-nope: not found")
	e.run("events", "--limit", "x").fails(t, `invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x": invalid syntax`)
	for i, d := range deliveries() {
		if d.Attempts != 1 || d.NextAttemptAt == nil || time.Until(*d.NextAttemptAt) < 50*time.Minute {
			t.Fatalf("after bad replays, delivery %d is %+v: want its retry still an hour away", i, d)
		}
	}

	// Replay one event, then everything since an hour ago: that creates the
	// deliveries of the events from before the first daemon.
	has(t, e.run("events", "replay", ds[0].EventID).ok(t).stdout, "1 deliveries due now")
	// A date means its midnight UTC, as settle --at takes it.
	since := time.Now().Add(-time.Hour).UTC().Format("2006-01-02")
	r := e.run("events", "replay", "--since", since).ok(t)
	all := deliveries()
	if len(all) <= len(ds) {
		t.Fatalf("replay --since created no delivery for the older events: %d deliveries", len(all))
	}
	has(t, r.stdout, strconv.Itoa(len(all))+" deliveries due now")
	types := map[string]bool{}
	for _, d := range all {
		types[d.EventType] = true
	}
	if !types["order.paid"] || !types["refund.succeeded"] {
		t.Fatalf("event types %v: want order.paid and refund.succeeded", types)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	serveUntil("every delivery delivered", func(ds []api.Delivery) bool {
		for _, d := range ds {
			if d.Status != string(state.DeliveryDelivered) {
				return false
			}
		}
		return true
	})
	has(t, e.run("events", "--failed").ok(t).stdout, "No deliveries.")
	mu.Lock()
	defer mu.Unlock()
	var want, got []string
	for _, d := range all {
		want = append(want, d.EventID)
	}
	for id, n := range received {
		if n != 1 {
			t.Errorf("event %s acknowledged %d times, want once", id, n)
		}
		got = append(got, id)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("receiver got %v, want %v", got, want)
	}
}
