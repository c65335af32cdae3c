package console

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/state"
)

// Snapshot is the overview's and the calendar's counts and sums, computed
// in the background (they read whole tables: at 1,000,000 orders that is
// hundreds of milliseconds, too slow for a page) and shown with their age.
type Snapshot struct {
	At      time.Time     // when it was computed (payd's clock)
	Took    time.Duration // how long computing it took (wall time)
	Apps    []AppStats
	Calls   Calls
	Hooks   []Count // callbacks stored in the last hour, by type
	Alive   []string
	Events  []EndpointStats
	Days    []CalendarDay // the next 30 days, every app
	Settled []CalendarDay // the last 7 days' succeeded settlements
	Waiting Waiting
}

// Count is a number of rows (and their sum of fen) under a label.
type Count struct {
	Label  string
	N      int64
	Amount int64
}

// AppStats is one app's orders, refunds and settlements.
type AppStats struct {
	AppID       string
	Orders      []Count // by Douyin status
	Refunds     []Count // by phase, with sums
	Settlements []Count // by phase, with sums (submitted amounts)
	InFlight    int64   // fen in refunds and settlements submitting or processing
}

// EndpointStats counts one endpoint's deliveries by status.
type EndpointStats struct {
	Endpoint string
	Counts   []Count
}

// Waiting counts pending settlements held back, and why.
type Waiting struct {
	OnRefunds int64 // an open refund of the same order
	NotPaid   int64 // the order is not SUCCESS
}

type snapshotter struct {
	c    *Console
	mu   sync.Mutex
	last *Snapshot
	busy sync.Mutex // one refresh at a time
}

func (s *snapshotter) get() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *snapshotter) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
			s.c.o.Log.WithError(err).Warn("console: refresh the overview's counts")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *snapshotter) refresh(ctx context.Context) error {
	s.busy.Lock()
	defer s.busy.Unlock()
	start := time.Now()
	snap, err := s.c.compute(ctx)
	if err != nil {
		return err
	}
	snap.Took = time.Since(start).Round(time.Millisecond)
	s.c.o.Log.WithField(logkey.Component, "console").Debugf("overview counts in %s", snap.Took)
	s.mu.Lock()
	s.last = snap
	s.mu.Unlock()
	return nil
}

func (c *Console) compute(ctx context.Context) (*Snapshot, error) {
	db := c.o.Store.DB().WithContext(ctx)
	now := c.o.Clock.Now().UTC()
	snap := &Snapshot{At: now}
	steps := []func(*gorm.DB, time.Time, *Snapshot) error{c.appStats, c.callStats, c.hookStats, c.aliveStats, c.eventStats, c.calendarStats, c.waitingStats}
	for _, step := range steps {
		if err := step(db, now, snap); err != nil {
			return nil, fmt.Errorf("overview counts: %w", err)
		}
	}
	return snap, nil
}

type groupRow struct {
	App    string
	K      string
	N      int64
	Amount int64
}

func (c *Console) appStats(db *gorm.DB, _ time.Time, snap *Snapshot) error {
	byApp := map[string]*AppStats{}
	get := func(app string) *AppStats {
		if byApp[app] == nil {
			byApp[app] = &AppStats{AppID: app}
		}
		return byApp[app]
	}
	for _, app := range c.o.Apps {
		get(app)
	}
	var rows []groupRow
	if err := db.Raw("SELECT app_id AS app, status AS k, COUNT(*) AS n, COALESCE(SUM(total_amount), 0) AS amount FROM orders GROUP BY app_id, status").Scan(&rows).Error; err != nil {
		return fmt.Errorf("count orders: %w", err)
	}
	for _, r := range rows {
		a := get(r.App)
		a.Orders = append(a.Orders, Count{Label: r.K, N: r.N, Amount: r.Amount})
	}
	for _, table := range []string{"refunds", "settlements"} {
		rows = nil
		q := "SELECT o.app_id AS app, t.phase AS k, COUNT(*) AS n, COALESCE(SUM(t.amount), 0) AS amount FROM " + table + " t JOIN orders o ON o.id = t.order_id GROUP BY o.app_id, t.phase"
		if err := db.Raw(q).Scan(&rows).Error; err != nil {
			return fmt.Errorf("count %s: %w", table, err)
		}
		for _, r := range rows {
			a := get(r.App)
			cnt := Count{Label: r.K, N: r.N, Amount: r.Amount}
			if table == "refunds" {
				a.Refunds = append(a.Refunds, cnt)
			} else {
				a.Settlements = append(a.Settlements, cnt)
			}
			if r.K == string(state.PhaseSubmitting) || r.K == string(state.PhaseProcessing) {
				a.InFlight += r.Amount
			}
		}
	}
	for _, a := range byApp {
		sortPhases(a.Refunds)
		sortPhases(a.Settlements)
		snap.Apps = append(snap.Apps, *a)
	}
	sort.Slice(snap.Apps, func(i, j int) bool { return snap.Apps[i].AppID < snap.Apps[j].AppID })
	return nil
}

