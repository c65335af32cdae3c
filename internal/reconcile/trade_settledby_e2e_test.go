package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// delivered waits (on the wall clock: delivery is real HTTP) until the
// trade simulator has no callback on its way.
func delivered(t *testing.T, w *testworld.World) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); w.Trade.Deliveries().Pending > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("callbacks not delivered: %+v", w.Trade.Deliveries())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventTypes lists the types of the events of trade order no.
func eventTypes(w *testworld.World, no string) map[state.EventType]int {
	out := map[state.EventType]int{}
	for _, e := range w.TradeView(no).Events {
		out[e.Type]++
	}
	return out
}

// TestTrade_23117MarksSettledByDouyin: payd thinks it settles an app that
// Douyin settles itself. Its one settle_create is answered 23117: the app
// is marked settled by Douyin (stored), the settlement is observed —
// found by the order at settle_query once Douyin settles it, adopted
// (settlement.adopted) and reported (settlement.succeeded). The next
// order of the app gets an observed settlement from settle_batch and no
// settle_create at all.
func TestTrade_23117MarksSettledByDouyin(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{
		Sim: func(c *tradesim.Config) { c.Apps[0].AutoSettle = true },
	}})
	ctx := context.Background()
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "a1", Items: tradeItems()})
	w.Pass()
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: testworld.TradeAppID, OutOrderNo: "a1"}, w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.Advance(7*24*time.Hour - time.Hour) // due at payd's T+7 less an hour: not yet
	w.Pass()
	// payd's settle_create is sent at D+7, Douyin's settlement made then too.
	w.Advance(time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("a1")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Source != state.SettleByDouyin || h.Settlement.SettleNo == "" || h.Settlement.Amount != 3000 {
		t.Fatalf("settlement: %+v", h.Settlement)
	}
	if n := settleCalls(w, "a1"); n != 1 {
		t.Fatalf("%d settle_create calls, want the one answered 23117", n)
	}
	var errNo int
	for _, a := range h.Attempts {
		if a.API == "settle" {
			errNo = a.ErrNo
		}
	}
	if errNo != 23117 {
		t.Fatalf("settle_create answered %d, want 23117", errNo)
	}
	if ev := eventTypes(w, "a1"); ev[state.EventSettlementAdopted] != 1 || ev[state.EventSettlementSucceeded] != 1 {
		t.Fatalf("events: %v", ev)
	}
	apps, err := w.Store.AppsSettledByDouyin(ctx)
	if err != nil || len(apps) != 1 || apps[0].AppID != testworld.TradeAppID || apps[0].SettledByDouyinAt == nil {
		t.Fatalf("apps settled by Douyin: %+v %v", apps, err)
	}

	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "a2", Items: tradeItems()})
	w.Pass()
	w.Advance(7*24*time.Hour + time.Minute)
	sum, err := w.Batch.RunOnce(ctx)
	if err != nil || sum.Due != 0 || sum.ObservedDue != 1 {
		t.Fatalf("batch after 23117: %+v %v", sum, err)
	}
	w.Converge(30, 2*time.Second, nil)
	h = w.TradeView("a2")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Source != state.SettleByDouyin || settleCalls(w, "a2") != 0 {
		t.Fatalf("second order: %+v, %d settle calls", h.Settlement, settleCalls(w, "a2"))
	}
	for _, no := range []string{"a1", "a2"} {
		if lo := w.TradeLedgerOrder(no); len(lo.Settlements) != 1 || lo.Settlements[0].Executions != 1 {
			t.Fatalf("ledger %s: %+v", no, lo.Settlements)
		}
	}
	w.TradeCheckClean()
}

// TestTrade_AutoSettleAdoptedFromCallback: for an app settled_by douyin,
// Douyin's auto-settlement is adopted from its settle callback (no
// settle_batch, no settle_create): a row observed, confirmed by
// settle_query, reported.
func TestTrade_AutoSettleAdoptedFromCallback(t *testing.T) {
	w := testworld.New(t, testworld.Options{Callbacks: true, Trade: &testworld.TradeOptions{
		Sim: func(c *tradesim.Config) { c.Apps[0].AutoSettle = true },
		App: func(p *reconcile.AppPolicy) { p.AutoSettle, p.SettledByDouyin = false, true },
	}})
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "b1", Items: tradeItems()})
	w.Pass()
	w.Advance(7*24*time.Hour + time.Minute)
	w.TradeLedgerOrder("b1") // Douyin settles (processing) …
	w.Advance(time.Minute)
	w.TradeLedgerOrder("b1") // … and calls back with SUCCESS
	delivered(t, w)
	if h := w.TradeView("b1"); h.Settlement == nil || h.Settlement.Source != state.SettleByDouyin || h.Settlement.Phase != state.PhaseProcessing {
		t.Fatalf("after the settle callback: %+v", h.Settlement)
	}
	w.Converge(30, 2*time.Second, func() bool {
		h := w.TradeView("b1")
		return h.Settlement != nil && h.Settlement.Phase == state.PhaseSucceeded
	})
	h := w.TradeView("b1")
	if h.Settlement.Source != state.SettleByDouyin || h.Settlement.SettleNo == "" || settleCalls(w, "b1") != 0 {
		t.Fatalf("adopted settlement: %+v, %d settle calls", h.Settlement, settleCalls(w, "b1"))
	}
	if ev := eventTypes(w, "b1"); ev[state.EventSettlementAdopted] != 1 || ev[state.EventSettlementSucceeded] != 1 {
		t.Fatalf("events: %v", ev)
	}
	w.TradeCheckClean()
}
