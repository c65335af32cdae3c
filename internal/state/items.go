package state

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// transitions lists, for each phase, the phases an update may move an item
// to. The same phase is allowed so that an item can be updated in place
// (another query, a back-off).
var transitions = map[Phase][]Phase{
	PhasePending:    {PhasePending, PhaseSubmitting, PhaseParked},
	PhaseSubmitting: {PhaseSubmitting, PhasePending, PhaseProcessing, PhaseSucceeded, PhaseParked},
	PhaseProcessing: {PhaseProcessing, PhasePending, PhaseSucceeded, PhaseParked},
	PhaseParked:     {PhasePending},
	PhaseSucceeded:  nil,
}

// allowed reports whether an item may move from one phase to another.
func allowed(from, to Phase) bool {
	for _, p := range transitions[from] {
		if p == to {
			return true
		}
	}
	return false
}

// newAttempt reports whether from→to must start a new attempt with a new
// merchant number: after a definite failure (a FAIL answer while
// processing, or an operator's retry of a parked item).
func newAttempt(from, to Phase) bool {
	return to == PhasePending && (from == PhaseProcessing || from == PhaseParked)
}

// mayStartAttempt reports whether from→to may start a new attempt without
// having to: submitting → pending keeps the number when the write was proven
// never to have happened (3101) or Douyin was busy, and takes a new one when
// the query that resolved an unknown outcome found the attempt FAILED.
func mayStartAttempt(from, to Phase) bool {
	return newAttempt(from, to) || (from == PhaseSubmitting && to == PhasePending)
}

// checkStep validates one update of a refund or settlement: the phase
// transition, the attempt number (the same, or +1 when a new attempt may
// start, and +1 when it must) and the merchant number (always the
// attempt's).
func checkStep(what string, from, to Phase, oldAttempt, attempt int, wantNo, gotNo string) error {
	if !allowed(from, to) {
		return invalidf("%s: %s → %s is not an allowed transition", what, from, to)
	}
	switch {
	case attempt == oldAttempt+1 && mayStartAttempt(from, to):
	case newAttempt(from, to):
		return invalidf("%s: %s → %s must start attempt %d, not %d", what, from, to, oldAttempt+1, attempt)
	case attempt != oldAttempt && mayStartAttempt(from, to):
		return invalidf("%s: %s → %s must keep attempt %d or start %d, not %d", what, from, to, oldAttempt, oldAttempt+1, attempt)
	case attempt != oldAttempt:
		return invalidf("%s: %s → %s must keep attempt %d, not %d", what, from, to, oldAttempt, attempt)
	}
	if gotNo != wantNo {
		return invalidf("%s: merchant number of attempt %d is %s, not %s", what, attempt, wantNo, gotNo)
	}
	return nil
}

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
// when the row's version or phase is no longer what was read.
func (s *Store) UpdateRefund(ctx context.Context, r *Refund, from Phase, events ...NewEvent) error {
	_ = r.BeforeSave(nil)
	updated := s.now()
	err := s.write(ctx, func(tx *gorm.DB) error {
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
		res := tx.Model(&Refund{}).Where("id = ? AND version = ? AND phase = ?", r.ID, r.Version, from).Updates(map[string]any{
			"phase": r.Phase, "attempt": r.Attempt, "out_refund_no": r.OutRefundNo, "refund_no": r.RefundNo, "api": r.API,
			"all_settle": r.AllSettle, "next_action_at": r.NextActionAt, "checks": r.Checks,
			"err_no": r.ErrNo, "err_tips": r.ErrTips, "park_reason": r.ParkReason, "done_at": r.DoneAt,
			"audit_phase": r.AuditPhase, "audit_deadline": r.AuditDeadline, "audit_decision": r.AuditDecision,
			"audit_message": r.AuditMessage, "audit_by": r.AuditBy,
			"version": r.Version + 1, "updated_at": updated,
		})
		if err := changed(res); err != nil {
			return err
		}
		return s.insertOrderEvents(tx, cur.OrderID, events)
	})
	if err != nil {
		return fmt.Errorf("update refund %s: %w", r.OutRefundNo, err)
	}
	r.Version++
	r.UpdatedAt = updated
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
	err := s.write(ctx, func(tx *gorm.DB) error {
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
		nothingLeft := from == PhasePending && st.Phase == PhaseSucceeded && st.Amount == 0 && st.SettleNo == "" && st.Attempt == cur.Attempt
		if !nothingLeft {
			if err := checkStep(what, from, st.Phase, cur.Attempt, st.Attempt, cur.NumberOf(o.AppID, o.OutOrderNo, st.Attempt), st.OutSettleNo); err != nil {
				return err
			}
		}
		res := tx.Model(&Settlement{}).Where("id = ? AND version = ? AND phase = ?", st.ID, st.Version, from).Updates(map[string]any{
			"phase": st.Phase, "attempt": st.Attempt, "out_settle_no": st.OutSettleNo, "settle_no": st.SettleNo, "source": st.Source, "api": st.API,
			"amount": st.Amount, "next_action_at": st.NextActionAt, "checks": st.Checks,
			"err_no": st.ErrNo, "err_tips": st.ErrTips, "park_reason": st.ParkReason, "done_at": st.DoneAt,
			"version": st.Version + 1, "updated_at": updated,
		})
		if err := changed(res); err != nil {
			return err
		}
		return s.insertEvents(tx, events, o.AppID, o.OutOrderNo)
	})
	if err != nil {
		return fmt.Errorf("update settlement %s: %w", st.OutSettleNo, err)
	}
	st.Version++
	st.UpdatedAt = updated
	return nil
}