// sortPhases orders counts by the state machine's order.
func sortPhases(cs []Count) {
	rank := map[string]int{}
	for i, p := range append(state.Phases, state.PhaseCancelled) {
		rank[string(p)] = i
	}
	sort.SliceStable(cs, func(i, j int) bool { return rank[cs[i].Label] < rank[cs[j].Label] })
}

func (c *Console) hookStats(db *gorm.DB, now time.Time, snap *Snapshot) error {
	var rows []groupRow
	if err := db.Raw("SELECT type AS k, COUNT(*) AS n FROM callbacks WHERE received_at >= ? GROUP BY type ORDER BY type", now.Add(-time.Hour)).Scan(&rows).Error; err != nil {
		return fmt.Errorf("count callbacks: %w", err)
	}
	for _, r := range rows {
		snap.Hooks = append(snap.Hooks, Count{Label: r.K, N: r.N})
	}
	return nil
}

func (c *Console) aliveStats(db *gorm.DB, now time.Time, snap *Snapshot) error {
	// A replica heartbeats every 2 s and counts as alive for 10 s.
	if err := db.Model(&state.Replica{}).Where("seen_at >= ?", now.Add(-10*time.Second)).Order("owner").Pluck("owner", &snap.Alive).Error; err != nil {
		return fmt.Errorf("read replicas: %w", err)
	}
	return nil
}

func (c *Console) eventStats(db *gorm.DB, _ time.Time, snap *Snapshot) error {
	var rows []groupRow
	if err := db.Raw("SELECT endpoint AS app, status AS k, COUNT(*) AS n FROM deliveries GROUP BY endpoint, status ORDER BY endpoint, status").Scan(&rows).Error; err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	for _, r := range rows {
		if n := len(snap.Events); n == 0 || snap.Events[n-1].Endpoint != r.App {
			snap.Events = append(snap.Events, EndpointStats{Endpoint: r.App})
		}
		e := &snap.Events[len(snap.Events)-1]
		e.Counts = append(e.Counts, Count{Label: r.K, N: r.N})
	}
	return nil
}

func (c *Console) waitingStats(db *gorm.DB, _ time.Time, snap *Snapshot) error {
	open := []state.Phase{state.PhasePending, state.PhaseSubmitting, state.PhaseProcessing}
	if err := db.Raw(`SELECT COUNT(*) FROM settlements s WHERE s.phase = ? AND EXISTS
		(SELECT 1 FROM refunds r WHERE r.order_id = s.order_id AND r.phase IN ?)`, state.PhasePending, open).Scan(&snap.Waiting.OnRefunds).Error; err != nil {
		return fmt.Errorf("count settlements waiting on refunds: %w", err)
	}
	if err := db.Raw(`SELECT COUNT(*) FROM settlements s JOIN orders o ON o.id = s.order_id WHERE s.phase = ? AND o.status <> ?`,
		state.PhasePending, state.OrderSuccess).Scan(&snap.Waiting.NotPaid).Error; err != nil {
		return fmt.Errorf("count settlements waiting on payment: %w", err)
	}
	return nil
}
