package provider

import (
	"context"
	"time"
)

// Auditor is what an API that lets the merchant audit refunds started by
// users adds to Provider (the trade system's refund_audit_callback). It is
// kept apart from Provider so that APIs without audits (ecpay) need not
// implement it; the reconciler type-asserts it.
type Auditor interface {
	// AuditRefund sends the merchant's decision on a refund awaiting
	// audit. Success means Douyin took the decision; an error is classified
	// by Outcome like every other write: an Unknown outcome must be checked
	// with QueryRefund's Audit before the decision is sent again.
	AuditRefund(ctx context.Context, o OrderRef, ref ItemRef, d AuditDecision) error
}

// CallAuditRefund is the audit call, for the attempt log and rate budgets.
const CallAuditRefund Call = "audit_refund"

// AuditDecision is the merchant's decision on a refund awaiting audit.
type AuditDecision struct {
	// Agree lets the refund go ahead; false refuses it.
	Agree bool
	// Message is the buyer-facing reason of a refusal (required then, at
	// most 512 bytes).
	Message string
}

// AuditStatus is where a refund's merchant audit stands at Douyin.
type AuditStatus string

// The audit statuses QueryRefund reports in RefundInfo.Audit.
const (
	AuditNone     AuditStatus = ""         // the refund needs no audit (or the API has none)
	AuditWaiting  AuditStatus = "TOAUDIT"  // Douyin waits for the merchant's decision
	AuditAgreed   AuditStatus = "AGREE"    // the merchant agreed
	AuditDenied   AuditStatus = "DENY"     // the merchant refused: the refund ends FAIL
	AuditOvertime AuditStatus = "OVERTIME" // no decision by the deadline: Douyin approved
)

// Audit is a refund's merchant audit as Douyin reports it.
type Audit struct {
	Status AuditStatus
	// Deadline is when Douyin approves the refund by itself; zero when
	// not said.
	Deadline time.Time
}
