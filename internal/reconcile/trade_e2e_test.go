package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

func tradeItems() []tradesim.SeedItem {
	return []tradesim.SeedItem{{SKUID: "sku-a", Amount: 1000}, {SKUID: "sku-b", Amount: 2000}}
}

// TestTrade_RefundsAndSettleBesideEcpay runs an ecpay app and a trade app
// through one reconciler: the trade order is queried (ids and item orders
// learned), refunded in part (spread over its items), then settled by
// settle_batch at D+7 for what is left; the ecpay order beside it is
// settled as before. Both ledgers stay clean.
func TestTrade_RefundsAndSettleBesideEcpay(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{Adapter: trade.AdapterOptions{EntryPath: "pages/order"}}})
	ctx := context.Background()
	w.SeedPaid("e1", 1000, 0, w.Sim.Now())
	seeded := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "t1", Items: tradeItems()})
	w.Pass()
	o := w.TradeView("t1").Order
	if o.Status != state.OrderSuccess || o.TotalAmount != 3000 || o.DouyinOrderID != seeded.OrderID || o.SettleAfter == nil {
		t.Fatalf("trade order after the first pass: %+v", o)
	}
	w.RefundTrade("t1", "t1-part", 1500)
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("t1")
	if len(h.Refunds) != 1 || h.Refunds[0].Phase != state.PhaseSucceeded || h.Refunds[0].RefundNo == "" {
		t.Fatalf("refund: %+v", h.Refunds)
	}
	lo := w.TradeLedgerOrder("t1")
	if len(lo.Refunds) != 1 || lo.Refunds[0].Amount != 1500 || lo.Refunds[0].Executions != 1 {
		t.Fatalf("ledger refunds: %+v", lo.Refunds)
	}

	w.Advance(7*24*time.Hour + time.Minute)
	sum, err := w.Batch.RunOnce(ctx)
	if err != nil || sum.Due != 2 {
		t.Fatalf("batch at D+7: %+v %v", sum, err)
	}
	w.Converge(30, 2*time.Second, nil)
	h = w.TradeView("t1")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != 1500 {
		t.Fatalf("trade settlement: %+v", h.Settlement)
	}
	lo = w.TradeLedgerOrder("t1")
	if len(lo.Settlements) != 1 || lo.Settlements[0].Amount != 1500 || lo.Settlements[0].Executions != 1 {
		t.Fatalf("ledger settlements: %+v", lo.Settlements)
	}
	if e := w.View("e1"); e.Settlement == nil || e.Settlement.Phase != state.PhaseSucceeded {
		t.Fatalf("ecpay settlement: %+v", e.Settlement)
	}
	w.CheckClean()
	w.TradeCheckClean()
}

// TestTrade_RefundAllThenNothingLeft refunds a whole trade order
// (refund_all, the order's first refund) and then finds nothing left to
// settle: the settlement completes without a settle_create.
func TestTrade_RefundAllThenNothingLeft(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{}})
	ctx := context.Background()
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "t2", Items: tradeItems()})
	w.Pass()
	w.RefundTrade("t2", "t2-all", 3000)
	w.Converge(30, 2*time.Second, nil)
	w.Advance(8 * 24 * time.Hour)
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.Converge(30, 2*time.Second, nil)
	lo := w.TradeLedgerOrder("t2")
	if len(lo.Refunds) != 1 || lo.Refunds[0].Amount != 3000 || len(lo.Settlements) != 0 {
		t.Fatalf("ledger: %+v", lo)
	}
	for _, a := range w.TradeView("t2").Attempts {
		if a.API == "settle" {
			t.Fatalf("settle_create sent for a fully refunded order: %+v", a)
		}
	}
	w.TradeCheckClean()
}

// TestTrade_SettledByDouyin: an app Douyin settles itself gets no
// settlement from settle_batch, and Douyin's own settlement happens at D+7.
func TestTrade_SettledByDouyin(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{
		Sim: func(c *tradesim.Config) { c.Apps[0].AutoSettle = true },
		App: func(p *reconcile.AppPolicy) { p.AutoSettle = false },
	}})
	ctx := context.Background()
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "t3", Items: tradeItems()})
	w.Pass()
	w.Advance(8 * 24 * time.Hour)
	if sum, err := w.Batch.RunOnce(ctx); err != nil || sum.Due != 0 {
		t.Fatalf("batch for an app Douyin settles: %+v %v", sum, err)
	}
	w.Pass()
	if h := w.TradeView("t3"); h.Settlement != nil {
		t.Fatalf("payd made a settlement: %+v", h.Settlement)
	}
	if lo := w.TradeLedgerOrder("t3"); len(lo.Settlements) != 1 || lo.Settlements[0].Amount != 3000 {
		t.Fatalf("Douyin's own settlement: %+v", lo.Settlements)
	}
	w.TradeCheckClean()
}
