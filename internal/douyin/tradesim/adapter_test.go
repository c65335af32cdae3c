package tradesim

import (
	"context"
	"testing"

	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/provider"
)

// TestSim_Adapter drives the provider seam against the simulator: query,
// refund (refund_all, then a spread partial one), settle, and the refusal
// reasons the reconciler acts on.
func TestSim_Adapter(t *testing.T) {
	b := setup(t, func(c *Config) { c.Apps[0].SettleDays = 1 })
	ctx := context.Background()
	a := trade.NewAdapter(b.client, trade.AdapterOptions{EntryPath: "pages/order"})
	b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: twoItems()})
	b.seed(t, SeedOrder{OutOrderNo: "po-2", CPSCommission: 50, Items: twoItems()})
	ref := provider.OrderRef{AppID: app, OutOrderNo: "po-1"}
	info, err := a.QueryOrder(ctx, ref)
	if err != nil || info.Status != provider.OrderSuccess || info.TotalAmount != 3000 || len(info.Items) != 2 || !info.CPSKnown || info.CPSShare != 0 {
		t.Fatalf("query: %+v %v", info, err)
	}
	if cps, _ := a.QueryOrder(ctx, provider.OrderRef{AppID: app, OutOrderNo: "po-2"}); !cps.CPSKnown || cps.CPSShare != 50 {
		t.Fatalf("cps: %+v", cps)
	}
	r, err := a.CreateRefund(ctx, provider.RefundRequest{Order: ref, OutRefundNo: "pr-1-1", Amount: 1500, Reason: "用户申请"})
	if err != nil {
		t.Fatalf("partial refund: %v", err)
	}
	b.sim.Advance(DefaultProcessingDelay)
	got, err := a.QueryRefund(ctx, ref, provider.ItemRef{No: "pr-1-1", DouyinID: r.DouyinRefundID})
	if err != nil || got.Status != provider.StatusSuccess || got.Amount != 1500 {
		t.Fatalf("query refund: %+v %v", got, err)
	}
	_, err = a.CreateRefund(ctx, provider.RefundRequest{Order: ref, OutRefundNo: "pr-2-1", Amount: 1501})
	if c, reason := provider.Outcome(err); c != provider.Refused || reason != provider.NothingLeft {
		t.Fatalf("over the rest: %v %v (%v)", c, reason, err)
	}
	whole := provider.OrderRef{AppID: app, OutOrderNo: "po-2"}
	if _, err := a.CreateRefund(ctx, provider.RefundRequest{Order: whole, OutRefundNo: "pr-3-1", Amount: 3000}); err != nil {
		t.Fatalf("refund_all: %v", err)
	}
	b.sim.Advance(day)
	if _, err := a.CreateSettle(ctx, provider.SettleRequest{Order: ref, OutSettleNo: "ps-1-1"}); err != nil {
		t.Fatalf("settle: %v", err)
	}
	_, err = a.CreateSettle(ctx, provider.SettleRequest{Order: ref, OutSettleNo: "ps-1-1"})
	if c, reason := provider.Outcome(err); c != provider.Refused || reason != provider.Exists {
		t.Fatalf("same number: %v %v", c, reason)
	}
	b.sim.Advance(DefaultProcessingDelay)
	st, err := a.QuerySettle(ctx, ref, provider.ItemRef{No: "ps-1-1"})
	if err != nil || st.Status != provider.StatusSuccess || st.Amount != 1500 {
		t.Fatalf("query settle: %+v %v", st, err)
	}
	if _, err := a.QuerySettle(ctx, ref, provider.ItemRef{No: "ps-9-1"}); provider.OutcomeName(err) != "not_found" {
		t.Fatalf("unknown settlement: %v", err)
	}
	b.checkClean(t)
}
