package console

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/pgtest"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// postgresDB names a fresh schema of the database PAYD_TEST_POSTGRES_DSN
// names, dropped at cleanup; it skips the test when the variable is unset.
func postgresDB(t *testing.T) *state.Options {
	t.Helper()
	return &state.Options{Driver: state.DriverPostgres, DSN: pgtest.Schema(t, "payd_test_"), MaxOpenConns: 8}
}

// wantCountersExact fails unless every counter the store keeps equals a
// recount from the rows, key by key, and returns how many keys there are.
// The counters and the recount are two reads, and the simulator's late and
// repeated callbacks still arrive after a convergence: a callback stored
// between them shows as one more in the recount. So a difference is read
// again, up to five times 100 ms apart, before it fails the test; a delta
// that was lost stays lost and fails it.
func wantCountersExact(t *testing.T, st *state.Store, now time.Time) int {
	t.Helper()
	var n int
	var diffs []string
	for try := 0; try < 5; try++ {
		if n, diffs = countersDiff(t, st, now); len(diffs) == 0 {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, d := range diffs {
		t.Error(d)
	}
	return n
}

// countersDiff compares the counters with a recount, once.
func countersDiff(t *testing.T, st *state.Store, now time.Time) (int, []string) {
	t.Helper()
	ctx := context.Background()
	var diffs []string
	kinds := []state.CounterKind{state.CountOrders, state.CountRefunds, state.CountSettlements, state.CountAutoSettle,
		state.CountDue, state.CountSettled, state.CountDeliveries, state.CountCalls, state.CountBusy, state.CountCallbacks}
	kept, err := st.Counters(ctx, state.CounterQuery{Kinds: kinds})
	must(t, err)
	recount, err := st.Recount(ctx, now)
	must(t, err)
	key := func(c state.Counter) string { return fmt.Sprintf("%s %s %d %s", c.Kind, c.Scope, c.Bucket, c.Label) }
	horizon := now.Add(-state.CounterRetention).Unix()
	got, want := map[string]state.Counter{}, map[string]state.Counter{}
	for _, c := range kept {
		if c.Bucket == 0 || c.Bucket >= horizon || c.Kind == state.CountAutoSettle || c.Kind == state.CountDue {
			got[key(c)] = c
		}
	}
	for _, c := range recount {
		want[key(c)] = c
	}
	for k, w := range want {
		if g := got[k]; g.N != w.N || g.Amount != w.Amount {
			diffs = append(diffs, fmt.Sprintf("counter %s: kept %d / %d fen, recounted %d / %d", k, g.N, g.Amount, w.N, w.Amount))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("counter %s: kept %d / %d fen, recounted nothing", k, g.N, g.Amount))
		}
	}
	return len(want), diffs
}

// TestCounters_exactAfterWorkload runs the reconciler against the
// simulator with faults (1000 and 500 before and after the effect,
// refunds failing at the channel, dropped and duplicated callbacks into
// payd's handler) through declarations, refunds, retries, a refund of an
// order Douyin does not know (parked, then retried by hand and parked
// again), cancels, the settle batch and settlements, while the console's
// fold runs beside it; then the counters must equal a recount from the
// rows, on SQLite and on PostgreSQL.
func TestCounters_exactAfterWorkload(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var db *state.Options
			if backend == "postgres" {
				db = postgresDB(t)
			}
			w := testworld.New(t, testworld.Options{
				DB: db, Callbacks: true, Workers: 8, Timeout: 2 * time.Second,
				Sim: func(c *douyinsim.Config) {
					c.ProcessingDelay = 200 * time.Millisecond
					c.Faults = douyinsim.Faults{Err1000NoEffect: 0.05, Err1000AfterEffect: 0.05, HTTP500: 0.05, HTTP500AfterEffect: 0.05,
						CallbackDrop: 0.2, CallbackDuplicate: 0.2, RefundChannelFail: 0.2}
				},
				Policy: func(p *reconcile.Policy) {
					p.Retry = []time.Duration{time.Second}
					p.Poll = []time.Duration{time.Second}
					p.RefundAttempts = 3
				},
			})
			ctx := context.Background()
			con, err := New(Options{Store: w.Store, Clock: w.Clock, AdminToken: adminToken, Apps: []string{testworld.AppID}})
			must(t, err)
			stop := foldBeside(t, con)
			paid := w.Sim.Now()
			for i := range 40 {
				no := fmt.Sprintf("cnt%03d", i)
				w.SeedPaid(no, int64(1000+i), int64(i%3)*10, paid)
				if i%2 == 0 {
					w.Refund(no, no+"-a", int64(100+i))
				}
				if i%7 == 0 {
					w.Refund(no, no+"-b", 50)
				}
			}
			w.Refund("ghost", "ghost-r", 100) // Douyin does not know it: parked
			_, err = w.Store.CancelRefund(ctx, "cnt014-b", "customer kept it", w.Clock.Now())
			must(t, err)
			_, _, err = w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: testworld.AppID, OutOrderNo: "cnt003"}, w.Clock.Now())
			must(t, err)
			_, err = w.Store.CancelSettlement(ctx, testworld.AppID, "cnt003", "settled by hand", w.Clock.Now())
			must(t, err)
			w.Converge(300, 2*time.Second, nil)
			wantCountersExact(t, w.Store, w.Clock.Now())

			// The operator retries what parked; the ghost parks again.
			parked, _, err := w.Store.Parked(ctx, 100)
			must(t, err)
			if len(parked) == 0 {
				t.Fatal("nothing parked: the workload does not retry by hand")
			}
			for _, r := range parked {
				_, err := w.Store.RetryParked(ctx, r.Key, w.Clock.Now())
				must(t, err)
			}
			w.Converge(300, 2*time.Second, nil)
			w.Advance(7*24*time.Hour + time.Minute)
			sum, err := w.Batch.RunOnce(ctx)
			must(t, err)
			if sum.Due == 0 {
				t.Fatal("the settle batch created nothing")
			}
			w.Converge(300, 2*time.Second, nil)
			stop()
			n := wantCountersExact(t, w.Store, w.Clock.Now())
			// Folded or not, the same.
			_, err = w.Store.FoldCounters(ctx, w.Clock.Now(), 0)
			must(t, err)
			wantCountersExact(t, w.Store, w.Clock.Now())
			batches, err := w.Store.LastPasses(ctx, state.PassSettleBatch, 5)
			must(t, err)
			if len(batches) != 1 || batches[0].Actions != sum.Due {
				t.Fatalf("settle batch records %+v, want one with %d created", batches, sum.Due)
			}
			s, err := w.Store.Summary(ctx)
			must(t, err)
			t.Logf("%s: %d counter keys equal to the recount; refunds %v, settlements %v", backend, n, s.Refunds, s.Settlements)
			w.CheckClean()
		})
	}
}

// foldBeside folds con's counters every few milliseconds until the
// returned stop is called (or the test ends), so folds race the writers'
// triggers.
func foldBeside(t *testing.T, con *Console) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := con.Refresh(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("fold: %v", err)
				return
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}
