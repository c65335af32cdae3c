package state

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"gorm.io/gorm"
)

// UpdateRefund saves r's mutable columns (Phase, Attempt, OutRefundNo,
// RefundNo, AllSettle, NextActionAt, Checks, ErrNo, ErrTips, ParkReason,
// DoneAt) and inserts events, in one transaction, conditional on r.Version
// and on the stored phase being from; on success r.Version is the new
// version. ErrInvalid unless from→r.Phase is allowed:
//
//	pending    → pending, submitting, parked
//	submitting → submitting, pending, processing, succeeded, parked
//	processing → processing, pending (next attempt after FAIL), succeeded, parked
//	parked     → pending (manual retry)
//	succeeded  → nothing
//
// and unless OutRefundNo is RefundNo(Key, Attempt), with Attempt raised by
// one when processing or parked goes back to pending, kept or raised by one
// when submitting does, and kept otherwise. ErrConflict
// when the row's version or phase is no longer what was read. The row is
// read only when the update without reading it first (see stepUnread)
// changes nothing.
func (s *Store) UpdateRefund(ctx context.Context, r *Refund, from Phase, events ...NewEvent) error {
	_ = r.BeforeSave(nil)
	updated := s.now()
	cols := refundCols(r, updated)
	err := s.itemWrite(ctx, events, func(tx *gorm.DB) error {
		checked := allowed(from, r.Phase) && r.OutRefundNo == RefundNo(r.Key, r.Attempt)
		row := itemRow{"refunds", "id = ? AND version = ? AND order_id = ? AND idem_key = ?", []any{r.ID, r.Version, r.OrderID, r.Key}}
		switch done, err := stepUnread(tx, row, checked, from, priorAttempts(from, r.Phase, r.Attempt), cols); {
		case err != nil:
			return err
		case done:
			return s.insertOrderEvents(tx, r.OrderID, events)
		}
		return s.updateRefundRead(tx, r, from, cols, events)
	})
	if err != nil {
		return fmt.Errorf("update refund %s: %w", r.OutRefundNo, err)
	}
	r.Version++
	r.UpdatedAt = updated
	r.stored = r.storedNow()
	return nil
}

// UpdateSettlement saves st's mutable columns (Phase, Attempt, OutSettleNo,
// SettleNo, Amount, NextActionAt, Checks, ErrNo, ErrTips, ParkReason,
// DoneAt) and inserts events, like UpdateRefund and with its transitions;
// OutSettleNo must be SettleNo of the order and Attempt. One more move is
// allowed: pending → succeeded with Amount 0 and no SettleNo, for a
// settlement the reconciler finds nothing left to settle of (no call made).
func (s *Store) UpdateSettlement(ctx context.Context, st *Settlement, from Phase, events ...NewEvent) error {
	_ = st.BeforeSave(nil)
	updated := s.now()
	cols := settlementCols(st, updated)
	nothingLeft := settlesNothing(from, st)
	err := s.itemWrite(ctx, events, func(tx *gorm.DB) error {
		o, err := orderOf(tx, st)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("read order %d: %w", st.OrderID, err)
		}
		checked := err == nil && allowed(from, st.Phase) && st.OutSettleNo == st.NumberOf(o.AppID, o.OutOrderNo, st.Attempt)
		prior := priorAttempts(from, st.Phase, st.Attempt)
		if nothingLeft {
			checked, prior = err == nil, []int{st.Attempt}
		}
		row := itemRow{"settlements", "id = ? AND version = ? AND order_id = ? AND item_order_id = ?", []any{st.ID, st.Version, st.OrderID, st.ItemOrderID}}
		switch done, err := stepUnread(tx, row, checked, from, prior, cols); {
		case err != nil:
			return err
		case done:
			return s.insertEvents(tx, events, o.AppID, o.OutOrderNo)
		}
		return s.updateSettlementRead(tx, st, from, cols, events)
	})
	if err != nil {
		return fmt.Errorf("update settlement %s: %w", st.OutSettleNo, err)
	}
	st.Version++
	st.UpdatedAt = updated
	st.stored = st.storedNow()
	return nil
}

// itemWrite is how an item's step writes: without events the step is one
// statement, the unread update or the read one (writeOne); with events it
// is several (write).
func (s *Store) itemWrite(ctx context.Context, events []NewEvent, fn func(tx *gorm.DB) error) error {
	if len(events) == 0 {
		return s.writeOne(ctx, fn)
	}
	return s.write(ctx, fn)
}

