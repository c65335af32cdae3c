package reliability

import (
	"fmt"
	"testing"

	"github.com/payd/payd/internal/douyin/tradesim"
)

// tradeCrashFaults are the trade simulator's faults during the trade crash
// run: every write may take effect and then answer 13000, 23000, HTTP 502
// or hang past payd's 1 s timeout (the simulator's hang is 3 s); callbacks
// are dropped and duplicated; refunds FAIL at the channel.
var tradeCrashFaults = tradesim.Faults{
	Err13000AfterEffect: 0.05, Err23000AfterEffect: 0.03, HTTP5xxAfterEffect: 0.03, HangAfterEffect: 0.02,
	RefundChannelFail: 0.1, CallbackDrop: 0.2, CallbackDuplicate: 0.1,
}

// TestCrash_TradeSIGKILLDuringWork is TestCrash_SIGKILLDuringWork on a
// trade-system app (api: trade): `payd sandbox` serves the trade simulator
// with tradeCrashFaults on for the whole run; PAYD_CRASH_ORDERS paid orders
// (100 by default) of two item orders each, paid 8 days ago (payment rule,
// D+7), get a refund each (every fifth a second one, so that refunds are
// spread over item orders after a first), and a settlement each, declared
// with `payd declare -f`; `payd serve` is SIGKILLed at random moments
// PAYD_CRASH_KILLS times (5 by default), then runs to convergence. The
// trade ledger (/_sim/trade/ledger) must show every refund executed exactly
// once for its amount under one of its numbers, every order settled once
// for what is left, /_sim/trade/check clean, and payd's rows agreeing.
func TestCrash_TradeSIGKILLDuringWork(t *testing.T) {
	kills := envInt(t, "PAYD_CRASH_KILLS", 5)
	n := envInt(t, "PAYD_CRASH_ORDERS", 100)
	w := newBinWorld(t, binConfig{
		AppID: "tt-crash-trade", Token: "crash-client-secret-4d7e9a1b", Trade: true,
		AdminToken: "crash-admin-token-5f6a7b8c9d", Rate: crashRate,
	})
	sandbox := w.startSandbox()
	w.simPost("/_sim/trade/faults", tradeCrashFaults)

	wishes := make(map[string]wish, n)
	seeds := make([]tradesim.SeedOrder, 0, n)
	for i := 0; i < n; i++ {
		no := fmt.Sprintf("tc%05d", i)
		items := []tradesim.SeedItem{{SKUID: "a", Amount: int64(600 + i%400)}, {SKUID: "b", Amount: int64(400 + i%97)}}
		seeds = append(seeds, tradesim.SeedOrder{AppID: w.cfg.AppID, OutOrderNo: no, PaidAgo: "192h", Items: items})
		refunds := map[string]int64{no + "-a": int64(100 + i%700)}
		if i%5 == 0 {
			refunds[no+"-b"] = 50
		}
		wishes[no] = wish{total: items[0].Amount + items[1].Amount, refunds: refunds, settle: true}
	}
	w.simPost("/_sim/trade/orders", map[string]any{"orders": seeds})
	st := w.declareWishes(wishes)
	fig := w.crashAndConverge(st, kills)

	var ledger tradesim.Ledger
	violations := w.simResults("/_sim/trade/", &ledger)
	if len(violations) != 0 {
		t.Fatalf("/_sim/trade/check: %d violations: %v", len(violations), violations)
	}
	want, paid := map[string]map[string]int64{}, map[string]int64{}
	declared := 0
	for no, wi := range wishes {
		want[no], paid[no] = wi.refunds, wi.total
		declared += len(wi.refunds)
	}
	refunds, settlements := verifyTradeLedger(t, ledger, want, paid)
	if refunds != declared || settlements != n {
		t.Fatalf("executed %d refunds and %d settlements, want %d and %d", refunds, settlements, declared, n)
	}
	settled, failed := map[string]int64{}, 0
	for _, lo := range ledger.Orders {
		for _, s := range lo.Settlements {
			if s.Status == "SUCCESS" {
				settled[lo.OutOrderNo] += s.Amount
			}
		}
		for _, r := range lo.Refunds {
			if r.Status == "FAIL" {
				failed++
			}
		}
	}
	verifyRows(t, st, w.cfg.AppID, settled, wishes)
	fig.log(t, n)
	t.Logf("crash: trade ledger: %d refunds and %d settlements executed exactly once, exact amounts (%d refund attempts FAILed at the channel and were retried); /_sim/trade/check: %d violations",
		refunds, settlements, failed, len(violations))
	calls := callsByOutcome(t, st)
	t.Logf("crash: payd attempt log by api/outcome: %s", formatCounts(calls))
	if failed == 0 || calls["create_refund/unknown"] == 0 || calls["settle/unknown"] == 0 {
		t.Fatalf("the faults did not fire: %d channel FAILs, attempt log %v", failed, calls)
	}
	w.stop(sandbox)
}
