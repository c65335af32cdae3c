package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// auditWorld is a world whose trade app has the audit policy p.
func auditWorld(t *testing.T, p reconcile.AuditPolicy) *testworld.World {
	return testworld.New(t, testworld.Options{Callbacks: true, Trade: &testworld.TradeOptions{
		App: func(a *reconcile.AppPolicy) { a.Audit = p },
	}})
}

// userRefund starts a user refund of amount fen that needs the merchant's
// audit and returns payd's row of it.
func userRefund(t *testing.T, w *testworld.World, orderID, no string, amount int64) state.Refund {
	t.Helper()
	res, err := w.Trade.StartUserRefund(tradesim.UserRefund{AppID: testworld.TradeAppID, OrderID: orderID, Amount: amount, NeedAudit: true, Source: 1})
	if err != nil || !res.Accepted {
		t.Fatalf("user refund: %+v %v", res, err)
	}
	for _, r := range w.TradeView(no).Refunds {
		if r.RefundNo == res.RefundID {
			return r
		}
	}
	t.Fatalf("refund %s not adopted", res.RefundID)
	return state.Refund{}
}

func auditCalls(h *state.History) (n int, outcomes []string) {
	for _, a := range h.Attempts {
		if a.API == string(provider.CallAuditRefund) {
			n++
			outcomes = append(outcomes, a.Outcome)
		}
	}
	return n, outcomes
}

// TestTrade_AuditPolicyAgreesExactlyOnce: a user refund under the policy's
// max_amount rule is agreed by payd with one refund_audit_callback; the
// answer is lost (13000 after the effect), so payd reads the refund's audit
// status instead of resending, finds AGREE, and tracks the refund to
// SUCCESS. Douyin saw the decision once.
func TestTrade_AuditPolicyAgreesExactlyOnce(t *testing.T) {
	w := auditWorld(t, reconcile.AuditPolicy{Rules: []reconcile.AuditRule{{MaxAmount: 500, Action: state.AuditAgree}}})
	o := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "ta1", Items: tradeItems()})
	w.Pass()
	rf := userRefund(t, w, o.OrderID, "ta1", 300)
	if rf.AuditPhase != state.AuditWaiting || rf.AuditDeadline == nil || rf.AuditDeadline.Sub(w.Clock.Now().Add(72*time.Hour)).Abs() > time.Second {
		t.Fatalf("adopted refund's audit: %s %v (now %s)", rf.AuditPhase, rf.AuditDeadline, w.Clock.Now())
	}

	w.Trade.SetFaults(tradesim.Faults{Err13000AfterEffect: 1})
	w.Pass()
	w.Trade.SetFaults(tradesim.Faults{})
	h := w.TradeView("ta1")
	if got := h.Refunds[0]; got.AuditPhase != state.AuditSending || got.AuditDecision != state.AuditAgree || got.AuditBy != state.AuditByPolicy {
		t.Fatalf("after the unknown outcome: %s %s %s", got.AuditPhase, got.AuditDecision, got.AuditBy)
	}
	w.Converge(30, 2*time.Second, nil)
	h = w.TradeView("ta1")
	if got := h.Refunds[0]; got.Phase != state.PhaseSucceeded || got.AuditPhase != state.AuditSent {
		t.Fatalf("refund after the audit: %+v", got)
	}
	if n, outcomes := auditCalls(h); n != 1 || outcomes[0] != "unknown" {
		t.Fatalf("audit calls: %d %v", n, outcomes)
	}
	lo := w.TradeLedgerOrder("ta1")
	if len(lo.Refunds) != 1 || lo.Refunds[0].AuditStatus != "AGREE" || lo.Refunds[0].AuditCalls != 1 || lo.Refunds[0].Status != "SUCCESS" {
		t.Fatalf("ledger: %+v", lo.Refunds)
	}
	w.TradeCheckClean()
}

