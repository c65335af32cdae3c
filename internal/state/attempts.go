package state

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

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
	if err := s.session(ctx).Create(a).Error; err != nil {
		a.ID = 0
		if errors.Is(err, gorm.ErrForeignKeyViolated) {
			err = fmt.Errorf("order %d: %w", a.OrderID, ErrNotFound)
		}
		return fmt.Errorf("append attempt %s %s: %w", a.API, a.MerchantNo, err)
	}
	return nil
}
