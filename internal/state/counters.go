package state

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Counters are exact counts and sums the console reads instead of scanning
// orders, refunds and settlements (schema version 14). They are kept by
// database triggers, so they change in the same transaction as every row
// they count, whatever code path writes it (a declaration, a claim, a phase
// transition, a cancel, a retry, a bulk backfill): a trigger appends the
// change as a delta row (−1 for what the row counted as before, +1 for
// what it counts as now) to counter_deltas and touches no shared row, so
// writers on several replicas never wait for one another or deadlock on a
// counter. FoldCounters adds the deltas into counters in batches, with
// upserts (n = n + excluded.n) in key order; a read sums both tables in one
// statement, so it is exact whether or not the deltas were folded yet.

// CounterKind names what a counter counts. Each kind's rule (which rows,
// under which scope, label and time bucket, summing which amount) is in
// contributions.
type CounterKind string

// The counters payd keeps.
const (
	// CountOrders: orders per app and Douyin status, summing total_amount.
	CountOrders CounterKind = "order"
	// CountRefunds: refunds per app and phase, summing the amount.
	CountRefunds CounterKind = "refund"
	// CountSettlements: settlements per app and phase, summing the amount
	// submitted (0 while pending).
	CountSettlements CounterKind = "settlement"
	// CountAutoSettle: orders settle_batch will settle (auto_settle_at set)
	// per app and hour of auto_settle_at, summing total less CPS share.
	CountAutoSettle CounterKind = "auto"
	// CountDue: pending settlements per app and hour they fall due (due_at,
	// else the order's settle_after; bucket 0 while neither is known),
	// summing the order's total less CPS share for whole-order settlements
	// (before refunds; item settlements count, and add 0).
	CountDue CounterKind = "due"
	// CountSettled: succeeded settlements per app and hour of success,
	// summing the amount settled.
	CountSettled CounterKind = "settled"
	// CountDeliveries: event deliveries per endpoint (the scope) and status.
	CountDeliveries CounterKind = "delivery"
	// CountCalls: Douyin calls per API (label) and 5 minutes; the amount
	// counts the answers that were not err_no 0. Scope "".
	CountCalls CounterKind = "call"
	// CountBusy: answers 1001 and 12001 (label) per 5 minutes. Scope "".
	CountBusy CounterKind = "busy"
	// CountCallbacks: verified callbacks stored, per app and type and hour.
	CountCallbacks CounterKind = "callback"
	// CountRefused: callbacks refused by the callback handler, per app and
	// reason and hour (written by CountRefusedCallbacks, not a trigger).
	CountRefused CounterKind = "refused"
)

// historyKinds are the kinds bucketed by when something happened: their
// buckets older than CounterRetention are pruned when folding.
var historyKinds = []CounterKind{CountSettled, CountCalls, CountBusy, CountCallbacks, CountRefused}

// CounterRetention is how long the history kinds' buckets are kept.
const CounterRetention = 8 * 24 * time.Hour

// Counter is one counter row: N rows (or events) and their Amount (fen,
// or a second count, as the kind says) under a key.
type Counter struct {
	Kind   CounterKind `gorm:"size:16;primaryKey"`
	Scope  string      `gorm:"size:64;primaryKey"` // app_id, or the endpoint, or ""
	Bucket int64       `gorm:"primaryKey;autoIncrement:false"`
	Label  string      `gorm:"size:40;primaryKey"` // a status, phase, API, type or reason
	N      int64       `gorm:"not null"`
	Amount int64       `gorm:"not null"`
}

// TableName is counters.
func (Counter) TableName() string { return "counters" }

// Time is the start of the counter's bucket (the zero time for bucket 0).
func (c Counter) Time() time.Time {
	if c.Bucket == 0 {
		return time.Time{}
	}
	return time.Unix(c.Bucket, 0).UTC()
}

// counterDelta is one change of one counter, appended by a trigger in the
// transaction that made it and folded into counters later.
type counterDelta struct {
	ID     int64       `gorm:"primaryKey"`
	Kind   CounterKind `gorm:"size:16;not null"`
	Scope  string      `gorm:"size:64;not null"`
	Bucket int64       `gorm:"not null"`
	Label  string      `gorm:"size:40;not null"`
	N      int64       `gorm:"not null"`
	Amount int64       `gorm:"not null"`
}

func (counterDelta) TableName() string { return "counter_deltas" }

// CounterQuery selects counters: of these kinds, with buckets in [From, To)
// (To 0: no upper bound).
type CounterQuery struct {
	Kinds    []CounterKind
	From, To int64
}

// Counters returns the counters q selects, exact as of one moment: the
// folded counters plus the deltas not folded yet, in one statement; keys
// whose count and sum are both 0 are left out. Sorted by kind, scope,
// bucket, label.
func (s *Store) Counters(ctx context.Context, q CounterQuery) ([]Counter, error) {
	to := q.To
	if to == 0 {
		to = 1 << 62
	}
	part := "SELECT kind, scope, bucket, label, n, amount FROM %s WHERE kind IN ? AND bucket >= ? AND bucket < ?"
	sql := "SELECT kind, scope, bucket, label, SUM(n) AS n, SUM(amount) AS amount FROM (" +
		fmt.Sprintf(part, "counters") + " UNION ALL " + fmt.Sprintf(part, "counter_deltas") +
		") c GROUP BY kind, scope, bucket, label HAVING SUM(n) <> 0 OR SUM(amount) <> 0 ORDER BY kind, scope, bucket, label"
	var out []Counter
	if err := s.session(ctx).Raw(sql, q.Kinds, q.From, to, q.Kinds, q.From, to).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	return out, nil
}

