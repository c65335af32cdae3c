package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/events"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/webhook"
)

func newEventsCmd(g *globals) *cobra.Command {
	var failed, asJSON bool
	var limit int
	var endpoint string
	cmd := &cobra.Command{
		Use:   "events [--failed] [--json] [--limit N]",
		Short: "List event deliveries to the configured endpoints; replay them",
		Long: `events lists the deliveries of outbox events to the endpoints in events.endpoints, newest
event first: status (pending, delivered, dead), attempts, the last HTTP status and error.
--failed keeps the dead ones and the pending ones that have failed at least once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ds, err := st.ListDeliveries(cmd.Context(), state.DeliveryFilter{Failed: failed, Limit: limit, Endpoint: endpoint})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, api.FromDeliveries(ds))
			}
			printDeliveries(g.stdout, ds)
			return nil
		},
	}
	cmd.Flags().BoolVar(&failed, "failed", false, "only dead deliveries and pending ones that have failed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many deliveries")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only this endpoint")
	cmd.AddCommand(newEventsReplayCmd(g))
	return cmd
}

func newEventsReplayCmd(g *globals) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "replay ID | --since TIME",
		Short: "Send an event, or every event since TIME (RFC 3339), again to every endpoint that wants it",
		Long: `replay makes the deliveries of one event (by id) or of every event created at or after
--since due now, with a fresh retry schedule, creating those an endpoint never had (one added
after the event). The running daemon sends them on its next pass.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (since != "") {
				return errors.New("replay: give an event ID or --since TIME, not both")
			}
			var from time.Time
			if since != "" {
				var err error
				if from, err = api.ParseTime(since); err != nil {
					return fmt.Errorf("--since %s: %v", since, err)
				}
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if len(cfg.Events.Endpoints) == 0 {
				return errors.New("replay: events.endpoints is empty: nothing to send to")
			}
			st, err := g.openExisting(cmd.Context(), cfg, clock.Real{})
			if err != nil {
				return err
			}
			defer st.Close()
			subs := events.Subscriptions(eventEndpoints(cfg))
			now := clock.Real{}.Now()
			var n int
			if since != "" {
				n, err = st.ReplaySince(cmd.Context(), subs, from, now)
			} else {
				n, err = st.ReplayEvent(cmd.Context(), subs, args[0], now)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%d deliveries due now\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "replay every event created at or after this RFC 3339 time")
	return cmd
}

func printDeliveries(w io.Writer, ds []state.Delivery) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "No deliveries.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tORDER\tENDPOINT\tSTATUS\tATTEMPTS\tLAST\tNEXT")
	for _, d := range ds {
		last := "-"
		if d.Attempts > 0 {
			last = fmt.Sprintf("%d %s", d.LastStatus, d.LastError)
		}
		next := "-"
		if d.Status == state.DeliveryPending {
			next = ts(d.NextAttemptAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.EventID, d.EventType, d.OutOrderNo, d.Endpoint, d.Status, d.Attempts, last, next)
	}
	tw.Flush()
}

// demoReceiver is the demo's stand-in for a merchant backend: it verifies
// every delivery with webhook.VerifyEvent, counts events by type, and
// records each order's events in arrival order for the final check.
type demoReceiver struct {
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

// startDemoReceiver listens on 127.0.0.1:0.
func startDemoReceiver() (*demoReceiver, error) {
	var b [24]byte
	_, _ = crand.Read(b[:])
	r := &demoReceiver{secret: hex.EncodeToString(b[:]), byType: map[string]int{}, byOrder: map[string][]string{}}
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
func (r *demoReceiver) configure(cfg *config.Config) {
	cfg.Events.Endpoints = []config.Endpoint{{Name: "demo-receiver", URL: r.url, Secret: r.secret}}
	cfg.Events.Retry = config.Backoff{config.D(time.Second), config.D(2 * time.Second)}
}

func (r *demoReceiver) close() { _ = r.srv.Close() }

func (r *demoReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
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
func (r *demoReceiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

// check compares what arrived with the outbox: every event exactly once,
// each order's events in outbox order, nothing rejected.
func (r *demoReceiver) check(ctx context.Context, st *state.Store) (int, error) {
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
func (r *demoReceiver) countsByType() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, k := range sortedKeys(r.byType) {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.byType[k]))
	}
	return strings.Join(parts, ", ")
}
