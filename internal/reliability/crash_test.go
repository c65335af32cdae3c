package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// crashFaults are injected by the sandbox during the crash run: a write
// that took effect but answered 1000 or hung past payd's 1 s timeout is the
// case a crash makes hardest (the answer is lost twice over).
const crashFaults = `{err1000_no_effect: 0.03, err1000_after_effect: 0.05, http500: 0.03, hang_after_effect: 0.02, hang: 1500ms, callback_drop: 0.2, callback_duplicate: 0.1, refund_channel_fail: 0.1}`

// TestCrash_SIGKILLDuringWork runs `payd sandbox` in its own process, seeds
// PAYD_CRASH_ORDERS paid orders (100 by default), declares a refund and a
// settlement for each with `payd declare -f`, then starts `payd serve` and
// kills it with SIGKILL after a random 0.2–2 s, PAYD_CRASH_KILLS times (5 by
// default), with faults injected throughout; payd is held to 15 calls per
// second per API so that the work outlasts the kills. A last serve runs to
// convergence. The simulator's ledger must show every refund and settlement
// executed exactly once for the exact amount, /_sim/check clean, and payd's
// rows must agree: no declared wish lost.
func TestCrash_SIGKILLDuringWork(t *testing.T) {
	kills := envInt(t, "PAYD_CRASH_KILLS", 5)
	n := envInt(t, "PAYD_CRASH_ORDERS", 100)
	w := newBinWorld(t, binConfig{
		AppID: "tt-crash", Salt: "crash-salt-2c9f0e7d", Token: "crash-token-81b3a6f4",
		AdminToken: "crash-admin-token-0a1b2c3d4e", Faults: crashFaults,
		// 15 calls per second per API stretches the work over the kill
		// phase, so the kills land while calls are in flight.
		Rate: 15,
	})
	sandbox := w.startSandbox()

	// Seed paid orders, paid 8 days ago on the simulator's clock.
	paid := w.simNow().Add(-8 * 24 * time.Hour)
	wishes := make(map[string]wish, n)
	seeds := make([]douyinsim.SeedOrder, 0, n)
	var decl strings.Builder
	decl.WriteString("refunds:\n")
	for i := 0; i < n; i++ {
		no := fmt.Sprintf("c%05d", i)
		total, cps := int64(2000+i%500), int64(i%4)*10
		refund := int64(100 + i%700)
		seeds = append(seeds, douyinsim.SeedOrder{OutOrderNo: no, TotalAmount: total, Status: "SUCCESS", PaidAt: paid, CPSShare: cps})
		wishes[no] = wish{total: total, cps: cps, refunds: map[string]int64{no + "-r": refund}, settle: true}
		fmt.Fprintf(&decl, "  - {order: %s, key: %s-r, amount: %d, reason: crash test}\n", no, no, refund)
	}
	decl.WriteString("settlements:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&decl, "  - {order: c%05d}\n", i)
	}
	w.simPost("/_sim/orders", map[string]any{"orders": seeds})
	file := filepath.Join(w.dir, "wishes.yaml")
	if err := os.WriteFile(file, []byte(decl.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w.run("migrate") // only migrate and serve create the database
	out := w.run("declare", "-f", file)
	if want := fmt.Sprintf("%d refunds, %d settlements", n, n); !strings.Contains(out, want) {
		t.Fatalf("declare: %q, want %q", out, want)
	}

	st, err := state.Open(context.Background(), state.Options{DSN: filepath.Join(w.dir, "payd.db"), Synchronous: "FULL"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	summary := func() *state.Summary {
		t.Helper()
		s, err := st.Summary(context.Background())
		if err != nil {
			t.Fatalf("read the database: %v", err)
		}
		return s
	}

	// Kill serve at random moments.
	seed := uint64(time.Now().UnixNano())
	t.Logf("crash: kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 8))
	start := time.Now()
	inFlight := 0 // kills that left an intent persisted with no answer recorded
	for k := 0; k < kills; k++ {
		serve := w.start("serve")
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond))))
		if exited(serve) {
			t.Fatalf("payd serve exited by itself before kill %d:\n%s", k+1, w.logs.String())
		}
		if err := serve.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", k+1, err)
		}
		wait(t, serve, 10*time.Second)
		s := summary()
		if s.Refunds[state.PhaseSubmitting]+s.Settlements[state.PhaseSubmitting] > 0 {
			inFlight++
		}
	}
	killPhase := time.Since(start)
	before := summary()

	// One last serve, to convergence.
	serve := w.start("serve")
	converged := time.Now()
	deadline := converged.Add(5 * time.Minute)
	for {
		s := summary()
		if testworld.OpenIn(s) == 0 {
			break
		}
		if exited(serve) {
			t.Fatalf("payd serve exited by itself:\n%s", tail(w.logs.String(), 4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged after 5m: %+v", s)
		}
		time.Sleep(250 * time.Millisecond)
	}
	toConverge := time.Since(converged)
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait(t, serve, 30*time.Second)

	var ledger douyinsim.Ledger
	if err := w.simGet("/_sim/ledger", &ledger); err != nil {
		t.Fatal(err)
	}
	var check struct {
		Violations []string `json:"violations"`
	}
	if err := w.simGet("/_sim/check", &check); err != nil {
		t.Fatal(err)
	}
	refunds, settlements := verifyLedger(t, ledger, check.Violations, wishes)
	if refunds != n || settlements != n {
		t.Fatalf("executed %d refunds and %d settlements, want %d each", refunds, settlements, n)
	}
	verifyStore(t, st, w.cfg.AppID, ledger, wishes)
	var stats douyinsim.Stats
	if err := w.simGet("/_sim/stats", &stats); err != nil {
		t.Fatal(err)
	}
	t.Logf("crash: %d orders, %d SIGKILLs in %s (%d left an intent in flight); at the last start %d items were still open; converged %s after it",
		n, kills, killPhase.Round(time.Millisecond), inFlight, testworld.OpenIn(before), toConverge.Round(time.Millisecond))
	t.Logf("crash: ledger: %d refunds and %d settlements executed exactly once, exact amounts; /_sim/check: %d violations", refunds, settlements, len(check.Violations))
	t.Logf("crash: simulator: %d calls, %d HTTP 500s, %d hangs; answers by api/err_no: %s", stats.Requests, stats.HTTP500s, stats.Hangs, formatCounts(simCalls(stats)))
	t.Logf("crash: payd attempt log by api/outcome: %s", formatCounts(callsByOutcome(t, st)))

	if err := sandbox.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait(t, sandbox, 30*time.Second)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
