package state

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// RetryParked is the operator's retry of a failed refund: it goes back to
// pending with a new attempt and merchant number, due now, and its order is
// hinted. The order must not be FAIL or TIMEOUT; a NOT_FOUND order goes back
// to UNKNOWN so that it is queried again (the operator retries because it
// exists now). The amount is checked again against what remains.
func (s *Store) RetryParked(ctx context.Context, key string, now time.Time) (*Refund, error) {
	now = utc(now)
	var r Refund
	err := s.write(ctx, func(tx *gorm.DB) error {
		if err := first(tx.Where("idem_key = ?", key), &r); err != nil {
			return err
		}
		if r.Phase != PhaseParked {
			return invalidf("refund %s %s: only a parked refund can be retried", key, phaseWords(r.Phase))
		}
		o, err := s.reopenOrder(tx, r.OrderID, "refund", now)
		if err != nil {
			return err
		}
		if o.TotalAmount > 0 {
			left, err := refundable(tx, o)
			if err != nil {
				return err
			}
			if r.Amount > left {
				return invalidf("%s", ExceedsRemaining(r.Amount, o.OutOrderNo, left, o.TotalAmount))
			}
		}
		r.Attempt++
		r.OutRefundNo = RefundNo(r.Key, r.Attempt)
		updated := s.now()
		res := tx.Model(&Refund{}).Where("id = ? AND version = ? AND phase = ?", r.ID, r.Version, PhaseParked).Updates(map[string]any{
			"phase": PhasePending, "attempt": r.Attempt, "out_refund_no": r.OutRefundNo, "refund_no": "",
			"next_action_at": now, "checks": 0, "err_no": 0, "err_tips": "", "park_reason": "", "done_at": nil,
			"version": r.Version + 1, "updated_at": updated,
		})
		if err := changed(res); err != nil {
			return err
		}
		r.Phase, r.RefundNo, r.NextActionAt, r.Checks = PhasePending, "", &now, 0
		r.ErrNo, r.ErrTips, r.ParkReason, r.DoneAt = 0, "", "", nil
		r.Version, r.UpdatedAt = r.Version+1, updated
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry refund %s: %w", key, err)
	}
	return &r, nil
}

// reopenOrder prepares order id for an operator's retry of its what (refund
// or settle): it refuses a FAIL or TIMEOUT order, sends a NOT_FOUND one
// back to UNKNOWN, and hints it.
func (s *Store) reopenOrder(tx *gorm.DB, id int64, what string, now time.Time) (*Order, error) {
	var o Order
	if err := first(tx.Where("id = ?", id), &o); err != nil {
		return nil, fmt.Errorf("read order %d: %w", id, err)
	}
	switch o.Status {
	case OrderFail, OrderTimeout:
		return nil, checkOrderOpen(&o, what)
	case OrderNotFound:
		res := tx.Model(&Order{}).Where("id = ? AND version = ?", o.ID, o.Version).Updates(map[string]any{
			"status": OrderUnknown, "check_at": nil, "checks": 0, "version": o.Version + 1, "updated_at": s.now(),
		})
		if err := changed(res); err != nil {
			return nil, fmt.Errorf("reopen order %s: %w", o.OutOrderNo, err)
		}
		o.Status, o.CheckAt, o.Checks, o.Version = OrderUnknown, nil, 0, o.Version+1
	case OrderUnknown, OrderProcessing, OrderSuccess:
	}
	return &o, hint(tx, o.ID, now)
}

// RetryParkedSettlement is RetryParkedItemSettlement of the whole-order
// settlement.
func (s *Store) RetryParkedSettlement(ctx context.Context, appID, outOrderNo string, now time.Time) (*Settlement, error) {
	return s.RetryParkedItemSettlement(ctx, appID, outOrderNo, "", now)
}

// RetryParkedItemSettlement is RetryParked for the settlement of item
// order itemOrderID of an order ("" names the whole-order settlement;
// appID may be empty when the number is unique): back to pending with the
// next attempt and its number, due now, the order hinted. Its receivers
// are checked again against the order's total. An order settled item by
// item needs itemOrderID, and an itemOrderID must name one of the order's
// settlements (settlementOf).
func (s *Store) RetryParkedItemSettlement(ctx context.Context, appID, outOrderNo, itemOrderID string, now time.Time) (*Settlement, error) {
	now = utc(now)
	var st Settlement
	what := settlementWords(outOrderNo, itemOrderID)
	err := s.write(ctx, func(tx *gorm.DB) error {
		found, err := findOrder(tx, appID, outOrderNo)
		if err != nil {
			return err
		}
		row, err := settlementOf(tx, found, itemOrderID)
		if err != nil {
			return err
		}
		st = *row
		if st.Phase != PhaseParked {
			return invalidf("%s %s: only a parked settlement can be retried", what, phaseWords(st.Phase))
		}
		o, err := s.reopenOrder(tx, found.ID, "settle", now)
		if err != nil {
			return err
		}
		rs, err := st.ReceiverList()
		if err != nil {
			return err
		}
		if err := ValidateReceivers(rs, o.TotalAmount); err != nil {
			return err
		}
		st.Attempt++
		st.OutSettleNo = st.NumberOf(o.AppID, o.OutOrderNo, st.Attempt)
		updated := s.now()
		res := tx.Model(&Settlement{}).Where("id = ? AND version = ? AND phase = ?", st.ID, st.Version, PhaseParked).Updates(map[string]any{
			"phase": PhasePending, "attempt": st.Attempt, "out_settle_no": st.OutSettleNo, "settle_no": "",
			"amount": 0, "next_action_at": now, "checks": 0, "err_no": 0, "err_tips": "", "park_reason": "",
			"done_at": nil, "version": st.Version + 1, "updated_at": updated,
		})
		if err := changed(res); err != nil {
			return err
		}
		st.Phase, st.SettleNo, st.Amount, st.NextActionAt, st.Checks = PhasePending, "", 0, &now, 0
		st.ErrNo, st.ErrTips, st.ParkReason, st.DoneAt = 0, "", "", nil
		st.Version, st.UpdatedAt = st.Version+1, updated
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", what, err)
	}
	return &st, nil
}
