package tradesim

import (
	"context"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
)

// TestSim_FaultsAfterEffect: each write fault answers badly after the
// write took effect; the client calls it Unknown and the query finds it.
func TestSim_FaultsAfterEffect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     Faults
		errNo int
	}{
		{"13000", Faults{Err13000AfterEffect: 1}, trade.ErrNoInternal},
		{"23000", Faults{Err23000AfterEffect: 1}, trade.ErrNoSystem},
		{"http 5xx", Faults{HTTP5xxAfterEffect: 1}, -1},
		{"hang", Faults{HangAfterEffect: 1}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, func(c *Config) { c.Apps[0].SettleDays = 1 })
			o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
			b.sim.Advance(day)
			b.sim.SetFaults(tc.f)
			_, rerr := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: o.Items[0].ItemOrderID, RefundAmount: 100})
			_, serr := b.settle(t, "po-1", "ps-1", "")
			for _, err := range []error{rerr, serr} {
				if trade.Classify(err) != douyin.ClassUnknown || trade.ErrNo(err) != tc.errNo {
					t.Fatalf("%v: class %v, want unknown with err_no %d", err, trade.Classify(err), tc.errNo)
				}
			}
			b.sim.SetFaults(Faults{})
			b.sim.Advance(DefaultProcessingDelay)
			if r := refundStatus(t, b, "pr-1"); r.RefundStatus != trade.RefundSuccess {
				t.Errorf("refund after the fault: %s, want it done", r.RefundStatus)
			}
			if s := settleStatus(t, b, "ps-1"); s.SettleStatus != trade.SettleSuccess {
				t.Errorf("settlement after the fault: %s, want it done", s.SettleStatus)
			}
			// Resending the refund unchanged does not execute it again.
			if _, err := b.refund(t, o.OrderID, "pr-1", trade.ItemAmount{ItemOrderID: o.Items[0].ItemOrderID, RefundAmount: 100}); err != nil {
				t.Fatal(err)
			}
			b.checkClean(t)
		})
	}
}

func TestSim_FaultsSpareReads(t *testing.T) {
	b := setup(t, func(c *Config) { c.Faults = Faults{Err13000AfterEffect: 1, HTTP5xxAfterEffect: 1} })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	if _, err := b.client.QueryOrder(context.Background(), trade.OrderQueryRequest{AppID: app, OrderID: o.OrderID}); err != nil {
		t.Fatalf("a read got a write fault: %v", err)
	}
}

// TestSim_CheckCatchesDoubleExecution: two attempts of one wish that both
// succeed, as a client resending under a new number after an unknown
// outcome would cause, are a violation.
func TestSim_CheckCatchesDoubleExecution(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
	it := o.Items[0].ItemOrderID
	for _, no := range []string{"pr-k1-1", "pr-k1-2"} {
		if _, err := b.refund(t, o.OrderID, no, trade.ItemAmount{ItemOrderID: it, RefundAmount: 100}); err != nil {
			t.Fatal(err)
		}
	}
	b.sim.Advance(DefaultProcessingDelay)
	v := b.sim.Check()
	if len(v) != 1 {
		t.Fatalf("violations %v, want the double refund", v)
	}
	var resp struct {
		Violations []string `json:"violations"`
	}
	b.getControl(t, "check", &resp)
	if len(resp.Violations) != 1 {
		t.Fatalf("GET check: %v", resp.Violations)
	}
}

func TestSim_LedgerOverHTTP(t *testing.T) {
	b := setup(t, nil)
	b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(1000)})
	var l Ledger
	b.getControl(t, "ledger", &l)
	if len(l.Orders) != 1 || l.Orders[0].Paid != 1000 {
		t.Fatalf("ledger %+v", l)
	}
	var clk struct {
		Now time.Time `json:"now"`
	}
	before := b.sim.Now()
	b.control(t, "clock", map[string]string{"advance": "48h"}, &clk)
	if clk.Now.Sub(before) < 48*time.Hour {
		t.Fatalf("clock %v, want 48 h after %v", clk.Now, before)
	}
}
