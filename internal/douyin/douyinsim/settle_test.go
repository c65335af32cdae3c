package douyinsim

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// TestServer_SettlePeriodPerApp: an app's own settle period wins over the
// simulator's: at T+1 the app with a one-day period settles, the other
// (T+7 by default) still FAILs for the period.
func TestServer_SettlePeriodPerApp(t *testing.T) {
	cfg := testConfig()
	cfg.Apps[1].SettlePeriod = 24 * time.Hour
	b := setup(t, cfg)
	paid := b.sim.Now()
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000, PaidAt: paid})
	b.seed(t, SeedOrder{AppID: otherApp, OutOrderNo: "o1", TotalAmount: 1000, PaidAt: paid})
	b.sim.Advance(24*time.Hour + time.Minute)
	other := newClient(t, b.url, 2*time.Second, douyin.App{AppID: otherApp, Salt: "other-salt", Token: "other-token"})
	ctx := context.Background()
	for _, c := range []*douyin.Client{b.client, other} {
		if _, err := c.Settle(ctx, douyin.SettleRequest{OutOrderNo: "o1", OutSettleNo: "o1-s-1", SettleDesc: "test settle"}); err != nil {
			t.Fatal(err)
		}
	}
	b.sim.Advance(cfg.ProcessingDelay)
	if s := b.querySettle(t, "o1-s-1"); s.SettleStatus != douyin.StatusFail || !strings.Contains(s.Msg, "settle period") {
		t.Errorf("%s at T+1: %+v, want FAIL for the default T+7 period", testApp, s)
	}
	s, err := other.QuerySettle(ctx, douyin.QuerySettleRequest{OutSettleNo: "o1-s-1"})
	if err != nil || s.SettleStatus != douyin.StatusSuccess || s.SettleAmount != 1000 {
		t.Errorf("%s at T+1: %+v, %v; want SUCCESS of 1000 with its one-day period", otherApp, s, err)
	}
	wantNoViolations(t, b.sim)
	cfg.Apps[0].SettlePeriod = -time.Hour
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "apps[0].settle_period") {
		t.Errorf("New with a negative app settle period: %v", err)
	}
}

func TestServer_SettlePeriod(t *testing.T) {
	cfg := testConfig()
	b := setup(t, cfg)
	paid := b.sim.Now()
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000, CPSShare: 50, PaidAt: paid})
	if _, err := b.refund("o1", "o1-r1-1", 200); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(cfg.ProcessingDelay)

	t.Run("before T+7: accepted, then FAIL with a message", func(t *testing.T) {
		resp, err := b.settle("o1", "o1-s-1")
		if err != nil || resp.SettleNo == "" {
			t.Fatalf("Settle = %+v, %v; want accepted", resp, err)
		}
		if s := b.querySettle(t, "o1-s-1"); s.SettleStatus != douyin.StatusProcessing {
			t.Fatalf("settle_info = %+v, want PROCESSING", s)
		}
		b.sim.Advance(cfg.ProcessingDelay)
		s := b.querySettle(t, "o1-s-1")
		if s.SettleStatus != douyin.StatusFail || !strings.Contains(s.Msg, "settle period") {
			t.Fatalf("settle_info = %+v, want FAIL about the settle period", s)
		}
		_, err = b.settle("o1", "o1-s-1")
		wantErrNo(t, err, douyin.ErrNoBadParam)
	})
	t.Run("after T+7: the amount less refunds and the CPS share", func(t *testing.T) {
		unsettled, err := b.client.UnsettleAmount(context.Background(), douyin.UnsettleAmountRequest{OutOrderNo: "o1"})
		if err != nil || unsettled.UnsettleAmount != 750 {
			t.Fatalf("UnsettleAmount = %+v, %v; want 750", unsettled, err)
		}
		b.sim.Advance(paid.Add(DefaultSettlePeriod).Sub(b.sim.Now()))
		if _, err := b.settle("o1", "o1-s-2"); err != nil {
			t.Fatal(err)
		}
		b.sim.Advance(cfg.ProcessingDelay)
		s := b.querySettle(t, "o1-s-2")
		if s.SettleStatus != douyin.StatusSuccess || s.SettleAmount != 750 || s.Commission != 50 || s.SettledAt == 0 {
			t.Fatalf("settle_info = %+v, want SUCCESS of 750 with commission 50", s)
		}
		unsettled, err = b.client.UnsettleAmount(context.Background(), douyin.UnsettleAmountRequest{OutOrderNo: "o1"})
		if err != nil || unsettled.UnsettleAmount != 0 {
			t.Fatalf("UnsettleAmount after settling = %+v, %v; want 0", unsettled, err)
		}
	})
	l := b.ledgerOrder(t, "o1")
	if l.RefundedAmount != 200 || l.SettledAmount != 750 || len(l.Settlements) != 2 || l.Settlements[1].Executions != 1 || l.Settlements[0].Executions != 0 {
		t.Fatalf("ledger %+v", l)
	}
	if bal := b.sim.Ledger().Balances[testApp]; bal != 750 {
		t.Errorf("withdrawable balance %d, want 750", bal)
	}
	wantNoViolations(t, b.sim)
}

