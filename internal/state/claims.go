package state

import (
	"context"
	"fmt"
	"sort"
	"strconv"
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
	// Newest lists apps whose whole share goes to the newest due end: an
	// app with orders in hand waiting for its budget gains nothing from
	// more of its backlog, while what was just hinted (a callback's
	// query, under a budget of its own) would queue behind it.
	Newest map[string]bool
}

// dueCols are the columns a claim reads of a due order (dueRow), but its
// app: each arm of the claim serves one app, so it names the app by its
// index in the claim's list (appIx) rather than read app_id, a string per
// row (a fifth of finding a thousand due orders).
const dueCols = "id, version, hint_seq"

// appIxCol is the column that carries a due row's app index.
const appIxCol = "app_ix"

// appIx is the column naming the app of arm i's rows, a literal: the
// statement's text still depends only on the number of apps.
func appIx(i int) string { return ", " + strconv.Itoa(i) + " AS " + appIxCol }

// dueArm selects cols of the due orders of one app (app_id, then twice
// now, then the limit), through ix_orders_due in order:
// oldest first, or newest with desc " DESC".
func dueArm(cols, desc string) string {
	return "SELECT " + cols + " FROM orders WHERE app_id = ? AND next_action_at <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_action_at" + desc + " LIMIT ?"
}

