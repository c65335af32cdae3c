package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

// benchOrders is the benchmark's size: PAYD_BENCH_ORDERS, else 20,000.
func benchOrders(tb testing.TB) int {
	if v := os.Getenv("PAYD_BENCH_ORDERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("PAYD_BENCH_ORDERS=%q: want a positive number", v)
		}
		return n
	}
	return 20_000
}

// sqlTime is an SQLite expression for the time secs seconds after now,
// in the text form the driver writes.
func sqlTime(now time.Time, secs string) string {
	return fmt.Sprintf("strftime('%%Y-%%m-%%d %%H:%%M:%%S', %d + (%s), 'unixepoch') || '+00:00'", now.Unix(), secs)
}

// seedBulk inserts n orders across both apps with one statement per table
// (SQLite's recursive CTE): a fifth refunded (one in twenty of those
// parked), half settled or pending, one call per order over the last two
// days, and an event with a delivery for half of them (one in a hundred
// dead).
func seedBulk(tb testing.TB, st *state.Store, now time.Time, n int) {
	tb.Helper()
	db := st.DB()
	seq := fmt.Sprintf("WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < %d) ", n)
	paid := sqlTime(now, "-(i % 1200) * 3600")
	stmts := []string{
		seq + `INSERT INTO orders (app_id, out_order_no, order_id, total_amount, status, paid_at, cps_share, cps_known, settle_after, auto_settle_at, hint_seq, checks, version, created_at, updated_at)
		SELECT CASE i % 2 WHEN 0 THEN '` + appA + `' ELSE '` + appB + `' END, printf('bulk-%07d', i), printf('N8%018d', i), 1000 + i % 50000,
		'SUCCESS', ` + paid + `, 0, 1, ` + sqlTime(now, "604800 - (i % 1200) * 3600") + `,
		CASE WHEN i % 2 = 1 AND i % 1200 < 168 THEN ` + sqlTime(now, "604800 - (i % 1200) * 3600") + ` END, 0, 0, 1, ` + paid + `, ` + paid + ` FROM seq`,
		seq + `INSERT INTO refunds (order_id, idem_key, amount, reason, phase, attempt, out_refund_no, refund_no, checks, err_no, park_reason, version, created_at, updated_at)
		SELECT i, printf('bulk-%07d-r1', i), 100, 'bulk', CASE WHEN i % 100 = 0 THEN 'parked' ELSE 'succeeded' END, 1, printf('bulk-%07d-r1-1', i),
		printf('R8%018d', i), 0, 0, CASE WHEN i % 100 = 0 THEN 'every attempt FAILED at the channel' ELSE '' END, 1, ` + paid + `, ` + paid + ` FROM seq WHERE i % 5 = 0`,
		seq + `INSERT INTO settlements (order_id, phase, attempt, out_settle_no, settle_no, amount, auto, checks, err_no, version, created_at, updated_at)
		SELECT i, CASE WHEN i % 10 = 4 THEN 'pending' ELSE 'succeeded' END, 1, printf('stbulk%010d-1', i), printf('S8%018d', i), 900, 1, 0, 0, 1, ` + paid + `, ` + paid + `
		FROM seq WHERE i % 2 = 0`,
		seq + `INSERT INTO attempts (order_id, resource, resource_id, api, merchant_no, err_no, outcome, latency_ms, created_at)
		SELECT i, 'order', 0, CASE i % 5 WHEN 0 THEN 'query_order' WHEN 1 THEN 'create_refund' WHEN 2 THEN 'query_refund' WHEN 3 THEN 'settle' ELSE 'query_settle' END,
		printf('bulk-%07d', i), CASE WHEN i % 97 = 0 THEN 1001 ELSE 0 END, 'ok', 30, ` + sqlTime(now, fmt.Sprintf("-(i * 172800 / %d)", n)) + ` FROM seq`,
		seq + `INSERT INTO events (id, type, app_id, out_order_no, payload, created_at)
		SELECT printf('evt_bulk%024d', i), 'order.paid', CASE i % 2 WHEN 0 THEN '` + appA + `' ELSE '` + appB + `' END, printf('bulk-%07d', i), '{}', ` + paid + ` FROM seq WHERE i % 2 = 1`,
		`INSERT INTO deliveries (endpoint, event_seq, event_id, event_type, app_id, out_order_no, status, attempts, last_status, latency_ms, created_at, updated_at)
		SELECT '` + endpoint + `', seq, id, type, app_id, out_order_no, CASE WHEN seq % 100 = 0 THEN 'dead' ELSE 'delivered' END, 1,
		CASE WHEN seq % 100 = 0 THEN 503 ELSE 200 END, 20, created_at, created_at FROM events`,
	}
	start := time.Now()
	for _, q := range stmts {
		must(tb, db.Exec(q).Error)
	}
	must(tb, db.Exec("ANALYZE").Error)
	tb.Logf("seeded %d orders in %s", n, time.Since(start).Round(time.Millisecond))
}

// BenchmarkConsole_pages measures each page's server time (the handler,
// from request to rendered HTML) on a database of PAYD_BENCH_ORDERS
// orders, and reading the counters the overview and calendar show. The
// seeding's rows go through the counters' triggers like any write; setup
// folds their deltas (the time it took is logged).
func BenchmarkConsole_pages(b *testing.B) {
	n := benchOrders(b)
	bd := setup(b, func(tb testing.TB, st *state.Store, now time.Time) {
		seedBulk(tb, st, now, n)
		seedScenario(tb, st, now)
	})
	s := bd.con.sessions.create(roleAdmin)
	pages := []struct{ name, path string }{
		{"overview", "/"},
		{"orders", "/orders"},
		{"orders_success_deep", fmt.Sprintf("/orders?status=SUCCESS&after=%d", n/2)},
		{"order", "/orders/" + appA + "/ord-a-0006"},
		{"calendar", "/calendar"},
		{"attention", "/attention"},
		{"search_douyin_id", fmt.Sprintf("/search?q=N8%018d", n/3)},
		{"search_refund_no", fmt.Sprintf("/search?q=bulk-%07d-r1-1", n/5*5)},
		{"events", "/events"},
		{"events_failed", "/events?failed=1"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				req.AddCookie(&http.Cookie{Name: cookieName, Value: s.id})
				rec := httptest.NewRecorder()
				bd.con.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %s", p.path, rec.Code, rec.Body.String())
				}
			}
		})
	}
	b.Run("counts", func(b *testing.B) {
		for b.Loop() {
			if _, err := bd.con.compute(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
