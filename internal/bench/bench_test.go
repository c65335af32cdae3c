package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// TestBudget runs the budget and mix scenarios on an ecpay app and on a
// trade app at tiny sizes: every call made once, none answered "too many
// calls" (1001, trade 12001), and never above the limit.
func TestBudget(t *testing.T) {
	type apis struct {
		settle, refund, query douyin.API
		busy                  int
		queries               int64 // a trade refund queries its order first
	}
	for api, want := range map[string]apis{
		APIEcpay: {douyin.APISettle, douyin.APICreateRefund, douyin.APIQueryOrder, 1001, 40},
		APITrade: {douyin.APITradeSettleCreate, douyin.APITradeRefundCreate, douyin.APITradeOrderQuery, 12001, 80},
	} {
		for _, mix := range []bool{false, true} {
			t.Run(api+"/"+map[bool]string{false: "settle", true: "mix"}[mix], func(t *testing.T) {
				r, err := Budget(context.Background(), BudgetOptions{Dir: t.TempDir(), N: 40, Limit: 100, Mix: mix, Timeout: time.Minute, API: api})
				if err != nil {
					t.Fatal(err)
				}
				if r.BusyErrNo != want.busy {
					t.Fatalf("counted err_no %d, want %d", r.BusyErrNo, want.busy)
				}
				if r.Calls[want.settle] != 40 || r.Busy != 0 {
					t.Fatalf("calls %v, %ds %d: want 40 settle calls and none refused", r.Calls, r.BusyErrNo, r.Busy)
				}
				if mix && (r.Calls[want.refund] != 40 || r.Calls[want.query] != want.queries) {
					t.Fatalf("calls %v: want 40 refunds and %d order queries", r.Calls, want.queries)
				}
				// 40 calls of an API at 100/s (mix on trade: 80 order
				// queries) cannot take less than 0.4s (0.8s): the limit holds.
				most := int64(40)
				if mix {
					most = want.queries
				}
				if r.Ideal != time.Duration(most)*10*time.Millisecond || r.Use <= 0 || r.Use > 1.03 {
					t.Fatalf("wall %s, ideal %s, use %.3f: payd ran above the limit or the figure is wrong", r.Wall, r.Ideal, r.Use)
				}
			})
		}
	}
	if _, err := Budget(context.Background(), BudgetOptions{Dir: t.TempDir(), N: 1, Limit: 100, API: "v2"}); err == nil || !strings.Contains(err.Error(), `api "v2"`) {
		t.Errorf("api v2: %v, want an error naming it", err)
	}
}

func TestScript(t *testing.T) {
	r, err := Script(context.Background(), ScriptOptions{Dir: t.TempDir(), N: 20, Limit: 200, Latency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.PaydCalls != 20 || r.ScriptCalls != 20 || r.PaydBusy != 0 {
		t.Fatalf("%+v: want 20 calls each and no 1001 for payd", r)
	}
	// The script waits 20 ms per call, one after the other.
	if r.ScriptWall < 400*time.Millisecond || r.Speedup <= 1 {
		t.Fatalf("script %s, payd %s, speed-up %.1f", r.ScriptWall, r.PaydWall, r.Speedup)
	}
}

func TestHint(t *testing.T) {
	for _, batch := range []bool{false, true} {
		r, err := Hint(context.Background(), HintOptions{Dir: t.TempDir(), Samples: 10, Every: 20 * time.Millisecond, Batch: batch, Timeout: time.Minute})
		if err != nil {
			t.Fatalf("batch %t: %v", batch, err)
		}
		if r.Samples != 10 || r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.Max > 10*time.Second {
			t.Fatalf("batch %t: %+v", batch, r)
		}
	}
}

func TestIntake(t *testing.T) {
	for _, batch := range []bool{false, true} {
		r, err := Intake(context.Background(), IntakeOptions{
			Dir: t.TempDir(), Orders: 50, Batch: batch, Synchronous: "NORMAL",
			Load: func(ctx context.Context, url string) (*LoadResult, error) {
				return LoadGen(ctx, LoadOptions{URL: url, N: 300, Concurrency: 8, Duration: time.Minute, Orders: 50})
			},
		})
		if err != nil {
			t.Fatalf("batch %t: %v", batch, err)
		}
		if r.Load.Acked != 300 || r.Load.Failed != 0 || r.Stored != 300 || r.Lost != 0 || r.PerSecond <= 0 {
			t.Fatalf("batch %t: %+v, load %+v: want 300 acknowledged and stored", batch, r, r.Load)
		}
	}
}

func TestLoadGen_CountsRefusals(t *testing.T) {
	r, err := Intake(context.Background(), IntakeOptions{
		Dir: t.TempDir(), Orders: 5,
		Load: func(ctx context.Context, url string) (*LoadResult, error) {
			return LoadGen(ctx, LoadOptions{URL: url + "-nowhere", N: 10, Concurrency: 2, Duration: time.Minute, Orders: 5})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Load.Acked != 0 || r.Load.Failed != 10 || r.Load.FirstError == "" || r.Stored != 0 {
		t.Fatalf("%+v: want 10 failures (404) and nothing stored", r.Load)
	}
}

func TestScale(t *testing.T) {
	r, err := Scale(context.Background(), ScaleOptions{Dir: t.TempDir(), Orders: 600, Due: 50, Passes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Orders != 600 || r.Due != 50 || r.Claim <= 0 || r.Pass <= 0 {
		t.Fatalf("%+v", r)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := Percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%.0f = %s, want %s", tc.p, got, tc.want)
		}
	}
	if Median([]float64{3, 1, 2}) != 2 || Median([]float64{4, 1, 2, 3}) != 2.5 || Median(nil) != 0 {
		t.Error("median wrong")
	}
}
