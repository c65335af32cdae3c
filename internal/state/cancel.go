package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// PhaseCancelled: the merchant withdrew the wish (payd cancel) while
// nothing was in flight: it was pending or parked. Terminal; the
// reconciler never acts on it, and a cancelled settlement keeps its row so
// that settle_batch never creates another for the order.
const PhaseCancelled Phase = "cancelled"

// Events of a withdrawn wish.
const (
	EventRefundCancelled     EventType = "refund.cancelled"
	EventSettlementCancelled EventType = "settlement.cancelled"
)

// cancelPayload is the data of a cancellation event.
type cancelPayload struct {
	OutOrderNo  string `json:"out_order_no"`
	ItemOrderID string `json:"item_order_id,omitempty"`
	Key         string `json:"key,omitempty"`
	Number      string `json:"number"`
	Amount      int64  `json:"amount"`
	Attempt     int    `json:"attempt"`
	Reason      string `json:"reason"`
}

// cancellable refuses, with the reason, a wish that cannot be withdrawn:
// money may be moving, or it is done.
func cancellable(what string, p Phase, attempt int) error {
	switch p {
	case PhasePending, PhaseParked:
		return nil
	case PhaseSubmitting, PhaseProcessing:
		return invalidf("%s cannot be cancelled: attempt %d is %s at Douyin and money may move; wait until payd status shows it succeeded or parked", what, attempt, p)
	case PhaseSucceeded:
		return invalidf("%s has already succeeded: nothing to cancel", what)
	}
	return invalidf("%s is %s: nothing to cancel", what, p)
}

// CancelRefund withdraws the refund with key while it is pending or
// parked: it becomes cancelled, with reason as its note, a
// refund.cancelled event and a hint for the order (a settlement waiting
// for it may go ahead). A refund already cancelled is returned unchanged.
func (s *Store) CancelRefund(ctx context.Context, key, reason string, now time.Time) (*Refund, error) {
	now = utc(now)
	var r Refund
	err := s.write(ctx, func(tx *gorm.DB) error {
		if err := first(tx.Where("idem_key = ?", key), &r); err != nil {
			return err
		}
		if r.Phase == PhaseCancelled {
			return errNoop
		}
		var o Order
		if err := first(tx.Where("id = ?", r.OrderID), &o); err != nil {
			return fmt.Errorf("read order: %w", err)
		}
		if err := cancellable(fmt.Sprintf("refund %s of order %s", key, o.OutOrderNo), r.Phase, r.Attempt); err != nil {
			return err
		}
		res := tx.Model(&Refund{}).Where("id = ? AND version = ? AND phase = ?", r.ID, r.Version, r.Phase).Updates(map[string]any{
			"phase": PhaseCancelled, "park_reason": "cancelled: " + reason, "next_action_at": nil, "done_at": now,
			"version": r.Version + 1, "updated_at": s.now(),
		})
		if err := changed(res); err != nil {
			return err
		}
		r.Phase, r.ParkReason, r.NextActionAt, r.DoneAt, r.Version = PhaseCancelled, "cancelled: "+reason, nil, &now, r.Version+1
		ev := NewEvent{Type: EventRefundCancelled, Payload: cancelPayload{OutOrderNo: o.OutOrderNo, Key: r.Key, Number: r.OutRefundNo, Amount: r.Amount, Attempt: r.Attempt, Reason: reason}}
		if err := s.insertEvents(tx, []NewEvent{ev}, o.AppID, o.OutOrderNo); err != nil {
			return err
		}
		return hint(tx, o.ID, now)
	})
	if err != nil && !errors.Is(err, errNoop) {
		return nil, fmt.Errorf("cancel refund %s: %w", key, err)
	}
	return &r, nil
}

// CancelSettlement withdraws the whole-order settlement of order (appID,
// outOrderNo): CancelItemSettlement with no item order.
func (s *Store) CancelSettlement(ctx context.Context, appID, outOrderNo, reason string, now time.Time) (*Settlement, error) {
	return s.CancelItemSettlement(ctx, appID, outOrderNo, "", reason, now)
}

