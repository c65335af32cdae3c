package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Claim is a worker's hold on one order, from ClaimDue until Release.
type Claim struct {
	OrderID int64
	// Version is the order's version right after the claim.
	Version int64
	// HintSeq is the order's HintSeq when it was claimed; Release compares.
	HintSeq int64
	// LeaseUntil is when the claim expires. Every claim of an order sets a
	// later one than the last, so it identifies this claim (a fencing
	// token) even after the holder has updated the order.
	LeaseUntil time.Time
	// Owner is who claimed it.
	Owner string
}

// dueQuery selects cols of the orders due at ? (twice: next_action_at and
// lease), oldest first, at most ? of them. It is driven by the
// idx_orders_next_action_at index: it reads the due rows and nothing else.
func dueQuery(cols string) string {
	return "SELECT " + cols + " FROM orders WHERE next_action_at <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_action_at LIMIT ?"
}

// ClaimDue claims up to limit due orders (NextActionAt <= now and no live
// lease), oldest NextActionAt first, for owner: each gets LeaseUntil =
// NextActionAt = now+lease (so it is due again by itself if the worker
// dies) and Version+1. On PostgreSQL the rows are locked with FOR UPDATE
// SKIP LOCKED, so replicas claim disjoint sets; on SQLite the claim is one
// write transaction.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, limit int, lease time.Duration, owner string) ([]Claim, error) {
	claims, _, err := s.ClaimDueTriaged(ctx, now, limit, lease, owner, nil)
	return claims, err
}

// Triage decides, for a due order read inside a claim, whether it needs a
// worker (work) or has nothing to do now, in which case next is its next
// action time (nil: none).
type Triage func(v *OrderView) (work bool, next *time.Time)

