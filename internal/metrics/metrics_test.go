package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/payd/payd/internal/douyin"
)

func TestMetrics_ObserveCall(t *testing.T) {
	m := New()
	m.ObserveCall(douyin.CallInfo{AppID: "tt1", API: douyin.APISettle, ErrNo: 1001, Class: douyin.ClassRetryable, Latency: 20 * time.Millisecond, Waited: time.Millisecond})
	m.ObserveCall(douyin.CallInfo{AppID: "tt1", API: douyin.APISettle, ErrNo: 1001, Class: douyin.ClassRetryable})
	m.ObserveCall(douyin.CallInfo{AppID: "tt2", API: douyin.APISettle, ErrNo: 1001, Class: douyin.ClassRetryable})
	if got := testutil.ToFloat64(m.DouyinCalls.WithLabelValues("tt1", "settle", "1001", "retryable")); got != 2 {
		t.Fatalf("payd_douyin_calls_total{app=tt1} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.DouyinCalls.WithLabelValues("tt2", "settle", "1001", "retryable")); got != 1 {
		t.Fatalf("payd_douyin_calls_total{app=tt2} = %v, want 1 (each app its own series)", got)
	}
	if n := testutil.CollectAndCount(m.DouyinLatency); n != 1 {
		t.Fatalf("latency series = %d, want 1 (only the call with a latency)", n)
	}
}

func TestMetrics_Items(t *testing.T) {
	m := New()
	fail := false
	m.RegisterItems(func(ctx context.Context) (Counts, error) {
		if fail {
			return Counts{}, errors.New("database is locked")
		}
		return Counts{Orders: map[string]int64{"SUCCESS": 3}, Refunds: map[string]int64{"failed": 1}}, nil
	}, time.Second)
	want := `
# HELP payd_items Orders by status, refunds and settlements by phase, event deliveries by status.
# TYPE payd_items gauge
payd_items{kind="order",phase="SUCCESS"} 3
payd_items{kind="refund",phase="failed"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "payd_items"); err != nil {
		t.Fatal(err)
	}
	fail = true
	if _, err := m.Registry.Gather(); err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("a failed read must surface at scrape time, got %v", err)
	}
}
