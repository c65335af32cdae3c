package state

import (
	"context"
	"fmt"
	"time"
)

// ParkedItem is a parked refund or settlement with the order it belongs
// to, for plan and status.
type ParkedItem struct {
	// Kind is "refund" or "settlement".
	Kind       string
	AppID      string
	OutOrderNo string
	// Key is the refund's idempotency key; "" for a settlement.
	Key string
	// ItemOrderID is the item order of a settlement of one item order; ""
	// otherwise.
	ItemOrderID string
	// Number is the merchant number of the last attempt.
	Number string
	Amount int64 // fen
	Reason string
	At     time.Time // when it was parked (its last update)
}

// ParkedItems returns up to limit parked refunds and up to limit parked
// settlements, refunds first, most recently parked first, each with its
// order's number.
func (s *Store) ParkedItems(ctx context.Context, limit int) ([]ParkedItem, error) {
	refunds, settlements, err := s.Parked(ctx, limit)
	if err != nil {
		return nil, err
	}
	if len(refunds)+len(settlements) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(refunds)+len(settlements))
	for _, r := range refunds {
		ids = append(ids, r.OrderID)
	}
	for _, st := range settlements {
		ids = append(ids, st.OrderID)
	}
	var orders []Order
	if err := s.session(ctx).Where("id IN ?", ids).Find(&orders).Error; err != nil {
		return nil, fmt.Errorf("parked items: read orders: %w", err)
	}
	byID := make(map[int64]Order, len(orders))
	for _, o := range orders {
		byID[o.ID] = o
	}
	items := make([]ParkedItem, 0, len(ids))
	for _, r := range refunds {
		o := byID[r.OrderID]
		items = append(items, ParkedItem{Kind: "refund", AppID: o.AppID, OutOrderNo: o.OutOrderNo, Key: r.Key,
			Number: r.OutRefundNo, Amount: r.Amount, Reason: r.ParkReason, At: r.UpdatedAt})
	}
	for _, st := range settlements {
		o := byID[st.OrderID]
		items = append(items, ParkedItem{Kind: "settlement", AppID: o.AppID, OutOrderNo: o.OutOrderNo, ItemOrderID: st.ItemOrderID,
			Number: st.OutSettleNo, Amount: st.Amount, Reason: st.ParkReason, At: st.UpdatedAt})
	}
	return items, nil
}