// ClaimDueTriaged is ClaimDue that first asks triage about each due order,
// in the same transaction: only orders that need work are leased and
// returned; the others just get their next action time (idle counts
// them). A pass over many orders with nothing to do thus costs one write
// transaction per batch, not one per order. A nil triage leases them all.
func (s *Store) ClaimDueTriaged(ctx context.Context, now time.Time, limit int, lease time.Duration, owner string, triage Triage) (claims []Claim, idle int, err error) {
	if lease <= 0 {
		return nil, 0, fmt.Errorf("claim due orders: %w", invalidf("lease: %s is not positive", lease))
	}
	if owner == "" || len(owner) > 64 {
		return nil, 0, fmt.Errorf("claim due orders: %w", invalidf("owner: %q is not 1..64 bytes", owner))
	}
	if limit <= 0 {
		return nil, 0, nil
	}
	now = utc(now)
	until := utc(now.Add(lease))
	err = s.write(ctx, func(tx *gorm.DB) error {
		claims, idle = nil, 0
		var due []struct{ ID, Version, HintSeq int64 }
		if err := tx.Raw(dueQuery("id, version, hint_seq")+s.claimLock(), now, now, limit).Scan(&due).Error; err != nil {
			return fmt.Errorf("find due orders: %w", err)
		}
		if len(due) == 0 {
			return nil
		}
		work := due
		if triage != nil {
			ids := make([]int64, len(due))
			for i, d := range due {
				ids[i] = d.ID
			}
			views, err := loadViews(tx, ids)
			if err != nil {
				return err
			}
			work = work[:0:0]
			var rest []idleOrder
			for _, d := range due {
				v := views[d.ID]
				if v == nil {
					continue
				}
				if ok, next := triage(v); ok {
					work = append(work, d)
				} else {
					rest = append(rest, idleOrder{d.ID, next})
				}
			}
			if err := s.rescheduleIdle(tx, rest); err != nil {
				return fmt.Errorf("reschedule idle orders: %w", err)
			}
			idle = len(rest)
		}
		if len(work) == 0 {
			return nil
		}
		ids := make([]int64, len(work))
		for i, d := range work {
			ids[i] = d.ID
		}
		// The rows are ours until commit (SQLite's write lock, PostgreSQL's
		// row locks), so the versions just read are still current.
		res := tx.Exec("UPDATE orders SET lease_until = ?, next_action_at = ?, lease_owner = ?, version = version + 1, updated_at = ? WHERE id IN ?",
			until, until, owner, s.now(), ids)
		if res.Error != nil {
			return fmt.Errorf("lease due orders: %w", res.Error)
		}
		if res.RowsAffected != int64(len(ids)) {
			return fmt.Errorf("lease due orders: %d of %d rows updated: %w", res.RowsAffected, len(ids), ErrConflict)
		}
		claims = make([]Claim, len(work))
		for i, d := range work {
			claims[i] = Claim{OrderID: d.ID, Version: d.Version + 1, HintSeq: d.HintSeq, LeaseUntil: until, Owner: owner}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("claim due orders: %w", err)
	}
	return claims, idle, nil
}

// idleOrder is a due order with nothing to do now, and its next time.
type idleOrder struct {
	id   int64
	next *time.Time
}

// rescheduleBatch bounds the orders one rescheduling statement names.
const rescheduleBatch = 200

// rescheduleIdle sets each order's next action time, a batch per
// statement. The rows are locked by the claim's transaction, so no hint
// can slip in between the triage and this update.
func (s *Store) rescheduleIdle(tx *gorm.DB, rest []idleOrder) error {
	// PostgreSQL cannot type a bare parameter in a CASE branch.
	when := " WHEN ? THEN ?"
	if s.dialect == DriverPostgres {
		when = " WHEN ? THEN CAST(? AS timestamptz)"
	}
	for start := 0; start < len(rest); start += rescheduleBatch {
		batch := rest[start:min(start+rescheduleBatch, len(rest))]
		ids := make([]int64, len(batch))
		var c strings.Builder
		args := make([]any, 0, 2*len(batch))
		c.WriteString("CASE id")
		for i, o := range batch {
			ids[i] = o.id
			c.WriteString(when)
			args = append(args, o.id, utcPtr(o.next))
		}
		c.WriteString(" END")
		res := tx.Model(&Order{}).Where("id IN ?", ids).
			Updates(map[string]any{"next_action_at": gorm.Expr(c.String(), args...), "updated_at": s.now()})
		if res.Error != nil {
			return res.Error
		}
	}
	return nil
}

// DueOrders returns the ids of up to limit orders ClaimDue would claim at
// now, without claiming them (for `payd plan`).
func (s *Store) DueOrders(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	if limit <= 0 {
		return nil, nil
	}
	now = utc(now)
	var ids []int64
	if err := s.session(ctx).Raw(dueQuery("id"), now, now, limit).Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("find due orders: %w", err)
	}
	return ids, nil
}

// ExplainDue returns the database's plan for ClaimDue's query: the proof
// that it uses the index on next_action_at.
func (s *Store) ExplainDue(ctx context.Context, now time.Time, limit int) (string, error) {
	now = utc(now)
	return s.explain(ctx, dueQuery("id, version, hint_seq")+s.claimLock(), now, now, limit)
}

// Scheduled returns up to limit orders whose NextActionAt is after now,
// soonest first (what `payd plan` shows as scheduled next).
func (s *Store) Scheduled(ctx context.Context, now time.Time, limit int) ([]Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	var orders []Order
	err := s.session(ctx).Where("next_action_at > ?", utc(now)).Order("next_action_at, id").Limit(limit).Find(&orders).Error
	if err != nil {
		return nil, fmt.Errorf("find scheduled orders: %w", err)
	}
	return orders, nil
}

// Release ends a claim: the lease is cleared and NextActionAt becomes next
// (nil: nothing to do), or now if a hint arrived since the claim (HintSeq
// moved). It is conditional on the claim still being held: on
// c.LeaseUntil, which every later claim changes and the holder's own
// UpdateOrder does not; a Claim made without LeaseUntil falls back to
// c.Version. ErrConflict when the lease was lost.
func (s *Store) Release(ctx context.Context, c Claim, next *time.Time, now time.Time) error {
	err := s.write(ctx, func(tx *gorm.DB) error { return s.release(tx, c, next, now) })
	if err != nil {
		return fmt.Errorf("release order %d: %w", c.OrderID, err)
	}
	return nil
}

// release is Release inside tx.
func (s *Store) release(tx *gorm.DB, c Claim, next *time.Time, now time.Time) error {
	now = utc(now)
	next = utcPtr(next)
	q := tx.Model(&Order{}).Where("id = ?", c.OrderID)
	if c.LeaseUntil.IsZero() {
		q = q.Where("version = ?", c.Version)
	} else {
		q = q.Where("lease_until = ?", utc(c.LeaseUntil))
	}
	res := q.Updates(map[string]any{
		"lease_until": nil, "lease_owner": "", "next_action_at": next,
		"version": gorm.Expr("version + 1"), "updated_at": s.now(),
	})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return missingOr(tx, &Order{}, c.OrderID, ErrConflict)
	}
	// The row is locked by the update above until commit: a hint either
	// came before (HintSeq moved) or will see no lease and act itself.
	return tx.Exec("UPDATE orders SET next_action_at = ? WHERE id = ? AND hint_seq <> ?", now, c.OrderID, c.HintSeq).Error
}

