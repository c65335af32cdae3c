package state

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"
)

// TestTransaction_SavepointsShareOneName: savepoints nested three deep,
// all under one name, each undo only their own writes: a failed inner one
// leaves its enclosing one's writes before and after it, a failed middle
// one takes its own writes and its succeeded inner one's with it, and a panic is undone as an
// error is; the transaction commits what is left. Under InOneTx nothing
// nests: an error there rolls back everything. Both backends (PostgreSQL
// also aborts the statement that failed until the rollback).
func TestTransaction_SavepointsShareOneName(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
		rfs := map[string]*Refund{}
		for _, n := range names {
			e.order(t, "sp-"+n, 1000)
			rfs[n] = e.refund(t, "sp-"+n, "sp-"+n+"-r", 100)
		}
		set := func(tx *gorm.DB, n string) error {
			return tx.Exec("UPDATE refunds SET err_tips = ? WHERE id = ?", "set", rfs[n].ID).Error
		}
		boom := errors.New("boom")
		err := e.InTx(ctx, func(tx *Store) error {
			db := tx.session(ctx)
			must(t, set(db, "a"))
			err := transaction(db, func(mid *gorm.DB) error {
				must(t, set(mid, "b"))
				inner := transaction(mid, func(in *gorm.DB) error {
					must(t, set(in, "c"))
					return boom
				})
				wantErr(t, inner, boom, "boom")
				must(t, transaction(mid, func(in *gorm.DB) error { return set(in, "d") }))
				return nil
			})
			must(t, err)
			err = transaction(db, func(mid *gorm.DB) error {
				must(t, set(mid, "e"))
				must(t, transaction(mid, func(in *gorm.DB) error { return set(in, "h") }))
				return boom
			})
			wantErr(t, err, boom, "boom")
			// A statement that fails (PostgreSQL aborts the transaction
			// until the rollback) inside a savepoint that then panics.
			func() {
				defer func() { _ = recover() }()
				_ = transaction(db, func(in *gorm.DB) error {
					must(t, set(in, "f"))
					_ = in.Exec("UPDATE no_such_table SET x = 1").Error
					panic("boom")
				})
			}()
			return set(db, "g")
		})
		must(t, err)
		want := map[string]string{"a": "set", "b": "set", "c": "", "d": "set", "e": "", "f": "", "g": "set", "h": ""}
		for _, n := range names {
			if got := e.getRefund(t, rfs[n].ID).ErrTips; got != want[n] {
				t.Errorf("refund %s: err_tips %q, want %q", n, got, want[n])
			}
		}

		// InOneTx runs nested writes flat: an inner error fails it all.
		err = e.InOneTx(ctx, func(tx *Store) error {
			db := tx.session(ctx)
			must(t, db.Exec("UPDATE refunds SET err_tips = 'flat' WHERE id = ?", rfs["c"].ID).Error)
			return transaction(db, func(in *gorm.DB) error { return boom })
		})
		wantErr(t, err, boom, "boom")
		if got := e.getRefund(t, rfs["c"].ID).ErrTips; got != "" {
			t.Errorf("InOneTx rolled back nothing: err_tips %q", got)
		}
	})
}
