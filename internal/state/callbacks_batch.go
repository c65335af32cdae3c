package state

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// CallbackResult is the outcome of one callback of InsertCallbacks.
type CallbackResult struct {
	// Inserted is false for a duplicate (its signature is already stored,
	// or an earlier callback of the same batch carried it).
	Inserted bool
	// Err is why the callback was not stored; nil when it was stored or
	// was a duplicate.
	Err error
}

// InsertCallbacks stores many verified callbacks in one transaction (group
// commit): one fsync for the whole batch instead of one per callback. Each
// callback is handled exactly as InsertCallback handles it — de-duplicated
// by Signature, its subject resolved, hinted and nudged — with its own
// ReceivedAt as "now" (now when zero). Every callback's row is committed
// when InsertCallbacks returns a nil Err for it, so a caller may
// acknowledge it then.
//
// When the batch transaction fails (a concurrent twin on PostgreSQL aborts
// it, a database error), each callback is retried on its own with
// InsertCallback, so one bad callback never costs the others their
// outcome.
func (s *Store) InsertCallbacks(ctx context.Context, cbs []*Callback, now time.Time) []CallbackResult {
	return s.insertCallbacks(ctx, cbs, now, func(fn func(tx *gorm.DB) error) error { return s.write(ctx, fn) })
}

// InsertCallbacks is Store.InsertCallbacks with the batch as one call of a
// group commit: the callbacks' rows, hints and nudges commit with the
// reconciler's intents, answers and claims queued beside them.
func (g *Grouped) InsertCallbacks(ctx context.Context, cbs []*Callback, now time.Time) []CallbackResult {
	return g.Store.insertCallbacks(ctx, cbs, now, func(fn func(tx *gorm.DB) error) error {
		return g.InTx(ctx, func(tx *Store) error { return fn(tx.db) })
	})
}

// insertCallbacks is InsertCallbacks with the batch's transaction made by
// write.
func (s *Store) insertCallbacks(ctx context.Context, cbs []*Callback, now time.Time, write func(fn func(tx *gorm.DB) error) error) []CallbackResult {
	res := make([]CallbackResult, len(cbs))
	if len(cbs) == 0 {
		return res
	}
	now = utc(now)
	valid := make([]bool, len(cbs))
	for i, cb := range cbs {
		if cb.Signature == "" || cb.AppID == "" || cb.Type == "" {
			res[i].Err = fmt.Errorf("insert callback: %w", invalidf("signature, app_id and type are required"))
			continue
		}
		if cb.ReceivedAt.IsZero() {
			cb.ReceivedAt = now
		}
		valid[i] = true
	}
	inserted := make([]bool, len(cbs))
	err := write(func(tx *gorm.DB) error {
		var err error
		inserted, err = s.insertCallbacksTx(tx, cbs, valid, now)
		return err
	})
	if err == nil {
		for i, cb := range cbs {
			if !valid[i] {
				continue
			}
			res[i].Inserted = inserted[i]
			if !inserted[i] {
				cb.ID = 0
			}
		}
		return res
	}
	// The batch rolled back as a whole: give every callback its own
	// transaction and its own outcome.
	s.log.WithError(err).WithField("callbacks", len(cbs)).Warn("callback batch failed; storing one by one")
	for i, cb := range cbs {
		if !valid[i] {
			continue
		}
		cb.ID, cb.OrderID = 0, 0
		res[i].Inserted, res[i].Err = s.InsertCallback(ctx, cb, cb.ReceivedAt)
	}
	return res
}

// batchChunk bounds the values of one IN list or multi-row INSERT.
const batchChunk = 500