// missingOr returns ErrNotFound when the row id of model's table does not
// exist, else orElse: what a conditional update that matched nothing means.
func missingOr(tx *gorm.DB, model any, id int64, orElse error) error {
	var n int64
	if err := tx.Model(model).Where("id = ?", id).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return orElse
}

// NewEvent is an outbox event written with a change, in its transaction.
type NewEvent struct {
	Type EventType
	// AppID and OutOrderNo default to the changed row's order.
	AppID, OutOrderNo string
	// Payload is marshalled to JSON.
	Payload any
}

// insertEvents writes evs; appID and outOrderNo fill what they leave empty.
func (s *Store) insertEvents(tx *gorm.DB, evs []NewEvent, appID, outOrderNo string) error {
	for _, e := range evs {
		if e.Type == "" {
			return invalidf("event: type required")
		}
		payload, err := json.Marshal(e.Payload)
		if err != nil {
			return fmt.Errorf("event %s: encode payload: %w", e.Type, err)
		}
		row := Event{ID: newEventID(), Type: e.Type, AppID: e.AppID, OutOrderNo: e.OutOrderNo, Payload: string(payload), CreatedAt: s.now()}
		if row.AppID == "" {
			row.AppID = appID
		}
		if row.OutOrderNo == "" {
			row.OutOrderNo = outOrderNo
		}
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("insert event %s: %w", e.Type, err)
		}
	}
	return nil
}

// newEventID returns "evt_" and 128 random bits in hex.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "evt_" + hex.EncodeToString(b[:])
}

// UpdateOrder saves o's mutable columns (what Douyin said of it and the
// reconciler's bookkeeping: OrderID, TotalAmount, Status, PaidAt, CPSShare,
// CPSKnown, SettleAfter, CheckAt, CheckedAt, AutoSettleAt, NextActionAt,
// Checks) and inserts events, in one transaction, conditional on o.Version;
// on success o.Version is the new version. HintSeq and the lease are left
// alone: they belong to Hint, ClaimDue and Release. ErrConflict when the
// order changed since it was read, ErrNotFound when it does not exist.
func (s *Store) UpdateOrder(ctx context.Context, o *Order, events ...NewEvent) error {
	if !validStatus(o.Status) {
		return fmt.Errorf("update order %s: %w", o.OutOrderNo, invalidf("status: %q is not a known order status", o.Status))
	}
	if o.TotalAmount < 0 {
		return fmt.Errorf("update order %s: %w", o.OutOrderNo, invalidf("total_amount: %d is negative", o.TotalAmount))
	}
	_ = o.BeforeSave(nil)
	updated := s.now()
	err := s.write(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Order{}).Where("id = ? AND version = ?", o.ID, o.Version).Updates(map[string]any{
			"order_id": o.OrderID, "total_amount": o.TotalAmount, "status": o.Status, "paid_at": o.PaidAt,
			"cps_share": o.CPSShare, "cps_known": o.CPSKnown, "settle_after": o.SettleAfter,
			"check_at": o.CheckAt, "checked_at": o.CheckedAt, "auto_settle_at": o.AutoSettleAt,
			"next_action_at": o.NextActionAt, "checks": o.Checks,
			"version": o.Version + 1, "updated_at": updated,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return missingOr(tx, &Order{}, o.ID, ErrConflict)
		}
		return s.insertEvents(tx, events, o.AppID, o.OutOrderNo)
	})
	if err != nil {
		return fmt.Errorf("update order %s: %w", o.OutOrderNo, err)
	}
	o.Version++
	o.UpdatedAt = updated
	return nil
}