// fairQuery selects the due orders of q, lock appended to every arm. Each
// app q names gets the oldest due and, from a quota of two up, the newest
// due (half each), so that what was just hinted or declared (a callback's
// query, a refund) is not queued behind the app's backlog while the
// backlog still moves, oldest first. The others (apps q does not name)
// share q.Others, oldest first across them (ClaimDue's order). On
// PostgreSQL lock is FOR UPDATE SKIP LOCKED, so replicas claim disjoint
// sets and read the versions of the rows they locked. UNION drops a row
// both ends found. apps lists the apps by the index each row carries.
func fairQuery(now time.Time, q Quota, others []string, lock string) (query string, args []any, apps []string) {
	var arms []string
	add := func(app string, limit int, newest bool) {
		oldest := limit
		if newest {
			oldest = (limit + 1) / 2
			if q.NewestOdd {
				oldest = limit / 2
			}
			if q.Newest[app] {
				oldest = 0
			}
		}
		cols := dueCols + appIx(len(apps))
		apps = append(apps, app)
		arms = append(arms, dueArm(cols, "")+lock)
		args = append(args, app, now, now, oldest)
		if newest {
			arms = append(arms, dueArm(cols, " DESC")+lock)
			args = append(args, app, now, now, limit-oldest)
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
		add(id, max(q.Apps[id], 0), true)
	}
	if len(others) > 0 && (q.Others > 0 || len(ids) > 0) {
		base := len(apps)
		group, groupArgs := oldestAcross(others, dueCols+", "+appIxCol, func(i int, extra string) string {
			return dueArm(dueCols+appIx(base+i)+extra, "") + lock
		}, func(app string) []any {
			return []any{app, now, now, max(q.Others, 0)}
		}, max(q.Others, 0))
		apps = append(apps, others...)
		arms = append(arms, group)
		args = append(args, groupArgs...)
	}
	return unionOf(arms, " UNION "), args, apps
}

// oldestAcross selects cols of the limit rows with the lowest
// next_action_at across apps, from one arm per app (armOf(i, extra) for
// apps[i], bound to argsOf(app), each in next_action_at order, selecting
// cols and then extra): the arm itself for one app, else their union in
// that order. The arms of a union also read next_action_at (extra) to be
// ordered by; a single arm does not (a time is parsed for every row read).
func oldestAcross(apps []string, cols string, armOf func(i int, extra string) string, argsOf func(app string) []any, limit int) (string, []any) {
	var args []any
	for _, app := range apps {
		args = append(args, argsOf(app)...)
	}
	if len(apps) == 1 {
		return armOf(0, ""), args
	}
	arms := make([]string, len(apps))
	for i := range apps {
		arms[i] = armOf(i, ", next_action_at")
	}
	return "SELECT " + cols + " FROM (" + unionOf(arms, " UNION ALL ") + ") AS g ORDER BY next_action_at, id LIMIT ?", append(args, limit)
}

// unionOf joins arms with op, each a subquery of its own so that its ORDER
// BY and LIMIT apply to it alone; one arm is returned as it is.
func unionOf(arms []string, op string) string {
	if len(arms) < 2 {
		return strings.Join(arms, "")
	}
	var b strings.Builder
	for i, a := range arms {
		if i > 0 {
			b.WriteString(op)
		}
		fmt.Fprintf(&b, "SELECT * FROM (%s) AS q%d", a, i)
	}
	return b.String()
}

// dueRow is a due order as the claim reads it.
type dueRow struct {
	ID, Version, HintSeq int64
	// AppIx is the index of the row's app in the claim's list (see
	// appIx); AppID is filled in from it.
	AppIx int
	AppID string
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
	until := utc(now.Add(lease))
	err = s.write(ctx, func(tx *gorm.DB) error {
		claims, idle = nil, 0
		due, err := s.findDue(tx, now, q, s.claimLock())
		if err != nil {
			return err
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
		ids := dueIDs(work)
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

// findDue reads the due orders of q (see fairQuery), lock appended to
// every arm.
func (s *Store) findDue(tx *gorm.DB, now time.Time, q Quota, lock string) ([]dueRow, error) {
	query, args, apps, err := s.dueQuery(tx, now, q, lock)
	if err != nil || query == "" {
		return nil, err
	}
	due, err := scanDue(tx, query, args, apps)
	if err != nil {
		return nil, fmt.Errorf("find due orders: %w", err)
	}
	return due, nil
}

// scanDue runs the due query and reads its rows (dueCols, then the app
// index) with database/sql's Scan: GORM's scan into a struct, by
// reflection per row and column, was a seventh of a claim of a thousand
// orders.
func scanDue(tx *gorm.DB, query string, args []any, apps []string) ([]dueRow, error) {
	rows, err := tx.Raw(query, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var due []dueRow
	for rows.Next() {
		var d dueRow
		if err := rows.Scan(&d.ID, &d.Version, &d.HintSeq, &d.AppIx); err != nil {
			return nil, err
		}
		if d.AppIx < 0 || d.AppIx >= len(apps) {
			return nil, fmt.Errorf("app index %d of %d apps", d.AppIx, len(apps))
		}
		d.AppID = apps[d.AppIx]
		due = append(due, d)
	}
	return due, rows.Err()
}

// dueQuery is fairQuery over the apps with orders that q does not name.
func (s *Store) dueQuery(tx *gorm.DB, now time.Time, q Quota, lock string) (string, []any, []string, error) {
	others, err := s.othersOf(tx, q)
	if err != nil {
		return "", nil, nil, fmt.Errorf("find the apps with orders: %w", err)
	}
	query, args, apps := fairQuery(now, q, others, lock)
	return query, args, apps, nil
}

// dueIDs returns the order ids of due.
func dueIDs(due []dueRow) []int64 {
	ids := make([]int64, len(due))
	for i, d := range due {
		ids[i] = d.ID
	}
	return ids
}

// triageDue splits the due rows into those that need a worker and those
// with nothing to do now (with their next time); a nil triage keeps all.
func triageDue(tx *gorm.DB, due []dueRow, triage Triage) ([]dueRow, []idleOrder, error) {
	if triage == nil || len(due) == 0 {
		return due, nil, nil
	}
	views, err := loadViews(tx, dueIDs(due))
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
	due, err := s.findDue(s.session(ctx), utc(now), Quota{Others: limit}, "")
	if err != nil {
		return nil, err
	}
	return dueIDs(due), nil
}

// ExplainDue returns the database's plan for ClaimDue's query: the proof
// that it reads ix_orders_due in order.
func (s *Store) ExplainDue(ctx context.Context, now time.Time, limit int) (string, error) {
	query, args, _, err := s.dueQuery(s.session(ctx), utc(now), Quota{Others: limit}, s.claimLock())
	if err != nil || query == "" {
		return "", err
	}
	return s.explain(ctx, query, args...)
}

// scheduledArm selects cols of the orders of one app scheduled after ?
// (app_id, now, limit), soonest first, through ix_orders_due.
func scheduledArm(cols string) string {
	return "SELECT " + cols + " FROM orders WHERE app_id = ? AND next_action_at > ? ORDER BY next_action_at, id LIMIT ?"
}

// Scheduled returns up to limit orders whose NextActionAt is after now,
// soonest first (what `payd plan` shows as scheduled next).
func (s *Store) Scheduled(ctx context.Context, now time.Time, limit int) ([]Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	now = utc(now)
	tx := s.session(ctx)
	apps, err := s.orderApps(tx)
	if err != nil {
		return nil, fmt.Errorf("find scheduled orders: %w", err)
	}
	if len(apps) == 0 {
		return nil, nil
	}
	query, args := oldestAcross(apps, "id", func(_ int, extra string) string { return scheduledArm("id" + extra) }, func(app string) []any { return []any{app, now, limit} }, limit)
	var ids []int64
	if err := tx.Raw(query, args...).Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("find scheduled orders: %w", err)
	}
	var orders []Order
	byID, set := inIDs(tx, "id", ids)
	if err := tx.Where(byID, set).Order("next_action_at, id").Find(&orders).Error; err != nil {
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
//
// The common release, of a claim no hint came to, is one statement (on
// the claim's HintSeq too) and needs no savepoint; only when it matches
// nothing does the release run as several, in one. Inside a transaction
// on PostgreSQL it always takes its savepoint: there a failed statement
// aborts the whole transaction, and the reconciler's finish goes on after
// a release that failed.
func (s *Store) Release(ctx context.Context, c Claim, next *time.Time, now time.Time) error {
	if db := s.session(ctx); !inTx(db) || !isPostgres(db) {
		held, by := releaseHeld(c)
		n, err := exec(db, releaseOrder+held+" AND hint_seq = ?", utcPtr(next), s.now(), c.OrderID, by, c.HintSeq)
		if err != nil {
			return fmt.Errorf("release order %d: %w", c.OrderID, err)
		}
		if n == 1 {
			return nil
		}
	}
	if err := s.write(ctx, func(tx *gorm.DB) error { return s.release(tx, c, next, now) }); err != nil {
		return fmt.Errorf("release order %d: %w", c.OrderID, err)
	}
	return nil
}

// releaseOrder is a release's update of the order, its condition on the
// claim (releaseHeld) appended.
const releaseOrder = "UPDATE orders SET lease_until = NULL, lease_owner = '', next_action_at = ?, version = version + 1, updated_at = ? WHERE id = ? AND "

// releaseHeld is the condition that c is still held, with its argument:
// its LeaseUntil, or its Version for a claim made without one.
func releaseHeld(c Claim) (string, any) {
	if c.LeaseUntil.IsZero() {
		return "version = ?", c.Version
	}
	return "lease_until = ?", utc(c.LeaseUntil)
}

// release is Release inside tx, whether or not a hint came.
func (s *Store) release(tx *gorm.DB, c Claim, next *time.Time, now time.Time) error {
	now = utc(now)
	next = utcPtr(next)
	// By hand rather than through Updates (see itemRow.update).
	held, by := releaseHeld(c)
	n, err := exec(tx, releaseOrder+held, next, s.now(), c.OrderID, by)
	if err != nil {
		return err
	}
	if n == 0 {
		return missingOr(tx, &Order{}, c.OrderID, ErrConflict)
	}
	// The row is locked by the update above until commit: a hint either
	// came before (HintSeq moved) or will see no lease and act itself.
	if n, err = exec(tx, "UPDATE orders SET next_action_at = ? WHERE id = ? AND hint_seq <> ?", now, c.OrderID, c.HintSeq); err != nil || n == 0 {
		return err
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