// insertCallbacksTx stores the valid callbacks of cbs in tx with a few
// statements for the whole batch: one duplicate check, one multi-row
// INSERT, one hint and one nudge per table; only the subject lookup is
// per callback. It reports which callbacks were inserted.
func (s *Store) insertCallbacksTx(tx *gorm.DB, cbs []*Callback, valid []bool, now time.Time) ([]bool, error) {
	inserted := make([]bool, len(cbs))
	sigs := make([]string, 0, len(cbs))
	for i, cb := range cbs {
		if valid[i] {
			sigs = append(sigs, cb.Signature)
		}
	}
	seen := make(map[string]bool, len(sigs))
	for part := range slices.Chunk(sigs, batchChunk) {
		if err := knownSignatures(tx, part, seen); err != nil {
			return nil, fmt.Errorf("look for duplicates: %w", err)
		}
	}
	var rows []*Callback
	hinted := map[int64]bool{}
	nudged := map[string][]int64{}
	for i, cb := range cbs {
		if !valid[i] || seen[cb.Signature] {
			continue
		}
		seen[cb.Signature] = true // a twin later in the batch is a duplicate
		sub, err := callbackSubject(tx, cb)
		if err != nil {
			return nil, fmt.Errorf("resolve subject %s of %s callback: %w", cb.SubjectNo, cb.Type, err)
		}
		if sub.OrderID == 0 && cb.Type == "payment" && merchantNoRE.MatchString(cb.SubjectNo) {
			// A paid order payd has not seen: record it UNKNOWN so that
			// the reconciler queries it (see InsertCallback).
			o, _, err := s.findOrCreateOrder(tx, OrderInput{AppID: cb.AppID, OutOrderNo: cb.SubjectNo, Status: OrderUnknown}, now)
			if err != nil {
				return nil, fmt.Errorf("record order %s: %w", cb.SubjectNo, err)
			}
			sub = subject{OrderID: o.ID, Table: "orders", ItemID: o.ID}
		}
		cb.ID, cb.OrderID = 0, sub.OrderID
		rows = append(rows, cb)
		inserted[i] = true
		if sub.OrderID != 0 {
			hinted[sub.OrderID] = true
			if sub.Table != "" {
				nudged[sub.Table] = append(nudged[sub.Table], sub.ItemID)
			}
		}
	}
	if len(rows) == 0 {
		return inserted, nil
	}
	if err := tx.CreateInBatches(rows, 100).Error; err != nil {
		return nil, fmt.Errorf("insert callback rows: %w", err)
	}
	orderIDs := make([]int64, 0, len(hinted))
	for id := range hinted {
		orderIDs = append(orderIDs, id)
	}
	slices.Sort(orderIDs)
	for part := range slices.Chunk(orderIDs, batchChunk) {
		if err := hintMany(tx, part, now); err != nil {
			return nil, err
		}
	}
	for table, ids := range nudged {
		for part := range slices.Chunk(ids, batchChunk) {
			if err := nudgeMany(tx, table, part, now); err != nil {
				return nil, err
			}
		}
	}
	return inserted, nil
}

// knownSignatures marks in seen those of sigs some stored callback has,
// past GORM (see exec).
func knownSignatures(tx *gorm.DB, sigs []string, seen map[string]bool) error {
	args := make([]any, len(sigs))
	for i, s := range sigs {
		args[i] = s
	}
	q := bindVars(tx, "SELECT signature FROM callbacks WHERE signature IN "+inPlaceholders(len(sigs)))
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, q, args...)
	if err != nil {
		return translate(tx, err)
	}
	defer rows.Close()
	for rows.Next() {
		var sig string
		if err := rows.Scan(&sig); err != nil {
			return err
		}
		seen[sig] = true
	}
	return rows.Err()
}

// hintMany is hint for several orders that exist.
func hintMany(tx *gorm.DB, ids []int64, now time.Time) error {
	byID, set := inIDs(tx, "id", ids)
	if _, err := exec(tx, "UPDATE orders SET hint_seq = hint_seq + 1 WHERE "+byID, set); err != nil {
		return fmt.Errorf("hint: %w", err)
	}
	_, err := exec(tx, `UPDATE orders SET next_action_at = ? WHERE `+byID+`
		AND (lease_until IS NULL OR lease_until <= ?)
		AND (next_action_at IS NULL OR next_action_at > ?)`, now, set, now, now)
	if err != nil {
		return fmt.Errorf("hint: %w", err)
	}
	return nil
}

// nudgeMany is nudge's second step for several items of one table (see
// nudge): the subject itself becomes due now.
func nudgeMany(tx *gorm.DB, table string, ids []int64, now time.Time) error {
	var q string
	byID, set := inIDs(tx, "id", ids)
	args := []any{now, set, now}
	switch table {
	case "orders":
		q = "UPDATE orders SET check_at = ? WHERE " + byID + " AND check_at > ? AND status IN (?, ?)"
		args = append(args, string(OrderUnknown), string(OrderProcessing))
	case "refunds", "settlements":
		q = "UPDATE " + table + " SET next_action_at = ? WHERE " + byID + " AND (next_action_at IS NULL OR next_action_at > ?) AND phase IN (?, ?)"
		args = append(args, string(PhaseSubmitting), string(PhaseProcessing))
	default:
		return nil
	}
	if _, err := exec(tx, q, args...); err != nil {
		return fmt.Errorf("nudge %s: %w", table, err)
	}
	return nil
}
