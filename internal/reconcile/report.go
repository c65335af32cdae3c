package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/payd/payd/internal/state"
)

// PlanStore is what a plan report reads.
type PlanStore interface {
	DueOrders(ctx context.Context, now time.Time, limit int) ([]int64, error)
	Scheduled(ctx context.Context, now time.Time, limit int) ([]state.Order, error)
	LoadOrders(ctx context.Context, ids []int64) (map[int64]*state.OrderView, error)
	IdleSettlementOrders(ctx context.Context, limit int) ([]int64, error)
}

// PlannedWait is what a pending settlement waits for, as a plan report
// shows it.
type PlannedWait struct {
	Order       string     `json:"order"`
	AppID       string     `json:"app_id"`
	Target      string     `json:"target"`
	ItemOrderID string     `json:"item_order_id,omitempty"`
	For         WaitFor    `json:"waits_for"`
	Until       *time.Time `json:"until,omitempty"`
	Reason      string     `json:"reason"`
}

// PlannedAction is an action as a plan report shows it.
type PlannedAction struct {
	Order  string    `json:"order"`
	AppID  string    `json:"app_id"`
	Kind   Kind      `json:"action"`
	Target string    `json:"target"`
	Amount int64     `json:"amount,omitempty"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// PlanReport is what would be done now and what is scheduled next.
type PlanReport struct {
	Now   time.Time       `json:"now"`
	Due   []PlannedAction `json:"due"`
	Later []PlannedAction `json:"later"`
	// Waiting says what each pending settlement of the orders shown, and
	// of those with nothing scheduled, waits for.
	Waiting []PlannedWait `json:"waiting"`
	// Truncated is set when more orders were due or scheduled than shown.
	Truncated bool `json:"truncated"`
}

// Changes reports whether anything is to be done now.
func (r *PlanReport) Changes() bool { return len(r.Due) > 0 }

// Report plans, without acting, up to limit due orders and the next limit
// scheduled ones.
func Report(ctx context.Context, s PlanStore, now time.Time, p Policy, limit int) (*PlanReport, error) {
	rep := &PlanReport{Now: now, Due: []PlannedAction{}, Later: []PlannedAction{}, Waiting: []PlannedWait{}}
	due, err := s.DueOrders(ctx, now, limit+1)
	if err != nil {
		return nil, fmt.Errorf("find due orders: %w", err)
	}
	if len(due) > limit {
		due, rep.Truncated = due[:limit], true
	}
	ids := append([]int64(nil), due...)
	later, err := s.Scheduled(ctx, now, limit+1)
	if err != nil {
		return nil, fmt.Errorf("find scheduled orders: %w", err)
	}
	if len(later) > limit {
		later, rep.Truncated = later[:limit], true
	}
	for _, o := range later {
		ids = append(ids, o.ID)
	}
	idle, err := s.IdleSettlementOrders(ctx, limit+1)
	if err != nil {
		return nil, err
	}
	if len(idle) > limit {
		idle, rep.Truncated = idle[:limit], true
	}
	ids = append(ids, idle...)
	ids = unique(ids)
	views, err := s.LoadOrders(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		v := views[id]
		if v == nil {
			continue // gone since it was listed: nothing to plan
		}
		for _, a := range Plan(*v, now, p) {
			pa := PlannedAction{Order: v.Order.OutOrderNo, AppID: v.Order.AppID, Kind: a.Kind, Target: a.MerchantNo, Amount: a.Amount, At: a.At, Reason: a.Reason}
			if a.Due(now) {
				rep.Due = append(rep.Due, pa)
			} else {
				rep.Later = append(rep.Later, pa)
			}
		}
		for _, wt := range Waits(*v, now, p) {
			rep.Waiting = append(rep.Waiting, PlannedWait{Order: v.Order.OutOrderNo, AppID: v.Order.AppID, Target: wt.MerchantNo,
				ItemOrderID: wt.ItemOrderID, For: wt.For, Until: wt.Until, Reason: wt.Reason})
		}
	}
	return rep, nil
}

// unique is ids without repeats, in their first order.
func unique(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// PassRecorder stores the record of a pass that did work. *state.Store
// satisfies it; a store that does not is not asked.
type PassRecorder interface {
	RecordPass(ctx context.Context, p state.Pass) error
}

// recordPass stores the pass that logPass logged, so that any replica's
// console shows the cluster's last passes. A failure is logged, not
// returned: the record is for people, and the pass's work is done.
func (r *Reconciler) recordPass(ctx context.Context, ps PassStats, acts, calls int) {
	rec, ok := r.store.(PassRecorder)
	if !ok {
		return
	}
	p := state.Pass{
		Kind: state.PassReconcile, Replica: r.owner, StartedAt: r.clock.Now().Add(-ps.Duration),
		DurationMS: ps.Duration.Milliseconds(), Orders: ps.Orders, Actions: acts, Calls: calls,
		Retryable: ps.Outcomes["retryable"], Errors: ps.Errors, Detail: passDetail(ps),
	}
	if err := rec.RecordPass(context.WithoutCancel(ctx), p); err != nil {
		r.log.WithError(err).Warn("record the reconcile pass")
	}
}

// passDetail lists a pass's actions by kind, in a stable order.
func passDetail(ps PassStats) string {
	kinds := make([]string, 0, len(ps.Actions))
	for k, n := range ps.Actions {
		if n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	sort.Strings(kinds)
	if ps.LetGo > 0 {
		kinds = append(kinds, fmt.Sprintf("let go as their lease ran low %d", ps.LetGo))
	}
	return strings.Join(kinds, ", ")
}
