package tradesim

import (
	"context"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
)

const day = 24 * time.Hour

func settleStatus(t *testing.T, b *bundle, no string) trade.Settle {
	t.Helper()
	l, _, err := b.client.QuerySettle(context.Background(), trade.SettleQueryRequest{AppID: app, OutSettleNo: no})
	if err != nil || len(l) != 1 {
		t.Fatalf("query %s: %+v %v", no, l, err)
	}
	return l[0]
}

func TestSim_SettlePaymentRule(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].Rule, c.Apps[0].SettleDays = RulePayment, 7 })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: twoItems()})
	_, err := b.settle(t, "po-1", "ps-1", "")
	wantErrNo(t, err, trade.ErrNoSettleNotDone)
	b.sim.Advance(7 * day)
	_, err = b.settle(t, "po-1", "ps-2", o.Items[0].ItemOrderID)
	wantErrNo(t, err, trade.ErrNoSettleNotAllowed) // payment D+N: whole orders only
	if _, err := b.settle(t, "po-1", "ps-3", ""); err != nil {
		t.Fatalf("due: %v", err)
	}
	b.sim.Advance(DefaultProcessingDelay)
	if s := settleStatus(t, b, "ps-3"); s.SettleStatus != trade.SettleSuccess || s.SettleAmount != 3000 {
		t.Fatalf("%+v", s)
	}
	l, _, err := b.client.QuerySettle(context.Background(), trade.SettleQueryRequest{AppID: app, OutSettleNo: "ps-none"})
	if err != nil || len(l) != 0 {
		t.Fatalf("no match: %v %v, want an empty array", l, err)
	}
	b.checkClean(t)
}

func TestSim_SettleFulfilmentRule(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].Rule, c.Apps[0].SettleDays = RuleFulfilment, 7 })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: twoItems()})
	b.sim.Advance(30 * day)
	_, err := b.settle(t, "po-1", "ps-1", "")
	wantErrNo(t, err, trade.ErrNoSettleNotDone)
	b.control(t, "fulfil", map[string]any{"order_id": o.OrderID, "item_order_id": o.Items[0].ItemOrderID}, nil)
	b.sim.Advance(7 * day)
	_, err = b.settle(t, "po-1", "ps-2", "")
	wantErrNo(t, err, trade.ErrNoSettleNotDone) // item 2 is not fulfilled
	if _, err := b.settle(t, "po-1", "ps-3", o.Items[0].ItemOrderID); err != nil {
		t.Fatalf("item fulfilled 7 days ago: %v", err)
	}
	_, err = b.settle(t, "po-1", "ps-4", o.Items[1].ItemOrderID)
	wantErrNo(t, err, trade.ErrNoSettleNotDone)
}

func TestSim_SettleCPSFulfilmentD3(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].Rule, c.Apps[0].SettleDays = RulePayment, 1 })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", CPSCommission: 300, Items: oneItem(1000)})
	b.sim.Advance(2 * day)
	_, err := b.settle(t, "po-1", "ps-1", "")
	wantErrNo(t, err, trade.ErrNoSettleNotDone) // CPS: not by payment D+1
	b.control(t, "fulfil", map[string]any{"order_id": o.OrderID}, nil)
	b.sim.Advance(3*day - time.Second)
	_, err = b.settle(t, "po-1", "ps-2", "")
	wantErrNo(t, err, trade.ErrNoSettleNotDone)
	b.sim.Advance(time.Second)
	if _, err := b.settle(t, "po-1", "ps-3", ""); err != nil {
		t.Fatalf("fulfilled D+3: %v", err)
	}
	b.sim.Advance(DefaultProcessingDelay)
	if s := settleStatus(t, b, "ps-3"); s.SettleAmount != 700 || s.Commission != 300 {
		t.Fatalf("%+v, want 700 settled after 300 commission", s)
	}
}

func TestSim_SettleWholeVsItemExclusive(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].Rule, c.Apps[0].SettleDays = RuleFulfilment, 1 })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: twoItems()})
	b.control(t, "fulfil", map[string]any{"order_id": o.OrderID}, nil)
	b.sim.Advance(day)
	if _, err := b.settle(t, "po-1", "ps-1", o.Items[0].ItemOrderID); err != nil {
		t.Fatal(err)
	}
	_, err := b.settle(t, "po-1", "ps-2", "")
	wantErrNo(t, err, trade.ErrNoSettleWholeBar)
	_, err = b.settle(t, "po-1", "ps-3", o.Items[0].ItemOrderID)
	wantErrNo(t, err, trade.ErrNoSettleNoMoney)
	_, err = b.settle(t, "po-1", "ps-4", "motb-unknown")
	wantErrNo(t, err, trade.ErrNoItemUnknown)
	other := b.seed(t, SeedOrder{OutOrderNo: "po-2", Items: oneItem(10)})
	b.control(t, "fulfil", map[string]any{"order_id": other.OrderID}, nil)
	b.sim.Advance(day)
	if _, err := b.settle(t, "po-2", "ps-5", ""); err != nil {
		t.Fatal(err)
	}
	_, err = b.settle(t, "po-2", "ps-6", other.Items[0].ItemOrderID)
	wantErrNo(t, err, trade.ErrNoSettleWholeBar)
}

func TestSim_Settle23111NumberExists(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].SettleDays = 1 })
	b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	b.seed(t, SeedOrder{OutOrderNo: "po-2", Items: oneItem(100)})
	b.sim.Advance(day)
	if _, err := b.settle(t, "po-1", "ps-1", ""); err != nil {
		t.Fatal(err)
	}
	_, err := b.settle(t, "po-2", "ps-1", "")
	wantErrNo(t, err, trade.ErrNoSettleNoExists)
	if trade.Classify(err) != douyin.ClassPermanent || trade.LogID(err) == "" {
		t.Errorf("class %v log_id %q", trade.Classify(err), trade.LogID(err))
	}
}

func TestSim_Settle23112NothingLeft(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].SettleDays = 1 })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	if _, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: o.Items[0].ItemOrderID, RefundAmount: 100}); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(day)
	_, err := b.settle(t, "po-1", "ps-1", "")
	wantErrNo(t, err, trade.ErrNoSettleNoMoney)
	_, err = b.settle(t, "po-none", "ps-2", "")
	wantErrNo(t, err, trade.ErrNoSettleNoOrder)
	b.seed(t, SeedOrder{OutOrderNo: "po-3", PayStatus: trade.PayProcess, Items: oneItem(100)})
	_, err = b.settle(t, "po-3", "ps-3", "")
	wantErrNo(t, err, trade.ErrNoSettleNotPaid)
}

func TestSim_Settle23117AutoSettle(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].AutoSettle, c.Apps[0].SettleDays = true, 7 })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(500)})
	_, err := b.settle(t, "po-1", "ps-1", "")
	wantErrNo(t, err, trade.ErrNoSettleAuto)
	b.sim.Advance(7 * day)
	b.sim.Advance(DefaultProcessingDelay)
	l, _, err := b.client.QuerySettle(context.Background(), trade.SettleQueryRequest{AppID: app, OrderID: o.OrderID})
	if err != nil || len(l) != 1 || l[0].SettleStatus != trade.SettleSuccess || l[0].OutSettleNo != l[0].SettleID {
		t.Fatalf("auto settlement %+v %v", l, err)
	}
	waitFor(t, "the auto-settle callback", func() bool { return len(b.inbox.callbacks(trade.CallbackSettle)) == 1 })
	if cb := b.inbox.callbacks(trade.CallbackSettle)[0]; !cb.Settle.IsAutoSettle {
		t.Fatalf("callback %+v", cb.Settle)
	}
}
