package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/payd/payd/internal/state"
)

// PlanStore is what a plan report reads.
type PlanStore interface {
	DueOrders(ctx context.Context, now time.Time, limit int) ([]int64, error)
	Scheduled(ctx context.Context, now time.Time, limit int) ([]state.Order, error)
	LoadOrder(ctx context.Context, id int64) (*state.OrderView, error)
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
	// Truncated is set when more orders were due or scheduled than shown.
	Truncated bool `json:"truncated"`
}

// Changes reports whether anything is to be done now.
func (r *PlanReport) Changes() bool { return len(r.Due) > 0 }

// Report plans, without acting, up to limit due orders and the next limit
// scheduled ones.
func Report(ctx context.Context, s PlanStore, now time.Time, p Policy, limit int) (*PlanReport, error) {
	rep := &PlanReport{Now: now, Due: []PlannedAction{}, Later: []PlannedAction{}}
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
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		v, err := s.LoadOrder(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("load order %d: %w", id, err)
		}
		for _, a := range Plan(*v, now, p) {
			pa := PlannedAction{Order: v.Order.OutOrderNo, AppID: v.Order.AppID, Kind: a.Kind, Target: a.MerchantNo, Amount: a.Amount, At: a.At, Reason: a.Reason}
			if a.Due(now) {
				rep.Due = append(rep.Due, pa)
			} else {
				rep.Later = append(rep.Later, pa)
			}
		}
	}
	return rep, nil
}
