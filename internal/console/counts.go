package console

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/payd/payd/internal/state"
)

// Snapshot is the overview's and the calendar's counts and sums, read for
// each page from the counters the store keeps in every write's
// transaction (state.Counters), so they are exact as of At.
type Snapshot struct {
	At    time.Time     // when it was read (payd's clock)
	Took  time.Duration // how long reading it took (wall time)
	Apps  []AppStats
	Calls Calls
	Hooks []HookStats // callbacks verified and refused, last 24 hours, per app
	// Passes and Batches are the last reconcile passes that did work and
	// the last settle_batch runs, newest first, from every replica.
	Passes, Batches []state.Pass
	Alive           []string
	Events          []EndpointStats
	Days            []CalendarDay // the next 30 days, every app
	Settled         []CalendarDay // the last 7 days' succeeded settlements
	Waiting         Waiting
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
	NotPaid   int64 // the order is UNKNOWN or PROCESSING
	Capped    bool  // a count reached maxWaiting: "at least"
}

// HookStats is one app's callbacks over the last 24 hours: verified
// (stored) by type, refused by reason.
type HookStats struct {
	AppID             string
	Verified, Refused int64
	Types, Reasons    []Count
}

// The overview shows this many of the last passes and batches.
const lastPasses, lastBatches = 10, 5

