package demo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/webhook"
)

// receiver is the demo's stand-in for a merchant backend: it verifies
// every delivery with webhook.VerifyEvent, counts events by type, and
// records each order's events in arrival order for the final check.
type receiver struct {
	secret string
	srv    *http.Server
	url    string

	mu       sync.Mutex
	byType   map[string]int
	byOrder  map[string][]string // app/out_order_no → event ids in arrival order
	accepted int
	repeats  int // ids received again (payd retried an acknowledged event)
	invalid  int // deliveries VerifyEvent rejected otherwise
}

// startReceiver listens on 127.0.0.1:0.
func startReceiver() (*receiver, error) {
	var b [24]byte
	_, _ = crand.Read(b[:])
	r := &receiver{secret: hex.EncodeToString(b[:]), byType: map[string]int{}, byOrder: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo receiver: %w", err)
	}
	r.url = "http://" + ln.Addr().String() + "/payd/events"
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// configure points the demo config's events at the receiver.
func (r *receiver) configure(cfg *config.Config) {
	cfg.Events.Endpoints = []config.Endpoint{{Name: "demo-receiver", URL: r.url, Secret: r.secret}}
	cfg.Events.Retry = config.Backoff{config.D(time.Second), config.D(2 * time.Second)}
}

func (r *receiver) close() { _ = r.srv.Close() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	ev, err := webhook.VerifyEvent(r.secret, req.Header, body, 5*time.Minute)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.accepted++
		r.byType[ev.Type]++
		k := ev.AppID + "/" + ev.OutOrderNo
		r.byOrder[k] = append(r.byOrder[k], ev.ID)
	case errors.Is(err, webhook.ErrReplayed):
		r.repeats++
	default:
		r.invalid++
	}
	w.WriteHeader(webhook.StatusFor(err))
}

// received returns how many events were accepted.
func (r *receiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

// check compares what arrived with the outbox: every event exactly once,
// each order's events in outbox order, nothing rejected.
func (r *receiver) check(ctx context.Context, st *state.Store) (int, error) {
	want := map[string][]string{}
	n := 0
	for after := int64(0); ; {
		evs, err := st.Events(ctx, after, 1000)
		if err != nil {
			return n, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			k := ev.AppID + "/" + ev.OutOrderNo
			want[k] = append(want[k], ev.ID)
			n++
		}
		after = evs[len(evs)-1].Seq
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var problems []string
	if r.accepted != n {
		problems = append(problems, fmt.Sprintf("%d events accepted, %d written", r.accepted, n))
	}
	if r.repeats > 0 || r.invalid > 0 {
		problems = append(problems, fmt.Sprintf("%d repeated and %d invalid deliveries", r.repeats, r.invalid))
	}
	for k, ids := range want {
		if !slices.Equal(r.byOrder[k], ids) {
			problems = append(problems, fmt.Sprintf("order %s: received %v, written %v", k, r.byOrder[k], ids))
			break
		}
	}
	if len(problems) > 0 {
		return n, fmt.Errorf("demo: event delivery check failed: %s", strings.Join(problems, "; "))
	}
	return n, nil
}

// countsByType renders the accepted events by type.
func (r *receiver) countsByType() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.byType)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.byType[k]))
	}
	return strings.Join(parts, ", ")
}
