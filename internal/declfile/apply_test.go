package declfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/pgtest"
	"github.com/payd/payd/internal/state"
)

// TestSource_ApplyLargeAllOrNothing declares 7,000 refunds in one file
// (PostgreSQL ran out of shared memory above about 6,400, one savepoint
// per row), then a file whose last row reuses a key: nothing of it stays.
func TestSource_ApplyLargeAllOrNothing(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			st := openStore(t, backend)
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			const n = 7000
			var b strings.Builder
			b.WriteString("kind,order,amount,reason,key\n")
			for i := range n {
				fmt.Fprintf(&b, "refund,lo%05d,5,big,lk%05d\n", i, i)
			}
			res, err := apply(t, st, b.String(), now)
			if err != nil || res.Changed != n {
				t.Fatalf("apply %d rows: %+v, %v", n, res, err)
			}
			// Again: every row is already so.
			if res, err := apply(t, st, b.String(), now); err != nil || res.Unchanged != n || res.Changed != 0 {
				t.Fatalf("apply again: %+v, %v", res, err)
			}
			bad := "kind,order,amount,reason,key\nrefund,new1,5,x,nk1\nrefund,new2,5,x,nk2\nrefund,lo00001,6,other,lk00001\n"
			if _, err := apply(t, st, bad, now); err == nil || !strings.Contains(err.Error(), "w.csv:4: refund of lo00001") {
				t.Fatalf("a reused key: %v, want the error of line 4", err)
			}
			var orders int64
			if err := st.DB().Model(&state.Order{}).Count(&orders).Error; err != nil || orders != n {
				t.Fatalf("%d orders after the refused file (%v), want %d: all or nothing", orders, err, n)
			}
		})
	}
}

// apply writes text to a CSV file and applies it to st.
func apply(t *testing.T, st *state.Store, text string, now time.Time) (Result, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.csv")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return src.Apply(context.Background(), st, "app1", now)
}

// openStore opens a migrated store: a SQLite file, or a fresh schema of
// the PostgreSQL database PAYD_TEST_POSTGRES_DSN names (skipped when unset).
func openStore(t *testing.T, backend string) *state.Store {
	t.Helper()
	o := state.Options{Driver: state.DriverSQLite, DSN: filepath.Join(t.TempDir(), "payd.db")}
	if backend == "postgres" {
		o = state.Options{Driver: state.DriverPostgres, DSN: pgtest.Schema(t, "payd_test_"), MaxOpenConns: 4}
	}
	st, err := state.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}