// transitions lists, for each phase, the phases an update may move an item
// to. The same phase is allowed so that an item can be updated in place
// (another query, a back-off).
var transitions = map[Phase][]Phase{
	PhasePending:    {PhasePending, PhaseSubmitting, PhaseFailed},
	PhaseSubmitting: {PhaseSubmitting, PhasePending, PhaseProcessing, PhaseSucceeded, PhaseFailed},
	PhaseProcessing: {PhaseProcessing, PhasePending, PhaseSucceeded, PhaseFailed},
	PhaseFailed:     {PhasePending},
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
	return to == PhasePending && (from == PhaseProcessing || from == PhaseFailed)
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
//	pending    → pending, submitting, failed
//	submitting → submitting, pending, processing, succeeded, failed
//	processing → processing, pending (next attempt after FAIL), succeeded, failed
//	failed     → pending (manual retry)
//	succeeded  → nothing
//
// and unless OutRefundNo is RefundNo(Key, Attempt), with Attempt raised by
// one when processing or failed goes back to pending, kept or raised by one
// when submitting does, and kept otherwise. ErrConflict
// when the row's version or phase is no longer what was read.
func (s *Store) UpdateRefund(ctx context.Context, r *Refund, from Phase, events ...NewEvent) error {
	_ = r.BeforeSave(nil)
	updated := s.now()
	err := s.write(ctx, func(tx *gorm.DB) error {
		var cur Refund
		if err := first(tx.Where("id = ?", r.ID), &cur); err != nil {
			return err
		}
		if cur.Version != r.Version || cur.Phase != from {
			return ErrConflict
		}
		if err := checkStep("refund "+cur.Key, from, r.Phase, cur.Attempt, r.Attempt, RefundNo(cur.Key, r.Attempt), r.OutRefundNo); err != nil {
			return err
		}
		res := tx.Model(&Refund{}).Where("id = ? AND version = ? AND phase = ?", r.ID, r.Version, from).Updates(map[string]any{
			"phase": r.Phase, "attempt": r.Attempt, "out_refund_no": r.OutRefundNo, "refund_no": r.RefundNo,
			"all_settle": r.AllSettle, "next_action_at": r.NextActionAt, "checks": r.Checks,
			"err_no": r.ErrNo, "err_tips": r.ErrTips, "park_reason": r.ParkReason, "done_at": r.DoneAt,
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

// insertOrderEvents writes events that default to order id's app and number.
func (s *Store) insertOrderEvents(tx *gorm.DB, orderID int64, events []NewEvent) error {
	if len(events) == 0 {
		return nil
	}
	var o Order
	if err := first(tx.Select("app_id, out_order_no").Where("id = ?", orderID), &o); err != nil {
		return fmt.Errorf("read order %d: %w", orderID, err)
	}
	return s.insertEvents(tx, events, o.AppID, o.OutOrderNo)
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
		if err := first(tx.Where("id = ?", st.ID), &cur); err != nil {
			return err
		}
		if cur.Version != st.Version || cur.Phase != from {
			return ErrConflict
		}
		var o Order
		if err := first(tx.Select("app_id, out_order_no").Where("id = ?", cur.OrderID), &o); err != nil {
			return fmt.Errorf("read order %d: %w", cur.OrderID, err)
		}
		what := "settlement of order " + o.OutOrderNo
		nothingLeft := from == PhasePending && st.Phase == PhaseSucceeded && st.Amount == 0 && st.SettleNo == "" && st.Attempt == cur.Attempt
		if !nothingLeft {
			if err := checkStep(what, from, st.Phase, cur.Attempt, st.Attempt, SettleNo(o.AppID, o.OutOrderNo, st.Attempt), st.OutSettleNo); err != nil {
				return err
			}
		}
		res := tx.Model(&Settlement{}).Where("id = ? AND version = ? AND phase = ?", st.ID, st.Version, from).Updates(map[string]any{
			"phase": st.Phase, "attempt": st.Attempt, "out_settle_no": st.OutSettleNo, "settle_no": st.SettleNo,
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

// RetryParked is the operator's retry of a failed refund: it goes back to
// pending with a new attempt and merchant number, due now, and its order is
// hinted. The order must not be FAIL or TIMEOUT; a NOT_FOUND order goes back
// to UNKNOWN so that it is queried again (the operator retries because it
// exists now). The amount is checked again against what remains.
func (s *Store) RetryParked(ctx context.Context, key string, now time.Time) (*Refund, error) {
	now = utc(now)
	var r Refund
	err := s.write(ctx, func(tx *gorm.DB) error {
		if err := first(tx.Where("idem_key = ?", key), &r); err != nil {
			return err
		}
		if r.Phase != PhaseFailed {
			return invalidf("refund %s is %s: only a failed refund can be retried", key, r.Phase)
		}
		o, err := s.reopenOrder(tx, r.OrderID, "refund", now)
		if err != nil {
			return err
		}
		if o.TotalAmount > 0 {
			left, err := refundable(tx, o)
			if err != nil {
				return err
			}
			if r.Amount > left {
				return invalidf("refund %d exceeds what remains of order %s: %d of %d fen", r.Amount, o.OutOrderNo, left, o.TotalAmount)
			}
		}
		r.Attempt++
		r.OutRefundNo = RefundNo(r.Key, r.Attempt)
		updated := s.now()
		res := tx.Model(&Refund{}).Where("id = ? AND version = ? AND phase = ?", r.ID, r.Version, PhaseFailed).Updates(map[string]any{
			"phase": PhasePending, "attempt": r.Attempt, "out_refund_no": r.OutRefundNo, "refund_no": "",
			"next_action_at": now, "checks": 0, "err_no": 0, "err_tips": "", "park_reason": "", "done_at": nil,
			"version": r.Version + 1, "updated_at": updated,
		})
		if err := changed(res); err != nil {
			return err
		}
		r.Phase, r.RefundNo, r.NextActionAt, r.Checks = PhasePending, "", &now, 0
		r.ErrNo, r.ErrTips, r.ParkReason, r.DoneAt = 0, "", "", nil
		r.Version, r.UpdatedAt = r.Version+1, updated
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry refund %s: %w", key, err)
	}
	return &r, nil
}

// reopenOrder prepares order id for an operator's retry of its what (refund
// or settle): it refuses a FAIL or TIMEOUT order, sends a NOT_FOUND one
// back to UNKNOWN, and hints it.
func (s *Store) reopenOrder(tx *gorm.DB, id int64, what string, now time.Time) (*Order, error) {
	var o Order
	if err := first(tx.Where("id = ?", id), &o); err != nil {
		return nil, fmt.Errorf("read order %d: %w", id, err)
	}
	switch o.Status {
	case OrderFail, OrderTimeout:
		return nil, checkOrderOpen(&o, what)
	case OrderNotFound:
		res := tx.Model(&Order{}).Where("id = ? AND version = ?", o.ID, o.Version).Updates(map[string]any{
			"status": OrderUnknown, "check_at": nil, "checks": 0, "version": o.Version + 1, "updated_at": s.now(),
		})
		if err := changed(res); err != nil {
			return nil, fmt.Errorf("reopen order %s: %w", o.OutOrderNo, err)
		}
		o.Status, o.CheckAt, o.Checks, o.Version = OrderUnknown, nil, 0, o.Version+1
	case OrderUnknown, OrderProcessing, OrderSuccess:
	}
	return &o, hint(tx, o.ID, now)
}

// RetryParkedSettlement is RetryParked for the settlement of an order
// (appID may be empty when the number is unique); its receivers are checked
// again against the order's total.
func (s *Store) RetryParkedSettlement(ctx context.Context, appID, outOrderNo string, now time.Time) (*Settlement, error) {
	now = utc(now)
	var st Settlement
	err := s.write(ctx, func(tx *gorm.DB) error {
		found, err := findOrder(tx, appID, outOrderNo)
		if err != nil {
			return err
		}
		if err := first(tx.Where("order_id = ?", found.ID), &st); err != nil {
			return fmt.Errorf("settlement: %w", err)
		}
		if st.Phase != PhaseFailed {
			return invalidf("settlement of order %s is %s: only a failed settlement can be retried", outOrderNo, st.Phase)
		}
		o, err := s.reopenOrder(tx, found.ID, "settle", now)
		if err != nil {
			return err
		}
		rs, err := st.ReceiverList()
		if err != nil {
			return err
		}
		if err := ValidateReceivers(rs, o.TotalAmount); err != nil {
			return err
		}
		st.Attempt++
		st.OutSettleNo = SettleNo(o.AppID, o.OutOrderNo, st.Attempt)
		updated := s.now()
		res := tx.Model(&Settlement{}).Where("id = ? AND version = ? AND phase = ?", st.ID, st.Version, PhaseFailed).Updates(map[string]any{
			"phase": PhasePending, "attempt": st.Attempt, "out_settle_no": st.OutSettleNo, "settle_no": "",
			"amount": 0, "next_action_at": now, "checks": 0, "err_no": 0, "err_tips": "", "park_reason": "",
			"done_at": nil, "version": st.Version + 1, "updated_at": updated,
		})
		if err := changed(res); err != nil {
			return err
		}
		st.Phase, st.SettleNo, st.Amount, st.NextActionAt, st.Checks = PhasePending, "", 0, &now, 0
		st.ErrNo, st.ErrTips, st.ParkReason, st.DoneAt = 0, "", "", nil
		st.Version, st.UpdatedAt = st.Version+1, updated
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry settlement of order %s: %w", outOrderNo, err)
	}
	return &st, nil
}

// AppendAttempt appends a to the attempt log (CreatedAt from the clock when
// zero). The order must exist (ErrNotFound otherwise).
func (s *Store) AppendAttempt(ctx context.Context, a *Attempt) error {
	switch {
	case a.ID != 0:
		return fmt.Errorf("append attempt %s %s: %w", a.API, a.MerchantNo, invalidf("id: attempts are only appended, %d given", a.ID))
	case a.Resource == "" || a.API == "" || a.MerchantNo == "" || a.Outcome == "":
		return fmt.Errorf("append attempt %s %s: %w", a.API, a.MerchantNo, invalidf("resource, api, merchant_no and outcome are required"))
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	if err := s.session(ctx).Create(a).Error; err != nil {
		a.ID = 0
		if errors.Is(err, gorm.ErrForeignKeyViolated) {
			err = fmt.Errorf("order %d: %w", a.OrderID, ErrNotFound)
		}
		return fmt.Errorf("append attempt %s %s: %w", a.API, a.MerchantNo, err)
	}
	return nil
}

// HintStale hints the orders of refunds and settlements that have been
// submitting or processing, untouched, since before now-olderThan (a lost
// callback, a stuck worker), at most limit orders, and makes those items
// due now; it returns how many orders it hinted. The (phase, updated_at)
// indexes keep its cost to the stale rows.
func (s *Store) HintStale(ctx context.Context, now time.Time, olderThan time.Duration, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	now = utc(now)
	cutoff := now.Add(-olderThan)
	inFlight := []Phase{PhaseSubmitting, PhaseProcessing}
	hinted := 0
	err := s.write(ctx, func(tx *gorm.DB) error {
		seen := map[int64]bool{}
		for _, table := range []string{"refunds", "settlements"} {
			var stale []subject
			err := tx.Table(table).Select("order_id, id AS item_id").Where("phase IN ? AND updated_at < ?", inFlight, cutoff).
				Order("updated_at").Limit(limit).Scan(&stale).Error
			if err != nil {
				return fmt.Errorf("find stale %s: %w", table, err)
			}
			for _, sub := range stale {
				if !seen[sub.OrderID] && len(seen) == limit {
					continue
				}
				seen[sub.OrderID] = true
				sub.Table = table
				if err := nudge(tx, sub, now); err != nil {
					return err
				}
			}
		}
		hinted = len(seen)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("hint stale orders: %w", err)
	}
	return hinted, nil
}
