package state

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// rescheduleBatch bounds the orders one rescheduling statement names.
const rescheduleBatch = 1000

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
	// AppID is the order's app (a fair claim counts by it).
	AppID string
	// ClaimedAt is when the claim was taken: a callback stored since then
	// names what the release must make due (see release).
	ClaimedAt time.Time
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
	return s.ClaimFair(ctx, now, Quota{Others: limit}, lease, owner, triage)
}

// Quota bounds one fair claim: at most Apps[id] due orders of each app
// listed, oldest first within the app, and at most Others of the apps not
// listed (all apps when Apps is empty). One app's backlog thus never fills
// a claim that another app's due orders wait for.
type Quota struct {
	Apps   map[string]int
	Others int
	// NewestOdd gives an odd share's extra order to the newest due end
	// (else to the oldest): a caller that alternates it lets an app's
	// just-due orders and its backlog take turns even when the app's
	// share is one order a claim.
	NewestOdd bool
}

// fairQuery selects the due orders of q: per app, index-driven subqueries
// (ix_orders_app_next_action) for the oldest due and, from a quota of two
// up, the newest due (half each), so that what was just hinted or declared
// (a callback's query, a refund) is not queued behind the app's backlog
// while the backlog still moves, oldest first; the others' quota takes the
// oldest only (ClaimDue's order). On PostgreSQL each subquery
// locks its rows with FOR UPDATE SKIP LOCKED, so replicas claim disjoint
// sets and read the versions of the rows they locked. UNION drops a row
// both ends found.
func (s *Store) fairQuery(now time.Time, q Quota) (string, []any) {
	var arms []string
	var args []any
	arm := "SELECT id, version, hint_seq, app_id FROM orders WHERE %s next_action_at <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_action_at%s LIMIT ?" + s.claimLock()
	add := func(cond string, condArgs []any, limit int, newest bool) {
		ends := []struct {
			order string
			limit int
		}{{"", limit}}
		if newest {
			oldest := (limit + 1) / 2
			if q.NewestOdd {
				oldest = limit / 2
			}
			ends = []struct {
				order string
				limit int
			}{{"", oldest}, {" DESC", limit - oldest}}
		}
		for _, end := range ends {
			arms = append(arms, fmt.Sprintf(arm, cond, end.order))
			args = append(args, condArgs...)
			args = append(args, now, now, end.limit)
		}
	}
	ids := make([]string, 0, len(q.Apps))
	for id := range q.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// Every arm is written, LIMIT 0 included, so that the statement's text
	// depends only on the number of apps: it is prepared once.
	for _, id := range ids {
		add("app_id = ? AND", []any{id}, max(q.Apps[id], 0), true)
	}
	if q.Others > 0 || len(ids) > 0 {
		if len(ids) == 0 {
			add("", nil, q.Others, false)
		} else {
			add("app_id NOT IN ? AND", []any{ids}, max(q.Others, 0), false)
		}
	}
	if len(arms) < 2 {
		return strings.Join(arms, ""), args
	}
	// Each arm is a subquery of its own, so that its ORDER BY and LIMIT
	// apply to it alone.
	var b strings.Builder
	for i, a := range arms {
		if i > 0 {
			b.WriteString(" UNION ")
		}
		fmt.Fprintf(&b, "SELECT * FROM (%s) AS q%d", a, i)
	}
	return b.String(), args
}

// dueRow is a due order as the claim reads it.
type dueRow struct {
	ID, Version, HintSeq int64
	AppID                string
}