// Lifecycle is the part of a refund or settlement that moves through the
// phases: what the reconciler's one decision function reads and writes, the
// same for both kinds of item.
type Lifecycle struct {
	Phase        Phase
	Attempt      int
	Checks       int
	NextActionAt *time.Time
	ErrNo        int
	ErrTips      string
	ParkReason   string
	DoneAt       *time.Time
}

// Lifecycle returns the refund's lifecycle columns.
func (r *Refund) Lifecycle() Lifecycle {
	return Lifecycle{r.Phase, r.Attempt, r.Checks, r.NextActionAt, r.ErrNo, r.ErrTips, r.ParkReason, r.DoneAt}
}

// SetLifecycle sets the refund's lifecycle columns; a new attempt gets its
// merchant number.
func (r *Refund) SetLifecycle(l Lifecycle) {
	if l.Attempt != r.Attempt {
		r.OutRefundNo = RefundNo(r.Key, l.Attempt)
		r.RefundNo = ""
	}
	r.Phase, r.Attempt, r.Checks, r.NextActionAt = l.Phase, l.Attempt, l.Checks, l.NextActionAt
	r.ErrNo, r.ErrTips, r.ParkReason, r.DoneAt = l.ErrNo, l.ErrTips, l.ParkReason, l.DoneAt
}

// Lifecycle returns the settlement's lifecycle columns.
func (st *Settlement) Lifecycle() Lifecycle {
	return Lifecycle{st.Phase, st.Attempt, st.Checks, st.NextActionAt, st.ErrNo, st.ErrTips, st.ParkReason, st.DoneAt}
}

// SetLifecycle sets the settlement's lifecycle columns; a new attempt gets
// its merchant number, derived from the order's app and number.
func (st *Settlement) SetLifecycle(l Lifecycle, appID, outOrderNo string) {
	if l.Attempt != st.Attempt {
		st.OutSettleNo = st.NumberOf(appID, outOrderNo, l.Attempt)
		st.SettleNo = ""
	}
	st.Phase, st.Attempt, st.Checks, st.NextActionAt = l.Phase, l.Attempt, l.Checks, l.NextActionAt
	st.ErrNo, st.ErrTips, st.ParkReason, st.DoneAt = l.ErrNo, l.ErrTips, l.ParkReason, l.DoneAt
}
