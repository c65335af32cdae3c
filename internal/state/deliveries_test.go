package state

import (
	"context"
	"strings"
	"testing"
	"time"
)

// paid writes an order.paid event for order no through UpdateOrder.
func (e *env) paid(t *testing.T, no string) {
	t.Helper()
	ctx := context.Background()
	o, err := e.GetOrder(ctx, "app1", no)
	must(t, err)
	must(t, e.UpdateOrder(ctx, o, NewEvent{Type: EventOrderPaid, Payload: map[string]any{"total_amount": o.TotalAmount}}))
}

func TestStore_EventIffCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "o1", 1000)
		stale := *o
		must(t, e.UpdateOrder(ctx, o, NewEvent{Type: EventOrderPaid}))
		if got := e.eventTypes(t); got != "order.paid" {
			t.Fatalf("after a committed change: events %q, want exactly one order.paid", got)
		}
		// A lost race: the change does not commit, and neither does its event.
		stale.Status = OrderFail
		wantErr(t, e.UpdateOrder(ctx, &stale, NewEvent{Type: EventOrderClosed}), ErrConflict, "")
		// A failure after the change within the transaction (the event
		// cannot be written): the change is rolled back with it.
		cur := e.getOrder(t, o.ID)
		cur.Status = OrderTimeout
		if err := e.UpdateOrder(ctx, &cur, NewEvent{Type: EventOrderClosed, Payload: func() {}}); err == nil || !strings.Contains(err.Error(), "encode payload") {
			t.Fatalf("update with an unencodable event: %v, want an encode error", err)
		}
		if got := e.getOrder(t, o.ID); got.Status != OrderSuccess || got.Version != o.Version {
			t.Fatalf("order after failed event insert: status %s version %d, want SUCCESS %d", got.Status, got.Version, o.Version)
		}
		if got := e.eventTypes(t); got != "order.paid" {
			t.Fatalf("after failed changes: events %q, want only order.paid", got)
		}
	})
}

func TestStore_FanOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.order(t, "o1", 1000)
		e.paid(t, "o1") // history before the endpoint exists
		sub := Subscription{Endpoint: "backend", Types: []string{"order.paid"}}
		n, err := e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now())
		must(t, err)
		if n != 0 {
			t.Fatalf("first fan-out created %d deliveries, want 0 (a new endpoint starts at the end)", n)
		}
		e.order(t, "o2", 500)
		e.paid(t, "o2")
		o2, err := e.GetOrder(ctx, "app1", "o2")
		must(t, err)
		must(t, e.UpdateOrder(ctx, o2, NewEvent{Type: EventOrderClosed})) // filtered out by Types
		n, err = e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now())
		must(t, err)
		if n != 1 {
			t.Fatalf("fan-out created %d deliveries, want 1", n)
		}
		n, err = e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now())
		must(t, err)
		if n != 0 {
			t.Fatalf("second fan-out created %d, want 0", n)
		}
		ds, err := e.ListDeliveries(ctx, DeliveryFilter{})
		must(t, err)
		if len(ds) != 1 || ds[0].OutOrderNo != "o2" || ds[0].EventType != EventOrderPaid || ds[0].Status != DeliveryPending {
			t.Fatalf("deliveries %+v, want one pending order.paid of o2", ds)
		}
	})
}

func TestStore_FanOutWaitsForGap(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	sub := Subscription{Endpoint: "backend"}
	_, err := e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now())
	must(t, err)
	e.order(t, "o1", 1000)
	e.paid(t, "o1")
	// A hole in Seq, as an uncommitted PostgreSQL transaction leaves.
	var last int64
	must(t, e.DB().Model(&Event{}).Select("MAX(seq)").Scan(&last).Error)
	must(t, e.DB().Create(&Event{Seq: last + 2, ID: "evt_gap", Type: EventOrderPaid, AppID: "app1", OutOrderNo: "o1", Payload: "{}", CreatedAt: e.clock.Now()}).Error)
	n, err := e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now())
	must(t, err)
	if n != 1 {
		t.Fatalf("fan-out across a fresh gap created %d, want 1 (stop before the gap)", n)
	}
	e.clock.Advance(2 * time.Minute)
	n, err = e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now())
	must(t, err)
	if n != 1 {
		t.Fatalf("fan-out across an old gap created %d, want 1", n)
	}
}