// ClaimFair is ClaimDueTriaged with a quota per app (see Quota): the claim
// a reconciler serving many apps refills its workers with.
func (s *Store) ClaimFair(ctx context.Context, now time.Time, q Quota, lease time.Duration, owner string, triage Triage) (claims []Claim, idle int, err error) {
	if lease <= 0 {
		return nil, 0, fmt.Errorf("claim due orders: %w", invalidf("lease: %s is not positive", lease))
	}
	if owner == "" || len(owner) > 64 {
		return nil, 0, fmt.Errorf("claim due orders: %w", invalidf("owner: %q is not 1..64 bytes", owner))
	}
	now = utc(now)
	query, args := s.fairQuery(now, q)
	if query == "" {
		return nil, 0, nil
	}
	until := utc(now.Add(lease))
	err = s.write(ctx, func(tx *gorm.DB) error {
		claims, idle = nil, 0
		var due []dueRow
		if err := tx.Raw(query, args...).Scan(&due).Error; err != nil {
			return fmt.Errorf("find due orders: %w", err)
		}
		work, rest, err := triageDue(tx, due, triage)
		if err != nil {
			return err
		}
		if err := s.rescheduleIdle(tx, rest); err != nil {
			return fmt.Errorf("reschedule idle orders: %w", err)
		}
		idle = len(rest)
		if len(work) == 0 {
			return nil
		}
		ids := make([]int64, len(work))
		for i, d := range work {
			ids[i] = d.ID
		}
		// The rows are ours until commit (SQLite's write lock, PostgreSQL's
		// row locks), so the versions just read are still current.
		byID, set := inIDs(tx, "id", ids)
		res := tx.Exec("UPDATE orders SET lease_until = ?, next_action_at = ?, lease_owner = ?, version = version + 1, updated_at = ? WHERE "+byID,
			until, until, owner, s.now(), set)
		if res.Error != nil {
			return fmt.Errorf("lease due orders: %w", res.Error)
		}
		if res.RowsAffected != int64(len(ids)) {
			return fmt.Errorf("lease due orders: %d of %d rows updated: %w", res.RowsAffected, len(ids), ErrConflict)
		}
		claims = make([]Claim, len(work))
		for i, d := range work {
			claims[i] = Claim{OrderID: d.ID, Version: d.Version + 1, HintSeq: d.HintSeq, LeaseUntil: until, Owner: owner, AppID: d.AppID, ClaimedAt: utc(now)}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("claim due orders: %w", err)
	}
	return claims, idle, nil
}

// triageDue splits the due rows into those that need a worker and those
// with nothing to do now (with their next time); a nil triage keeps all.
func triageDue(tx *gorm.DB, due []dueRow, triage Triage) ([]dueRow, []idleOrder, error) {
	if triage == nil || len(due) == 0 {
		return due, nil, nil
	}
	ids := make([]int64, len(due))
	for i, d := range due {
		ids[i] = d.ID
	}
	views, err := loadViews(tx, ids)
	if err != nil {
		return nil, nil, err
	}
	var work []dueRow
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
	return work, rest, nil
}

// idleOrder is a due order with nothing to do now, and its next time.
type idleOrder struct {
	id   int64
	next *time.Time
}

// rescheduleIdle sets each order's next action time, a batch per
// statement, the pairs bound as parameters (see idTimes). The rows
// are locked by the claim's transaction, so no hint can slip in between
// the triage and this update.
func (s *Store) rescheduleIdle(tx *gorm.DB, rest []idleOrder) error {
	for start := 0; start < len(rest); start += rescheduleBatch {
		q, sets := idTimes(tx, rest[start:min(start+rescheduleBatch, len(rest))])
		if err := tx.Exec("UPDATE orders SET next_action_at = j.t, updated_at = ? FROM "+q+" WHERE orders.id = j.id", append([]any{s.now()}, sets...)...).Error; err != nil {
			return err
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
	res = tx.Exec("UPDATE orders SET next_action_at = ? WHERE id = ? AND hint_seq <> ?", now, c.OrderID, c.HintSeq)
	if res.Error != nil || res.RowsAffected == 0 {
		return res.Error
	}
	// A hint came during the claim. If it was a callback of a refund or
	// settlement in flight, the worker may have recorded that item's answer
	// over the hinted time (the callback raced its own write's answer): the
	// items whose callbacks were stored since the claim are due now, so
	// the hint is not lost. Other hints (a payment callback, a declaration)
	// leave the items' times alone.
	if c.ClaimedAt.IsZero() {
		return nil
	}
	for _, it := range []struct{ table, no, id string }{{"refunds", "out_refund_no", "refund_no"}, {"settlements", "out_settle_no", "settle_no"}} {
		q := "UPDATE " + it.table + " SET next_action_at = ? WHERE order_id = ? AND phase IN ? AND (next_action_at IS NULL OR next_action_at > ?)" +
			" AND (" + it.no + " IN (SELECT subject_no FROM callbacks WHERE order_id = ? AND received_at >= ?)" +
			" OR (" + it.id + " <> '' AND " + it.id + " IN (SELECT subject_no FROM callbacks WHERE order_id = ? AND received_at >= ?)))"
		if err := tx.Exec(q, now, c.OrderID, []Phase{PhaseSubmitting, PhaseProcessing}, now, c.OrderID, utc(c.ClaimedAt), c.OrderID, utc(c.ClaimedAt)).Error; err != nil {
			return err
		}
	}
	return nil
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
