package events

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

func TestAdminRoutes(t *testing.T) {
	b := setup(t)
	d := b.dispatcher(t, []time.Duration{time.Minute})
	b.emit(t, "o1", state.EventOrderPaid)
	b.emit(t, "o2", state.EventOrderPaid)
	b.rcv.set(http.StatusInternalServerError)
	b.runOnce(t, d)
	woken := 0
	mux := http.NewServeMux()
	AdminRoutes(b.st, d.o.Endpoints, b.clock, func() { woken++ })(mux, func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer t" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	})
	do := func(method, path string, want int) map[string]json.RawMessage {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, want)
		}
		var out map[string]json.RawMessage
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return out
	}
	var ds []state.Delivery
	if err := json.Unmarshal(do("GET", "/v1/events?failed=1", 200)["deliveries"], &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].LastStatus != 500 || ds[0].Attempts != 1 {
		t.Fatalf("failed deliveries %+v", ds)
	}
	// Replay makes it due now (before its 1m back-off), with a fresh schedule.
	b.rcv.set(http.StatusOK)
	if got := string(do("POST", "/v1/events/"+ds[0].EventID+"/replay", 200)["replayed"]); got != "1" {
		t.Fatalf("replayed %s, want 1", got)
	}
	if ps := b.runOnce(t, d); ps.Delivered != 1 {
		t.Fatalf("after replay: %+v, want one delivered", ps)
	}
	if got := string(do("POST", "/v1/events/replay?since="+t0.Add(-time.Hour).Format(time.RFC3339), 200)["replayed"]); got != "2" {
		t.Fatalf("replay since: %s, want 2", got)
	}
	if woken != 2 {
		t.Fatalf("woken %d times, want 2", woken)
	}
	do("POST", "/v1/events/evt_nope/replay", 404)
	do("POST", "/v1/events/replay?since=yesterday", 400)
	do("GET", "/v1/events?limit=0", 400)
	req := httptest.NewRequest("GET", "/v1/events", nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "deliveries") {
		t.Fatalf("without token: %d %s", rec.Code, rec.Body)
	}
}
