package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// Place is the replica's slot among the others (see HeartbeatPlace);
	// nil until its first heartbeat under schema 16.
	Place *int `gorm:"uniqueIndex:ux_replicas_place"`
}

// Heartbeat records that owner is alive at now and returns how many
// replicas are: those heard of within ttl (owner included, so at least 1).
// Replicas silent for longer than ttl are removed.
func (s *Store) Heartbeat(ctx context.Context, owner string, now time.Time, ttl time.Duration) (int, error) {
	_, n, err := s.HeartbeatPlace(ctx, owner, now, ttl)
	return n, err
}

// HeartbeatPlace is Heartbeat that also returns owner's place: its slot
// among the replicas, and n, the slots the budgets are divided into (the
// highest place + 1, at least the replicas alive). A replica keeps its
// place for as long as it lives: a new one takes the lowest free place,
// so a restarted replica (its dead predecessor forgotten) takes the place
// it had, and no other replica's slot moves. A replica above a free place
// that the others do not fill moves down into it (the highest first, one
// a heartbeat), so that a replica left alone is not held to a share of a
// departed one's slot for long.
func (s *Store) HeartbeatPlace(ctx context.Context, owner string, now time.Time, ttl time.Duration) (place, n int, err error) {
	if owner == "" || len(owner) > 64 {
		return 0, 0, fmt.Errorf("heartbeat: %w", invalidf("owner: %q is not 1..64 bytes", owner))
	}
	if ttl <= 0 {
		return 0, 0, fmt.Errorf("heartbeat: %w", invalidf("ttl: %s is not positive", ttl))
	}
	now = utc(now)
	for try := 0; ; try++ {
		place, n, err = s.heartbeatPlace(ctx, owner, now, ttl)
		// Two replicas joining at once on PostgreSQL may pick the same
		// free place: the second insert violates the unique index and
		// its transaction starts over, seeing the first's.
		if err == nil || !errors.Is(err, gorm.ErrDuplicatedKey) || try == 3 {
			break
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("heartbeat of %s: %w", owner, err)
	}
	return place, n, nil
}

func (s *Store) heartbeatPlace(ctx context.Context, owner string, now time.Time, ttl time.Duration) (place, n int, err error) {
	err = s.write(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("seen_at < ?", now.Add(-ttl)).Delete(&Replica{}).Error; err != nil {
			return fmt.Errorf("forget silent replicas: %w", err)
		}
		var rows []Replica
		if err := tx.Order("owner").Find(&rows).Error; err != nil {
			return fmt.Errorf("read replicas: %w", err)
		}
		var taken []int
		cur, known := -1, false
		for _, r := range rows {
			known = known || r.Owner == owner
			if r.Place == nil {
				continue
			}
			if r.Owner == owner {
				cur = *r.Place
			} else {
				taken = append(taken, *r.Place)
			}
		}
		live := len(rows)
		if !known {
			live++ // this one, joining
		}
		place = nextPlace(cur, taken, live)
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "owner"}},
			DoUpdates: clause.AssignmentColumns([]string{"seen_at", "place"}),
		}).Create(&Replica{Owner: owner, SeenAt: now, Place: &place}).Error
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		n = live
		for _, p := range append(taken, place) {
			n = max(n, p+1)
		}
		return nil
	})
	return place, n, err
}

// nextPlace is a replica's place at a heartbeat: cur (-1 when it has none:
// it is joining) among the places the others hold, live replicas in all.
// A joining replica takes the lowest free place; one that holds a place
// keeps it, unless it is at or above live (so a lower place is free) and
// it is the highest: then it moves to the lowest free place.
func nextPlace(cur int, taken []int, live int) int {
	free := 0
	for slices.Contains(taken, free) {
		free++
	}
	if cur < 0 {
		return free
	}
	highest := !slices.ContainsFunc(taken, func(p int) bool { return p > cur })
	if cur >= live && highest && free < cur {
		return free
	}
	return cur
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