// TestTrade_AuditHeldThenDeniedByPerson: a refund above every rule is held
// by the default; payd plan shows it with its deadline and Douyin's default
// (approval); nothing is sent until a person denies it (payd audit, by
// Douyin's refund_id), which is sent once; the refund ends parked as
// denied, and a second decision is refused with nothing written.
func TestTrade_AuditHeldThenDeniedByPerson(t *testing.T) {
	w := auditWorld(t, reconcile.AuditPolicy{Rules: []reconcile.AuditRule{{MaxAmount: 500, Action: state.AuditAgree}}, Default: state.AuditHold})
	ctx := context.Background()
	o := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "ta2", Items: tradeItems()})
	w.Pass()
	rf := userRefund(t, w, o.OrderID, "ta2", 1000)
	for i := 0; i < 3; i++ {
		w.Pass()
		w.Advance(2 * time.Second)
	}
	if n, _ := auditCalls(w.TradeView("ta2")); n != 0 {
		t.Fatalf("a held refund was decided: %d calls", n)
	}
	rep, err := reconcile.Report(ctx, w.Store, w.Clock.Now(), w.Policy, 100)
	if err != nil {
		t.Fatal(err)
	}
	var shown *reconcile.PlannedAction
	for i, a := range rep.Later {
		if a.Kind == reconcile.KindAwaitAudit {
			shown = &rep.Later[i]
		}
	}
	if shown == nil || !shown.At.Equal(*rf.AuditDeadline) || !strings.Contains(shown.Reason, "Douyin approves the refund") ||
		!strings.Contains(shown.Reason, "payd audit agree|deny "+rf.Key) {
		t.Fatalf("plan does not show the held audit: %+v", rep.Later)
	}

	if _, err := w.Store.DecideAudit(ctx, state.AuditWish{Refund: rf.RefundNo, Decision: state.AuditDeny}, w.Clock.Now()); !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "message: required") {
		t.Fatalf("deny without a message: %v", err)
	}
	if got, err := w.Store.DecideAudit(ctx, state.AuditWish{Refund: rf.RefundNo, Decision: state.AuditDeny, Message: "已发货，请联系客服"}, w.Clock.Now()); err != nil || got.AuditPhase != state.AuditDecided {
		t.Fatalf("deny: %+v %v", got, err)
	}
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("ta2")
	got := h.Refunds[0]
	if got.Phase != state.PhaseParked || got.AuditPhase != state.AuditSent || !strings.Contains(got.ParkReason, "denied at the merchant's audit (by operator)") {
		t.Fatalf("denied refund: %+v", got)
	}
	if n, _ := auditCalls(h); n != 1 {
		t.Fatalf("audit calls: %d", n)
	}
	if _, err := w.Store.DecideAudit(ctx, state.AuditWish{Refund: rf.Key, Decision: state.AuditAgree}, w.Clock.Now()); !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "already sent") {
		t.Fatalf("second decision: %v", err)
	}
	lo := w.TradeLedgerOrder("ta2")
	if lo.Refunds[0].AuditStatus != "DENY" || lo.Refunds[0].AuditCalls != 1 || lo.Refunds[0].Status != "FAIL" {
		t.Fatalf("ledger: %+v", lo.Refunds)
	}
	w.TradeCheckClean()
}

// TestTrade_AuditNobodyDecides: a held refund nobody decides is approved
// by Douyin at its deadline (OVERTIME); payd sends nothing, follows the
// refund to SUCCESS, and refuses a decision after the deadline.
func TestTrade_AuditNobodyDecides(t *testing.T) {
	w := auditWorld(t, reconcile.AuditPolicy{})
	ctx := context.Background()
	o := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "ta3", Items: tradeItems()})
	w.Pass()
	rf := userRefund(t, w, o.OrderID, "ta3", 700)
	w.Pass()
	w.Advance(72*time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("ta3")
	if got := h.Refunds[0]; got.Phase != state.PhaseSucceeded || got.AuditPhase != state.AuditOvertime {
		t.Fatalf("refund after the deadline: %+v", got)
	}
	if n, _ := auditCalls(h); n != 0 {
		t.Fatalf("audit calls: %d", n)
	}
	if _, err := w.Store.DecideAudit(ctx, state.AuditWish{Refund: rf.Key, Decision: state.AuditAgree}, w.Clock.Now()); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("decision after the deadline: %v", err)
	}
	w.TradeCheckClean()
}

