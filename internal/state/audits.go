package state

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// AuditPhase is where the merchant's decision on a refund a user started
// stands, when Douyin asks for one (trade system, need_refund_audit 1).
// The refund itself stays processing throughout: Douyin holds it until it
// has a decision or its deadline passes.
type AuditPhase string

// The audit phases. Who moves a refund in and out of each:
//
//	""        no audit needed (or not known yet)
//	waiting   adoption (pre_create_refund) or a query saw TOAUDIT; the reconciler
//	          applies the app's audit policy, a person decides (payd audit)
//	decided   a person decided, or a call was not executed: the reconciler sends it
//	sending   the reconciler, before refund_audit_callback (the decision is on disk)
//	sent      Douyin took the decision (its answer, or a query saw AGREE/DENY)
//	refused   Douyin refused the decision for good; a person may decide again
//	overtime  a query saw OVERTIME: no decision reached Douyin, it approved the refund
const (
	AuditNone     AuditPhase = ""
	AuditWaiting  AuditPhase = "waiting"
	AuditDecided  AuditPhase = "decided"
	AuditSending  AuditPhase = "sending"
	AuditSent     AuditPhase = "sent"
	AuditRefused  AuditPhase = "refused"
	AuditOvertime AuditPhase = "overtime"
)

// Open reports whether a decision may still be made (by the policy or a
// person) in phase p.
func (p AuditPhase) Open() bool {
	switch p {
	case AuditWaiting, AuditDecided, AuditRefused:
		return true
	case AuditNone, AuditSending, AuditSent, AuditOvertime:
		return false
	}
	return false
}

// AuditDecision is the merchant's decision on a refund awaiting audit.
type AuditDecision string

// The decisions. Hold is a policy's action only: no decision is made, a
// person must decide (or Douyin approves at the deadline).
const (
	AuditAgree AuditDecision = "agree"
	AuditDeny  AuditDecision = "deny"
	AuditHold  AuditDecision = "hold"
)

// Who decided an audit (Refund.AuditBy).
const (
	AuditByPolicy   = "policy"
	AuditByOperator = "operator"
	AuditByDouyin   = "douyin" // decided outside payd (Douyin's console)
)

// DefaultAuditWindow is how long Douyin waits for the merchant's decision
// when it does not say: 72 h after the refund was created.
const DefaultAuditWindow = 72 * time.Hour

// MaxDenyMessage is the most bytes Douyin takes as deny_message.
const MaxDenyMessage = 512

// CheckAuditDecision checks a decision and its message as sent to Douyin:
// agree or deny, a refusal with a message the buyer reads, at most 512
// bytes. field names the message's field in the caller's terms.
func CheckAuditDecision(d AuditDecision, message, field string) error {
	switch {
	case d != AuditAgree && d != AuditDeny:
		return invalidf("decision %q: want agree or deny", d)
	case d == AuditDeny && message == "":
		return invalidf("%s: required to deny a refund (the buyer reads it)", field)
	case len(message) > MaxDenyMessage:
		return invalidf("%s: %d bytes, at most %d", field, len(message), MaxDenyMessage)
	}
	return nil
}

// AuditWish is a person's decision on a refund awaiting audit.
type AuditWish struct {
	// Refund names it: Douyin's refund_id or payd's refund key.
	Refund   string
	Decision AuditDecision
	// Message is the deny_message (required to deny).
	Message string
}

// DecideAudit stores a person's decision on a refund awaiting audit
// (waiting, or decided or refused before): decided, for the reconciler to
// send before the deadline, with a hint for the order. Nothing is written
// when the decision is invalid, the refund needs no audit, a decision was
// already sent, or the deadline has passed (Douyin approves then).
func (s *Store) DecideAudit(ctx context.Context, w AuditWish, now time.Time) (*Refund, error) {
	now = utc(now)
	if w.Refund == "" {
		return nil, fmt.Errorf("audit: %w", invalidf("refund: required (Douyin's refund_id or payd's refund key)"))
	}
	if err := CheckAuditDecision(w.Decision, w.Message, "message"); err != nil {
		return nil, fmt.Errorf("audit refund %s: %w", w.Refund, err)
	}
	var r Refund
	err := s.write(ctx, func(tx *gorm.DB) error {
		var found []Refund
		if err := tx.Where("idem_key = ? OR refund_no = ?", w.Refund, w.Refund).Limit(2).Find(&found).Error; err != nil {
			return fmt.Errorf("read refund: %w", err)
		}
		switch len(found) {
		case 0:
			return ErrNotFound
		case 2:
			return invalidf("refund %q names two refunds: give payd's refund key", w.Refund)
		}
		r = found[0]
		if err := auditable(r, now); err != nil {
			return err
		}
		res := tx.Model(&Refund{}).Where("id = ? AND version = ? AND audit_phase = ?", r.ID, r.Version, r.AuditPhase).Updates(map[string]any{
			"audit_phase": AuditDecided, "audit_decision": w.Decision, "audit_message": w.Message, "audit_by": AuditByOperator,
			"err_no": 0, "err_tips": "", "version": r.Version + 1, "updated_at": s.now(),
		})
		if err := changed(res); err != nil {
			return err
		}
		r.AuditPhase, r.AuditDecision, r.AuditMessage, r.AuditBy, r.Version = AuditDecided, w.Decision, w.Message, AuditByOperator, r.Version+1
		r.ErrNo, r.ErrTips = 0, ""
		return hint(tx, r.OrderID, now)
	})
	if err != nil {
		return nil, fmt.Errorf("audit refund %s: %w", w.Refund, err)
	}
	return &r, nil
}

// auditable says why r cannot take a decision now, nil when it can.
func auditable(r Refund, now time.Time) error {
	switch {
	case r.AuditPhase == AuditNone:
		return invalidf("refund %s needs no audit: only refunds users start with need_refund_audit are audited", r.Key)
	case r.AuditPhase == AuditSending || r.AuditPhase == AuditSent:
		return invalidf("refund %s: the decision %q (by %s) is already sent to Douyin", r.Key, r.AuditDecision, r.AuditBy)
	case r.AuditPhase == AuditOvertime:
		return invalidf("refund %s: its audit deadline passed and Douyin approved it", r.Key)
	case r.Phase.Final():
		return invalidf("refund %s is %s: nothing to audit", r.Key, r.Phase)
	case r.AuditDeadline != nil && !now.Before(*r.AuditDeadline):
		return invalidf("refund %s: its audit deadline %s has passed: Douyin approves it by itself", r.Key, r.AuditDeadline.Format(time.RFC3339))
	}
	return nil
}

// UpdateAudit saves r's audit columns, next_action_at, err_no and err_tips
// when its version and audit phase are still those read (from): the
// reconciler's audit steps, which leave the refund's phase alone.
func (s *Store) UpdateAudit(ctx context.Context, r *Refund, from AuditPhase) error {
	updated := s.now()
	err := s.write(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Refund{}).Where("id = ? AND version = ? AND audit_phase = ?", r.ID, r.Version, from).Updates(map[string]any{
			"audit_phase": r.AuditPhase, "audit_deadline": r.AuditDeadline, "audit_decision": r.AuditDecision,
			"audit_message": r.AuditMessage, "audit_by": r.AuditBy, "next_action_at": r.NextActionAt,
			"err_no": r.ErrNo, "err_tips": r.ErrTips, "version": r.Version + 1, "updated_at": updated,
		})
		return changed(res)
	})
	if err != nil {
		return fmt.Errorf("update audit of refund %s: %w", r.Key, err)
	}
	r.Version++
	r.UpdatedAt = updated
	return nil
}