// fanned returns a store with an endpoint "backend" and events
// o1:paid, o2:paid, o1:closed fanned out to it.
func fanned(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	_, err := e.FanOut(ctx, Subscription{Endpoint: "backend"}, 100, time.Minute, e.clock.Now())
	must(t, err)
	e.order(t, "o1", 1000)
	e.order(t, "o2", 1000)
	e.paid(t, "o1")
	e.paid(t, "o2")
	o1, err := e.GetOrder(ctx, "app1", "o1")
	must(t, err)
	must(t, e.UpdateOrder(ctx, o1, NewEvent{Type: EventOrderClosed}))
	n, err := e.FanOut(ctx, Subscription{Endpoint: "backend"}, 100, time.Minute, e.clock.Now())
	must(t, err)
	if n != 3 {
		t.Fatalf("fanned out %d, want 3", n)
	}
}

func claimNos(ds []DueDelivery) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.OutOrderNo+":"+string(d.Event.Type))
	}
	return strings.Join(s, ",")
}

func TestStore_ClaimDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		fanned(t, e)
		now := e.clock.Now()
		due, err := e.ClaimDeliveries(ctx, "backend", "w1", 10, time.Minute, now)
		must(t, err)
		if got := claimNos(due); got != "o1:order.paid,o2:order.paid" {
			t.Fatalf("claimed %q, want the head of each order", got)
		}
		// Leased: a second dispatcher gets nothing, not even o1's next event.
		again, err := e.ClaimDeliveries(ctx, "backend", "w2", 10, time.Minute, now)
		must(t, err)
		if len(again) != 0 {
			t.Fatalf("second claim got %q, want nothing while leased", claimNos(again))
		}
		// o1's first fails: retry in 10s. Its next event stays behind it.
		retry := now.Add(10 * time.Second)
		d, err := e.RecordAttempt(ctx, AttemptResult{DeliveryID: due[0].ID, Owner: "w1", StatusCode: 500, Snippet: "boom", Error: "HTTP 500", RetryAt: &retry}, now)
		must(t, err)
		if d.Status != DeliveryPending || d.Attempts != 1 || d.LastStatus != 500 || !timeEq(d.NextAttemptAt, &retry) {
			t.Fatalf("after failure: %+v", d)
		}
		_, err = e.RecordAttempt(ctx, AttemptResult{DeliveryID: due[1].ID, Owner: "w2", OK: true, StatusCode: 200}, now)
		wantErr(t, err, ErrConflict, "")
		d, err = e.RecordAttempt(ctx, AttemptResult{DeliveryID: due[1].ID, Owner: "w1", OK: true, StatusCode: 200}, now)
		must(t, err)
		if d.Status != DeliveryDelivered || d.DeliveredAt == nil {
			t.Fatalf("after 200: %+v", d)
		}
		again, err = e.ClaimDeliveries(ctx, "backend", "w1", 10, time.Minute, now)
		must(t, err)
		if len(again) != 0 {
			t.Fatalf("claimed %q before o1's retry is due, want nothing (o1:closed waits for o1:paid)", claimNos(again))
		}
		e.clock.Advance(10 * time.Second)
		again, err = e.ClaimDeliveries(ctx, "backend", "w1", 10, time.Minute, e.clock.Now())
		must(t, err)
		if got := claimNos(again); got != "o1:order.paid" {
			t.Fatalf("claimed %q, want o1:order.paid again", got)
		}
		// Schedule exhausted: dead, which unblocks o1's next event.
		_, err = e.RecordAttempt(ctx, AttemptResult{DeliveryID: again[0].ID, Owner: "w1", Error: "timeout"}, e.clock.Now())
		must(t, err)
		again, err = e.ClaimDeliveries(ctx, "backend", "w1", 10, time.Minute, e.clock.Now())
		must(t, err)
		if got := claimNos(again); got != "o1:order.closed" {
			t.Fatalf("claimed %q, want o1:order.closed after the dead one", got)
		}
		failed, err := e.ListDeliveries(ctx, DeliveryFilter{Failed: true})
		must(t, err)
		if len(failed) != 1 || failed[0].Status != DeliveryDead || failed[0].Attempts != 2 || failed[0].LastError != "timeout" {
			t.Fatalf("failed deliveries %+v, want the dead o1:order.paid", failed)
		}
		log, err := e.DeliveryLog(ctx, failed[0].ID)
		must(t, err)
		if len(log) != 2 || log[0].StatusCode != 500 || log[0].Snippet != "boom" || log[1].Error != "timeout" {
			t.Fatalf("delivery log %+v", log)
		}
		counts, err := e.DeliveryCounts(ctx)
		must(t, err)
		if counts[DeliveryDead] != 1 || counts[DeliveryDelivered] != 1 || counts[DeliveryPending] != 1 {
			t.Fatalf("counts %v", counts)
		}
	})
}

