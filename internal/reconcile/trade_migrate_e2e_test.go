package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// TestTrade_MigrationFromEcpay: an ecpay app is moved to the trade system
// while a refund is in flight. Each order remembers the API it was created
// under; the refund in flight finishes at ecpay; a new refund and the
// settlement of the old order go through the trade API (its settlement
// found by order_id, as for every migrated order); new orders are trade
// orders. Both simulators' ledgers stay clean and nothing runs twice.
func TestTrade_MigrationFromEcpay(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{Migrate: true}})
	ctx := context.Background()
	w.SeedPaid("m1", 3000, 0, w.Sim.Now())
	w.Refund("m1", "m1-r1", 500)
	w.Pass()
	h := w.View("m1")
	if h.Order.API != provider.APIEcpay || len(h.Refunds) != 1 || h.Refunds[0].Phase == state.PhasePending || h.Refunds[0].API != provider.APIEcpay {
		t.Fatalf("before the move: order %+v refunds %+v", h.Order, h.Refunds)
	}
	if h.Refunds[0].Phase != state.PhaseProcessing {
		t.Fatalf("the ecpay refund is not in flight at the move: %+v", h.Refunds[0])
	}

	w.MoveToTrade("m1")
	w.Refund("m1", "m1-r2", 700)
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: testworld.AppID, OutOrderNo: "m1"}, w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.Converge(30, 2*time.Second, func() bool {
		for _, r := range w.View("m1").Refunds {
			if !r.Phase.Final() {
				return false
			}
		}
		return true
	})
	h = w.View("m1")
	byKey := map[string]state.Refund{}
	for _, r := range h.Refunds {
		byKey[r.Key] = r
	}
	if r := byKey["m1-r1"]; r.Phase != state.PhaseSucceeded || r.API != provider.APIEcpay {
		t.Fatalf("refund sent under ecpay: %+v", r)
	}
	if r := byKey["m1-r2"]; r.Phase != state.PhaseSucceeded || r.API != provider.APITrade {
		t.Fatalf("refund declared after the move: %+v", r)
	}
	if h.Order.API != provider.APIEcpay {
		t.Fatalf("the order forgot its API: %q", h.Order.API)
	}
	el := w.LedgerOrder("m1")
	if len(el.Refunds) != 1 || el.Refunds[0].Amount != 500 || el.Refunds[0].Executions != 1 {
		t.Fatalf("ecpay ledger: %+v", el.Refunds)
	}
	tl := w.TradeLedgerOrder("m1")
	if len(tl.Refunds) != 1 || tl.Refunds[0].Amount != 700 || tl.Refunds[0].Executions != 1 {
		t.Fatalf("trade ledger refunds: %+v", tl.Refunds)
	}

	w.Advance(7*24*time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	h = w.View("m1")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.API != provider.APITrade {
		t.Fatalf("settlement of the migrated order: %+v", h.Settlement)
	}
	if tl = w.TradeLedgerOrder("m1"); len(tl.Settlements) != 1 || tl.Settlements[0].Executions != 1 || len(w.LedgerOrder("m1").Settlements) != 0 {
		t.Fatalf("settlements: trade %+v, ecpay %+v", tl.Settlements, w.LedgerOrder("m1").Settlements)
	}
	w.CheckClean()
	w.TradeCheckClean()
}
