// Package storetest gives tests a migrated SQLite store of their own. It
// imports nothing of payd but the state package, so the tests of every
// package above it can use it.
package storetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

// Open opens a migrated SQLite store (synchronous NORMAL) in a test
// directory of tb, on clock now (nil: the real one), closed with the test.
func Open(tb testing.TB, now func() time.Time) *state.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, state.Options{DSN: filepath.Join(tb.TempDir(), "payd.db"), Synchronous: "NORMAL", Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return st
}