func TestStore_LeaseExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		fanned(t, e)
		due, err := e.ClaimDeliveries(ctx, "backend", "crashed", 1, time.Minute, e.clock.Now())
		must(t, err)
		if len(due) != 1 {
			t.Fatalf("claimed %d, want 1", len(due))
		}
		e.clock.Advance(time.Minute)
		again, err := e.ClaimDeliveries(ctx, "backend", "w2", 1, time.Minute, e.clock.Now())
		must(t, err)
		if len(again) != 1 || again[0].ID != due[0].ID {
			t.Fatalf("after the lease: claimed %q, want the crashed worker's delivery", claimNos(again))
		}
		_, err = e.RecordAttempt(ctx, AttemptResult{DeliveryID: due[0].ID, Owner: "crashed", OK: true}, e.clock.Now())
		wantErr(t, err, ErrConflict, "")
	})
}

func TestStore_Replay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		fanned(t, e)
		now := e.clock.Now()
		due, err := e.ClaimDeliveries(ctx, "backend", "w1", 10, time.Minute, now)
		must(t, err)
		for _, d := range due {
			_, err := e.RecordAttempt(ctx, AttemptResult{DeliveryID: d.ID, Owner: "w1", OK: true, StatusCode: 204}, now)
			must(t, err)
		}
		subs := []Subscription{{Endpoint: "backend"}, {Endpoint: "audit", Types: []string{"order.closed"}}}
		n, err := e.ReplayEvent(ctx, subs, due[0].EventID, now)
		must(t, err)
		if n != 1 {
			t.Fatalf("replayed %d, want 1 (audit does not want order.paid)", n)
		}
		again, err := e.ClaimDeliveries(ctx, "backend", "w1", 10, time.Minute, now)
		must(t, err)
		if len(again) != 1 || again[0].EventID != due[0].EventID || again[0].Attempts != 0 {
			t.Fatalf("after replay claimed %q, want %s with a fresh schedule", claimNos(again), due[0].EventID)
		}
		// A delivery in flight is left alone.
		n, err = e.ReplayEvent(ctx, subs, due[0].EventID, now)
		must(t, err)
		if n != 0 {
			t.Fatalf("replay of a leased delivery reset %d, want 0", n)
		}
		_, err = e.ReplayEvent(ctx, subs, "evt_missing", now)
		wantErr(t, err, ErrNotFound, "")
		// Since: every event, creating the audit endpoint's missing delivery.
		n, err = e.ReplaySince(ctx, subs, t0.Add(-time.Hour), now)
		must(t, err)
		if n != 3 { // o2:paid and o1:closed at backend (o1:paid is leased), o1:closed created at audit
			t.Fatalf("replay since: %d, want 3", n)
		}
		audit, err := e.ListDeliveries(ctx, DeliveryFilter{Endpoint: "audit"})
		must(t, err)
		if len(audit) != 1 || audit[0].EventType != EventOrderClosed || audit[0].Status != DeliveryPending {
			t.Fatalf("audit deliveries %+v", audit)
		}
		n, err = e.ReplaySince(ctx, subs, now.Add(time.Hour), now)
		must(t, err)
		if n != 0 {
			t.Fatalf("replay since the future: %d, want 0", n)
		}
	})
}

func TestStore_DueDeliveriesUseIndex(t *testing.T) {
	e := newSQLiteEnv(t)
	plan, err := e.explain(context.Background(), dueDeliveriesQuery, "backend", DeliveryPending, e.clock.Now(), DeliveryPending, 10)
	must(t, err)
	if !strings.Contains(plan, "ix_deliveries_due") || !strings.Contains(plan, "ix_deliveries_order") {
		t.Fatalf("due query plan does not use the delivery indexes:\n%s", plan)
	}
}

// TestStore_FanOutSince: an endpoint's first fan-out, however late it runs,
// takes every event written since its process started, and none from
// before.
func TestStore_FanOutSince(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.order(t, "old", 1000)
		e.paid(t, "old") // history: before the process started
		e.clock.Advance(time.Second)
		sub := Subscription{Endpoint: "backend", Since: e.clock.Now()}
		e.order(t, "new", 1000)
		e.paid(t, "new") // written by the process before its first fan-out ran
		n, err := e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now())
		must(t, err)
		ds, err := e.ListDeliveries(ctx, DeliveryFilter{})
		must(t, err)
		if n != 1 || len(ds) != 1 || ds[0].OutOrderNo != "new" || ds[0].EventType != EventOrderPaid {
			t.Fatalf("created %d, deliveries %+v; want only new's order.paid", n, ds)
		}
		if n, err := e.FanOut(ctx, sub, 100, time.Minute, e.clock.Now()); err != nil || n != 0 {
			t.Fatalf("second fan-out: %d, %v; want nothing new", n, err)
		}
	})
}
