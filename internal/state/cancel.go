package state

import (
	"context"
	"errors"
	"fmt"
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
	OutOrderNo string `json:"out_order_no"`
	Key        string `json:"key,omitempty"`
	Number     string `json:"number"`
	Amount     int64  `json:"amount"`
	Attempt    int    `json:"attempt"`
	Reason     string `json:"reason"`
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

// CancelSettlement withdraws the settlement of order (appID, outOrderNo)
// (appID may be empty when the number is unique) while it is pending or
// parked, as CancelRefund does for a refund. The cancelled row stays, so
// settle_batch never settles the order by itself again.
func (s *Store) CancelSettlement(ctx context.Context, appID, outOrderNo, reason string, now time.Time) (*Settlement, error) {
	now = utc(now)
	var st Settlement
	err := s.write(ctx, func(tx *gorm.DB) error {
		o, err := findOrder(tx, appID, outOrderNo)
		if err != nil {
			return err
		}
		if err := first(tx.Where("order_id = ? AND item_order_id = ''", o.ID), &st); err != nil {
			return err
		}
		if st.Phase == PhaseCancelled {
			return errNoop
		}
		if err := cancellable("settlement of order "+outOrderNo, st.Phase, st.Attempt); err != nil {
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
		ev := NewEvent{Type: EventSettlementCancelled, Payload: cancelPayload{OutOrderNo: o.OutOrderNo, Number: st.OutSettleNo, Amount: st.Amount, Attempt: st.Attempt, Reason: reason}}
		if err := s.insertEvents(tx, []NewEvent{ev}, o.AppID, o.OutOrderNo); err != nil {
			return err
		}
		return hint(tx, o.ID, now)
	})
	if err != nil && !errors.Is(err, errNoop) {
		return nil, fmt.Errorf("cancel settlement of order %s: %w", outOrderNo, err)
	}
	return &st, nil
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
