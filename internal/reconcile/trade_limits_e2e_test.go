package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// declareTrade declares a refund of the trade app and returns the error.
func declareTrade(w *testworld.World, no, key string, amount int64) error {
	_, _, err := w.Store.DeclareRefund(context.Background(), state.RefundWish{AppID: testworld.TradeAppID, OutOrderNo: no, Key: key, Amount: amount, Reason: "e2e"}, w.Clock.Now())
	return err
}

func createRefundCalls(h *state.History) int {
	n := 0
	for _, a := range h.Attempts {
		if a.API == "create_refund" {
			n++
		}
	}
	return n
}

// TestTrade_RefundCountLimit: 51 refunds declared before payd knows the
// order (WeChat): order_query brings the pay channel, 50 are sent and the
// 51st is parked at plan time with the reason, never sent; once the order
// is known a 52nd is refused at declare time with nothing written. On an
// Alipay order the 51st goes through.
func TestTrade_RefundCountLimit(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{}})
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "tl1", Items: tradeItems()})
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "tl2", PayChannel: 2, Items: tradeItems()})
	for i := 1; i <= 51; i++ {
		for _, no := range []string{"tl1", "tl2"} {
			if err := declareTrade(w, no, fmt.Sprintf("%s-r%02d", no, i), 10); err != nil {
				t.Fatalf("declare %d before the order is known: %v", i, err)
			}
		}
	}
	w.Converge(60, 2*time.Second, nil)
	h := w.TradeView("tl1")
	if h.Order.PayChannel != 1 {
		t.Fatalf("pay channel not stored: %d", h.Order.PayChannel)
	}
	last := h.Refunds[len(h.Refunds)-1]
	if last.Key != "tl1-r51" || last.Phase != state.PhaseParked || !strings.Contains(last.ParkReason, "has 50 refunds at Douyin: at most 50 per order") {
		t.Fatalf("51st refund: %+v", last)
	}
	if n := createRefundCalls(h); n != 50 {
		t.Fatalf("create_refund calls: %d, want 50", n)
	}
	if lo := w.TradeLedgerOrder("tl1"); len(lo.Refunds) != 50 {
		t.Fatalf("ledger refunds: %d", len(lo.Refunds))
	}
	before := len(h.Refunds)
	err := declareTrade(w, "tl1", "tl1-r52", 10)
	if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "at most 50 per order (300 when paid with Alipay) (nothing declared)") {
		t.Fatalf("52nd declared: %v", err)
	}
	if got := len(w.TradeView("tl1").Refunds); got != before {
		t.Fatalf("a refused declaration wrote a refund: %d rows, want %d", got, before)
	}
	h2 := w.TradeView("tl2")
	for _, r := range h2.Refunds {
		if r.Phase != state.PhaseSucceeded {
			t.Fatalf("Alipay refund %s: %s %s", r.Key, r.Phase, r.ParkReason)
		}
	}
	if len(h2.Refunds) != 51 {
		t.Fatalf("Alipay refunds: %d", len(h2.Refunds))
	}
	w.TradeCheckClean()
}

// TestTrade_RefundYearLimit: a refund declared before payd knows the order
// is parked at plan time once order_query says it was paid more than a year
// ago; for an order payd knows, the fake clock passing the year makes a
// declaration fail with nothing written.
func TestTrade_RefundYearLimit(t *testing.T) {
	w := testworld.New(t, testworld.Options{Trade: &testworld.TradeOptions{}})
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "ty1", PaidAgo: "8800h", Items: tradeItems()})
	w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "ty2", PaidAgo: "8700h", Items: tradeItems()})
	if err := declareTrade(w, "ty1", "ty1-old", 100); err != nil {
		t.Fatal(err)
	}
	w.Converge(20, 2*time.Second, nil)
	h := w.TradeView("ty1")
	if r := h.Refunds[0]; r.Phase != state.PhaseParked || !strings.Contains(r.ParkReason, "more than a year ago: Douyin takes no refund of it") {
		t.Fatalf("refund of a year-old order: %+v", r)
	}
	if createRefundCalls(h) != 0 {
		t.Fatal("a refund of a year-old order was sent")
	}
	if err := declareTrade(w, "ty2", "ty2-ok", 100); err != nil {
		t.Fatalf("declare within the year: %v", err)
	}
	w.Converge(20, 2*time.Second, nil)
	w.Advance(90 * time.Hour) // 8790h: past 365 days
	err := declareTrade(w, "ty2", "ty2-late", 100)
	if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "more than a year ago") {
		t.Fatalf("declare after the year: %v", err)
	}
	if n := len(w.TradeView("ty2").Refunds); n != 1 {
		t.Fatalf("refunds of ty2: %d", n)
	}
	w.TradeCheckClean()
}
