package state

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Replica is one running payd process that calls Douyin, as last heard of.
// Processes that share a database share the apps' Douyin rate limits: each
// takes 1/n of every budget, n being the replicas alive.
type Replica struct {
	Owner  string    `gorm:"primaryKey;size:64"`
	SeenAt time.Time `gorm:"not null;index"`
}

// Heartbeat records that owner is alive at now and returns how many
// replicas are: those heard of within ttl (owner included, so at least 1).
// Replicas silent for longer than ttl are removed.
func (s *Store) Heartbeat(ctx context.Context, owner string, now time.Time, ttl time.Duration) (int, error) {
	_, n, err := s.HeartbeatPlace(ctx, owner, now, ttl)
	return n, err
}

// HeartbeatPlace is Heartbeat that also returns owner's place among the
// replicas alive, sorted by name (0 for the first).
func (s *Store) HeartbeatPlace(ctx context.Context, owner string, now time.Time, ttl time.Duration) (place, n int, err error) {
	if owner == "" || len(owner) > 64 {
		return 0, 0, fmt.Errorf("heartbeat: %w", invalidf("owner: %q is not 1..64 bytes", owner))
	}
	if ttl <= 0 {
		return 0, 0, fmt.Errorf("heartbeat: %w", invalidf("ttl: %s is not positive", ttl))
	}
	now = utc(now)
	var live, before int64
	err = s.write(ctx, func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "owner"}},
			DoUpdates: clause.AssignmentColumns([]string{"seen_at"}),
		}).Create(&Replica{Owner: owner, SeenAt: now}).Error
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		if err := tx.Where("seen_at < ?", now.Add(-ttl)).Delete(&Replica{}).Error; err != nil {
			return fmt.Errorf("forget silent replicas: %w", err)
		}
		if err := tx.Model(&Replica{}).Where("owner < ?", owner).Count(&before).Error; err != nil {
			return err
		}
		return tx.Model(&Replica{}).Count(&live).Error
	})
	if err != nil {
		return 0, 0, fmt.Errorf("heartbeat of %s: %w", owner, err)
	}
	return int(before), int(max(live, 1)), nil
}

// Leave removes owner from the replicas at once (a clean shutdown), so the
// others take its part of the budgets at their next heartbeat.
func (s *Store) Leave(ctx context.Context, owner string) error {
	if err := s.session(ctx).Where("owner = ?", owner).Delete(&Replica{}).Error; err != nil {
		return fmt.Errorf("leave as %s: %w", owner, err)
	}
	return nil
}

// ReplicaOwners returns the owners of the replicas recorded, live or not.
func (s *Store) ReplicaOwners(ctx context.Context) ([]string, error) {
	var owners []string
	if err := s.session(ctx).Model(&Replica{}).Order("owner").Pluck("owner", &owners).Error; err != nil {
		return nil, fmt.Errorf("read replicas: %w", err)
	}
	return owners, nil
}

// ReplicasBehind counts the replicas other than owner whose last heartbeat
// is not after since: those that may not have counted a replica that
// joined at since, and so still take a budget share too large.
func (s *Store) ReplicasBehind(ctx context.Context, owner string, since time.Time) (int, error) {
	var n int64
	if err := s.session(ctx).Model(&Replica{}).Where("owner <> ? AND seen_at <= ?", owner, utc(since)).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("read replicas behind %s: %w", owner, err)
	}
	return int(n), nil
}
