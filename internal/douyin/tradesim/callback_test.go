package tradesim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

func TestSim_CallbacksSignedAndRetried(t *testing.T) {
	b := setup(t, nil)
	b.inbox.setFailFirst(2)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	waitFor(t, "the payment callback", func() bool { return len(b.inbox.callbacks(trade.CallbackPayment)) == 1 })
	cb := b.inbox.callbacks(trade.CallbackPayment)[0]
	if cb.Payment.OrderID != trade.Str(o.OrderID) || cb.SubjectNo != "po-1" || cb.Version != "3.0" {
		t.Fatalf("payment callback %+v", cb.Payment)
	}
	b.inbox.mu.Lock()
	attempts, bad := b.inbox.attempts, b.inbox.bad
	b.inbox.mu.Unlock()
	if attempts != 3 || bad != 0 {
		t.Fatalf("%d attempts (%d badly signed), want 2 refused and the third acked", attempts, bad)
	}
	// The inbox has the callback before the simulator has read its
	// answer, so the delivery is counted acked a moment later.
	waitFor(t, "the delivery acked", func() bool { return b.sim.Deliveries().Acked == 1 })
	if d := b.sim.Deliveries(); d.Acked != 1 || d.Pending != 0 || d.GivenUp != 0 {
		t.Fatalf("deliveries %+v", d)
	}
}

func TestSim_CallbacksGivenUpAfterSchedule(t *testing.T) {
	b := setup(t, nil)
	b.inbox.setFailFirst(100)
	b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	waitFor(t, "the callback given up", func() bool { return b.sim.Deliveries().GivenUp == 1 })
	b.inbox.mu.Lock()
	defer b.inbox.mu.Unlock()
	if b.inbox.attempts != 4 {
		t.Fatalf("%d attempts, want 1 and 3 retries", b.inbox.attempts)
	}
}

func TestSim_CallbacksDroppedAndDuplicated(t *testing.T) {
	b := setup(t, func(c *Config) { c.Faults = Faults{CallbackDrop: 1} })
	b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	b.sim.SetFaults(Faults{CallbackDuplicate: 1})
	b.seed(t, SeedOrder{OutOrderNo: "po-2", Items: oneItem(100)})
	waitFor(t, "two copies", func() bool { return len(b.inbox.callbacks(trade.CallbackPayment)) == 2 })
	for _, cb := range b.inbox.callbacks(trade.CallbackPayment) {
		if cb.SubjectNo != "po-2" {
			t.Fatalf("a dropped callback arrived: %s", cb.SubjectNo)
		}
	}
}

func TestSim_PreCreateRefundAnswerRequired(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
	ask := func() UserRefundResult {
		var res UserRefundResult
		b.control(t, "user_refund", UserRefund{AppID: app, OrderID: o.OrderID, Amount: 100}, &res)
		return res
	}
	b.inbox.setAnswer(func(*trade.Callback) []byte { return []byte(`{"err_no":0,"err_tips":"success"}`) }) // no out_refund_no
	if res := ask(); !res.Stuck || res.Accepted {
		t.Fatalf("no valid answer: %+v, want stuck", res)
	}
	b.inbox.setAnswer(func(*trade.Callback) []byte { return trade.PreCreateRefundRefusal(1, "订单状态不允许退款") })
	if res := ask(); res.Accepted || res.ErrNo != 1 {
		t.Fatalf("refusal: %+v", res)
	}
	var seen []string
	b.inbox.setAnswer(func(cb *trade.Callback) []byte {
		seen = append(seen, cb.SubjectNo)
		return trade.PreCreateRefundAnswer("pr-user-1", trade.EntrySchema{Path: "pages/order", Params: "{}"})
	})
	res := ask()
	if !res.Accepted || res.OutRefundNo != "pr-user-1" || len(seen) != 1 || seen[0] != res.RefundID {
		t.Fatalf("accepted: %+v (seen %v)", res, seen)
	}
	if r := refundStatus(t, b, "pr-user-1"); string(r.RefundID) != res.RefundID || r.RefundSource != 1 {
		t.Fatalf("refund %+v", r)
	}
	if l := b.sim.Ledger(); len(l.Orders[0].Refunds) != 1 {
		t.Fatalf("refunds %+v, want only the accepted one", l.Orders[0].Refunds)
	}
}

