package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// TestTrade_UserRefundAdopted: a buyer's refund reaches payd as a
// pre_create_refund, answered from the database (the row stored first,
// processing under Douyin's refund_id); payd tracks it to SUCCESS,
// reports refund.requested then refund.succeeded, and settles only what
// is left. A FAILed user refund is never retried by payd.
func TestTrade_UserRefundAdopted(t *testing.T) {
	w := testworld.New(t, testworld.Options{Callbacks: true, Trade: &testworld.TradeOptions{}})
	ctx := context.Background()
	o := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "tu1", Items: tradeItems()})
	w.Pass()

	res, err := w.Trade.StartUserRefund(tradesim.UserRefund{AppID: testworld.TradeAppID, OrderID: o.OrderID, Amount: 1000, Source: 1})
	if err != nil || !res.Accepted {
		t.Fatalf("user refund: %+v %v", res, err)
	}
	h := w.TradeView("tu1")
	if len(h.Refunds) != 1 {
		t.Fatalf("refunds after pre_create_refund: %+v", h.Refunds)
	}
	rf := h.Refunds[0]
	if rf.Source != state.SourceUser || rf.RefundNo != res.RefundID || rf.OutRefundNo != res.OutRefundNo || rf.Phase != state.PhaseProcessing {
		t.Fatalf("adopted refund: %+v (answer %+v)", rf, res)
	}
	// A retry of the same refund_id gets the same number and no new row.
	if again, created, err := w.Store.AdoptForeignRefund(ctx, state.ForeignRefund{AppID: testworld.TradeAppID, OutOrderNo: "tu1", RefundID: res.RefundID, Amount: 1000, Source: state.SourceUser}, w.Clock.Now()); err != nil || created || again.OutRefundNo != res.OutRefundNo {
		t.Fatalf("retry: %+v %v", again, err)
	}
	w.Converge(30, 2*time.Second, nil)
	h = w.TradeView("tu1")
	if h.Refunds[0].Phase != state.PhaseSucceeded {
		t.Fatalf("user refund not tracked to success: %+v", h.Refunds[0])
	}
	var types []state.EventType
	for _, e := range h.Events {
		if e.Type == state.EventRefundRequested || e.Type == state.EventRefundSucceeded {
			types = append(types, e.Type)
		}
	}
	if len(types) != 2 || types[0] != state.EventRefundRequested || types[1] != state.EventRefundSucceeded {
		t.Fatalf("events: %v", types)
	}

	w.Advance(8 * 24 * time.Hour)
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.Converge(30, 2*time.Second, nil)
	if h := w.TradeView("tu1"); h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != 2000 {
		t.Fatalf("settlement after a user refund: %+v", h.Settlement)
	}
	lo := w.TradeLedgerOrder("tu1")
	if len(lo.Refunds) != 1 || lo.Refunds[0].Executions != 1 || len(lo.Settlements) != 1 || lo.Settlements[0].Amount != 2000 {
		t.Fatalf("ledger: %+v", lo)
	}
	w.TradeCheckClean()
}

// TestTrade_UserRefundFailsNotRetried: a user refund that FAILs at the
// channel is parked, not sent again under a new number.
func TestTrade_UserRefundFailsNotRetried(t *testing.T) {
	w := testworld.New(t, testworld.Options{Callbacks: true, Trade: &testworld.TradeOptions{
		Sim: func(c *tradesim.Config) { c.Faults.RefundChannelFail = 1 },
	}})
	o := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "tu2", Items: tradeItems()})
	w.Pass()
	if res, err := w.Trade.StartUserRefund(tradesim.UserRefund{AppID: testworld.TradeAppID, OrderID: o.OrderID, Amount: 500, Source: 1}); err != nil || !res.Accepted {
		t.Fatalf("user refund: %+v %v", res, err)
	}
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("tu2")
	if len(h.Refunds) != 1 || h.Refunds[0].Phase != state.PhaseParked || h.Refunds[0].Attempt != 1 {
		t.Fatalf("failed user refund: %+v", h.Refunds)
	}
	for _, a := range h.Attempts {
		if a.API == "create_refund" {
			t.Fatalf("payd sent a refund the user started: %+v", a)
		}
	}
	w.TradeCheckClean()
}
