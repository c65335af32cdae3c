package reconcile

import (
	"errors"
	"testing"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// TestAfterAudit: what refund_audit_callback's answer makes of the audit.
func TestAfterAudit(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := ItemPolicy{Attempts: 1, Retry: []time.Duration{time.Minute}, Poll: []time.Duration{5 * time.Second, time.Minute}}
	for _, tc := range []struct {
		name string
		err  error
		want state.AuditPhase
		next time.Duration
	}{
		{"taken", nil, state.AuditSent, 5 * time.Second},
		{"not executed", &provider.Error{Class: provider.Retryable, ErrNo: 12001}, state.AuditDecided, 5 * time.Second},
		{"unknown", &provider.Error{Class: provider.Unknown, ErrNo: 13000}, state.AuditSending, 5 * time.Second},
		{"refund not created yet", &provider.Error{Class: provider.Refused, Reason: provider.NotFound, ErrNo: 20000}, state.AuditDecided, time.Minute},
		{"refused", &provider.Error{Class: provider.Refused, ErrNo: 20001, Tips: "not awaiting audit"}, state.AuditRefused, 0},
		{"configuration", &provider.Error{Class: provider.Configuration, ErrNo: -1, Err: errors.New("no key")}, state.AuditRefused, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf := &state.Refund{AuditPhase: state.AuditSending, Checks: 1}
			afterAudit(rf, tc.err, now, p)
			if rf.AuditPhase != tc.want || rf.NextActionAt == nil || rf.NextActionAt.Sub(now) != tc.next {
				t.Fatalf("phase %s next %v, want %s in %s", rf.AuditPhase, rf.NextActionAt, tc.want, tc.next)
			}
		})
	}
}

// TestPlan_auditBeforeQuery: a decision sent again after a back-off is due
// at the refund's NextActionAt, like the refund's next query; it comes
// first, or every query would postpone it (the query moves NextActionAt).
func TestPlan_auditBeforeQuery(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	due, deadline := now.Add(-time.Second), now.Add(time.Hour)
	paid := now.Add(-time.Hour)
	v := state.OrderView{
		Order: state.Order{ID: 1, AppID: "tt1", OutOrderNo: "o1", Status: state.OrderSuccess, TotalAmount: 1000, PaidAt: &paid},
		Refunds: []state.Refund{{ID: 1, OrderID: 1, Key: "dy1", Amount: 100, Phase: state.PhaseProcessing, Attempt: 1, OutRefundNo: "dy1-1",
			Source: state.SourceUser, NextActionAt: &due, ErrNo: 20000, AuditPhase: state.AuditDecided, AuditDecision: state.AuditAgree,
			AuditBy: state.AuditByPolicy, AuditDeadline: &deadline}},
	}
	acts := DueNow(Plan(v, now, DefaultPolicy()), now)
	if len(acts) != 2 || acts[0].Kind != KindAuditRefund || acts[1].Kind != KindQueryRefund {
		t.Fatalf("due: %+v", acts)
	}
	// Held by the policy (the zero policy): nothing is sent, the wait is
	// shown until the deadline.
	v.Refunds[0].AuditPhase, v.Refunds[0].ErrNo = state.AuditWaiting, 0
	acts = Plan(v, now, DefaultPolicy())
	if acts[0].Kind != KindAwaitAudit || !acts[0].At.Equal(deadline) || acts[0].Due(now) {
		t.Fatalf("held: %+v", acts)
	}
}
