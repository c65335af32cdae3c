package state

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"
)

// always are the columns every item update writes.
var always = []string{"next_action_at", "updated_at", "version"}

// colsOf lists a column map's names, sorted.
func colsOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// settlementRow renders every column UpdateSettlement writes.
func settlementRow(st Settlement) string {
	return fmt.Sprintf("%s/%d %s %q %q %q amount=%d next=%s checks=%d err=%d %q %q done=%s v%d", st.Phase, st.Attempt, st.OutSettleNo,
		st.SettleNo, st.Source, st.API, st.Amount, fmtTime(st.NextActionAt), st.Checks, st.ErrNo, st.ErrTips, st.ParkReason, fmtTime(st.DoneAt), st.Version)
}

// refundRow renders every column UpdateRefund writes.
func refundRow(r Refund) string {
	return fmt.Sprintf("%s/%d %s %q %q all=%t next=%s checks=%d err=%d %q %q done=%s audit=%s/%s/%q/%q by %s v%d", r.Phase, r.Attempt, r.OutRefundNo,
		r.RefundNo, r.API, r.AllSettle, fmtTime(r.NextActionAt), r.Checks, r.ErrNo, r.ErrTips, r.ParkReason, fmtTime(r.DoneAt),
		r.AuditPhase, fmtTime(r.AuditDeadline), r.AuditDecision, r.AuditMessage, r.AuditBy, r.Version)
}

// itemStep is one step on an item's copy: edit makes it and returns the
// phase it moves from; want are the columns it changes.
type itemStep[T any] struct {
	name string
	edit func(x *T) Phase
	want []string
}

// walk makes each step on x through update, and checks that it wrote the
// columns it changed and the three always written (cols), and that the
// stored row (stored, rendered) is then the copy (render).
func walk[T any](t *testing.T, x *T, steps []itemStep[T], cols func(*T) map[string]any, update func(*T, Phase) error, stored func() T, render func(T) string) {
	t.Helper()
	for _, s := range steps {
		from := s.edit(x)
		if got, want := colsOf(cols(x)), slices.Sorted(slices.Values(append(s.want, always...))); !slices.Equal(got, want) {
			t.Errorf("%s: writes %v, want %v", s.name, got, want)
		}
		must(t, update(x, from))
		if got, want := render(stored()), render(*x); got != want {
			t.Fatalf("%s: row %s, want the copy %s", s.name, got, want)
		}
	}
}

// TestUpdateSettlement_WritesWhatChanged walks a settlement through the
// reconciler's steps on its copy as read, a callback's hint moving
// next_action_at between two of them, and checks after each that the row
// holds every column of the copy, and that the update wrote only the
// columns that changed (and the three it always writes). A copy whose
// stored columns are not those of its version, or of its row, writes
// every column. Both backends.
func TestUpdateSettlement_WritesWhatChanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.order(t, "w1", 1000)
		decl, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "w1"}, e.clock.Now())
		must(t, err)
		st := e.getSettlement(t, decl.ID)
		done := e.clock.Now().Add(time.Minute)
		steps := []itemStep[Settlement]{
			{"submit", func(st *Settlement) Phase {
				st.Phase, st.API = PhaseSubmitting, "ecpay"
				return PhasePending
			}, []string{"api", "phase"}},
			{"answered", func(st *Settlement) Phase {
				st.Phase, st.SettleNo, st.Amount = PhaseProcessing, "S1", 900
				return PhaseSubmitting
			}, []string{"amount", "phase", "settle_no"}},
			{"hint", func(st *Settlement) Phase {
				// A callback's hint moves next_action_at alone, without the
				// version; the copy's time must still be written.
				must(t, e.DB().Exec("UPDATE settlements SET next_action_at = ? WHERE id = ?", e.clock.Now().Add(-time.Hour), st.ID).Error)
				st.Checks, st.ErrTips = 1, "PROCESSING"
				return PhaseProcessing
			}, []string{"checks", "err_tips"}},
			{"succeeded", func(st *Settlement) Phase {
				st.Phase, st.DoneAt, st.NextActionAt, st.Checks, st.ErrTips = PhaseSucceeded, &done, nil, 0, ""
				return PhaseProcessing
			}, []string{"checks", "done_at", "err_tips", "phase"}},
		}
		walk(t, &st, steps, func(st *Settlement) map[string]any { return settlementCols(st, e.now()) },
			func(st *Settlement, from Phase) error { return e.UpdateSettlement(ctx, st, from) },
			func() Settlement { return e.getSettlement(t, st.ID) }, settlementRow)
		// A time changed where the copy's field points still counts.
		*st.DoneAt = done.Add(time.Second)
		if cols := settlementCols(&st, e.now()); cols["done_at"] == nil {
			t.Errorf("done_at changed in place: writes %v, want done_at among them", colsOf(cols))
		}
		all := colsOf(settlementCols(&Settlement{ID: st.ID, Version: st.Version}, e.now()))
		for name, c := range map[string]Settlement{
			"an older version": func() Settlement { c := st; c.Version--; return c }(),
			"another row":      func() Settlement { c := st; c.ID++; return c }(),
		} {
			if got := colsOf(settlementCols(&c, e.now())); !slices.Equal(got, all) {
				t.Errorf("a copy of %s writes %v, want every column %v", name, got, all)
			}
		}
	})
}

