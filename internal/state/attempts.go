package state

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// insertAttempt is the row GORM's Create would insert, by hand (Create's
// reflection over the model was a fifth of the insert's CPU).
const insertAttempt = "INSERT INTO attempts (order_id, resource, resource_id, api, merchant_no, err_no, err_tips, outcome, latency_ms, created_at)" +
	" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// AppendAttempt appends a to the attempt log (CreatedAt from the clock when
// zero). The order must exist (ErrNotFound otherwise).
func (s *Store) AppendAttempt(ctx context.Context, a *Attempt) error {
	switch {
	case a.ID != 0:
		return fmt.Errorf("append attempt %s %s: %w", a.API, a.MerchantNo, invalidf("id: attempts are only appended, %d given", a.ID))
	case a.Resource == "" || a.API == "" || a.MerchantNo == "" || a.Outcome == "":
		return fmt.Errorf("append attempt %s %s: %w", a.API, a.MerchantNo, invalidf("resource, api, merchant_no and outcome are required"))
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	_ = a.BeforeSave(nil)
	id, err := insertID(s.session(ctx), insertAttempt, a.OrderID, a.Resource, a.ResourceID, a.API, a.MerchantNo, a.ErrNo, a.ErrTips,
		a.Outcome, a.LatencyMS, a.CreatedAt)
	a.ID = id
	if err == nil && a.ID == 0 {
		err = errors.New("no id returned")
	}
	if err != nil {
		a.ID = 0
		if errors.Is(err, gorm.ErrForeignKeyViolated) {
			err = fmt.Errorf("order %d: %w", a.OrderID, ErrNotFound)
		}
		return fmt.Errorf("append attempt %s %s: %w", a.API, a.MerchantNo, err)
	}
	return nil
}
