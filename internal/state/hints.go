package state

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

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
