package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/state"
)

// AdminStore is what the admin routes read and write. *state.Store
// satisfies it.
type AdminStore interface {
	ListDeliveries(ctx context.Context, f state.DeliveryFilter) ([]state.Delivery, error)
	ReplayEvent(ctx context.Context, subs []state.Subscription, id string, now time.Time) (int, error)
	ReplaySince(ctx context.Context, subs []state.Subscription, since, now time.Time) (int, error)
}

var _ AdminStore = (*state.Store)(nil)

// AdminRoutes returns the admin API's event routes, for
// server.AdminOptions.Extra (wrap adds the bearer-token check):
//
//	GET  /v1/events[?failed=1][&limit=N][&endpoint=E]  deliveries, newest event first
//	POST /v1/events/{id}/replay                         send one event again
//	POST /v1/events/replay?since=RFC3339                send every event since then again
//
// wake, when not nil, is called after a replay so the dispatcher sends at once.
func AdminRoutes(st AdminStore, endpoints []Endpoint, clk clock.Clock, wake func()) func(mux *http.ServeMux, wrap func(http.HandlerFunc) http.HandlerFunc) {
	if clk == nil {
		clk = clock.Real{}
	}
	subs := Subscriptions(endpoints)
	replayed := func(w http.ResponseWriter, n int) {
		if wake != nil {
			wake()
		}
		writeJSON(w, http.StatusOK, api.Replayed{Replayed: n})
	}
	return func(mux *http.ServeMux, wrap func(http.HandlerFunc) http.HandlerFunc) {
		mux.HandleFunc("GET /v1/events", wrap(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			f := state.DeliveryFilter{Endpoint: q.Get("endpoint"), EventID: q.Get("event")}
			if v := q.Get("failed"); v != "" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					writeError(w, http.StatusBadRequest, "failed: %q is not a boolean", v)
					return
				}
				f.Failed = b
			}
			if v := q.Get("limit"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 10000 {
					writeError(w, http.StatusBadRequest, "limit: %q is not a number from 1 to 10000", v)
					return
				}
				f.Limit = n
			}
			ds, err := st.ListDeliveries(r.Context(), f)
			if err != nil {
				writeError(w, http.StatusInternalServerError, "%v", err)
				return
			}
			writeJSON(w, http.StatusOK, api.FromDeliveries(ds))
		}))
		mux.HandleFunc("POST /v1/events/{id}/replay", wrap(func(w http.ResponseWriter, r *http.Request) {
			n, err := st.ReplayEvent(r.Context(), subs, r.PathValue("id"), clk.Now())
			if errors.Is(err, state.ErrNotFound) {
				writeError(w, http.StatusNotFound, "%v", err)
				return
			}
			if err != nil {
				writeError(w, http.StatusInternalServerError, "%v", err)
				return
			}
			replayed(w, n)
		}))
		mux.HandleFunc("POST /v1/events/replay", wrap(func(w http.ResponseWriter, r *http.Request) {
			since, err := api.ParseTime(r.URL.Query().Get("since"))
			if err != nil {
				writeError(w, http.StatusBadRequest, "since: %v", err)
				return
			}
			n, err := st.ReplaySince(r.Context(), subs, since, clk.Now())
			if err != nil {
				writeError(w, http.StatusInternalServerError, "%v", err)
				return
			}
			replayed(w, n)
		}))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, api.Error{Error: fmt.Sprintf(format, args...)})
}