// TestTrade_AuditBeforeDouyinHasTheRefund: Douyin creates a user's refund
// only after payd answered pre_create_refund, so the first decision may
// find none: it is kept (decided) and sent again after a back-off (the
// refund's queries in between do not postpone it), not given up.
func TestTrade_AuditBeforeDouyinHasTheRefund(t *testing.T) {
	w := auditWorld(t, reconcile.AuditPolicy{Default: state.AuditAgree})
	ctx := context.Background()
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "ta4", Items: tradeItems()})
	w.Pass()
	// The order's payment callback must be in before the counted pass: a
	// hint during it makes the refund, and so its decision, due at once.
	deadline := time.Now().Add(10 * time.Second)
	for w.Trade.Deliveries().Pending > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := w.Store.AdoptForeignRefund(ctx, state.ForeignRefund{AppID: testworld.TradeAppID, OutOrderNo: "ta4", RefundID: "motb-not-yet",
		Amount: 100, Source: state.SourceUser, NeedAudit: true}, w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.Pass()
	h := w.TradeView("ta4")
	if got := h.Refunds[0]; got.AuditPhase != state.AuditDecided || got.AuditDecision != state.AuditAgree || got.ErrNo == 0 {
		t.Fatalf("after a decision Douyin could not place: %s %s %d %s", got.AuditPhase, got.AuditDecision, got.ErrNo, got.ErrTips)
	}
	if n, outcomes := auditCalls(h); n != 1 || outcomes[0] != "not_found" {
		t.Fatalf("audit calls: %d %v", n, outcomes)
	}
	// The refund's own queries go on meanwhile; they must not push the
	// decision back for ever.
	for i := 0; i < 4; i++ {
		w.Advance(time.Minute)
		w.Pass()
	}
	if n, _ := auditCalls(w.TradeView("ta4")); n < 3 {
		t.Fatalf("the decision was not sent again: %d calls", n)
	}
}

// TestTrade_AuditFulfilledRule: a policy that denies refunds of fulfilled
// orders (fulfilled: true) and agrees to the rest. A user's refund of an
// order the merchant declared fulfilled (payd fulfil) is denied with the
// rule's message; one of an order with only some item orders declared
// fulfilled, or none, is agreed; one of an order whose every item order
// was declared fulfilled is denied. Each decision reaches Douyin once.
func TestTrade_AuditFulfilledRule(t *testing.T) {
	w := auditWorld(t, reconcile.AuditPolicy{
		Rules:   []reconcile.AuditRule{{Fulfilled: true, Action: state.AuditDeny, Message: "已核销，请联系客服"}},
		Default: state.AuditAgree,
	})
	ctx := context.Background()
	orders := map[string]tradesim.SeedOrder{}
	for _, no := range []string{"fw", "fi", "fp", "fn"} {
		orders[no] = w.SeedTrade(tradesim.SeedOrder{OutOrderNo: no, Items: tradeItems()})
	}
	w.Pass()
	declare := func(no, item string) {
		now := w.Clock.Now()
		if _, _, err := w.Store.DeclareFulfilment(ctx, state.FulfilmentWish{AppID: testworld.TradeAppID, OutOrderNo: no, ItemOrderID: item, At: &now}, now); err != nil {
			t.Fatal(err)
		}
	}
	declare("fw", "")                                // the whole order
	declare("fi", orders["fi"].Items[0].ItemOrderID) // every item order
	declare("fi", orders["fi"].Items[1].ItemOrderID)
	declare("fp", orders["fp"].Items[0].ItemOrderID) // one of two
	for no, o := range orders {
		userRefund(t, w, o.OrderID, no, 300)
	}
	w.Converge(30, 2*time.Second, nil)
	for no, want := range map[string]state.AuditDecision{"fw": state.AuditDeny, "fi": state.AuditDeny, "fp": state.AuditAgree, "fn": state.AuditAgree} {
		h := w.TradeView(no)
		got := h.Refunds[0]
		if got.AuditPhase != state.AuditSent || got.AuditDecision != want || got.AuditBy != state.AuditByPolicy {
			t.Errorf("order %s: audit %s %s by %s, want %s by policy", no, got.AuditPhase, got.AuditDecision, got.AuditBy, want)
		}
		if want == state.AuditDeny && (got.AuditMessage != "已核销，请联系客服" || got.Phase != state.PhaseParked) {
			t.Errorf("order %s: denied refund %+v", no, got)
		}
		if want == state.AuditAgree && got.Phase != state.PhaseSucceeded {
			t.Errorf("order %s: agreed refund %+v", no, got)
		}
		if n, _ := auditCalls(h); n != 1 {
			t.Errorf("order %s: %d audit calls", no, n)
		}
		lo := w.TradeLedgerOrder(no)
		if wantStatus := map[state.AuditDecision]string{state.AuditDeny: "DENY", state.AuditAgree: "AGREE"}[want]; lo.Refunds[0].AuditStatus != wantStatus || lo.Refunds[0].AuditCalls != 1 {
			t.Errorf("order %s: ledger %+v", no, lo.Refunds)
		}
	}
	w.TradeCheckClean()
}
