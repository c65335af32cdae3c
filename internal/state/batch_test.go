package state

import (
	"context"
	"testing"
	"time"
)

func TestStore_ClaimDueTriaged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.order(t, "ta", 1000)
		b := e.order(t, "tb", 2000)
		c := e.order(t, "tc", 3000)
		e.refund(t, "ta", "ta-r", 100)
		now := e.clock.Now()
		later := now.Add(time.Hour)

		seen := map[int64]int{}
		triage := func(v *OrderView) (bool, *time.Time) {
			seen[v.Order.ID] = len(v.Refunds)
			switch v.Order.ID {
			case a.ID:
				return true, nil // has work
			case b.ID:
				return false, &later // scheduled
			}
			return false, nil // converged
		}
		claims, idle, err := e.ClaimDueTriaged(ctx, now, 10, time.Minute, "w", triage)
		must(t, err)
		if len(claims) != 1 || claims[0].OrderID != a.ID || idle != 2 {
			t.Fatalf("claims %+v idle %d: want only order ta leased, 2 idle", claims, idle)
		}
		if seen[a.ID] != 1 || seen[b.ID] != 0 || len(seen) != 3 {
			t.Fatalf("triage saw %v: want every order once, with its refunds", seen)
		}
		if o := e.getOrder(t, a.ID); o.LeaseUntil == nil || o.LeaseOwner != "w" {
			t.Fatalf("busy order not leased: %+v", o)
		}
		if o := e.getOrder(t, b.ID); o.LeaseUntil != nil || !timeEq(o.NextActionAt, &later) || o.Version != b.Version {
			t.Fatalf("scheduled order: lease %v next %v version %d", o.LeaseUntil, o.NextActionAt, o.Version)
		}
		// The set-bound reschedule stores the time as a bound time is stored
		// (SQLite compares the column as text, so the claim's order and
		// bounds depend on it).
		var same bool
		must(t, e.DB().Raw("SELECT next_action_at = ? FROM orders WHERE id = ?", later.UTC(), b.ID).Scan(&same).Error)
		if !same {
			t.Fatal("rescheduled next_action_at is not stored as a bound time is")
		}
		if o := e.getOrder(t, c.ID); o.LeaseUntil != nil || o.NextActionAt != nil {
			t.Fatalf("converged order: lease %v next %v", o.LeaseUntil, o.NextActionAt)
		}
		// Nothing else is due now.
		again, idle, err := e.ClaimDueTriaged(ctx, now, 10, time.Minute, "w", triage)
		must(t, err)
		if len(again) != 0 || idle != 0 {
			t.Fatalf("second claim: %+v idle %d", again, idle)
		}
	})
}
