package state

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// benchDue is how many orders are due in every pass of the benchmarks.
const benchDue = 1000

// benchOrders returns the benchmark's table size: PAYD_BENCH_ORDERS, or
// 10,000 so that `go test -bench` stays quick.
func benchOrders(tb testing.TB) int {
	v := os.Getenv("PAYD_BENCH_ORDERS")
	if v == "" {
		return 10_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < benchDue {
		tb.Fatalf("PAYD_BENCH_ORDERS=%q: want a number ≥ %d", v, benchDue)
	}
	return n
}

// seed fills s with n orders of which due have NextActionAt at or before
// now (spread over the last hour); of the rest half are scheduled 1 to 30
// days ahead and half have nothing to do. Every third order has a refund
// and every fourth a settlement. Rows go in with CreateInBatches, in big
// transactions.
func seed(tb testing.TB, s *Store, n, due int, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	const chunk = 50_000 // rows per transaction
	start := time.Now()
	for base := 0; base < n; base += chunk {
		size := min(chunk, n-base)
		orders := make([]Order, size)
		for i := range orders {
			k := base + i
			o := &orders[i]
			o.AppID, o.OutOrderNo, o.TotalAmount, o.Status, o.Version = "app1", fmt.Sprintf("bench%08d", k), 10_000, OrderSuccess, 1
			o.PaidAt = ptr(now.Add(-time.Duration(k%100) * time.Hour))
			switch {
			case k < due:
				o.NextActionAt = ptr(now.Add(-time.Duration(k) * time.Hour / time.Duration(due)))
			case k%2 == 0:
				o.NextActionAt = ptr(now.Add(24*time.Hour + time.Duration(k%(29*24*60))*time.Minute))
			}
		}
		err := s.DB().WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.CreateInBatches(orders, 1000).Error; err != nil {
				return err
			}
			var refunds []Refund
			var settlements []Settlement
			for i := range orders {
				o := &orders[i]
				k := base + i
				if k%3 == 0 {
					key := fmt.Sprintf("r%08d", k)
					refunds = append(refunds, Refund{OrderID: o.ID, Key: key, Amount: 100, Phase: PhaseSucceeded, Attempt: 1, OutRefundNo: RefundNo(key, 1), Version: 1})
				}
				if k%4 == 0 {
					settlements = append(settlements, Settlement{OrderID: o.ID, Phase: PhaseSucceeded, Attempt: 1, OutSettleNo: SettleNo(o.AppID, o.OutOrderNo, 1), Amount: 9_000, Version: 1})
				}
			}
			if err := tx.CreateInBatches(refunds, 1000).Error; err != nil {
				return err
			}
			return tx.CreateInBatches(settlements, 1000).Error
		})
		if err != nil {
			tb.Fatalf("seed: %v", err)
		}
	}
	if err := s.DB().Exec("ANALYZE").Error; err != nil {
		tb.Fatalf("analyze: %v", err)
	}
	tb.Logf("seeded %d orders (%d due) with refunds and settlements in %s", n, due, time.Since(start).Round(time.Millisecond))
}

// benchStores runs fn on a seeded SQLite store and, when
// PAYD_TEST_POSTGRES_DSN is set, a seeded PostgreSQL one.
func benchStores(b *testing.B, fn func(b *testing.B, e *env)) {
	n := benchOrders(b)
	for _, backend := range []struct {
		name string
		open func(testing.TB) *env
	}{{"sqlite", newSQLiteEnv}, {"postgres", newPostgresEnv}} {
		b.Run(fmt.Sprintf("%s/orders=%d", backend.name, n), func(b *testing.B) {
			e := backend.open(b)
			seed(b, e.Store, n, benchDue, t0)
			plan, err := e.ExplainDue(context.Background(), t0, benchDue)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("plan of the due query:\n%s", plan)
			fn(b, e)
		})
	}
}

// BenchmarkClaimDue measures one claim pass: find the 1,000 due orders
// among PAYD_BENCH_ORDERS and lease them. Each pass moves the clock past
// the last pass's leases, so the same 1,000 are due again.
func BenchmarkClaimDue(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		now := t0
		benchClaims(b, e, &now)
	})
}

// benchClaims claims the benchDue orders of e in every loop, moving *now
// past the last claim's leases each time, and reports the time per order.
func benchClaims(b *testing.B, e *env, now *time.Time) {
	ctx := context.Background()
	for b.Loop() {
		claims, err := e.ClaimDue(ctx, *now, benchDue, time.Second, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if len(claims) != benchDue {
			b.Fatalf("claimed %d, want %d", len(claims), benchDue)
		}
		*now = now.Add(2 * time.Second)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchDue), "ns/order")
}

// BenchmarkClaimDueIndexes prices a second index on next_action_at in the
// claim: the lease update moves each claimed order's entry in every index
// that holds next_action_at. The same SQLite store is claimed from with
// the one index payd keeps (ix_orders_due, of the orders with a next
// action), then with idx_orders_next_action_at added back (schema 16 had
// it, and a full (app_id, next_action_at) index), side by side in one run.
func BenchmarkClaimDueIndexes(b *testing.B) {
	e := newSQLiteEnv(b)
	seed(b, e.Store, benchOrders(b), benchDue, t0)
	now := t0
	claim := func(b *testing.B) { benchClaims(b, e, &now) }
	b.Run("indexes=one", claim)
	if err := e.DB().Exec("CREATE INDEX idx_orders_next_action_at ON orders (next_action_at)").Error; err != nil {
		b.Fatal(err)
	}
	b.Run("indexes=two", claim)
}

// BenchmarkDueOrders measures the read-only due query (`payd plan`).
func BenchmarkDueOrders(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		ctx := context.Background()
		for b.Loop() {
			ids, err := e.DueOrders(ctx, t0, benchDue)
			if err != nil {
				b.Fatal(err)
			}
			if len(ids) != benchDue {
				b.Fatalf("found %d, want %d", len(ids), benchDue)
			}
		}
	})
}

// TestStore_DueQueryUsesIndex checks with EXPLAIN QUERY PLAN that the due
// query reads the (app_id, next_action_at) index, in order, and never scans the
// table or sorts it.
func TestStore_DueQueryUsesIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		seed(t, e.Store, 2000, 20, t0)
		plan, err := e.ExplainDue(ctx, t0, 100)
		must(t, err)
		t.Logf("plan:\n%s", plan)
		want := "USING INDEX ix_orders_due (app_id=? AND next_action_at<?)" // SQLite
		if e.Dialect() == DriverPostgres {
			want = "Index Scan using ix_orders_due"
			if !strings.Contains(plan, "LockRows") {
				t.Fatalf("the claim query does not lock its rows (FOR UPDATE SKIP LOCKED):\n%s", plan)
			}
		}
		if !strings.Contains(plan, want) {
			t.Fatalf("the due query does not use ix_orders_due:\n%s", plan)
		}
		if strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "Sort") {
			t.Fatalf("the due query sorts instead of reading the index in order:\n%s", plan)
		}
		ids, err := e.DueOrders(ctx, t0, 100)
		must(t, err)
		if len(ids) != 20 {
			t.Fatalf("%d due orders, want the 20 seeded", len(ids))
		}
	})
}
