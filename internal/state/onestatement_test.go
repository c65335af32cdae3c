package state

import (
	"context"
	"testing"
	"time"
)

// savepointsBegun is how many savepoints the SQLite store's connection
// has begun.
func savepointsBegun(t *testing.T, e *env) int {
	t.Helper()
	sqlDB, err := e.DB().DB()
	must(t, err)
	c, err := sqlDB.Conn(context.Background())
	must(t, err)
	defer c.Close()
	n := -1
	must(t, c.Raw(func(dc any) error { n = dc.(*cachedConn).saves; return nil }))
	return n
}

// TestOneStatement_NoSavepoint checks which of the reconciler's writes
// inside a transaction take a savepoint of their own: a step without
// events and a release no hint came to are one statement and take none;
// a step with events and a hinted release take one. Each still does what
// it did, and a step that fails inside the transaction changes nothing
// while the rest commits.
func TestOneStatement_NoSavepoint(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	e.order(t, "o1", 1000)
	e.order(t, "o2", 1000)
	decl, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "o1"}, e.clock.Now())
	must(t, err)
	claims, err := e.ClaimDue(ctx, e.clock.Now(), 10, time.Minute, "w1")
	must(t, err)
	if len(claims) != 2 {
		t.Fatalf("%d claims, want 2", len(claims))
	}
	st := e.getSettlement(t, decl.ID)

	inTx := func(name string, want int, fn func(tx *Store) error) {
		t.Helper()
		before := savepointsBegun(t, e)
		must(t, e.InTx(ctx, fn))
		if got := savepointsBegun(t, e) - before; got != want {
			t.Errorf("%s: %d savepoints, want %d", name, got, want)
		}
	}
	inTx("a step without events, and a stale one", 0, func(tx *Store) error {
		stale := st
		st.Phase = PhaseSubmitting
		must(t, tx.UpdateSettlement(ctx, &st, PhasePending))
		stale.Phase = PhaseSubmitting
		wantErr(t, tx.UpdateSettlement(ctx, &stale, PhasePending), ErrConflict, "") // a stale copy
		return nil
	})
	if got := e.getSettlement(t, st.ID); got.Phase != PhaseSubmitting || got.Version != st.Version {
		t.Fatalf("settlement %s v%d after the step, want submitting v%d", got.Phase, got.Version, st.Version)
	}
	inTx("a step with an event", 1, func(tx *Store) error {
		st.Phase, st.SettleNo = PhaseProcessing, "S1"
		return tx.UpdateSettlement(ctx, &st, PhaseSubmitting, NewEvent{Type: "settlement.processing", Payload: map[string]string{"n": "1"}})
	})
	if got := e.eventTypes(t); got != "settlement.processing" {
		t.Fatalf("events %q, want the step's", got)
	}
	next := e.clock.Now().Add(time.Hour)
	inTx("a release no hint came to", 0, func(tx *Store) error { return tx.Release(ctx, claims[0], &next, e.clock.Now()) })
	if got := e.getOrder(t, claims[0].OrderID); got.LeaseUntil != nil || !timeEq(got.NextActionAt, &next) {
		t.Fatalf("released order: lease %s, next %s; want none and %s", fmtTime(got.LeaseUntil), fmtTime(got.NextActionAt), next)
	}
	e.clock.Advance(time.Second)
	now := e.clock.Now()
	must(t, e.Hint(ctx, claims[1].OrderID, now))
	inTx("a hinted release", 1, func(tx *Store) error { return tx.Release(ctx, claims[1], &next, now) })
	if got := e.getOrder(t, claims[1].OrderID); got.LeaseUntil != nil || !timeEq(got.NextActionAt, &now) {
		t.Fatalf("hinted order: lease %s, next %s; want none and now %s", fmtTime(got.LeaseUntil), fmtTime(got.NextActionAt), now)
	}
	inTx("a release of a lost lease", 1, func(tx *Store) error {
		wantErr(t, tx.Release(ctx, claims[0], &next, now), ErrConflict, "") // released already
		return nil
	})
}

// TestRelease_FailureKeepsThePostgresTransaction: on PostgreSQL a failed
// statement aborts its transaction, and the reconciler's finish goes on
// after a release that failed (it leaves the release to the worker), so a
// release inside a transaction takes its savepoint there: a release that
// times out behind another connection's lock leaves the transaction usable
// and what it wrote before commits.
func TestRelease_FailureKeepsThePostgresTransaction(t *testing.T) {
	e := newPostgresEnv(t)
	ctx := context.Background()
	o := e.order(t, "p1", 1000)
	claims, err := e.ClaimDue(ctx, e.clock.Now(), 1, time.Minute, "w1")
	other := e.order(t, "p2", 1000)
	must(t, err)
	if len(claims) != 1 {
		t.Fatalf("%d claims, want 1", len(claims))
	}
	locker := e.DB().Begin()
	must(t, locker.Error)
	defer locker.Rollback()
	must(t, locker.Exec("SELECT id FROM orders WHERE id = ? FOR UPDATE", o.ID).Error)
	next := e.clock.Now().Add(time.Hour)
	err = e.InTx(ctx, func(tx *Store) error {
		must(t, tx.DB().Exec("UPDATE orders SET checks = 5 WHERE id = ?", other.ID).Error)
		must(t, tx.DB().Exec("SET LOCAL lock_timeout = '50ms'").Error)
		if err := tx.Release(ctx, claims[0], &next, e.clock.Now()); err == nil {
			t.Error("a release behind another transaction's lock succeeded")
		}
		// The transaction goes on, as the reconciler's finish does.
		return tx.DB().Exec("UPDATE orders SET checks = checks + 2 WHERE id = ?", other.ID).Error
	})
	must(t, err)
	must(t, locker.Rollback().Error)
	if got := e.getOrder(t, o.ID); got.LeaseUntil == nil {
		t.Fatalf("the order was released by a release that failed")
	}
	if got := e.getOrder(t, other.ID).Checks; got != 7 {
		t.Fatalf("the other order's checks %d after the commit, want 7: the transaction's writes were lost", got)
	}
}
