package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// fulfilmentWorld is a world whose trade app settles on fulfilment D+7,
// at Douyin and in payd's policy.
func fulfilmentWorld(t *testing.T) *testworld.World {
	return testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{
		Sim: func(c *tradesim.Config) { c.Apps[0].Rule = tradesim.RuleFulfilment },
		App: func(p *reconcile.AppPolicy) { p.Rule, p.CPSFulfilment = reconcile.RuleFulfilment, true },
	}})
}

// passes runs n reconcile passes, a minute apart, for a world that waits
// for something other than time.
func passes(w *testworld.World, n int) {
	for range n {
		w.Pass()
		w.Advance(time.Minute)
	}
}

// settleCalls counts the settle_create calls made for trade order no.
func settleCalls(w *testworld.World, no string) int {
	n := 0
	for _, a := range w.TradeView(no).Attempts {
		if a.API == "settle" {
			n++
		}
	}
	return n
}

// TestTrade_FulfilmentRule: on a fulfilment D+7 app, a settlement waits —
// and `payd plan` says so — until the merchant declares the fulfilment;
// it is then due 7 days after it, and settle_create is sent once, then,
// and never refused with 23107.
func TestTrade_FulfilmentRule(t *testing.T) {
	w := fulfilmentWorld(t)
	ctx := context.Background()
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "f1", Items: tradeItems()})
	w.Pass()
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: testworld.TradeAppID, OutOrderNo: "f1"}, w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.Advance(10 * 24 * time.Hour) // well past payment D+7
	passes(w, 5)
	if n := settleCalls(w, "f1"); n != 0 {
		t.Fatalf("%d settle calls before fulfilment", n)
	}
	waits := w.Waiting("f1")
	if len(waits) != 1 || waits[0].For != reconcile.WaitFulfilment || waits[0].Until != nil {
		t.Fatalf("waits before fulfilment: %+v", waits)
	}
	if want := "waits for fulfilment (settles 7d after it): payd fulfil f1"; waits[0].Reason != want {
		t.Fatalf("reason %q, want %q", waits[0].Reason, want)
	}

	fulfilled := w.Clock.Now().Truncate(time.Microsecond)
	w.FulfilTrade("f1", "")
	passes(w, 5)
	waits = w.Waiting("f1")
	if len(waits) != 1 || waits[0].For != reconcile.WaitPeriod || !waits[0].Until.Equal(fulfilled.Add(7*24*time.Hour)) {
		t.Fatalf("waits after fulfilment: %+v (fulfilled %s)", waits, fulfilled)
	}
	w.Advance(6 * 24 * time.Hour)
	passes(w, 5)
	if n := settleCalls(w, "f1"); n != 0 {
		t.Fatalf("%d settle calls at fulfilment D+6", n)
	}
	w.Advance(24*time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("f1")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != 3000 {
		t.Fatalf("settlement: %+v", h.Settlement)
	}
	if n := settleCalls(w, "f1"); n != 1 {
		t.Fatalf("%d settle calls, want 1", n)
	}
	if lo := w.TradeLedgerOrder("f1"); len(lo.Settlements) != 1 || lo.Settlements[0].Executions != 1 {
		t.Fatalf("ledger settlements: %+v", lo.Settlements)
	}
	if waits := w.Waiting("f1"); len(waits) != 0 {
		t.Fatalf("waits once settled: %+v", waits)
	}
	w.TradeCheckClean()
}

// TestTrade_FulfilmentByItems: an order whose item orders are fulfilled
// one by one is fulfilled when the last one is; settle_batch's settlement
// of it waits for that and settles D+7 after it.
func TestTrade_FulfilmentByItems(t *testing.T) {
	w := fulfilmentWorld(t)
	ctx := context.Background()
	seeded := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "f2", Items: tradeItems()})
	w.Pass()
	w.Advance(7*24*time.Hour + time.Minute)
	if sum, err := w.Batch.RunOnce(ctx); err != nil || sum.Due != 1 {
		t.Fatalf("batch: %+v %v", sum, err)
	}
	w.FulfilTrade("f2", seeded.Items[0].ItemOrderID)
	passes(w, 5)
	if waits := w.Waiting("f2"); len(waits) != 1 || waits[0].For != reconcile.WaitFulfilment {
		t.Fatalf("waits with one item of two fulfilled: %+v", waits)
	}
	w.Advance(24 * time.Hour)
	last := w.Clock.Now().Truncate(time.Microsecond)
	w.FulfilTrade("f2", seeded.Items[1].ItemOrderID)
	passes(w, 5)
	if waits := w.Waiting("f2"); len(waits) != 1 || !waits[0].Until.Equal(last.Add(7*24*time.Hour)) {
		t.Fatalf("waits with both items fulfilled: %+v", waits)
	}
	w.Advance(7*24*time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	if h := w.TradeView("f2"); h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || settleCalls(w, "f2") != 1 {
		t.Fatalf("settlement: %+v, %d calls", h.Settlement, settleCalls(w, "f2"))
	}
	w.TradeCheckClean()
}

