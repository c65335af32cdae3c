package tradesim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

func twoItems() []SeedItem {
	return []SeedItem{{SKUID: "a", Amount: 1000}, {SKUID: "b", Amount: 2000}}
}

func TestSim_SeededOrderWithItems(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", PayChannel: trade.ChannelAlipay, Discount: 100, Items: twoItems()})
	got, err := b.client.QueryOrder(context.Background(), trade.OrderQueryRequest{AppID: app, OutOrderNo: "po-1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.OrderID) != o.OrderID || got.Paid() != 2900 || got.PayChannel != trade.ChannelAlipay || len(got.ItemOrderList) != 2 ||
		string(got.ItemOrderList[1].ItemOrderID) != o.Items[1].ItemOrderID || got.PayStatus != trade.PaySuccess {
		t.Fatalf("order %+v", got)
	}
	_, err = b.client.QueryOrder(context.Background(), trade.OrderQueryRequest{AppID: app, OutOrderNo: "po-none"})
	wantErrNo(t, err, trade.ErrNoOrderNotFound)
}

func testRefundCap(t *testing.T, channel, limit int) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", PayChannel: channel, Items: oneItem(1000)})
	for i := 0; i < limit; i++ {
		if _, err := b.refund(t, o.OrderID, fmt.Sprintf("pr-%d", i), trade.ItemAmount{ItemOrderID: o.Items[0].ItemOrderID, RefundAmount: 1}); err != nil {
			t.Fatalf("refund %d: %v", i, err)
		}
	}
	_, err := b.refund(t, o.OrderID, "pr-over", trade.ItemAmount{ItemOrderID: o.Items[0].ItemOrderID, RefundAmount: 1})
	wantErrNo(t, err, trade.ErrNoOrderState)
}

func TestSim_RefundCapWeChat50(t *testing.T) { testRefundCap(t, trade.ChannelWeChat, MaxRefundsWeChat) }

func TestSim_RefundCapAlipay300(t *testing.T) {
	testRefundCap(t, trade.ChannelAlipay, MaxRefundsAlipay)
}

func TestSim_RefundItemRemainders(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: twoItems()})
	i1, i2 := o.Items[0].ItemOrderID, o.Items[1].ItemOrderID
	if _, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: i1, RefundAmount: 700}); err != nil {
		t.Fatal(err)
	}
	_, err := b.refund(t, o.OrderID, "pr-2", trade.ItemAmount{ItemOrderID: i1, RefundAmount: 301})
	wantErrNo(t, err, trade.ErrNoParam)
	if _, err := b.refund(t, o.OrderID, "pr-3", trade.ItemAmount{ItemOrderID: i1, RefundAmount: 300}, trade.ItemAmount{ItemOrderID: i2, RefundAmount: 2000}); err != nil {
		t.Fatalf("exactly what is left: %v", err)
	}
	_, err = b.client.CreateRefund(context.Background(), trade.RefundCreateRequest{AppID: app, OrderID: o.OrderID, OutRefundNo: "pr-4", RefundTotalAmount: 3000,
		RefundAll: true, RefundReason: []trade.RefundReason{{Code: 101, Text: "x"}}})
	wantErrNo(t, err, trade.ErrNoParam) // refund_all only while there is no refund
	b.checkClean(t)
}

func TestSim_RefundAllFirstRefund(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: twoItems()})
	_, err := b.client.CreateRefund(context.Background(), trade.RefundCreateRequest{AppID: app, OrderID: o.OrderID, OutRefundNo: "pr-1", RefundTotalAmount: 3000,
		RefundAll: true, RefundReason: []trade.RefundReason{{Code: 101, Text: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.refund(t, o.OrderID, "pr-2", trade.ItemAmount{ItemOrderID: o.Items[0].ItemOrderID, RefundAmount: 1})
	wantErrNo(t, err, trade.ErrNoParam)
}

func TestSim_RefundWithinOneYear(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", PaidAgo: "8761h", Items: oneItem(100)})
	_, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: o.Items[0].ItemOrderID, RefundAmount: 1})
	wantErrNo(t, err, trade.ErrNoOrderState)
	young := b.seed(t, SeedOrder{OutOrderNo: "po-2", PaidAgo: "8759h", Items: oneItem(100)})
	if _, err := b.refund(t, young.OrderID, "pr-2", trade.ItemAmount{ItemOrderID: young.Items[0].ItemOrderID, RefundAmount: 1}); err != nil {
		t.Fatalf("within a year: %v", err)
	}
}

func refundStatus(t *testing.T, b *bundle, no string) trade.Refund {
	t.Helper()
	l, err := b.client.QueryRefund(context.Background(), trade.RefundQueryRequest{AppID: app, OutRefundNo: no})
	if err != nil || len(l.RefundList) != 1 {
		t.Fatalf("query %s: %+v %v", no, l, err)
	}
	return l.RefundList[0]
}

func TestSim_RefundProcessingThenResult(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
	it := o.Items[0].ItemOrderID
	if _, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: it, RefundAmount: 100}); err != nil {
		t.Fatal(err)
	}
	if s := refundStatus(t, b, "pr-1").RefundStatus; s != trade.RefundProcessing {
		t.Fatalf("at once: %s, want PROCESSING", s)
	}
	b.sim.Advance(DefaultProcessingDelay)
	if r := refundStatus(t, b, "pr-1"); r.RefundStatus != trade.RefundSuccess || r.RefundAt == 0 {
		t.Fatalf("later: %+v, want SUCCESS", r)
	}
	b.sim.SetFaults(Faults{RefundChannelFail: 1})
	if _, err := b.refund(t, o.OrderID, "pr-2", trade.ItemAmount{ItemOrderID: it, RefundAmount: 100}); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(DefaultProcessingDelay)
	if r := refundStatus(t, b, "pr-2"); r.RefundStatus != trade.RefundFail || r.Message == "" {
		t.Fatalf("channel failure: %+v, want FAIL with a message", r)
	}
	waitFor(t, "two refund callbacks", func() bool { return len(b.inbox.callbacks(trade.CallbackRefund)) == 2 })
	b.checkClean(t)
}

func TestSim_RefundNumberNeverExecutedTwice(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
	it := o.Items[0].ItemOrderID
	first, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: it, RefundAmount: 100})
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: it, RefundAmount: 100})
	if err != nil || again.RefundID != first.RefundID {
		t.Fatalf("resend: %+v %v, want the same refund", again, err)
	}
	b.sim.Advance(time.Minute)
	if _, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: it, RefundAmount: 100}); err != nil {
		t.Fatal(err)
	}
	l := b.sim.Ledger()
	if n := len(l.Orders[0].Refunds); n != 1 || l.Orders[0].Refunds[0].Executions != 1 {
		t.Fatalf("ledger %+v, want one refund executed once", l.Orders[0].Refunds)
	}
	b.checkClean(t)
}