// CancelItemSettlement withdraws the settlement of item order itemOrderID
// of order (appID, outOrderNo) ("" names the whole-order settlement;
// appID may be empty when the number is unique) while it is pending or
// parked, as CancelRefund does for a refund: phase cancelled, a
// settlement.cancelled event, a hint. The cancelled row stays, so
// settle_batch never settles the order by itself again. An order settled
// item by item needs itemOrderID, and an itemOrderID must name one of the
// order's settlements: both are refused naming the order's item
// settlements (settlementOf).
func (s *Store) CancelItemSettlement(ctx context.Context, appID, outOrderNo, itemOrderID, reason string, now time.Time) (*Settlement, error) {
	now = utc(now)
	var st Settlement
	what := settlementWords(outOrderNo, itemOrderID)
	err := s.write(ctx, func(tx *gorm.DB) error {
		o, err := findOrder(tx, appID, outOrderNo)
		if err != nil {
			return err
		}
		found, err := settlementOf(tx, o, itemOrderID)
		if err != nil {
			return err
		}
		st = *found
		if st.Phase == PhaseCancelled {
			return errNoop
		}
		if err := cancellable(what, st.Phase, st.Attempt); err != nil {
			return err
		}
		res := tx.Model(&Settlement{}).Where("id = ? AND version = ? AND phase = ?", st.ID, st.Version, st.Phase).Updates(map[string]any{
			"phase": PhaseCancelled, "park_reason": "cancelled: " + reason, "next_action_at": nil, "done_at": now,
			"version": st.Version + 1, "updated_at": s.now(),
		})
		if err := changed(res); err != nil {
			return err
		}
		st.Phase, st.ParkReason, st.NextActionAt, st.DoneAt, st.Version = PhaseCancelled, "cancelled: "+reason, nil, &now, st.Version+1
		ev := NewEvent{Type: EventSettlementCancelled, Payload: cancelPayload{OutOrderNo: o.OutOrderNo, ItemOrderID: st.ItemOrderID,
			Number: st.OutSettleNo, Amount: st.Amount, Attempt: st.Attempt, Reason: reason}}
		if err := s.insertEvents(tx, []NewEvent{ev}, o.AppID, o.OutOrderNo); err != nil {
			return err
		}
		return hint(tx, o.ID, now)
	})
	if err != nil && !errors.Is(err, errNoop) {
		return nil, fmt.Errorf("cancel %s: %w", what, err)
	}
	return &st, nil
}

// settlementWords names a settlement in errors: "settlement of order o-1",
// "settlement of item order it-1 of order o-1".
func settlementWords(outOrderNo, itemOrderID string) string {
	if itemOrderID == "" {
		return "settlement of order " + outOrderNo
	}
	return "settlement of item order " + itemOrderID + " of order " + outOrderNo
}

// maxNamedItems bounds how many item settlements an error lists.
const maxNamedItems = 10

// settlementOf reads the settlement an operator's cancel or retry acts on:
// the one of item order itemOrderID of o, or with itemOrderID "" the
// whole-order one. An order settled item by item (its whole-order
// settlement absent or cancelled) needs itemOrderID; an itemOrderID that
// is not one of o's settlements is refused. Both errors list o's item
// settlements with their phases and say how to name one. ErrNotFound when
// o has no settlement at all. An order has as many settlements as Douyin
// lists item orders for it, so all are read.
func settlementOf(tx *gorm.DB, o *Order, itemOrderID string) (*Settlement, error) {
	var all []Settlement
	if err := tx.Where("order_id = ?", o.ID).Order("id").Find(&all).Error; err != nil {
		return nil, fmt.Errorf("read settlements: %w", err)
	}
	var whole *Settlement
	var items []string
	for i := range all {
		st := &all[i]
		switch {
		case itemOrderID != "" && st.ItemOrderID == itemOrderID:
			return st, nil
		case st.ItemOrderID == "":
			whole = st
		default:
			items = append(items, fmt.Sprintf("%s (%s)", st.ItemOrderID, st.Phase))
		}
	}
	list := strings.Join(items[:min(len(items), maxNamedItems)], ", ")
	if len(items) > maxNamedItems {
		list += fmt.Sprintf(" and %d more (payd status %s)", len(items)-maxNamedItems, o.OutOrderNo)
	}
	switch {
	case itemOrderID == "" && whole != nil && (whole.Phase != PhaseCancelled || len(items) == 0):
		return whole, nil
	case itemOrderID == "" && len(items) > 0:
		return nil, invalidf("order %s is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); its item settlements: %s", o.OutOrderNo, list)
	case itemOrderID == "":
		return nil, fmt.Errorf("settlement: %w", ErrNotFound)
	case len(items) > 0:
		return nil, invalidf("item order %s is not one of the settlements of order %s; its item settlements: %s", itemOrderID, o.OutOrderNo, list)
	case whole != nil:
		return nil, invalidf("order %s is settled whole, not item by item: it has no settlement of item order %s; leave out --item (admin API: \"item_order_id\")", o.OutOrderNo, itemOrderID)
	}
	return nil, fmt.Errorf("settlement of item order %s: %w", itemOrderID, ErrNotFound)
}

// ListedPhases is Phases with PhaseCancelled, for listings; it returns a
// new slice.
func ListedPhases() []Phase {
	ps := append([]Phase(nil), Phases...)
	for _, p := range ps {
		if p == PhaseCancelled {
			return ps
		}
	}
	return append(ps, PhaseCancelled)
}

// phaseWords says where an item stands, for errors: "has succeeded", "is
// parked", "is processing".
func phaseWords(p Phase) string {
	switch p {
	case PhaseSucceeded:
		return "has succeeded"
	case PhaseParked:
		return "is parked"
	case PhaseCancelled:
		return "was cancelled"
	}
	return "is " + string(p)
}