// TestUpdateRefund_WritesWhatChanged is the same for a refund, with an
// audit step.
func TestUpdateRefund_WritesWhatChanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.order(t, "w1", 1000)
		r := e.getRefund(t, e.refund(t, "w1", "w1-r", 100).ID)
		deadline := e.clock.Now().Add(48 * time.Hour)
		steps := []itemStep[Refund]{
			{"submit", func(r *Refund) Phase { r.Phase, r.API = PhaseSubmitting, "ecpay"; return PhasePending }, []string{"api", "phase"}},
			{"answered", func(r *Refund) Phase {
				r.Phase, r.RefundNo, r.AuditPhase, r.AuditDeadline = PhaseProcessing, "R1", AuditWaiting, &deadline
				return PhaseSubmitting
			}, []string{"audit_deadline", "audit_phase", "phase", "refund_no"}},
			{"checked", func(r *Refund) Phase { r.Checks, r.ErrNo = 1, 1001; return PhaseProcessing }, []string{"checks", "err_no"}},
			{"succeeded", func(r *Refund) Phase {
				r.Phase, r.DoneAt, r.NextActionAt = PhaseSucceeded, &deadline, nil
				return PhaseProcessing
			}, []string{"done_at", "phase"}},
		}
		walk(t, &r, steps, func(r *Refund) map[string]any { return refundCols(r, e.now()) },
			func(r *Refund, from Phase) error { return e.UpdateRefund(ctx, r, from) },
			func() Refund { return e.getRefund(t, r.ID) }, refundRow)
		stale := r
		stale.Version--
		if got, all := colsOf(refundCols(&stale, e.now())), colsOf(refundCols(&Refund{}, e.now())); !slices.Equal(got, all) {
			t.Errorf("a copy of an older version writes %v, want every column %v", got, all)
		}
	})
}

// TestUpdateSettlement_OrderFromItsView: a settlement read in its order's
// view (LoadOrder, LoadOrders) carries the order's app and number, so its
// update does not read the order for them; a copy moved to another order
// reads them. A session that refuses every read (DryRun) tells which it
// did.
func TestUpdateSettlement_OrderFromItsView(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "v1", 1000)
		_, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "v1"}, e.clock.Now())
		must(t, err)
		one, err := e.LoadOrder(ctx, o.ID)
		must(t, err)
		many, err := e.LoadOrders(ctx, []int64{o.ID})
		must(t, err)
		blind := e.DB().Session(&gorm.Session{DryRun: true})
		for name, st := range map[string]*Settlement{"LoadOrder": one.Settlement, "LoadOrders": many[o.ID].Settlement} {
			got, err := orderOf(blind, st)
			if err != nil || got.AppID != "app1" || got.OutOrderNo != "v1" || got.ID != o.ID {
				t.Errorf("%s: order %+v, %v; want app1/v1 without reading it", name, got, err)
			}
			moved := *st
			moved.OrderID++
			if _, err := orderOf(blind, &moved); err == nil {
				t.Errorf("%s: a copy of another order took the view's order, want it read (refused by the blind session)", name)
			}
		}
		st := *one.Settlement
		st.Phase, st.API = PhaseSubmitting, "ecpay"
		must(t, e.UpdateSettlement(ctx, &st, PhasePending, NewEvent{Type: EventSettlementAttemptFailed}))
		var ev Event
		must(t, e.DB().Where("out_order_no = ?", "v1").Last(&ev).Error)
		if ev.AppID != "app1" || ev.Type != EventSettlementAttemptFailed {
			t.Errorf("event %+v, want one of app1's order v1", ev)
		}
	})
}
