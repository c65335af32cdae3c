package main

import (
	"context"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

// TestAudit: payd plan shows a refund awaiting audit with its deadline and
// Douyin's default; payd audit stores a person's decision on it, named by
// Douyin's refund_id or payd's key; bad input is refused with the field
// and nothing written.
func TestAudit(t *testing.T) {
	e := newEnv(t)
	e.migrate()
	st := e.store()
	rf, _, err := st.AdoptForeignRefund(context.Background(), state.ForeignRefund{AppID: testApp, OutOrderNo: "o-au", RefundID: "motb-au1",
		Amount: 800, Source: state.SourceUser, NeedAudit: true, AuditDeadline: time.Now().Add(time.Hour)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plan := e.run("plan")
	has(t, plan.stdout, "await_audit", "awaits a person's audit (the audit default holds it): payd audit agree|deny "+rf.Key,
		"if none reaches Douyin by then, Douyin approves the refund")
	e.run("audit", "deny", "motb-au1").fails(t, "audit refund motb-au1: message: required to deny a refund (the buyer reads it)")
	e.run("audit", "approve", "motb-au1").fails(t, `audit refund motb-au1: decision "approve": want agree or deny`)
	e.run("audit", "agree", "nope").fails(t, "audit nope: no refund has that refund_id or key (payd plan lists the refunds awaiting audit)")
	out := e.run("audit", "deny", rf.Key, "--message", "已发货").ok(t).stdout
	has(t, out, "refund "+rf.Key+": deny stored", "deadline ")
	var got state.Refund
	if err := st.DB().Where("id = ?", rf.ID).Take(&got).Error; err != nil {
		t.Fatal(err)
	}
	if got.AuditPhase != state.AuditDecided || got.AuditDecision != state.AuditDeny || got.AuditMessage != "已发货" || got.AuditBy != state.AuditByOperator {
		t.Fatalf("stored: %+v", got)
	}
}