// TestTrade_CPSOrderFulfilmentD3: on a payment D+7 app, a CPS order
// settles on fulfilment D+3, as Douyin's rule for CPS orders says.
func TestTrade_CPSOrderFulfilmentD3(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{
		App: func(p *reconcile.AppPolicy) { p.CPSFulfilment = true },
	}})
	ctx := context.Background()
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "c1", Items: tradeItems(), CPSCommission: 300})
	w.Pass()
	if o := w.TradeView("c1").Order; !o.CPSKnown || o.CPSShare != 300 {
		t.Fatalf("CPS share: %+v", o)
	}
	w.Advance(7*24*time.Hour + time.Minute)
	if _, err := w.Batch.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	passes(w, 5)
	if waits := w.Waiting("c1"); len(waits) != 1 || waits[0].For != reconcile.WaitFulfilment || settleCalls(w, "c1") != 0 {
		t.Fatalf("CPS order before fulfilment: waits %+v, %d settle calls", waits, settleCalls(w, "c1"))
	}
	fulfilled := w.Clock.Now().Truncate(time.Microsecond)
	w.FulfilTrade("c1", "")
	passes(w, 5)
	if waits := w.Waiting("c1"); len(waits) != 1 || !waits[0].Until.Equal(fulfilled.Add(3*24*time.Hour)) {
		t.Fatalf("CPS order after fulfilment: %+v", waits)
	}
	w.Advance(3*24*time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("c1")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != 2700 || settleCalls(w, "c1") != 1 {
		t.Fatalf("CPS settlement: %+v, %d calls", h.Settlement, settleCalls(w, "c1"))
	}
	w.TradeCheckClean()
}

// TestTrade_ItemSettlements: an order declared settled item by item gets
// one settle_create per item order (item_order_id sent), each due 7 days
// after its own fulfilment; a whole-order settlement beside them is
// refused at declare time, nothing written.
func TestTrade_ItemSettlements(t *testing.T) {
	w := fulfilmentWorld(t)
	ctx := context.Background()
	seeded := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "f3", Items: tradeItems()})
	w.Pass()
	a, b := seeded.Items[0].ItemOrderID, seeded.Items[1].ItemOrderID
	for _, item := range []string{a, b} {
		st, ch, err := w.Store.DeclareSettlementChange(ctx, state.SettlementWish{AppID: testworld.TradeAppID, OutOrderNo: "f3", ItemOrderID: item}, w.Clock.Now())
		if err != nil || ch != state.Created || st.OutSettleNo != state.ItemSettleNo(testworld.TradeAppID, "f3", item, 1) {
			t.Fatalf("declare item %s: %+v %s %v", item, st, ch, err)
		}
	}
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: testworld.TradeAppID, OutOrderNo: "f3"}, w.Clock.Now()); err == nil ||
		!strings.Contains(err.Error(), "item_order_id: order f3 is settled item by item (2 item settlements)") {
		t.Fatalf("whole-order settlement beside item ones: %v", err)
	}
	w.FulfilTrade("f3", a)
	passes(w, 3)
	waits := w.Waiting("f3")
	if len(waits) != 2 || waits[0].ItemOrderID != a || waits[0].For != reconcile.WaitPeriod || waits[1].ItemOrderID != b || waits[1].For != reconcile.WaitFulfilment {
		t.Fatalf("waits: %+v", waits)
	}
	if !strings.HasSuffix(waits[1].Reason, "payd fulfil f3 --item "+b) {
		t.Fatalf("reason of item %s: %q", b, waits[1].Reason)
	}
	w.Advance(2 * 24 * time.Hour)
	w.FulfilTrade("f3", b)
	w.Advance(5*24*time.Hour + time.Minute) // item a: D+7 passed; item b: D+5
	passes(w, 5)
	lo := w.TradeLedgerOrder("f3")
	if len(lo.Settlements) != 1 || lo.Settlements[0].ItemOrderID != a || lo.Settlements[0].Amount != 1000 {
		t.Fatalf("ledger after item %s is due: %+v", a, lo.Settlements)
	}
	w.Advance(2 * 24 * time.Hour)
	w.Converge(30, 2*time.Second, nil)
	lo = w.TradeLedgerOrder("f3")
	if len(lo.Settlements) != 2 || lo.Settlements[1].ItemOrderID != b || lo.Settlements[1].Amount != 2000 {
		t.Fatalf("ledger: %+v", lo.Settlements)
	}
	h := w.TradeView("f3")
	if h.Settlement != nil || len(h.ItemSettlements) != 2 {
		t.Fatalf("settlements: %+v %+v", h.Settlement, h.ItemSettlements)
	}
	for _, st := range h.ItemSettlements {
		if st.Phase != state.PhaseSucceeded || st.Attempt != 1 {
			t.Fatalf("item settlement: %+v", st)
		}
	}
	if n := settleCalls(w, "f3"); n != 2 {
		t.Fatalf("%d settle calls, want 2", n)
	}
	w.TradeCheckClean()
}

// TestTrade_ItemSettlementOnPaymentApp: a payment-rule app's orders are
// settled whole; an item settlement is parked with the way out, no call.
func TestTrade_ItemSettlementOnPaymentApp(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{}})
	ctx := context.Background()
	seeded := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "p1", Items: tradeItems()})
	w.Pass()
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: testworld.TradeAppID, OutOrderNo: "p1", ItemOrderID: seeded.Items[0].ItemOrderID}, w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.Advance(8 * 24 * time.Hour)
	passes(w, 3)
	h := w.TradeView("p1")
	if len(h.ItemSettlements) != 1 || h.ItemSettlements[0].Phase != state.PhaseParked ||
		!strings.Contains(h.ItemSettlements[0].ParkReason, "Douyin settles whole orders only: cancel it") || settleCalls(w, "p1") != 0 {
		t.Fatalf("item settlement on a payment app: %+v, %d calls", h.ItemSettlements, settleCalls(w, "p1"))
	}
}
