package douyinsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

func TestControl_Orders(t *testing.T) {
	cfg := testConfig()
	cfg.Apps = cfg.Apps[:1] // one app: app_id may be left out
	b := setup(t, cfg)

	code, body := postJSON(t, b.url+"/_sim/orders", `{"out_order_no":"o1","total_amount":1000,"paid_at":"2026-01-01T00:00:00Z","cps_share":30,"cps_delay":"1m"}`)
	if code != http.StatusOK || !strings.Contains(string(body), `"seeded":1`) {
		t.Fatalf("single: %d %s", code, body)
	}
	code, body = postJSON(t, b.url+"/_sim/orders", `{"orders":[{"out_order_no":"o2","total_amount":500},{"out_order_no":"o3","total_amount":700,"status":"PROCESSING"}]}`)
	if code != http.StatusOK || !strings.Contains(string(body), `"seeded":2`) {
		t.Fatalf("bulk: %d %s", code, body)
	}
	o1 := b.ledgerOrder(t, "o1")
	if o1.Status != douyin.StatusSuccess || o1.TotalAmount != 1000 || o1.CPSShare != 30 || o1.PaidAt == nil ||
		!o1.PaidAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || o1.AppID != testApp {
		t.Errorf("o1 = %+v", o1)
	}
	if o2 := b.ledgerOrder(t, "o2"); o2.PaidAt == nil || o2.Status != douyin.StatusSuccess {
		t.Errorf("o2 = %+v, want SUCCESS paid now", o2)
	}
	if o3 := b.ledgerOrder(t, "o3"); o3.Status != douyin.StatusProcessing || o3.PaidAt != nil {
		t.Errorf("o3 = %+v, want PROCESSING unpaid", o3)
	}

	for _, bad := range []string{
		`{"out_order_no":"o1","total_amount":5}`,                                                     // exists
		`{"out_order_no":"o9","total_amount":0}`,                                                     // amount
		`{"out_order_no":"o9","total_amount":5,"status":"PAID"}`,                                     // status
		`{"out_order_no":"o9","total_amount":5,"colour":"red"}`,                                      // unknown field
		`{"out_order_no":"o 9","total_amount":5}`,                                                    // number
		`{"out_order_no":"o9","total_amount":5,"app_id":"tt-nobody"}`,                                // app
		`{"out_order_no":"o9","total_amount":5,"cps_share":6}`,                                       // cps beyond total
		`{"orders":[{"out_order_no":"o8","total_amount":5},{"out_order_no":"o8","total_amount":5}]}`, // duplicate in a batch
		`not json`,
	} {
		code, body := postJSON(t, b.url+"/_sim/orders", bad)
		if code != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %d %s, want 400 with an error", bad, code, body)
		}
	}
	if n := len(b.sim.Ledger().Orders); n != 3 {
		t.Errorf("%d orders after rejected seeds, want 3 (a bad batch seeds nothing)", n)
	}

	code, body = postJSON(t, b.url+"/_sim/pay", `{"out_order_no":"o3"}`)
	if code != http.StatusOK {
		t.Fatalf("pay: %d %s", code, body)
	}
	if o3 := b.ledgerOrder(t, "o3"); o3.Status != douyin.StatusSuccess {
		t.Errorf("o3 after pay = %s", o3.Status)
	}
	if code, _ := postJSON(t, b.url+"/_sim/pay", `{"out_order_no":"nope"}`); code != http.StatusNotFound {
		t.Errorf("pay unknown: %d, want 404", code)
	}
	if code, _ := postJSON(t, b.url+"/_sim/pay", `{"out_order_no":"o3"}`); code != http.StatusBadRequest {
		t.Errorf("pay twice: %d, want 400", code)
	}
}

func TestControl_ClockFaultsLimits(t *testing.T) {
	b := setup(t, testConfig())
	before := b.sim.Now()
	code, body := postJSON(t, b.url+"/_sim/clock", `{"advance":"169h"}`)
	if code != http.StatusOK {
		t.Fatalf("clock: %d %s", code, body)
	}
	var clock struct{ Now time.Time }
	if err := json.Unmarshal(body, &clock); err != nil {
		t.Fatal(err)
	}
	if d := clock.Now.Sub(before); d < 169*time.Hour || d > 170*time.Hour {
		t.Errorf("clock moved %s, want 169h", d)
	}
	for _, bad := range []string{`{"advance":"-1h"}`, `{"advance":"soon"}`, `{"forward":"1h"}`} {
		if code, _ := postJSON(t, b.url+"/_sim/clock", bad); code != http.StatusBadRequest {
			t.Errorf("clock %s: %d, want 400", bad, code)
		}
	}

	code, body = postJSON(t, b.url+"/_sim/faults", `{"err1000_no_effect":0.5,"hang":"2s","refund_channel_fail":1}`)
	if code != http.StatusOK {
		t.Fatalf("faults: %d %s", code, body)
	}
	if f := b.sim.Faults(); f.Err1000NoEffect != 0.5 || f.Hang != 2*time.Second || f.RefundChannelFail != 1 || f.HTTP500 != 0 {
		t.Errorf("faults = %+v", f)
	}
	for _, bad := range []string{`{"http500":2}`, `{"http5OO":1}`, `{"hang":"-1s"}`} {
		if code, _ := postJSON(t, b.url+"/_sim/faults", bad); code != http.StatusBadRequest {
			t.Errorf("faults %s: %d, want 400", bad, code)
		}
	}
	if f := b.sim.Faults(); f.Err1000NoEffect != 0.5 {
		t.Errorf("a rejected faults request changed the faults: %+v", f)
	}
	if code, _ := postJSON(t, b.url+"/_sim/faults", `{}`); code != http.StatusOK || b.sim.Faults() != (Faults{}) {
		t.Errorf("faults {} did not clear the faults: %+v", b.sim.Faults())
	}

	if code, body := postJSON(t, b.url+"/_sim/limits", `{"query_order":1}`); code != http.StatusOK {
		t.Fatalf("limits: %d %s", code, body)
	}
	if code, _ := postJSON(t, b.url+"/_sim/limits", `{"nope":1}`); code != http.StatusBadRequest {
		t.Errorf("limits of an unknown api: %d, want 400", code)
	}
}

