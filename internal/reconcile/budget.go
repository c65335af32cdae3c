package reconcile

import (
	"sync"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// waitAfter is the token wait beyond which a worker parks an order instead
// of blocking on its API's bucket while other APIs' budgets may sit idle.
const waitAfter = 20 * time.Millisecond

// budgetKey names one rate budget: an app's API.
type budgetKey struct {
	app  string
	call provider.Call
}

// waitRoom holds claimed orders waiting for their API's budget, first in,
// first out per budget.
type waitRoom struct {
	mu sync.Mutex
	q  map[budgetKey][]claimedOrder
}

func (p *waitRoom) put(k budgetKey, co claimedOrder) {
	p.mu.Lock()
	p.q[k] = append(p.q[k], co)
	p.mu.Unlock()
}

// backedUp lists the apps of apps with at least minHeld orders waiting
// for any of their budgets (see state.Quota's Newest), counted in one pass
// over the queues: it runs at every claim.
func (p *waitRoom) backedUp(apps map[string]int) map[string]bool {
	p.mu.Lock()
	parked := make(map[string]int, len(p.q))
	for k, q := range p.q {
		parked[k.app] += len(q)
	}
	p.mu.Unlock()
	var out map[string]bool
	for app, n := range parked {
		if _, listed := apps[app]; listed && n >= minHeld {
			if out == nil {
				out = map[string]bool{}
			}
			out[app] = true
		}
	}
	return out
}

// room reports whether one more order fits behind k's queue: at most what
// the budget serves in a quarter of a lease, so a parked order's lease
// cannot run out while it waits.
func (p *waitRoom) room(k budgetKey, rate float64, lease time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(len(p.q[k])) < rate*lease.Seconds()/4
}

// take pops the oldest order of a budget that ready accepts (any budget
// when ready is nil).
func (p *waitRoom) take(ready func(budgetKey) bool) (claimedOrder, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, q := range p.q {
		if len(q) == 0 || (ready != nil && !ready(k)) {
			continue
		}
		co := q[0]
		if len(q) == 1 {
			delete(p.q, k)
		} else {
			p.q[k] = q[1:]
		}
		return co, true
	}
	return claimedOrder{}, false
}

// mustWait reports the budget a due action would wait on.
func (r *Reconciler) mustWait(v *state.OrderView, a Action) (budgetKey, bool) {
	if r.budget == nil {
		return budgetKey{}, false
	}
	var call provider.Call
	switch a.Kind {
	case KindQueryOrder:
		call = provider.CallQueryOrder
	case KindSubmitRefund:
		call = provider.CallCreateRefund
	case KindQueryRefund:
		call = provider.CallQueryRefund
	case KindSubmitSettle:
		call = provider.CallCreateSettle
	case KindQuerySettle:
		call = provider.CallQuerySettle
	case KindAuditRefund:
		call = provider.CallAuditRefund
	default:
		return budgetKey{}, false // no call
	}
	k := budgetKey{v.Order.AppID, call}
	return k, r.budget.Delay(k.app, k.call) > waitAfter
}