func userRefundWithAudit(t *testing.T, b *bundle, orderID, no string) string {
	t.Helper()
	b.inbox.setAnswer(func(*trade.Callback) []byte {
		return trade.PreCreateRefundAnswer(no, trade.EntrySchema{Path: "p", Params: "{}"})
	})
	var res UserRefundResult
	b.control(t, "user_refund", UserRefund{AppID: app, OrderID: orderID, Amount: 100, NeedAudit: true}, &res)
	if !res.Accepted {
		t.Fatalf("user refund %+v", res)
	}
	return res.RefundID
}

func TestSim_AuditDefaultApproval72h(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
	userRefundWithAudit(t, b, o.OrderID, "pr-u1")
	r := refundStatus(t, b, "pr-u1")
	if r.MerchantAuditDetail.AuditStatus != trade.AuditToAudit || r.MerchantAuditDetail.NeedRefundAudit != 1 {
		t.Fatalf("audit %+v", r.MerchantAuditDetail)
	}
	b.sim.Advance(DefaultAuditWindow - time.Second)
	if s := refundStatus(t, b, "pr-u1").MerchantAuditDetail.AuditStatus; s != trade.AuditToAudit {
		t.Fatalf("before the deadline: %s", s)
	}
	b.sim.Advance(time.Second + DefaultProcessingDelay)
	r = refundStatus(t, b, "pr-u1")
	if r.MerchantAuditDetail.AuditStatus != trade.AuditOvertime || r.RefundStatus != trade.RefundSuccess {
		t.Fatalf("after 72 h: %s %s, want OVERTIME and SUCCESS", r.MerchantAuditDetail.AuditStatus, r.RefundStatus)
	}
}

func TestSim_AuditDecisions(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
	ctx := context.Background()
	deny := userRefundWithAudit(t, b, o.OrderID, "pr-u1")
	if err := b.client.AuditRefund(ctx, trade.RefundAuditRequest{AppID: app, RefundID: deny, RefundAuditStatus: trade.AuditRefuseCode, DenyMessage: "已发货"}); err != nil {
		t.Fatal(err)
	}
	if r := refundStatus(t, b, "pr-u1"); r.RefundStatus != trade.RefundFail || r.MerchantAuditDetail.AuditStatus != trade.AuditDeny {
		t.Fatalf("refused: %+v", r)
	}
	err := b.client.AuditRefund(ctx, trade.RefundAuditRequest{AppID: app, RefundID: deny, RefundAuditStatus: trade.AuditAgreeCode})
	wantErrNo(t, err, trade.ErrNoOrderState)
	if v := b.sim.Check(); len(v) != 1 || !strings.Contains(v[0], "audit decision sent again 1 times") {
		t.Fatalf("a decision sent again is not flagged: %v", v)
	}
	agree := userRefundWithAudit(t, b, o.OrderID, "pr-u2")
	if err := b.client.AuditRefund(ctx, trade.RefundAuditRequest{AppID: app, RefundID: agree, RefundAuditStatus: trade.AuditAgreeCode}); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(DefaultProcessingDelay)
	if r := refundStatus(t, b, "pr-u2"); r.RefundStatus != trade.RefundSuccess || r.MerchantAuditDetail.AuditStatus != trade.AuditAgree {
		t.Fatalf("agreed: %+v", r)
	}
	if v := b.sim.Check(); len(v) != 1 {
		t.Fatalf("violations: %v", v)
	}
}

func TestSim_CallbacksDelayed(t *testing.T) {
	b := setup(t, func(c *Config) {
		c.Faults = Faults{CallbackDelay: 1}
		c.CallbackDelayMax = 400 * time.Millisecond
	})
	start := time.Now()
	b.seed(t, SeedOrder{OutOrderNo: "pd-1", Items: oneItem(100)})
	if n := len(b.inbox.callbacks(trade.CallbackPayment)); n != 0 {
		t.Fatalf("%d callbacks at once, want the delay first", n)
	}
	waitFor(t, "the delayed callback", func() bool { return len(b.inbox.callbacks(trade.CallbackPayment)) == 1 })
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("a delayed callback arrived after %s, before half the delay", took)
	}
}
