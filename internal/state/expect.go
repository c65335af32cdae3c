package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ExpectOrder records an order payd signed for the mini-program's
// tt.requestOrder before Douyin knows it: UNKNOWN, with its amount, and
// first queried at checkAt (after its pay window; a payment callback
// brings that forward), so that an order the buyer has not opened yet is
// not queried into NOT_FOUND. Signing the same order again changes nothing
// (created false); another amount is ErrInvalid, nothing written.
func (s *Store) ExpectOrder(ctx context.Context, in OrderInput, checkAt, _ time.Time) (*Order, bool, error) {
	checkAt = utc(checkAt)
	switch {
	case in.AppID == "":
		return nil, false, fmt.Errorf("expect order: %w", invalidf("app_id: required"))
	case !merchantNoRE.MatchString(in.OutOrderNo):
		return nil, false, fmt.Errorf("expect order: %w", invalidf("outOrderNo %q: want 1..64 of [0-9A-Za-z_-*]", in.OutOrderNo))
	case in.TotalAmount <= 0:
		return nil, false, fmt.Errorf("expect order %s: %w", in.OutOrderNo, invalidf("totalAmount %d: must be positive fen", in.TotalAmount))
	}
	var o *Order
	created := false
	err := s.write(ctx, func(tx *gorm.DB) error {
		var err error
		o, err = findOrder(tx, in.AppID, in.OutOrderNo)
		switch {
		case err == nil:
			if o.TotalAmount != 0 && o.TotalAmount != in.TotalAmount {
				return invalidf("order %s is known with total_amount %d, not %d: sign it with its amount or use a new outOrderNo", in.OutOrderNo, o.TotalAmount, in.TotalAmount)
			}
			return nil
		case !errors.Is(err, ErrNotFound):
			return err
		}
		o = &Order{AppID: in.AppID, OutOrderNo: in.OutOrderNo, TotalAmount: in.TotalAmount, Status: OrderUnknown,
			CheckAt: &checkAt, NextActionAt: &checkAt, Version: 1}
		if err := tx.Create(o).Error; err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		s.noteApp(o.AppID)
		created = true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("expect order %s: %w", in.OutOrderNo, err)
	}
	return o, created, nil
}