// foldBatch bounds the deltas one fold statement takes.
const foldBatch = 20_000

// FoldCounters adds the deltas appended so far into counters, foldBatch at
// a time (at most rounds batches; 0: until none are left), and prunes
// counters that are 0 and history buckets older than CounterRetention
// before now. On PostgreSQL one replica folds at a time (a transaction
// advisory lock; the others return at once) and each batch deletes exactly
// the deltas it adds (DELETE … RETURNING), so nothing is added twice or
// lost. It returns the deltas folded.
func (s *Store) FoldCounters(ctx context.Context, now time.Time, rounds int) (int64, error) {
	var total int64
	for i := 0; rounds == 0 || i < rounds; i++ {
		var n int64
		err := s.write(ctx, func(tx *gorm.DB) error {
			var err error
			n, err = s.foldOnce(tx, i == 0)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("fold counters: %w", err)
		}
		total += n
		if n < foldBatch {
			break
		}
	}
	horizon := now.Add(-CounterRetention).Unix()
	err := s.write(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec("DELETE FROM counters WHERE n = 0 AND amount = 0").Error; err != nil {
			return err
		}
		return tx.Exec("DELETE FROM counters WHERE kind IN ? AND bucket < ?", historyKinds, horizon).Error
	})
	if err != nil {
		return total, fmt.Errorf("prune counters: %w", err)
	}
	return total, nil
}

// upsertCounters is the tail of both dialects' fold statement: the deltas'
// sums added to the counters, in key order (so two folds never wait for
// each other's rows in opposite orders).
const upsertCounters = ` GROUP BY kind, scope, bucket, label ORDER BY kind, scope, bucket, label
	ON CONFLICT (kind, scope, bucket, label) DO UPDATE SET n = counters.n + excluded.n, amount = counters.amount + excluded.amount`

// foldOnce folds one batch and returns how many deltas it took.
func (s *Store) foldOnce(tx *gorm.DB, first bool) (int64, error) {
	if s.dialect == DriverPostgres {
		if first {
			var got bool
			if err := tx.Raw("SELECT pg_try_advisory_xact_lock(hashtextextended('payd counters ' || current_schema(), 0))").Scan(&got).Error; err != nil {
				return 0, err
			}
			if !got {
				return 0, nil // another replica is folding
			}
		}
		var n int64
		err := tx.Raw(`WITH d AS (DELETE FROM counter_deltas WHERE id IN (SELECT id FROM counter_deltas ORDER BY id LIMIT ?)
			RETURNING kind, scope, bucket, label, n, amount),
			u AS (INSERT INTO counters (kind, scope, bucket, label, n, amount)
			SELECT kind, scope, bucket, label, SUM(n), SUM(amount) FROM d`+upsertCounters+`)
			SELECT COUNT(*) FROM d`, foldBatch).Scan(&n).Error
		return n, err
	}
	var hi, n int64
	if err := tx.Raw("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM (SELECT id FROM counter_deltas ORDER BY id LIMIT ?) d", foldBatch).Row().Scan(&hi, &n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	if err := tx.Exec(`INSERT INTO counters (kind, scope, bucket, label, n, amount)
		SELECT kind, scope, bucket, label, SUM(n), SUM(amount) FROM counter_deltas WHERE id <= ?`+upsertCounters, hi).Error; err != nil {
		return 0, err
	}
	return n, tx.Exec("DELETE FROM counter_deltas WHERE id <= ?", hi).Error
}

// Recount computes every trigger-kept counter from the rows themselves, as
// migration 14 backfilled them: what the counters must equal (a test
// compares them after a workload). History buckets older than
// CounterRetention before now are left out, as FoldCounters prunes them.
func (s *Store) Recount(ctx context.Context, now time.Time) ([]Counter, error) {
	var out []Counter
	horizon := now.Add(-CounterRetention).Unix()
	for _, c := range contributions {
		var rows []Counter
		if err := s.session(ctx).Raw(c.recount(s.dialect)).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("recount %s: %w", c.kind, err)
		}
		for _, r := range rows {
			if isHistory(r.Kind) && r.Bucket < horizon {
				continue
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func isHistory(k CounterKind) bool {
	for _, h := range historyKinds {
		if h == k {
			return true
		}
	}
	return false
}

// CountRefusedCallbacks adds n refused callbacks of app, for reason, to
// the hour of at. It appends one delta row: callers batch what they refuse
// (the callback handler adds up a few seconds' worth), so a flood of
// forged requests costs one row per app, reason and flush.
func (s *Store) CountRefusedCallbacks(ctx context.Context, app, reason string, at time.Time, n int64) error {
	if n == 0 {
		return nil
	}
	d := counterDelta{Kind: CountRefused, Scope: clip(app, 64), Label: clip(reason, 40), Bucket: at.UTC().Unix() / 3600 * 3600, N: n}
	if err := s.session(ctx).Create(&d).Error; err != nil {
		return fmt.Errorf("count refused callbacks: %w", err)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
