// Package events delivers payd's outbox events to the merchant's endpoints:
// it fans each new event out to the endpoints that want its type, POSTs it
// signed (see package webhook for the receiving side), retries on a back-off
// schedule until a 2xx answer or the schedule is exhausted, keeps a log of
// every attempt, and never sends an order's next event to an endpoint before
// the previous one was acknowledged or given up.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/webhook"
)

// Store is what the dispatcher needs of the database. *state.Store
// satisfies it.
type Store interface {
	FanOut(ctx context.Context, sub state.Subscription, limit int, gapGrace time.Duration, now time.Time) (int, error)
	ClaimDeliveries(ctx context.Context, endpoint, owner string, limit int, lease time.Duration, now time.Time) ([]state.DueDelivery, error)
	RecordAttempt(ctx context.Context, r state.AttemptResult, now time.Time) (*state.Delivery, error)
}

var _ Store = (*state.Store)(nil)

// Endpoint is one receiver of events.
type Endpoint struct {
	Name   string
	URL    string
	Secret string
	// Types are the event types sent here; empty for all.
	Types []string
}

// String names the endpoint without its secret.
func (e Endpoint) String() string { return "endpoint " + e.Name }

// Options configure a Dispatcher.
type Options struct {
	Store     Store
	Endpoints []Endpoint
	// Clock schedules retries and stamps the delivery log.
	Clock clock.Clock
	// SignClock stamps Payd-Timestamp, which receivers compare with their
	// wall clock; clock.Real when nil, also when Clock is shifted (the demo).
	SignClock clock.Clock
	// Client sends the requests; one with Timeout and no redirects when nil.
	// A redirect answer is a failure either way.
	Client *http.Client
	// Timeout bounds one delivery; 10s when zero.
	Timeout time.Duration
	// Retry is the delay after failure n (the last entry repeats until the
	// schedule is used up: a delivery is dead after len(Retry)+1 failed
	// attempts). Default: 10s, 30s, 1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 12h×6.
	Retry []time.Duration
	// Jitter spreads each retry delay by up to ±Jitter of itself (0..1); 0.1
	// when zero, none when negative.
	Jitter float64
	// Concurrency bounds the deliveries in flight per endpoint; 4 when zero.
	Concurrency int
	// Batch bounds the deliveries claimed per endpoint per round; 100 when zero.
	Batch int
	// Lease is how long a claimed delivery is held; Timeout + 30s when zero.
	Lease time.Duration
	// GapGrace is how long a gap in the outbox's sequence is waited for
	// before it is taken as a rolled-back transaction; 1m when zero.
	GapGrace time.Duration
	// Interval is how often Run polls when not woken; 1s when zero.
	Interval time.Duration
	// Owner names this dispatcher in leases; "payd" when empty.
	Owner   string
	Metrics *metrics.Metrics
	Log     *logrus.Entry
}

// DefaultRetry is the default retry schedule: about 3.7 days in all.
var DefaultRetry = []time.Duration{
	10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour,
	12 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour,
}

// Dispatcher delivers events. Its RunOnce may be called from one goroutine
// at a time; Wake from any.
type Dispatcher struct {
	o Options
	// started is when the dispatcher was made: an endpoint it sees for the
	// first time gets every event written from then on.
	started time.Time
	wake    chan struct{}
	rng     *rand.Rand
	rmu     sync.Mutex
}

