package state

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// AppSummary is one app's part of a Summary.
type AppSummary struct {
	// Orders counts the app's orders by status.
	Orders map[OrderStatus]int64 `json:"orders"`
	// Refunds and RefundAmount count and sum (fen) its refunds by phase.
	Refunds      map[Phase]int64 `json:"refunds"`
	RefundAmount map[Phase]int64 `json:"refund_amount"`
	// Settlements and SettlementAmount count and sum (fen) its
	// settlements by phase.
	Settlements      map[Phase]int64 `json:"settlements"`
	SettlementAmount map[Phase]int64 `json:"settlement_amount"`
}

func newAppSummary() *AppSummary {
	return &AppSummary{Orders: map[OrderStatus]int64{}, Refunds: map[Phase]int64{}, RefundAmount: map[Phase]int64{},
		Settlements: map[Phase]int64{}, SettlementAmount: map[Phase]int64{}}
}

// SummaryByApp is Summary with its counts broken down by app (Apps): one
// grouped query per table (refunds and settlements joined to their
// orders' app_id), whatever the number of apps; the totals are the sums
// of the apps'.
func (s *Store) SummaryByApp(ctx context.Context) (*Summary, error) {
	sum := &Summary{
		Orders: map[OrderStatus]int64{}, Refunds: map[Phase]int64{}, Settlements: map[Phase]int64{},
		RefundAmount: map[Phase]int64{}, SettlementAmount: map[Phase]int64{}, Apps: map[string]*AppSummary{},
	}
	type group struct {
		App    string
		K      string
		N      int64
		Amount int64
	}
	app := func(id string) *AppSummary {
		a := sum.Apps[id]
		if a == nil {
			a = newAppSummary()
			sum.Apps[id] = a
		}
		return a
	}
	err := s.read(ctx, func(tx *gorm.DB) error {
		var rows []group
		if err := tx.Model(&Order{}).Select("app_id AS app, status AS k, COUNT(*) AS n").Group("app_id, status").Scan(&rows).Error; err != nil {
			return fmt.Errorf("count orders: %w", err)
		}
		for _, r := range rows {
			app(r.App).Orders[OrderStatus(r.K)] = r.N
			sum.Orders[OrderStatus(r.K)] += r.N
		}
		for _, t := range []struct {
			table string
			maps  func(*AppSummary) (counts, amounts map[Phase]int64)
		}{
			{"refunds", func(a *AppSummary) (map[Phase]int64, map[Phase]int64) { return a.Refunds, a.RefundAmount }},
			{"settlements", func(a *AppSummary) (map[Phase]int64, map[Phase]int64) { return a.Settlements, a.SettlementAmount }},
		} {
			rows = nil
			q := tx.Table(t.table + " AS i").Joins("JOIN orders o ON o.id = i.order_id").
				Select("o.app_id AS app, i.phase AS k, COUNT(*) AS n, COALESCE(SUM(i.amount), 0) AS amount").Group("o.app_id, i.phase")
			if err := q.Scan(&rows).Error; err != nil {
				return fmt.Errorf("count %s: %w", t.table, err)
			}
			for _, r := range rows {
				n, amount := t.maps(app(r.App))
				n[Phase(r.K)], amount[Phase(r.K)] = r.N, r.Amount
			}
		}
		for _, a := range sum.Apps {
			for p, n := range a.Refunds {
				sum.Refunds[p] += n
				sum.RefundAmount[p] += a.RefundAmount[p]
			}
			for p, n := range a.Settlements {
				sum.Settlements[p] += n
				sum.SettlementAmount[p] += a.SettlementAmount[p]
			}
		}
		sum.SettledAmount = sum.SettlementAmount[PhaseSucceeded]
		if err := tx.Model(&Event{}).Count(&sum.Events).Error; err != nil {
			return fmt.Errorf("count events: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("summary by app: %w", err)
	}
	return sum, nil
}
