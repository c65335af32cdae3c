package state

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// InTx runs fn with a Store bound to one transaction: everything fn writes
// through it commits together, or nothing does (fn's error rolls it all
// back). The Store's own multi-statement methods nest as savepoints.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return transaction(s.session(ctx), func(tx *gorm.DB) error {
		return fn(s.with(tx))
	})
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}