func TestServer_SettleRules(t *testing.T) {
	cfg := testConfig()
	cfg.Start = testStart.Add(30 * 24 * time.Hour)
	b := setup(t, cfg)
	longAgo := testStart
	b.seed(t, SeedOrder{OutOrderNo: "unpaid", TotalAmount: 1000, Status: douyin.StatusProcessing})
	b.seed(t, SeedOrder{OutOrderNo: "seq", TotalAmount: 1000, PaidAt: longAgo})
	b.seed(t, SeedOrder{OutOrderNo: "recv", TotalAmount: 1000, PaidAt: longAgo})
	b.seed(t, SeedOrder{OutOrderNo: "many", TotalAmount: 1000})
	b.seed(t, SeedOrder{OutOrderNo: "idem", TotalAmount: 1000, PaidAt: longAgo})

	t.Run("an unpaid order is accepted, then FAILs", func(t *testing.T) {
		if _, err := b.settle("unpaid", "unpaid-s-1"); err != nil {
			t.Fatal(err)
		}
		b.sim.Advance(cfg.ProcessingDelay)
		if s := b.querySettle(t, "unpaid-s-1"); s.SettleStatus != douyin.StatusFail || !strings.Contains(s.Msg, "SUCCESS") {
			t.Fatalf("settle_info = %+v, want FAIL about the order status", s)
		}
	})
	t.Run("one at a time, none after success", func(t *testing.T) {
		if _, err := b.settle("seq", "seq-s-1"); err != nil {
			t.Fatal(err)
		}
		_, err := b.settle("seq", "seq-s-2")
		wantErrNo(t, err, douyin.ErrNoBadParam)
		_, err = b.refund("seq", "seq-r-1", 10)
		wantErrNo(t, err, douyin.ErrNoBadParam) // settlement in progress
		b.sim.Advance(cfg.ProcessingDelay)
		_, err = b.settle("seq", "seq-s-3")
		wantErrNo(t, err, douyin.ErrNoBadParam)
		if !strings.Contains(err.Error(), "already settled") {
			t.Errorf("err %v, want already settled", err)
		}
	})
	t.Run("receivers share the amount", func(t *testing.T) {
		if _, err := b.settle("recv", "recv-s-1", douyin.Receiver{MerchantUID: "p1", Amount: 200}, douyin.Receiver{MerchantUID: "p2", Amount: 100}); err != nil {
			t.Fatal(err)
		}
		b.sim.Advance(cfg.ProcessingDelay)
		s := b.querySettle(t, "recv-s-1")
		if s.SettleStatus != douyin.StatusSuccess || s.SettleAmount != 1000 || !strings.Contains(s.SettleDetail, `"p1"`) {
			t.Fatalf("settle_info = %+v", s)
		}
	})
	// seq settled 1000, recv settled 1000 of which 300 went to receivers.
	if bal := b.sim.Ledger().Balances[testApp]; bal != 1700 {
		t.Errorf("withdrawable balance %d, want 1700", bal)
	}
	t.Run("at most 50 settle requests per order", func(t *testing.T) {
		for i := 1; i <= 50; i++ { // "many" was paid now: each FAILs for the period
			if _, err := b.settle("many", "many-s-"+strconv.Itoa(i)); err != nil {
				t.Fatalf("settle %d: %v", i, err)
			}
			b.sim.Advance(cfg.ProcessingDelay)
		}
		b.sim.Advance(DefaultSettlePeriod)
		_, err := b.settle("many", "many-s-51")
		wantErrNo(t, err, douyin.ErrNoBadParam)
		if !strings.Contains(err.Error(), "50") {
			t.Errorf("err %v, want the 50 limit", err)
		}
	})
	t.Run("a repeated number answers the first result and ignores new parameters", func(t *testing.T) {
		first, err := b.settle("idem", "idem-s-1")
		if err != nil {
			t.Fatal(err)
		}
		// While PROCESSING, and again after SUCCESS, with receivers the
		// first request did not name.
		for _, when := range []string{"processing", "succeeded"} {
			again, err := b.settle("idem", "idem-s-1", douyin.Receiver{MerchantUID: "p9", Amount: 300})
			if err != nil || again.SettleNo != first.SettleNo {
				t.Fatalf("%s: repeat = %+v, %v; want the first settle_no %s", when, again, err, first.SettleNo)
			}
			b.sim.Advance(cfg.ProcessingDelay)
		}
		s := b.querySettle(t, "idem-s-1")
		if s.SettleStatus != douyin.StatusSuccess || s.SettleAmount != 1000 || strings.Contains(s.SettleDetail, "p9") {
			t.Fatalf("settle_info = %+v, want SUCCESS of 1000 with the first request's (no) receivers", s)
		}
		l := b.ledgerOrder(t, "idem")
		if l.SettledAmount != 1000 || len(l.Settlements) != 1 || l.Settlements[0].Executions != 1 {
			t.Fatalf("ledger %+v, want one settlement executed once", l)
		}
	})
	wantNoViolations(t, b.sim)
}