// updateRefundRead is UpdateRefund's step after reading the row (see
// updateSettlementRead).
func (s *Store) updateRefundRead(tx *gorm.DB, r *Refund, from Phase, cols map[string]any, events []NewEvent) error {
	var cur Refund
	if err := firstRow(tx.Where("id = ?", r.ID), &cur); err != nil {
		return err
	}
	if cur.Version != r.Version || cur.Phase != from {
		return ErrConflict
	}
	if err := checkStep("refund "+cur.Key, from, r.Phase, cur.Attempt, r.Attempt, RefundNo(cur.Key, r.Attempt), r.OutRefundNo); err != nil {
		return err
	}
	if err := changedRows(itemRow{"refunds", "id = ? AND version = ? AND phase = ?", []any{r.ID, r.Version, from}}.update(tx, cols)); err != nil {
		return err
	}
	return s.insertOrderEvents(tx, cur.OrderID, events)
}

// updateSettlementRead is UpdateSettlement's step after reading the row:
// it says why the update without reading it (stepUnread) changed nothing,
// or makes the step when the caller's copy differed only in what the
// checks do not need.
func (s *Store) updateSettlementRead(tx *gorm.DB, st *Settlement, from Phase, cols map[string]any, events []NewEvent) error {
	var cur Settlement
	if err := firstRow(tx.Where("id = ?", st.ID), &cur); err != nil {
		return err
	}
	if cur.Version != st.Version || cur.Phase != from {
		return ErrConflict
	}
	var o Order
	if err := firstRow(tx.Select("app_id, out_order_no").Where("id = ?", cur.OrderID), &o); err != nil {
		return fmt.Errorf("read order %d: %w", cur.OrderID, err)
	}
	what := "settlement of order " + o.OutOrderNo
	nothingLeft := settlesNothing(from, st) && st.Attempt == cur.Attempt
	if !nothingLeft {
		if err := checkStep(what, from, st.Phase, cur.Attempt, st.Attempt, cur.NumberOf(o.AppID, o.OutOrderNo, st.Attempt), st.OutSettleNo); err != nil {
			return err
		}
	}
	if err := changedRows(itemRow{"settlements", "id = ? AND version = ? AND phase = ?", []any{st.ID, st.Version, from}}.update(tx, cols)); err != nil {
		return err
	}
	return s.insertEvents(tx, events, o.AppID, o.OutOrderNo)
}

// settlesNothing reports whether from→st is the one move beyond the
// transitions: a pending settlement found to have nothing left to settle
// (succeeded, amount 0, no Douyin number). Its attempt must stay the same:
// the unread step requires it of the row, the read one compares.
func settlesNothing(from Phase, st *Settlement) bool {
	return from == PhasePending && st.Phase == PhaseSucceeded && st.Amount == 0 && st.SettleNo == ""
}

// stepUnread makes an item's step without reading its row first, when the
// step's own checks passed on the caller's copy (checked: the transition
// is allowed, and the merchant number is the one of the item's key and
// the new attempt): row names it by id, version and what the number is
// derived from, and stepUnread adds the phase it moves from and the
// attempts it may come from (priorAttempts), so the update matches only a
// row on which the checks, made after reading it, would pass. done is
// false when it changed nothing: the caller then reads the row, to say
// why or (the copy differing in what the checks do not read) to step it.
// A step a caller makes on the row it read at that version, the
// reconciler's every step, costs one statement instead of two.
func stepUnread(tx *gorm.DB, row itemRow, checked bool, from Phase, prior []int, cols map[string]any) (done bool, err error) {
	if !checked {
		return false, nil
	}
	row.where += " AND phase = ? AND attempt IN " + inPlaceholders(len(prior))
	row.args = append(row.args[:len(row.args):len(row.args)], from)
	for _, a := range prior {
		row.args = append(row.args, a)
	}
	n, err := row.update(tx, cols)
	done = err == nil && n == 1
	if done {
		stepsUnread.Add(1)
	}
	return done, err
}

// itemRow names an item's row for an update: its table, and the
// condition on it with the condition's arguments.
type itemRow struct {
	table, where string
	args         []any
}

// update sets cols (sorted by name) on the row: the statement GORM's
// Updates builds from the map, built here without its per-call walk of
// the model's schema (ConvertToAssignments and Statement.Build were a
// fifth of an item update's CPU under bench apps).
func (r itemRow) update(tx *gorm.DB, cols map[string]any) (int64, error) {
	names := slices.Sorted(maps.Keys(cols))
	var b strings.Builder
	b.WriteString("UPDATE " + r.table + " SET ")
	vals := make([]any, 0, len(names)+len(r.args))
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n + " = ?")
		vals = append(vals, cols[n])
	}
	b.WriteString(" WHERE " + r.where)
	return exec(tx, b.String(), append(vals, r.args...)...)
}

// stepsUnread counts the steps stepUnread made (for tests).
var stepsUnread atomic.Int64

// priorAttempts is what the stored attempt may be for a step from→to to
// attempt (see checkStep): one less when the step must start an attempt,
// the same or one less when it may, else the same.
func priorAttempts(from, to Phase, attempt int) []int {
	switch {
	case newAttempt(from, to):
		return []int{attempt - 1}
	case mayStartAttempt(from, to):
		return []int{attempt, attempt - 1}
	}
	return []int{attempt}
}
