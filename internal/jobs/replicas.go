package jobs

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
)

// Replicas is what Membership needs of the store.
type Replicas interface {
	Heartbeat(ctx context.Context, owner string, now time.Time, ttl time.Duration) (int, error)
	Leave(ctx context.Context, owner string) error
}

// Sharer divides the Douyin budgets among processes (douyin.Limiter).
type Sharer interface {
	SetShare(n int)
}

// placer is a Replicas that also tells a replica's place among the others.
type placer interface {
	HeartbeatPlace(ctx context.Context, owner string, now time.Time, ttl time.Duration) (place, n int, err error)
}

// slotter is a Sharer that interleaves the replicas' calls (douyin.Limiter).
type slotter interface {
	SetSlot(place, n int)
}

// Default timing of Membership: a replica that has not been heard of for
// DefaultReplicaTTL is gone; each heartbeats every DefaultReplicaTTL/5.
const DefaultReplicaTTL = 10 * time.Second

// Membership keeps this process in the database's list of replicas and
// holds its Douyin budgets to 1/n of the configured limits, n being the
// replicas alive: processes that share a database share the apps' limits.
// A replica that joins is counted by the others at their next heartbeat;
// one that stops cleanly leaves at once, one that dies after TTL.
type Membership struct {
	Store   Replicas
	Limiter Sharer
	Owner   string
	Clock   clock.Clock
	TTL     time.Duration // DefaultReplicaTTL when zero
	Log     *logrus.Entry
	// Observe, when set, is told the replicas alive after each heartbeat.
	Observe func(n int)

	share, place int
}

// RunOnce records a heartbeat and sets the share; it returns the replicas
// alive. On an error the share stays as it was.
func (m *Membership) RunOnce(ctx context.Context) (int, error) {
	place, n, err := m.heartbeat(ctx)
	if err != nil {
		return 0, err
	}
	if m.Observe != nil {
		m.Observe(n)
	}
	if n != m.share || place != m.place {
		if m.Log != nil && m.share != 0 && n != m.share {
			m.Log.WithFields(logrus.Fields{"replicas": n, "was": m.share}).Info("replicas changed: Douyin budgets re-divided")
		}
		m.share, m.place = n, place
		if sl, ok := m.Limiter.(slotter); ok && place >= 0 {
			sl.SetSlot(place, n)
		} else {
			m.Limiter.SetShare(n)
		}
	}
	return n, nil
}

// heartbeat records this replica and returns its place (-1 when the store
// does not tell) and the replicas alive.
func (m *Membership) heartbeat(ctx context.Context) (int, int, error) {
	if p, ok := m.Store.(placer); ok {
		return p.HeartbeatPlace(ctx, m.Owner, m.clock().Now(), m.ttl())
	}
	n, err := m.Store.Heartbeat(ctx, m.Owner, m.clock().Now(), m.ttl())
	return -1, n, err
}

// behind is a Replicas that tells which replicas have not heartbeated
// since a time (state.Store.ReplicasBehind).
type behind interface {
	ReplicasBehind(ctx context.Context, owner string, since time.Time) (int, error)
}

// Join records this replica and returns once every other replica alive has
// heartbeated since: they have all counted it and shrunk their budget
// shares, so the cluster never runs above an app's limit while this one
// starts calling at its own share. The wait is bounded by two heartbeat
// periods (a replica silent that long is dying; its share returns at the
// TTL) and by ctx. It returns the replicas alive.
func (m *Membership) Join(ctx context.Context) (int, error) {
	since := m.clock().Now()
	n, err := m.RunOnce(ctx)
	if err != nil || n == 1 {
		return n, err
	}
	b, ok := m.Store.(behind)
	if !ok {
		return n, nil
	}
	deadline := time.NewTimer(2 * m.ttl() / 5)
	defer deadline.Stop()
	poll := time.NewTicker(m.ttl() / 50)
	defer poll.Stop()
	for {
		left, err := b.ReplicasBehind(ctx, m.Owner, since)
		if err != nil {
			return n, err
		}
		if left == 0 {
			return m.RunOnce(ctx) // their count, as they see it now
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-deadline.C:
			if m.Log != nil {
				m.Log.WithField("replicas", left).Warn("replicas silent since this one joined; starting at the current share")
			}
			return m.RunOnce(ctx)
		case <-poll.C:
		}
	}
}

// Run heartbeats every TTL/5 until ctx ends, then leaves.
func (m *Membership) Run(ctx context.Context) {
	t := time.NewTicker(m.ttl() / 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.Leave()
			return
		case <-t.C:
			if _, err := m.RunOnce(ctx); err != nil && ctx.Err() == nil && m.Log != nil {
				m.Log.WithError(err).Warn("replica heartbeat failed; keeping the current budget share")
			}
		}
	}
}

// Leave removes this process from the replicas (bounded to 5 s).
func (m *Membership) Leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Store.Leave(ctx, m.Owner); err != nil && m.Log != nil {
		m.Log.WithError(err).Warn("could not leave the replicas; the others take over its budget share after the TTL")
	}
}

func (m *Membership) ttl() time.Duration {
	if m.TTL > 0 {
		return m.TTL
	}
	return DefaultReplicaTTL
}

func (m *Membership) clock() clock.Clock {
	if m.Clock == nil {
		return clock.Real{}
	}
	return m.Clock
}
