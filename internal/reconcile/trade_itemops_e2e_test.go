package reconcile_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// refusingSettle refuses, for good (23113), settle_create of the item
// orders in refuse; everything else goes to Douyin.
type refusingSettle struct {
	provider.Provider
	mu     sync.Mutex
	refuse map[string]bool
}

func (p *refusingSettle) CreateSettle(ctx context.Context, req provider.SettleRequest) (*provider.SettleInfo, error) {
	p.mu.Lock()
	refused := p.refuse[req.ItemOrderID]
	p.mu.Unlock()
	if refused {
		return nil, &provider.Error{Class: provider.Refused, ErrNo: 23113, Tips: "settle not allowed"}
	}
	return p.Provider.CreateSettle(ctx, req)
}

func (p *refusingSettle) set(item string, refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse[item] = refuse
}

// itemSettlement is the settlement of item order item of trade order no.
func itemSettlement(t *testing.T, w *testworld.World, no, item string) state.Settlement {
	t.Helper()
	for _, st := range w.TradeView(no).ItemSettlements {
		if st.ItemOrderID == item {
			return st
		}
	}
	t.Fatalf("order %s has no settlement of item order %s", no, item)
	return state.Settlement{}
}

// TestTrade_ItemSettlementRetryAndCancel: on a fulfilment app an order is
// settled item by item. Douyin refuses item a's settle_create for good:
// it parks. The operator's retry and cancel must name the item order —
// without one, or with one that is not the order's, they are refused
// naming the order's item settlements; an item that succeeded is not
// cancelled, nor one whose attempt is at Douyin. Retried once the cause is
// gone, item a settles on attempt 2 (its own number). On a second order,
// an item settlement withdrawn by cancel (settlement.cancelled with its
// item order) lets the order be settled whole. Douyin's ledger: each
// settlement executed once, exact amounts.
func TestTrade_ItemSettlementRetryAndCancel(t *testing.T) {
	refusing := &refusingSettle{refuse: map[string]bool{}}
	w := testworld.New(t, testworld.Options{
		Trade: &testworld.TradeOptions{
			Sim: func(c *tradesim.Config) { c.Apps[0].Rule = tradesim.RuleFulfilment },
			App: func(p *reconcile.AppPolicy) { p.Rule, p.AutoSettle = reconcile.RuleFulfilment, false },
		},
		Wrap: func(p provider.Provider) provider.Provider { refusing.Provider = p; return refusing },
	})
	ctx := context.Background()
	app := testworld.TradeAppID
	seeded := w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "i1", Items: tradeItems()})
	w.Pass()
	a, b := seeded.Items[0].ItemOrderID, seeded.Items[1].ItemOrderID
	for _, item := range []string{a, b} {
		if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: app, OutOrderNo: "i1", ItemOrderID: item}, w.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		w.FulfilTrade("i1", item)
	}
	refusing.set(a, true)
	w.Advance(7*24*time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	if st := itemSettlement(t, w, "i1", a); st.Phase != state.PhaseParked || st.ErrNo != 23113 {
		t.Fatalf("item a after 23113: %+v", st)
	}
	if st := itemSettlement(t, w, "i1", b); st.Phase != state.PhaseSucceeded || st.Amount != 2000 {
		t.Fatalf("item b: %+v", st)
	}
	now := w.Clock.Now()
	items := "its item settlements: " + a + " (parked), " + b + " (succeeded)"
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"retry without the item", func() error { _, err := w.Store.RetryParkedSettlement(ctx, app, "i1", now); return err },
			"retry settlement of order i1: order i1 is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); " + items},
		{"cancel without the item", func() error { _, err := w.Store.CancelSettlement(ctx, app, "i1", "x", now); return err },
			"cancel settlement of order i1: order i1 is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); " + items},
		{"retry of another order's item", func() error {
			_, err := w.Store.RetryParkedItemSettlement(ctx, app, "i1", "it-nope", now)
			return err
		}, "retry settlement of item order it-nope of order i1: item order it-nope is not one of the settlements of order i1; " + items},
		{"retry of a succeeded item", func() error { _, err := w.Store.RetryParkedItemSettlement(ctx, app, "i1", b, now); return err },
			"retry settlement of item order " + b + " of order i1: settlement of item order " + b + " of order i1 has succeeded: only a parked settlement can be retried"},
		{"cancel of a succeeded item", func() error { _, err := w.Store.CancelItemSettlement(ctx, app, "i1", b, "x", now); return err },
			"cancel settlement of item order " + b + " of order i1: settlement of item order " + b + " of order i1 has already succeeded: nothing to cancel"},
	} {
		if err := tc.err(); err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v\nwant %s", tc.name, err, tc.want)
		}
	}
	if st := itemSettlement(t, w, "i1", a); st.Phase != state.PhaseParked || st.Attempt != 1 {
		t.Fatalf("a refused operation changed item a: %+v", st)
	}

	// Douyin allows it now: retried, attempt 2 with its own number.
	refusing.set(a, false)
	st, err := w.Store.RetryParkedItemSettlement(ctx, app, "i1", a, w.Clock.Now())
	if err != nil || st.Phase != state.PhasePending || st.Attempt != 2 || st.OutSettleNo != state.ItemSettleNo(app, "i1", a, 2) {
		t.Fatalf("retry item a: %+v %v", st, err)
	}
	w.Pass()
	if st := itemSettlement(t, w, "i1", a); st.Phase != state.PhaseProcessing {
		t.Fatalf("item a after one pass: %+v", st)
	}
	_, err = w.Store.CancelItemSettlement(ctx, app, "i1", a, "x", w.Clock.Now())
	if want := "cancel settlement of item order " + a + " of order i1: settlement of item order " + a + " of order i1 cannot be cancelled: attempt 2 is processing at Douyin and money may move; wait until payd status shows it succeeded or parked"; err == nil || err.Error() != want {
		t.Fatalf("cancel at Douyin: %v\nwant %s", err, want)
	}
	w.Converge(30, 2*time.Second, nil)
	if st := itemSettlement(t, w, "i1", a); st.Phase != state.PhaseSucceeded || st.Amount != 1000 || st.Attempt != 2 {
		t.Fatalf("item a after the retry: %+v", st)
	}
	lo := w.TradeLedgerOrder("i1")
	if len(lo.Settlements) != 2 {
		t.Fatalf("ledger i1: %+v", lo.Settlements)
	}
	for _, s := range lo.Settlements {
		if s.Executions != 1 || s.Status != "SUCCESS" {
			t.Fatalf("ledger i1: %+v", lo.Settlements)
		}
	}

	// A second order: its one item settlement is withdrawn, then the order
	// is settled whole.
	seeded = w.SeedTrade(tradesim.SeedOrder{OutOrderNo: "i2", Items: tradeItems()})
	w.Pass()
	c := seeded.Items[0].ItemOrderID
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: app, OutOrderNo: "i2", ItemOrderID: c}, w.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	st, err = w.Store.CancelItemSettlement(ctx, app, "i2", c, "settle the order whole", w.Clock.Now())
	if err != nil || st.Phase != state.PhaseCancelled || st.ParkReason != "cancelled: settle the order whole" {
		t.Fatalf("cancel item c: %+v %v", st, err)
	}
	var cancelled struct {
		ItemOrderID string `json:"item_order_id"`
		Reason      string `json:"reason"`
	}
	for _, e := range w.TradeView("i2").Events {
		if e.Type == state.EventSettlementCancelled {
			if err := json.Unmarshal([]byte(e.Payload), &cancelled); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cancelled.ItemOrderID != c || cancelled.Reason != "settle the order whole" {
		t.Fatalf("settlement.cancelled event: %+v", cancelled)
	}
	// Cancelling it again is a no-op; the order has no whole settlement yet.
	if again, err := w.Store.CancelItemSettlement(ctx, app, "i2", c, "again", w.Clock.Now()); err != nil || again.ParkReason != "cancelled: settle the order whole" {
		t.Fatalf("second cancel: %+v %v", again, err)
	}
	if _, _, err := w.Store.DeclareSettlement(ctx, state.SettlementWish{AppID: app, OutOrderNo: "i2"}, w.Clock.Now()); err != nil {
		t.Fatalf("whole-order settlement after the item one was cancelled: %v", err)
	}
	w.FulfilTrade("i2", "")
	w.Advance(7*24*time.Hour + time.Minute)
	w.Converge(30, 2*time.Second, nil)
	h := w.TradeView("i2")
	if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != 3000 {
		t.Fatalf("whole settlement of i2: %+v", h.Settlement)
	}
	if lo := w.TradeLedgerOrder("i2"); len(lo.Settlements) != 1 || lo.Settlements[0].ItemOrderID != "" || lo.Settlements[0].Amount != 3000 {
		t.Fatalf("ledger i2: %+v", lo.Settlements)
	}
	if n := strings.Count(strings.Join(eventNames(w, "i2"), ","), string(state.EventSettlementCancelled)); n != 1 {
		t.Fatalf("%d settlement.cancelled events of i2, want 1", n)
	}
	w.TradeCheckClean()
}

// eventNames lists the types of trade order no's events, oldest first.
func eventNames(w *testworld.World, no string) []string {
	var out []string
	for _, e := range w.TradeView(no).Events {
		out = append(out, string(e.Type))
	}
	return out
}
