// Package metrics defines payd's Prometheus metrics in one place, so the
// Douyin client, the reconciler, the HTTP server and the event dispatcher
// report under stable names.
package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/payd/payd/internal/douyin"
)

// Metrics holds every collector payd exports.
type Metrics struct {
	Registry *prometheus.Registry

	DouyinCalls     *prometheus.CounterVec   // api, err_no, outcome
	DouyinLatency   *prometheus.HistogramVec // api
	RateLimitWait   *prometheus.HistogramVec // api
	Callbacks       *prometheus.CounterVec   // type, result
	PassDuration    prometheus.Histogram
	Actions         *prometheus.CounterVec // kind, outcome
	EventDeliveries *prometheus.CounterVec // endpoint, result
	HintLatency     prometheus.Histogram
	Replicas        prometheus.Gauge
}

// New registers payd's collectors (and the Go and process collectors) on a
// fresh registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		DouyinCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payd_douyin_calls_total", Help: "Douyin API calls by app, API, err_no (-1: no parsable answer) and outcome class.",
		}, []string{"app", "api", "err_no", "outcome"}),
		DouyinLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "payd_douyin_call_seconds", Help: "Duration of Douyin HTTP exchanges.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"api"}),
		RateLimitWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "payd_rate_limit_wait_seconds", Help: "Time spent waiting for a per-app, per-API rate-limit token, by app and API.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}, []string{"app", "api"}),
		Callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payd_callbacks_total", Help: "Douyin callbacks received, by type and result (stored, duplicate, bad_signature, malformed, too_large, unknown_app, rate_limited, store_error).",
		}, []string{"type", "result"}),
		PassDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "payd_reconcile_pass_seconds", Help: "Duration of reconcile passes.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payd_reconcile_actions_total", Help: "Reconciler actions applied, by app, kind and outcome.",
		}, []string{"app", "kind", "outcome"}),
		EventDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payd_event_deliveries_total", Help: "Outbound event delivery attempts, by endpoint and result.",
		}, []string{"endpoint", "result"}),
		HintLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "payd_hint_to_query_seconds", Help: "Time from a verified callback to the reconciler's query of its subject.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		Replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payd_replicas", Help: "Replicas sharing the Douyin budgets (each takes 1/N), as of this process's last heartbeat.",
		}),
	}
	reg.MustRegister(m.DouyinCalls, m.DouyinLatency, m.RateLimitWait, m.Callbacks, m.PassDuration, m.Actions, m.EventDeliveries, m.HintLatency, m.Replicas,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCall records one Douyin call; it fits douyin.Options.Observe.
func (m *Metrics) ObserveCall(ci douyin.CallInfo) {
	m.DouyinCalls.WithLabelValues(ci.AppID, string(ci.API), strconv.Itoa(ci.ErrNo), ci.Class.String()).Inc()
	if ci.Latency > 0 {
		m.DouyinLatency.WithLabelValues(string(ci.API)).Observe(ci.Latency.Seconds())
	}
	m.RateLimitWait.WithLabelValues(ci.AppID, string(ci.API)).Observe(ci.Waited.Seconds())
}

// Counts is a snapshot of items by phase, read at scrape time.
type Counts struct {
	Orders      map[string]int64
	Refunds     map[string]int64
	Settlements map[string]int64
	Events      map[string]int64 // outbound deliveries by status, if known
}

// RegisterItems adds a gauge family payd_items{kind,phase} whose values come
// from read at every scrape (bounded by timeout).
func (m *Metrics) RegisterItems(read func(ctx context.Context) (Counts, error), timeout time.Duration) {
	m.Registry.MustRegister(&itemsCollector{read: read, timeout: timeout})
}

var itemsDesc = prometheus.NewDesc("payd_items", "Orders by status, refunds and settlements by phase, event deliveries by status.", []string{"kind", "phase"}, nil)

type itemsCollector struct {
	read    func(ctx context.Context) (Counts, error)
	timeout time.Duration
}

func (c *itemsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- itemsDesc }

func (c *itemsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(itemsDesc, err)
		return
	}
	emit := func(kind string, m map[string]int64) {
		for phase, n := range m {
			ch <- prometheus.MustNewConstMetric(itemsDesc, prometheus.GaugeValue, float64(n), kind, phase)
		}
	}
	emit("order", counts.Orders)
	emit("refund", counts.Refunds)
	emit("settlement", counts.Settlements)
	emit("event_delivery", counts.Events)
}
