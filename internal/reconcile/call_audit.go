package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// auditRefund stores the decision with the audit sending (the intent),
// sends refund_audit_callback and records the answer. The refund's own
// phase does not move: its query follows the decision's effect.
func (r *Reconciler) auditRefund(ctx context.Context, v *state.OrderView, a Action) (ActionResult, error) {
	rf, err := findRefund(v, a.RefundID)
	if err != nil {
		return ActionResult{}, err
	}
	now := r.clock.Now()
	if !rf.AuditPhase.Open() || rf.AuditPhase == state.AuditRefused || !now.Before(auditDeadline(*rf)) {
		return ActionResult{Outcome: "local"}, nil // decided meanwhile, or too late: re-planned from the row
	}
	c := auditFor(v, *rf, r.policy.App(v.Order.AppID).Audit, now)
	if c.decision != state.AuditAgree && c.decision != state.AuditDeny {
		return ActionResult{Outcome: "local"}, nil
	}
	from := rf.AuditPhase
	if from != state.AuditDecided {
		rf.AuditBy = state.AuditByPolicy
	}
	rf.AuditPhase, rf.AuditDecision, rf.AuditMessage = state.AuditSending, c.decision, c.message
	rf.ErrNo, rf.ErrTips = 0, ""
	rf.NextActionAt = r.jittered(now, r.policy.Poll, 0) // the query that resolves an unknown outcome
	if err := r.store.InTx(ctx, func(tx *state.Store) error { return tx.UpdateAudit(ctx, rf, from) }); err != nil {
		return ActionResult{}, fmt.Errorf("persist audit decision of refund %s: %w", rf.Key, err)
	}
	au, ok := r.dy.(provider.Auditor)
	start := time.Now()
	if ok {
		err = au.AuditRefund(ctx, orderRef(v), provider.ItemRef{No: rf.OutRefundNo, DouyinID: rf.RefundNo},
			provider.AuditDecision{Agree: c.decision == state.AuditAgree, Message: c.message})
	} else {
		err = &provider.Error{Class: provider.Configuration, ErrNo: -1, Tips: "the app's API has no refund audits"}
	}
	att := attempt(v, "refund", rf.ID, provider.CallAuditRefund, rf.OutRefundNo, err, time.Since(start))
	afterAudit(rf, err, r.clock.Now(), r.itemPolicy(1, r.policy.Retry))
	res := ActionResult{Outcome: att.Outcome, ErrNo: att.ErrNo}
	return res, r.save(keep(ctx), att, func(tx *state.Store) error { return tx.UpdateAudit(keep(ctx), rf, state.AuditSending) })
}

// afterAudit is what refund_audit_callback's answer makes of the audit:
// taken → sent (the refund is queried soon); not executed → decided again,
// the same decision after the back-off; unknown → still sending, the
// refund's query reads the audit status before anything is resent;
// not found (the refund is not created yet) → decided again, later;
// refused → refused, for a person to decide again.
func afterAudit(rf *state.Refund, err error, now time.Time, p ItemPolicy) {
	class, reason := provider.Outcome(err)
	switch {
	case class == provider.Done:
		rf.AuditPhase = state.AuditSent
		rf.NextActionAt = p.at(now, p.Poll, 0)
	case class == provider.Refused && reason == provider.NotFound:
		// Douyin creates a user's refund only after payd answered its
		// pre_create_refund: a decision sent at once may find none yet.
		// The same decision again, later (the refund's polls space it).
		rf.AuditPhase = state.AuditDecided
		rf.ErrNo, rf.ErrTips = provider.ErrNo(err), truncate(provider.Tips(err), 200)
		rf.NextActionAt = p.at(now, p.Poll, rf.Checks)
	case class == provider.Retryable:
		rf.AuditPhase = state.AuditDecided
		rf.ErrNo, rf.ErrTips = provider.ErrNo(err), truncate(provider.Tips(err), 200)
		rf.NextActionAt = p.at(now, p.Poll, 0)
	case class == provider.Unknown:
		rf.NextActionAt = p.at(now, p.Poll, 0)
	default:
		rf.AuditPhase = state.AuditRefused
		rf.ErrNo, rf.ErrTips = provider.ErrNo(err), truncate(orText(provider.Tips(err), fmt.Sprint(err)), 200)
		rf.NextActionAt = &now
	}
}

// observeAudit copies what a refund query said of the refund's audit onto
// rf: a decision Douyin waits for (a sending decision that did not reach
// it may be sent again), one it took, or its approval at the deadline.
func observeAudit(rf *state.Refund, au provider.Audit) {
	if !au.Deadline.IsZero() && rf.AuditDeadline == nil {
		d := au.Deadline.UTC()
		rf.AuditDeadline = &d
	}
	switch au.Status {
	case provider.AuditWaiting:
		switch rf.AuditPhase {
		case state.AuditNone:
			rf.AuditPhase = state.AuditWaiting
			if rf.AuditDeadline == nil {
				d := rf.CreatedAt.Add(state.DefaultAuditWindow).UTC()
				rf.AuditDeadline = &d
			}
		case state.AuditSending:
			rf.AuditPhase = state.AuditDecided // proven not taken: the same decision again
		}
	case provider.AuditAgreed, provider.AuditDenied:
		if rf.AuditPhase != state.AuditSent && rf.AuditPhase != state.AuditSending {
			rf.AuditBy = state.AuditByDouyin
			rf.AuditDecision = state.AuditAgree
			if au.Status == provider.AuditDenied {
				rf.AuditDecision = state.AuditDeny
			}
		}
		rf.AuditPhase = state.AuditSent
	case provider.AuditOvertime:
		rf.AuditPhase = state.AuditOvertime
	}
}
