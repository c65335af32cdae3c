package state

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// PassKind names the job a pass record is of.
type PassKind string

// The jobs whose passes are recorded.
const (
	// PassReconcile is a reconcile pass that did work.
	PassReconcile PassKind = "reconcile"
	// PassSettleBatch is a settle_batch run that had apps to settle.
	PassSettleBatch PassKind = "settle_batch"
)

// Passes kept: at most KeepPasses of each kind, none older than
// KeepPassesFor.
const (
	KeepPasses    = 200
	KeepPassesFor = 7 * 24 * time.Hour
)

// Pass is the record of one job pass that did work (schema version 15):
// what the info line logged, for the console's overview. Orders, Actions,
// Calls and Retryable are a reconcile pass's; a settle batch puts the apps
// it ran for in Orders, the settlements it created in Actions and the
// observed ones it created (apps Douyin settles) in Calls.
type Pass struct {
	ID         int64     `gorm:"primaryKey"`
	Kind       PassKind  `gorm:"size:16;not null;index:ix_passes_kind_started,priority:1"`
	Replica    string    `gorm:"size:64;not null"`
	StartedAt  time.Time `gorm:"not null;index:ix_passes_kind_started,priority:2"`
	DurationMS int64     `gorm:"not null"`
	Orders     int       `gorm:"not null"`
	Actions    int       `gorm:"not null"`
	Calls      int       `gorm:"not null"`
	Retryable  int       `gorm:"not null"`
	Errors     int       `gorm:"not null"`
	// Detail is a short line of what else the pass did (≤ 200 bytes).
	Detail string `gorm:"size:200"`
}

// Duration is the pass's wall time.
func (p Pass) Duration() time.Duration { return time.Duration(p.DurationMS) * time.Millisecond }

// RecordPass stores p and prunes the passes of its kind to the newest
// KeepPasses, none started KeepPassesFor before p, in one transaction.
func (s *Store) RecordPass(ctx context.Context, p Pass) error {
	p.ID = 0
	p.StartedAt = utc(p.StartedAt)
	p.Replica, p.Detail = clip(p.Replica, 64), clip(p.Detail, 200)
	err := s.write(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		// ix_passes_kind_started: the KeepPasses-th newest, then what is
		// older than it or than the age bound.
		var cut []time.Time
		if err := tx.Model(&Pass{}).Where("kind = ?", p.Kind).Order("started_at DESC").Offset(KeepPasses).Limit(1).Pluck("started_at", &cut).Error; err != nil {
			return err
		}
		oldest := p.StartedAt.Add(-KeepPassesFor)
		if len(cut) == 1 && cut[0].After(oldest) {
			oldest = cut[0].Add(time.Microsecond)
		}
		return tx.Where("kind = ? AND started_at < ?", p.Kind, oldest).Delete(&Pass{}).Error
	})
	if err != nil {
		return fmt.Errorf("record %s pass: %w", p.Kind, err)
	}
	return nil
}

// LastPasses returns the newest limit passes of kind, newest first.
func (s *Store) LastPasses(ctx context.Context, kind PassKind, limit int) ([]Pass, error) {
	var out []Pass
	if err := s.session(ctx).Where("kind = ?", kind).Order("started_at DESC, id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read %s passes: %w", kind, err)
	}
	return out, nil
}