// TestControl_LedgerShape checks GET /_sim/ledger and /_sim/check against
// the documented JSON, key by key.
func TestControl_LedgerShape(t *testing.T) {
	cfg := testConfig()
	cfg.Start = testStart.Add(8 * 24 * time.Hour)
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000, PaidAt: testStart})
	if _, err := b.refund("o1", "o1-r1-1", 200); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(cfg.ProcessingDelay)
	if _, err := b.settle("o1", "o1-s-1"); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(cfg.ProcessingDelay)

	var ledger struct {
		Orders []struct {
			OutOrderNo     *string `json:"out_order_no"`
			TotalAmount    *int64  `json:"total_amount"`
			Status         *string `json:"status"`
			RefundedAmount *int64  `json:"refunded_amount"`
			SettledAmount  *int64  `json:"settled_amount"`
			Refunds        []struct {
				OutRefundNo *string `json:"out_refund_no"`
				Amount      *int64  `json:"amount"`
				Status      *string `json:"status"`
				Executions  *int    `json:"executions"`
			} `json:"refunds"`
			Settlements []struct {
				OutSettleNo *string `json:"out_settle_no"`
				Amount      *int64  `json:"amount"`
				Status      *string `json:"status"`
				Executions  *int    `json:"executions"`
			} `json:"settlements"`
		} `json:"orders"`
	}
	getJSON(t, b.url+"/_sim/ledger", &ledger)
	if len(ledger.Orders) != 1 {
		t.Fatalf("%d orders", len(ledger.Orders))
	}
	o := ledger.Orders[0]
	if o.OutOrderNo == nil || *o.OutOrderNo != "o1" || o.TotalAmount == nil || *o.TotalAmount != 1000 ||
		o.Status == nil || *o.Status != "SUCCESS" || o.RefundedAmount == nil || *o.RefundedAmount != 200 ||
		o.SettledAmount == nil || *o.SettledAmount != 800 || len(o.Refunds) != 1 || len(o.Settlements) != 1 {
		t.Fatalf("order %+v", o)
	}
	r, s := o.Refunds[0], o.Settlements[0]
	if r.OutRefundNo == nil || *r.OutRefundNo != "o1-r1-1" || r.Amount == nil || *r.Amount != 200 ||
		r.Status == nil || *r.Status != "SUCCESS" || r.Executions == nil || *r.Executions != 1 {
		t.Errorf("refund %+v", r)
	}
	if s.OutSettleNo == nil || *s.OutSettleNo != "o1-s-1" || s.Amount == nil || *s.Amount != 800 ||
		s.Status == nil || *s.Status != "SUCCESS" || s.Executions == nil || *s.Executions != 1 {
		t.Errorf("settlement %+v", s)
	}

	resp, err := http.Get(b.url + "/_sim/check")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(raw["violations"]) != "[]" {
		t.Fatalf("check: %d %s, want 200 with an empty list", resp.StatusCode, raw["violations"])
	}

	// A violation is still HTTP 200.
	b.sim.SetFaults(Faults{Err1000AfterEffect: 1})
	b.seed(t, SeedOrder{OutOrderNo: "o2", TotalAmount: 1000})
	_, _ = b.refund("o2", "o2-r1-1", 100)
	b.sim.SetFaults(Faults{})
	if _, err := b.refund("o2", "o2-r1-2", 100); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(cfg.ProcessingDelay)
	var check struct{ Violations []string }
	getJSON(t, b.url+"/_sim/check", &check)
	if len(check.Violations) != 1 {
		t.Fatalf("violations %q, want the double refund", check.Violations)
	}

	var stats Stats
	getJSON(t, b.url+"/_sim/stats", &stats)
	if stats.ByAPI[douyin.APICreateRefund][0] != 2 || stats.ByAPI[douyin.APICreateRefund][douyin.ErrNoInternal] != 1 || stats.Requests != 4 {
		t.Errorf("stats %+v", stats)
	}
}
