package state

import (
	"context"
	"testing"
	"time"
)

func TestStore_InsertCallbacks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "b1", 1000)
		o.NextActionAt = nil
		must(t, e.UpdateOrder(ctx, o))
		_, err := e.InsertCallback(ctx, &Callback{AppID: "app1", Type: "payment", Signature: "old", SubjectNo: "b1", Raw: "{}"}, t0)
		must(t, err)
		before := e.getOrder(t, o.ID)
		before.NextActionAt = nil // released with nothing due, so the hint shows
		must(t, e.UpdateOrder(ctx, &before))
		before = e.getOrder(t, o.ID)

		e.clock.Advance(time.Minute)
		now := e.clock.Now()
		cbs := []*Callback{
			{AppID: "app1", Type: "payment", Signature: "s1", SubjectNo: "b1", Raw: "{}"},
			{AppID: "app1", Type: "payment", Signature: "old", SubjectNo: "b1", Raw: "{}"},     // stored before
			{AppID: "app1", Type: "payment", Signature: "s1", SubjectNo: "b1", Raw: "{}"},      // twin in the batch
			{AppID: "app1", Type: "refund", Signature: "s2", SubjectNo: "nobody-1", Raw: "{}"}, // unknown subject
			{AppID: "app1", Type: "payment", Signature: "s3", SubjectNo: "new-order", Raw: "{}"},
			{AppID: "app1", Type: "", Signature: "s4", SubjectNo: "b1", Raw: "{}"}, // invalid
		}
		res := e.InsertCallbacks(ctx, cbs, now)
		want := []bool{true, false, false, true, true, false}
		for i, r := range res {
			if r.Inserted != want[i] {
				t.Errorf("callback %d: inserted %t, want %t (err %v)", i, r.Inserted, want[i], r.Err)
			}
			if (r.Err != nil) != (i == 5) {
				t.Errorf("callback %d: err %v", i, r.Err)
			}
		}
		var n int64
		must(t, e.DB().Model(&Callback{}).Count(&n).Error)
		if n != 4 {
			t.Fatalf("%d callbacks stored, want 4", n)
		}
		for i, cb := range cbs {
			if !want[i] {
				if cb.ID != 0 {
					t.Errorf("callback %d not inserted, yet id %d", i, cb.ID)
				}
				continue
			}
			var row Callback
			must(t, e.DB().First(&row, cb.ID).Error)
			if row.Signature != cb.Signature || row.OrderID != cb.OrderID {
				t.Errorf("callback %d (%s): id %d is the row of %s, order %d", i, cb.Signature, cb.ID, row.Signature, row.OrderID)
			}
		}
		if cbs[0].OrderID != o.ID || cbs[3].OrderID != 0 || cbs[4].OrderID == 0 {
			t.Fatalf("order ids %d %d %d: want %d, 0 and the new order's", cbs[0].OrderID, cbs[3].OrderID, cbs[4].OrderID, o.ID)
		}
		after := e.getOrder(t, o.ID)
		if after.HintSeq <= before.HintSeq || after.NextActionAt == nil || !after.NextActionAt.Equal(now) {
			t.Fatalf("order not hinted: hint_seq %d→%d, next_action_at %v", before.HintSeq, after.HintSeq, after.NextActionAt)
		}
		created, err := e.GetOrder(ctx, "app1", "new-order")
		must(t, err)
		if created.Status != OrderUnknown || created.NextActionAt == nil {
			t.Fatalf("unknown paid order recorded as %s, next %v", created.Status, created.NextActionAt)
		}
		// An empty batch does nothing.
		if got := e.InsertCallbacks(ctx, nil, now); len(got) != 0 {
			t.Fatalf("empty batch: %v", got)
		}
	})
}