// compute reads the overview's and the calendar's figures: the counters
// (state.Counters: exact, kept in every write's transaction) and the few
// small tables beside them. It reads no table in full.
func (c *Console) compute(ctx context.Context) (*Snapshot, error) {
	start := time.Now()
	db := c.o.Store.DB().WithContext(ctx)
	now := c.o.Clock.Now().UTC()
	snap := &Snapshot{At: now}
	days := dayStarts(now, calendarDays, c.o.Location)
	live, err := c.o.Store.Counters(ctx, state.CounterQuery{
		Kinds: []state.CounterKind{state.CountOrders, state.CountRefunds, state.CountSettlements, state.CountDeliveries, state.CountAutoSettle, state.CountDue},
		To:    days[calendarDays].Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("overview counts: %w", err)
	}
	since := callsSince(now)
	calls, err := c.o.Store.Counters(ctx, state.CounterQuery{Kinds: []state.CounterKind{state.CountCalls, state.CountBusy}, From: since.Unix()})
	if err != nil {
		return nil, fmt.Errorf("overview counts: %w", err)
	}
	week := dayStarts(now.AddDate(0, 0, -6), 7, c.o.Location)
	past, err := c.o.Store.Counters(ctx, state.CounterQuery{
		Kinds: []state.CounterKind{state.CountSettled, state.CountCallbacks, state.CountRefused}, From: week[0].Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("overview counts: %w", err)
	}
	c.appStats(live, snap)
	c.eventStats(live, snap)
	c.calendarStats(live, days, snap)
	c.settledByDay(past, week, snap)
	c.hookStats(past, now, snap)
	c.callStats(calls, since, snap)
	if snap.Passes, err = c.o.Store.LastPasses(ctx, state.PassReconcile, lastPasses); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	if snap.Batches, err = c.o.Store.LastPasses(ctx, state.PassSettleBatch, lastBatches); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	for _, step := range []func(*gorm.DB, time.Time, *Snapshot) error{c.aliveStats, c.waitingStats} {
		if err := step(db, now, snap); err != nil {
			return nil, fmt.Errorf("overview counts: %w", err)
		}
	}
	snap.Took = time.Since(start).Round(time.Microsecond)
	return snap, nil
}

// appStats lays out the bucket-0 counters of orders, refunds and
// settlements per app; money in flight is what refunds and settlements
// submitting or processing add up to.
func (c *Console) appStats(cs []state.Counter, snap *Snapshot) {
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
	for _, r := range cs {
		cnt := Count{Label: r.Label, N: r.N, Amount: r.Amount}
		switch r.Kind {
		case state.CountOrders:
			get(r.Scope).Orders = append(get(r.Scope).Orders, cnt)
		case state.CountRefunds, state.CountSettlements:
			a := get(r.Scope)
			if r.Kind == state.CountRefunds {
				a.Refunds = append(a.Refunds, cnt)
			} else {
				a.Settlements = append(a.Settlements, cnt)
			}
			if r.Label == string(state.PhaseSubmitting) || r.Label == string(state.PhaseProcessing) {
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
}

// sortPhases orders counts by the state machine's order.
func sortPhases(cs []Count) {
	rank := map[string]int{}
	for i, p := range append(state.Phases, state.PhaseCancelled) {
		rank[string(p)] = i
	}
	sort.SliceStable(cs, func(i, j int) bool { return rank[cs[i].Label] < rank[cs[j].Label] })
}

// hookStats counts the callbacks stored (verified) and refused per app
// over the last 24 hours (whole hours), from the counters every replica
// writes: the cluster's figure, not this process's.
func (c *Console) hookStats(cs []state.Counter, now time.Time, snap *Snapshot) {
	from := now.Truncate(time.Hour).Add(-23 * time.Hour).Unix()
	byApp := map[string]*HookStats{}
	for _, r := range cs {
		if r.Bucket < from || (r.Kind != state.CountCallbacks && r.Kind != state.CountRefused) {
			continue
		}
		h := byApp[r.Scope]
		if h == nil {
			h = &HookStats{AppID: r.Scope}
			byApp[r.Scope] = h
		}
		if r.Kind == state.CountCallbacks {
			h.Verified += r.N
			addCount(&h.Types, r.Label, r.N)
		} else {
			h.Refused += r.N
			addCount(&h.Reasons, r.Label, r.N)
		}
	}
	for _, h := range byApp {
		snap.Hooks = append(snap.Hooks, *h)
	}
	sort.Slice(snap.Hooks, func(i, j int) bool { return snap.Hooks[i].AppID < snap.Hooks[j].AppID })
}

// addCount adds n under label, keeping cs sorted by label.
func addCount(cs *[]Count, label string, n int64) {
	for i := range *cs {
		if (*cs)[i].Label == label {
			(*cs)[i].N += n
			return
		}
	}
	*cs = append(*cs, Count{Label: label, N: n})
	sort.Slice(*cs, func(i, j int) bool { return (*cs)[i].Label < (*cs)[j].Label })
}

func (c *Console) aliveStats(db *gorm.DB, now time.Time, snap *Snapshot) error {
	// A replica heartbeats every 2 s and counts as alive for 10 s.
	if err := db.Model(&state.Replica{}).Where("seen_at >= ?", now.Add(-10*time.Second)).Order("owner").Pluck("owner", &snap.Alive).Error; err != nil {
		return fmt.Errorf("read replicas: %w", err)
	}
	return nil
}

// eventStats lays out the deliveries' counters per endpoint and status.
func (c *Console) eventStats(cs []state.Counter, snap *Snapshot) {
	for _, r := range cs {
		if r.Kind != state.CountDeliveries {
			continue
		}
		if n := len(snap.Events); n == 0 || snap.Events[n-1].Endpoint != r.Scope {
			snap.Events = append(snap.Events, EndpointStats{Endpoint: r.Scope})
		}
		e := &snap.Events[len(snap.Events)-1]
		e.Counts = append(e.Counts, Count{Label: r.Label, N: r.N})
	}
}

// maxWaiting bounds the rows each "held back" count reads; beyond it the
// page says "at least".
const maxWaiting = 10_000

// waitingStats counts pending settlements held back by an open refund and
// by an order not paid yet. Both start from the few rows in flight —
// refunds by phase (ix_refunds_phase_updated), orders by status, one
// equality each so the index is used whatever the statistics say — never
// from the settlements, read at most maxWaiting of them, and are skipped
// when the counters say no such refund or order exists.
func (c *Console) waitingStats(db *gorm.DB, _ time.Time, snap *Snapshot) error {
	var openRefunds, unpaid int64
	for _, a := range snap.Apps {
		for _, r := range a.Refunds {
			if !state.Phase(r.Label).Final() {
				openRefunds += r.N
			}
		}
		for _, o := range a.Orders {
			if o.Label == string(state.OrderUnknown) || o.Label == string(state.OrderProcessing) {
				unpaid += o.N
			}
		}
	}
	// CROSS JOIN: SQLite keeps the written order (the rows in flight
	// first); PostgreSQL plans it as the inner join it is.
	held := func(from, id, col string, keys []string) (int64, error) {
		var parts []string
		var args []any
		for _, k := range keys {
			parts = append(parts, "SELECT s.id FROM "+from+" x CROSS JOIN settlements s WHERE s.order_id = x."+id+" AND x."+col+" = ? AND s.phase = ?")
			args = append(args, k, state.PhasePending)
		}
		var n int64
		err := db.Raw("SELECT COUNT(*) FROM ("+strings.Join(parts, " UNION ")+" LIMIT ?) w", append(args, maxWaiting+1)...).Scan(&n).Error
		return min(n, maxWaiting+1), err
	}
	var err error
	if openRefunds > 0 {
		phases := []string{string(state.PhasePending), string(state.PhaseSubmitting), string(state.PhaseProcessing)}
		if snap.Waiting.OnRefunds, err = held("refunds", "order_id", "phase", phases); err != nil {
			return fmt.Errorf("count settlements waiting on refunds: %w", err)
		}
	}
	if unpaid > 0 {
		statuses := []string{string(state.OrderUnknown), string(state.OrderProcessing)}
		if snap.Waiting.NotPaid, err = held("orders", "id", "status", statuses); err != nil {
			return fmt.Errorf("count settlements waiting on payment: %w", err)
		}
	}
	snap.Waiting.Capped = snap.Waiting.OnRefunds > maxWaiting || snap.Waiting.NotPaid > maxWaiting
	snap.Waiting.OnRefunds = min(snap.Waiting.OnRefunds, maxWaiting)
	snap.Waiting.NotPaid = min(snap.Waiting.NotPaid, maxWaiting)
	return nil
}