func TestServer_RefundAfterSettlement(t *testing.T) {
	cfg := testConfig()
	cfg.Start = testStart.Add(30 * 24 * time.Hour)
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000, PaidAt: testStart})
	b.seed(t, SeedOrder{OutOrderNo: "o2", TotalAmount: 1000, PaidAt: testStart})

	_, err := b.client.CreateRefund(context.Background(), douyin.CreateRefundRequest{OutOrderNo: "o2", OutRefundNo: "o2-r-1",
		Reason: "x", RefundAmount: 10, AllSettle: true})
	wantErrNo(t, err, douyin.ErrNoBadParam) // all_settle on an order not settled

	if _, err := b.settle("o1", "o1-s-1", douyin.Receiver{MerchantUID: "p1", Amount: 300}); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(cfg.ProcessingDelay)
	// The balance is now 700: the merchant's part of o1.

	_, err = b.refund("o1", "o1-r-1", 100)
	wantErrNo(t, err, douyin.ErrNoBadParam)
	if !strings.Contains(err.Error(), "all_settle") {
		t.Errorf("err %v, want all_settle required", err)
	}
	allSettle := func(no string, amount int64) error {
		_, err := b.client.CreateRefund(context.Background(), douyin.CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: no,
			Reason: "x", RefundAmount: amount, AllSettle: true})
		return err
	}
	if err := allSettle("o1-r-2", 800); err != nil {
		t.Fatalf("refund with all_settle: %v", err)
	}
	b.sim.Advance(cfg.ProcessingDelay)
	info := b.queryRefund(t, "o1-r-2")
	if info.RefundStatus != douyin.StatusFail || !info.IsAllSettled || !strings.Contains(info.Msg, "balance") {
		t.Fatalf("refundInfo = %+v, want FAIL for the balance", info)
	}
	if err := allSettle("o1-r-3", 500); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(cfg.ProcessingDelay)
	if info := b.queryRefund(t, "o1-r-3"); info.RefundStatus != douyin.StatusSuccess {
		t.Fatalf("refundInfo = %+v, want SUCCESS", info)
	}
	l := b.sim.Ledger()
	if l.Balances[testApp] != 200 {
		t.Errorf("balance %d, want 200", l.Balances[testApp])
	}
	wantNoViolations(t, b.sim)
}
