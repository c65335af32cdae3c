package state

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// Summary counts what the store holds, for `payd status` and metrics.
type Summary struct {
	// Orders counts orders by status.
	Orders map[OrderStatus]int64 `json:"orders"`
	// Refunds counts refunds by phase.
	Refunds map[Phase]int64 `json:"refunds"`
	// Settlements counts settlements by phase.
	Settlements map[Phase]int64 `json:"settlements"`
	// RefundAmount sums refund amounts (fen) by phase.
	RefundAmount map[Phase]int64 `json:"refund_amount"`
	// SettlementAmount sums settlement amounts (fen) by phase: what was
	// submitted, or observed at Douyin.
	SettlementAmount map[Phase]int64 `json:"settlement_amount"`
	// SettledAmount sums the amounts (fen) of succeeded settlements.
	SettledAmount int64 `json:"settled_amount"`
	// Events counts outbox events.
	Events int64 `json:"events"`
	// Apps breaks the counts down by app_id; only SummaryByApp fills it.
	Apps map[string]*AppSummary `json:"apps,omitempty"`
}

// Summary counts orders, refunds and settlements by status or phase.
func (s *Store) Summary(ctx context.Context) (*Summary, error) {
	sum := &Summary{
		Orders: map[OrderStatus]int64{}, Refunds: map[Phase]int64{},
		Settlements: map[Phase]int64{}, RefundAmount: map[Phase]int64{}, SettlementAmount: map[Phase]int64{},
	}
	type group struct {
		K      string
		N      int64
		Amount int64
	}
	err := s.read(ctx, func(tx *gorm.DB) error {
		var rows []group
		if err := tx.Model(&Order{}).Select("status AS k, COUNT(*) AS n").Group("status").Scan(&rows).Error; err != nil {
			return fmt.Errorf("count orders: %w", err)
		}
		for _, r := range rows {
			sum.Orders[OrderStatus(r.K)] = r.N
		}
		rows = nil
		if err := tx.Model(&Refund{}).Select("phase AS k, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount").Group("phase").Scan(&rows).Error; err != nil {
			return fmt.Errorf("count refunds: %w", err)
		}
		for _, r := range rows {
			sum.Refunds[Phase(r.K)], sum.RefundAmount[Phase(r.K)] = r.N, r.Amount
		}
		rows = nil
		if err := tx.Model(&Settlement{}).Select("phase AS k, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount").Group("phase").Scan(&rows).Error; err != nil {
			return fmt.Errorf("count settlements: %w", err)
		}
		for _, r := range rows {
			sum.Settlements[Phase(r.K)], sum.SettlementAmount[Phase(r.K)] = r.N, r.Amount
			if Phase(r.K) == PhaseSucceeded {
				sum.SettledAmount = r.Amount
			}
		}
		if err := tx.Model(&Event{}).Count(&sum.Events).Error; err != nil {
			return fmt.Errorf("count events: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return sum, nil
}

// History is everything payd knows of one order: its view, every call made
// for it, every callback about it and every event it caused, oldest first.
type History struct {
	OrderView
	Attempts  []Attempt
	Callbacks []Callback
	Events    []Event
}

// History returns the history of the order (appID, outOrderNo); appID may
// be empty when the number is unique.
func (s *Store) History(ctx context.Context, appID, outOrderNo string) (*History, error) {
	h := &History{}
	err := s.read(ctx, func(tx *gorm.DB) error {
		o, err := findOrder(tx, appID, outOrderNo)
		if err != nil {
			return err
		}
		v, err := loadView(tx, o.ID)
		if err != nil {
			return err
		}
		h.OrderView = *v
		if err := tx.Where("order_id = ?", o.ID).Order("id").Find(&h.Attempts).Error; err != nil {
			return fmt.Errorf("read attempts: %w", err)
		}
		if err := tx.Where("order_id = ?", o.ID).Order("id").Find(&h.Callbacks).Error; err != nil {
			return fmt.Errorf("read callbacks: %w", err)
		}
		if err := tx.Where("app_id = ? AND out_order_no = ?", o.AppID, o.OutOrderNo).Order("seq").Find(&h.Events).Error; err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history of order %s: %w", outOrderNo, err)
	}
	return h, nil
}

// Parked returns up to limit failed refunds and up to limit failed
// settlements, most recently parked first.
func (s *Store) Parked(ctx context.Context, limit int) ([]Refund, []Settlement, error) {
	if limit <= 0 {
		return nil, nil, nil
	}
	var refunds []Refund
	var settlements []Settlement
	err := s.read(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("phase = ?", PhaseParked).Order("updated_at DESC, id DESC").Limit(limit).Find(&refunds).Error; err != nil {
			return fmt.Errorf("read refunds: %w", err)
		}
		if err := tx.Where("phase = ?", PhaseParked).Order("updated_at DESC, id DESC").Limit(limit).Find(&settlements).Error; err != nil {
			return fmt.Errorf("read settlements: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("parked items: %w", err)
	}
	return refunds, settlements, nil
}

// Events returns up to limit outbox events with Seq > afterSeq, in order.
func (s *Store) Events(ctx context.Context, afterSeq int64, limit int) ([]Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	var events []Event
	if err := s.session(ctx).Where("seq > ?", afterSeq).Order("seq").Limit(limit).Find(&events).Error; err != nil {
		return nil, fmt.Errorf("read events after %d: %w", afterSeq, err)
	}
	return events, nil
}