// New returns a dispatcher for o.
func New(o Options) *Dispatcher {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.SignClock == nil {
		o.SignClock = clock.Real{}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if len(o.Retry) == 0 {
		o.Retry = DefaultRetry
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Client == nil {
		// Keep a connection per delivery in flight (net/http keeps two
		// per host, so the others dialled for every event).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = o.Concurrency
		o.Client = &http.Client{
			Transport:     tr,
			Timeout:       o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Lease <= 0 {
		o.Lease = o.Timeout + 30*time.Second
	}
	if o.GapGrace <= 0 {
		o.GapGrace = time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Owner == "" {
		o.Owner = "payd"
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = logrus.NewEntry(l)
	}
	return &Dispatcher{o: o, started: o.Clock.Now(), wake: make(chan struct{}, 1), rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// Subscriptions returns the endpoints as the store sees them.
func (d *Dispatcher) Subscriptions() []state.Subscription {
	return Subscriptions(d.o.Endpoints)
}

// Subscriptions converts endpoints to the store's subscriptions.
func Subscriptions(eps []Endpoint) []state.Subscription {
	subs := make([]state.Subscription, len(eps))
	for i, e := range eps {
		subs[i] = state.Subscription{Endpoint: e.Name, Types: e.Types}
	}
	return subs
}

// Wake asks Run for a pass at once.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run calls RunOnce every Interval and when woken, until ctx ends. A pass
// in flight finishes its requests (each bounded by Timeout) first.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.o.Interval)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.o.Log.WithError(err).Error("event delivery pass failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// PassStats counts one RunOnce.
type PassStats struct {
	FannedOut, Delivered, Failed, Dead int
}

// maxRounds bounds the claim rounds of one pass (each round delivers at most
// one event per order and endpoint).
const maxRounds = 50

// RunOnce fans new events out to every endpoint and delivers what is due,
// endpoints in parallel, up to Concurrency requests per endpoint. It claims
// again after each round, so an order's next event follows as soon as the
// previous one is acknowledged, until nothing is due (or maxRounds).
func (d *Dispatcher) RunOnce(ctx context.Context) (PassStats, error) {
	var (
		mu    sync.Mutex
		total PassStats
		errs  []error
		wg    sync.WaitGroup
	)
	for _, ep := range d.o.Endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := d.runEndpoint(ctx, ep)
			mu.Lock()
			defer mu.Unlock()
			total.FannedOut += ps.FannedOut
			total.Delivered += ps.Delivered
			total.Failed += ps.Failed
			total.Dead += ps.Dead
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

func (d *Dispatcher) runEndpoint(ctx context.Context, ep Endpoint) (PassStats, error) {
	var ps PassStats
	sub := state.Subscription{Endpoint: ep.Name, Types: ep.Types, Since: d.started}
	for range maxRounds {
		n, err := d.o.Store.FanOut(ctx, sub, 1000, d.o.GapGrace, d.o.Clock.Now())
		if err != nil && !errors.Is(err, state.ErrConflict) {
			return ps, err
		}
		ps.FannedOut += n
		if n < 1000 {
			break
		}
	}
	for range maxRounds {
		if ctx.Err() != nil {
			return ps, nil
		}
		due, err := d.o.Store.ClaimDeliveries(ctx, ep.Name, d.o.Owner, d.o.Batch, d.o.Lease, d.o.Clock.Now())
		if err != nil {
			if errors.Is(err, state.ErrConflict) {
				continue
			}
			return ps, err
		}
		if len(due) == 0 {
			return ps, nil
		}
		results := d.deliverAll(ctx, ep, due)
		var errs []error
		for _, r := range results {
			switch {
			case r.err != nil:
				errs = append(errs, r.err)
			case r.delivery.Status == state.DeliveryDelivered:
				ps.Delivered++
			case r.delivery.Status == state.DeliveryDead:
				ps.Dead++
			default:
				ps.Failed++
			}
		}
		if len(errs) > 0 {
			return ps, errors.Join(errs...)
		}
	}
	return ps, nil
}

type result struct {
	delivery *state.Delivery
	err      error
}

// deliverAll sends due with at most Concurrency requests at once; each
// delivery is a different order, so their order does not matter.
func (d *Dispatcher) deliverAll(ctx context.Context, ep Endpoint, due []state.DueDelivery) []result {
	out := make([]result, len(due))
	sem := make(chan struct{}, d.o.Concurrency)
	var wg sync.WaitGroup
	for i, dd := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i].delivery, out[i].err = d.deliver(ctx, ep, dd)
		}()
	}
	wg.Wait()
	return out
}

// Encode returns the delivery body of ev.
func Encode(ev state.Event) ([]byte, error) {
	data := json.RawMessage(ev.Payload)
	if !json.Valid(data) {
		data = json.RawMessage("null")
	}
	b, err := json.Marshal(webhook.Event{ID: ev.ID, Seq: ev.Seq, Type: string(ev.Type), CreatedAt: ev.CreatedAt.UTC(), AppID: ev.AppID, OutOrderNo: ev.OutOrderNo, Data: data})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return b, nil
}

// maxSnippet bounds how much of a response body is read and logged.
const maxSnippet = 512

// deliver POSTs one event and records the outcome. An error means the
// outcome could not be recorded; the lease then expires and the delivery is
// sent again (the receiver de-duplicates by id).
func (d *Dispatcher) deliver(ctx context.Context, ep Endpoint, dd state.DueDelivery) (*state.Delivery, error) {
	log := d.o.Log.WithFields(logrus.Fields{"endpoint": ep.Name, "event": dd.EventID, "type": dd.EventType, "order": dd.OutOrderNo})
	body, err := Encode(dd.Event)
	if err != nil {
		return nil, err
	}
	start := time.Now() // latency only, not domain time
	code, snippet, sendErr := d.post(ctx, ep, dd.Event, body)
	latency := time.Since(start)
	if ctx.Err() != nil {
		// Shutting down: leave the delivery to its lease; it is sent again.
		return nil, fmt.Errorf("deliver %s to %s: %w", dd.EventID, ep.Name, ctx.Err())
	}
	r := state.AttemptResult{DeliveryID: dd.ID, Owner: d.o.Owner, StatusCode: code, Latency: latency, Snippet: snippet}
	now := d.o.Clock.Now()
	outcome := "delivered"
	switch {
	case sendErr == nil && code >= 200 && code < 300:
		r.OK = true
	default:
		if sendErr != nil {
			r.Error = sendErr.Error()
		} else {
			r.Error = fmt.Sprintf("HTTP %d", code)
		}
		if dd.Attempts < len(d.o.Retry) {
			at := now.Add(d.delay(dd.Attempts))
			r.RetryAt = &at
			outcome = "retry"
		} else {
			outcome = "dead"
		}
	}
	if d.o.Metrics != nil {
		d.o.Metrics.EventDeliveries.WithLabelValues(ep.Name, outcome).Inc()
	}
	dl, err := d.o.Store.RecordAttempt(context.WithoutCancel(ctx), r, now)
	if err != nil {
		return nil, fmt.Errorf("deliver %s to %s: %w", dd.EventID, ep.Name, err)
	}
	switch outcome {
	case "delivered":
		log.WithField("latency_ms", latency.Milliseconds()).Debug("event delivered")
	case "retry":
		log.WithFields(logrus.Fields{"status": code, "attempt": dl.Attempts, "retry_at": r.RetryAt}).Warn("event delivery failed: " + r.Error)
	case "dead":
		log.WithFields(logrus.Fields{"status": code, "attempt": dl.Attempts}).Error("event delivery gave up after the retry schedule: " + r.Error)
	}
	return dl, nil
}

// post sends one signed request and returns the status and the start of
// the answer's body.
func (d *Dispatcher) post(ctx context.Context, ep Endpoint, ev state.Event, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("build request: %w", err)
	}
	ts := d.o.SignClock.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "payd-events/1")
	req.Header.Set(webhook.HeaderID, ev.ID)
	req.Header.Set(webhook.HeaderType, string(ev.Type))
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(ep.Secret, ts, body))
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("post: %w", redactURL(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxSnippet))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp.StatusCode, string(b), fmt.Errorf("redirect to %q not followed", resp.Header.Get("Location"))
	}
	return resp.StatusCode, string(b), nil
}

// redactURL drops the URL from a client error (it may carry credentials in
// its query) and keeps the cause.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// delay is the retry delay after failure n, with jitter.
func (d *Dispatcher) delay(n int) time.Duration {
	base := d.o.Retry[max(0, min(n, len(d.o.Retry)-1))]
	if d.o.Jitter <= 0 {
		return base
	}
	d.rmu.Lock()
	f := 1 + d.o.Jitter*(2*d.rng.Float64()-1)
	d.rmu.Unlock()
	return time.Duration(float64(base) * f)
}
