package reconcile

import (
	"fmt"
	"time"

	"github.com/payd/payd/internal/state"
)

// The audit actions. A refund a user started may need the merchant's
// decision (trade system): the app's AuditPolicy decides, or holds it for a
// person (payd audit); the decision is stored before it is sent, once, and
// an unknown outcome is resolved by the refund's query (its audit status)
// before anything is sent again. Without a decision by the deadline Douyin
// approves the refund itself.
const (
	// KindAuditRefund: persist the decision (audit sending), then send
	// refund_audit_callback.
	KindAuditRefund Kind = "audit_refund"
	// KindAwaitAudit: a refund held for a person's decision; scheduled at
	// its deadline, it is never due (after the deadline the refund's query
	// sees Douyin's approval). No call.
	KindAwaitAudit Kind = "await_audit"
)

// AuditRule is one rule of an app's audit policy. It matches a refund
// awaiting audit when every condition it sets holds; the first rule that
// matches decides.
type AuditRule struct {
	// MaxAmount matches refunds of at most this many fen; 0 matches any.
	MaxAmount int64
	// Fulfilled, when true, matches only refunds of orders declared
	// fulfilled (orderFulfilled); false matches any order.
	Fulfilled bool
	// Action is agree, deny or hold.
	Action state.AuditDecision
	// Message is the deny_message of a deny.
	Message string
}

// AuditPolicy is an app's audit policy: ordered rules and a default.
type AuditPolicy struct {
	Rules []AuditRule
	// Default is the action when no rule matches; "" is hold (a person
	// decides, or Douyin approves at the deadline).
	Default state.AuditDecision
	// DefaultMessage is the deny_message of a deny by default.
	DefaultMessage string
}

// auditChoice is what the policy, or a person, decided about a refund.
type auditChoice struct {
	decision state.AuditDecision
	message  string
	why      string
}

// Choose applies the policy to a refund of amount fen of an order whose
// fulfilment is fulfilled.
func (p AuditPolicy) choose(amount int64, fulfilled bool) auditChoice {
	for i, r := range p.Rules {
		if r.MaxAmount > 0 && amount > r.MaxAmount {
			continue
		}
		if r.Fulfilled && !fulfilled {
			continue
		}
		return auditChoice{decision: r.Action, message: r.Message, why: fmt.Sprintf("audit rule %d", i+1)}
	}
	d := p.Default
	if d == "" {
		d = state.AuditHold
	}
	return auditChoice{decision: d, message: p.DefaultMessage, why: "the audit default"}
}

// orderFulfilled says whether v's order counts as fulfilled for the audit
// rules' fulfilled condition at now: the merchant declared it fulfilled
// (payd fulfil, declare files, the admin API) as a whole, or declared each
// of its item orders (as order_query listed them) fulfilled — the rule the
// fulfilment settle rule counts from — at or before now. Douyin tells payd
// nothing of fulfilment (no pre_create_refund, refund callback or
// refund_query field carries it), so a declaration is the only source.
func orderFulfilled(v *state.OrderView, now time.Time) bool {
	at, ok := v.FulfilledAt("")
	return ok && !at.After(now)
}

// auditDeadline is when Douyin approves r by itself.
func auditDeadline(r state.Refund) time.Time {
	if r.AuditDeadline != nil {
		return *r.AuditDeadline
	}
	return r.CreatedAt.Add(state.DefaultAuditWindow)
}

// auditFor is the decision to send for r, a refund of v's order, at now: a
// person's stored one, else the policy's. hold means none.
func auditFor(v *state.OrderView, r state.Refund, p AuditPolicy, now time.Time) auditChoice {
	if r.AuditPhase == state.AuditDecided {
		return auditChoice{decision: r.AuditDecision, message: r.AuditMessage, why: "decided by " + orText(r.AuditBy, state.AuditByOperator)}
	}
	return p.choose(r.Amount, orderFulfilled(v, now))
}

// planAudits adds the audit actions of o's refunds awaiting a decision.
func (pl *planner) planAudits() {
	for _, r := range pl.refunds {
		if r.Phase.Final() || !r.AuditPhase.Open() {
			continue
		}
		deadline := auditDeadline(r)
		if !pl.now.Before(deadline) {
			continue // Douyin approves it; the refund's query will say so
		}
		what := fmt.Sprintf("refund %s (%d fen, started by %s)", r.Key, r.Amount, orText(string(r.Source), "payd"))
		by := fmt.Sprintf("before %s (in %s); if none reaches Douyin by then, Douyin approves the refund", deadline.Format(time.RFC3339), fmtPeriod(deadline.Sub(pl.now)))
		c := auditFor(&pl.v, r, pl.app.Audit, pl.now)
		if r.AuditPhase == state.AuditRefused {
			pl.add(Action{Kind: KindAwaitAudit, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, At: deadline,
				Reason: fmt.Sprintf("%s: Douyin refused the decision %s (%s): decide again with payd audit agree|deny %s %s", what, r.AuditDecision, orText(r.ErrTips, "no message"), r.Key, by)})
			continue
		}
		if c.decision == state.AuditHold {
			pl.add(Action{Kind: KindAwaitAudit, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, At: deadline,
				Reason: fmt.Sprintf("%s awaits a person's audit (%s holds it): payd audit agree|deny %s %s", what, c.why, r.Key, by)})
			continue
		}
		at := pl.now
		if r.AuditPhase == state.AuditDecided && r.ErrNo != 0 {
			at = timeOr(r.NextActionAt, pl.now) // not executed: the same decision after the back-off
		}
		pl.add(Action{Kind: KindAuditRefund, RefundID: r.ID, MerchantNo: r.OutRefundNo, Amount: r.Amount, At: at,
			Reason: fmt.Sprintf("%s: %s (%s): send refund_audit_callback %s", what, c.decision, c.why, by)})
	}
}
