package state

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/pgtest"
)

// t0 is the fake clock's start in every test.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// env is one test's store, its clock and how to open the same database again.
type env struct {
	*Store
	clock  *clock.Fake
	opts   Options
	reopen func(t testing.TB) *Store // a second, independent Store on the same database
}

// newTestStore returns a migrated store on a SQLite file in t.TempDir(),
// with a fake clock at t0.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	return newSQLiteEnv(t).Store
}

func newSQLiteEnv(t testing.TB) *env {
	t.Helper()
	return newEnv(t, sqliteOptions(t))
}

// sqliteOptions names a new, empty SQLite file in t.TempDir().
func sqliteOptions(t testing.TB) Options {
	return Options{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "payd.db")}
}

// newPostgresEnv returns a migrated store in a fresh schema of the database
// named by PAYD_TEST_POSTGRES_DSN, dropped at cleanup; it skips the test
// when the variable is not set.
func newPostgresEnv(t testing.TB) *env {
	t.Helper()
	return newEnv(t, postgresOptions(t))
}

// postgresOptions names a new, empty schema of the database named by
// PAYD_TEST_POSTGRES_DSN, dropped at cleanup; it skips the test when the
// variable is not set.
func postgresOptions(t testing.TB) Options {
	t.Helper()
	return Options{Driver: DriverPostgres, DSN: pgtest.Schema(t, "payd_test_"), MaxOpenConns: 4}
}

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	e := &env{clock: clock.NewFake(t0)}
	o.Now = e.clock.Now
	e.opts = o
	e.reopen = func(t testing.TB) *Store {
		t.Helper()
		s, err := Open(context.Background(), o)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	e.Store = e.reopen(t)
	if err := e.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return e
}

// forEachBackend runs fn against SQLite and, when PAYD_TEST_POSTGRES_DSN is
// set, PostgreSQL.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, newSQLiteEnv(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, newPostgresEnv(t)) })
}

// wantErr fails unless err is target (errors.Is) with exactly the text msg
// ("" skips the text check).
func wantErr(t *testing.T, err, target error, msg string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	if msg != "" && err.Error() != msg {
		t.Fatalf("error text\n got: %s\nwant: %s", err.Error(), msg)
	}
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// order records a SUCCESS order of total fen in app "app1" and returns it.
func (e *env) order(t *testing.T, no string, total int64) *Order {
	t.Helper()
	o, _, err := e.UpsertOrder(context.Background(), OrderInput{AppID: "app1", OutOrderNo: no, TotalAmount: total, Status: OrderSuccess}, e.clock.Now())
	must(t, err)
	return o
}

// refund declares a refund of amount on order no of app1.
func (e *env) refund(t *testing.T, no, key string, amount int64) *Refund {
	t.Helper()
	r, _, err := e.DeclareRefund(context.Background(), RefundWish{AppID: "app1", OutOrderNo: no, Key: key, Amount: amount}, e.clock.Now())
	must(t, err)
	return r
}

// getOrder reads order id straight from the table.
func (e *env) getOrder(t *testing.T, id int64) Order {
	t.Helper()
	var o Order
	must(t, e.DB().First(&o, id).Error)
	return o
}

// getRefund reads refund id straight from the table.
func (e *env) getRefund(t *testing.T, id int64) Refund {
	t.Helper()
	var r Refund
	must(t, e.DB().First(&r, id).Error)
	return r
}

// getSettlement reads settlement id straight from the table.
func (e *env) getSettlement(t *testing.T, id int64) Settlement {
	t.Helper()
	var st Settlement
	must(t, e.DB().First(&st, id).Error)
	return st
}

// timeEq reports whether two optional times are both nil or equal.
func timeEq(a, b *time.Time) bool { return sameTime(a, b) }

func ptr[T any](v T) *T { return &v }

// fmtTime renders an optional time for failure messages.
func fmtTime(t *time.Time) string {
	if t == nil {
		return "nil"
	}
	return t.Format(time.RFC3339Nano)
}

// eventTypes lists the types of every event in the outbox, in order.
func (e *env) eventTypes(t *testing.T) string {
	t.Helper()
	evs, err := e.Events(context.Background(), 0, 1000)
	must(t, err)
	var types []string
	for _, ev := range evs {
		types = append(types, string(ev.Type))
	}
	return strings.Join(types, ",")
}
