package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// crashRate holds payd to 15 calls per second per API in the crash tests:
// it stretches the work over the kill phase, so the kills land while
// calls are in flight.
const crashRate = 15

// convergeWithin bounds the last serve of a crash test: the full trade run
// (500 orders at 15 calls/s) takes about 3.5 min on a busy machine.
const convergeWithin = 10 * time.Minute

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
		AdminToken: "crash-admin-token-0a1b2c3d4e", Faults: crashFaults, Rate: crashRate,
	})
	sandbox := w.startSandbox()

	wishes, st := w.seedEcpayWishes("c", n)
	fig := w.crashAndConverge(st, kills)

	res := w.verifyEcpayRun(st, wishes)
	fig.log(t, n)
	refunds, settlements, violations, stats := res.refunds, res.settlements, res.violations, res.stats
	t.Logf("crash: ledger: %d refunds and %d settlements executed exactly once, exact amounts; /_sim/check: %d violations", refunds, settlements, len(violations))
	t.Logf("crash: simulator: %d calls, %d HTTP 500s, %d hangs; answers by api/err_no: %s", stats.Requests, stats.HTTP500s, stats.Hangs, formatCounts(simCalls(stats)))
	t.Logf("crash: payd attempt log by api/outcome: %s", formatCounts(callsByOutcome(t, st)))
	w.stop(sandbox)
}

// seedEcpayWishes seeds n paid orders (numbered prefix00000…), paid 8 days
// ago on the simulator's clock, and declares for each a refund and a
// settlement (declareWishes); it returns the wishes and the database.
func (w *binWorld) seedEcpayWishes(prefix string, n int) (map[string]wish, *state.Store) {
	paid := w.simNow().Add(-8 * 24 * time.Hour)
	wishes := make(map[string]wish, n)
	seeds := make([]douyinsim.SeedOrder, 0, n)
	for i := 0; i < n; i++ {
		no := fmt.Sprintf("%s%05d", prefix, i)
		total, cps := int64(2000+i%500), int64(i%4)*10
		seeds = append(seeds, douyinsim.SeedOrder{OutOrderNo: no, TotalAmount: total, Status: "SUCCESS", PaidAt: paid, CPSShare: cps})
		wishes[no] = wish{total: total, cps: cps, refunds: map[string]int64{no + "-r": int64(100 + i%700)}, settle: true}
	}
	w.simPost("/_sim/orders", map[string]any{"orders": seeds})
	return wishes, w.declareWishes(wishes)
}

// ecpayRun is what the ecpay simulator recorded of a run.
type ecpayRun struct {
	refunds, settlements int
	violations           []string
	stats                douyinsim.Stats
}

// verifyEcpayRun fails the test unless the ecpay simulator's ledger shows
// every wish executed exactly once for its exact amount (one refund and
// one settlement per order) and payd's rows agree; it returns the
// simulator's figures.
func (w *binWorld) verifyEcpayRun(st *state.Store, wishes map[string]wish) ecpayRun {
	t := w.t
	t.Helper()
	var ledger douyinsim.Ledger
	r := ecpayRun{violations: w.simResults("/_sim/", &ledger)}
	r.refunds, r.settlements = verifyLedger(t, ledger, r.violations, wishes)
	if r.refunds != len(wishes) || r.settlements != len(wishes) {
		t.Fatalf("executed %d refunds and %d settlements, want %d each", r.refunds, r.settlements, len(wishes))
	}
	verifyStore(t, st, w.cfg.AppID, ledger, wishes)
	if err := w.simGet("/_sim/stats", &r.stats); err != nil {
		t.Fatal(err)
	}
	return r
}

// declareWishes declares a refund under every key of every wish and a
// settlement of every order wished settled, with one `payd declare -f`
// (after `payd migrate`: only migrate and serve create the database), and
// opens the database for the test to read, closed at its end.
func (w *binWorld) declareWishes(wishes map[string]wish) *state.Store {
	t := w.t
	t.Helper()
	var refunds, settlements strings.Builder
	nr, ns := 0, 0
	for _, no := range sortedKeys(wishes) {
		wi := wishes[no]
		for _, key := range sortedKeys(wi.refunds) {
			fmt.Fprintf(&refunds, "  - {order: %s, key: %s, amount: %d, reason: crash test}\n", no, key, wi.refunds[key])
			nr++
		}
		if wi.settle {
			fmt.Fprintf(&settlements, "  - {order: %s}\n", no)
			ns++
		}
	}
	file := filepath.Join(w.dir, "wishes.yaml")
	if err := os.WriteFile(file, []byte("refunds:\n"+refunds.String()+"settlements:\n"+settlements.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w.run("migrate")
	out := w.run("declare", "-f", file)
	if want := fmt.Sprintf("%d refunds, %d settlements", nr, ns); !strings.Contains(out, want) {
		t.Fatalf("declare: %q, want %q", out, want)
	}
	o := state.Options{DSN: filepath.Join(w.dir, "payd.db"), Synchronous: "FULL"}
	if w.cfg.Driver != "" {
		o = state.Options{Driver: w.cfg.Driver, DSN: w.cfg.DB}
	}
	st, err := state.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// crashFigures are what a crash run measured.
type crashFigures struct {
	kills, inFlight      int // kills, and those that left an intent persisted with no answer recorded
	killPhase, converged time.Duration
	openAtLast           int64 // items still open when the last serve started
}

func (f crashFigures) log(t *testing.T, orders int) {
	t.Helper()
	t.Logf("crash: %d orders, %d SIGKILLs in %s (%d left an intent in flight); at the last start %d items were still open; converged %s after it",
		orders, f.kills, f.killPhase.Round(time.Millisecond), f.inFlight, f.openAtLast, f.converged.Round(time.Millisecond))
}

// crashAndConverge starts `payd serve` and SIGKILLs it after a random
// 0.2–2 s, kills times, reading st after each kill; then it starts serve
// once more, waits (at most convergeWithin) until st holds nothing open,
// and stops it with SIGTERM.
func (w *binWorld) crashAndConverge(st *state.Store, kills int) crashFigures {
	t := w.t
	t.Helper()
	summary := func() *state.Summary {
		t.Helper()
		s, err := st.Summary(context.Background())
		if err != nil {
			t.Fatalf("read the database: %v", err)
		}
		return s
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("crash: kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 8))
	fig := crashFigures{kills: kills}
	start := time.Now()
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
			fig.inFlight++
		}
	}
	fig.killPhase = time.Since(start)
	fig.openAtLast = testworld.OpenIn(summary())

	serve := w.start("serve")
	converged := time.Now()
	w.awaitConverged(st, serve)
	fig.converged = time.Since(converged)
	w.stop(serve)
	return fig
}

// awaitConverged waits, at most convergeWithin, until st holds nothing
// open; it fails the test when one of the serve processes exits meanwhile.
func (w *binWorld) awaitConverged(st *state.Store, serves ...*exec.Cmd) {
	t := w.t
	t.Helper()
	deadline := time.Now().Add(convergeWithin)
	for {
		s, err := st.Summary(context.Background())
		if err != nil {
			t.Fatalf("read the database: %v", err)
		}
		if testworld.OpenIn(s) == 0 {
			return
		}
		for i, p := range serves {
			if exited(p) {
				t.Fatalf("payd serve %d exited by itself:\n%s", i, tail(w.logs.String(), 4000))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged after %s: %+v", convergeWithin, s)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// simResults reads the ledger of the simulator whose control API is under
// prefix ("/_sim/", "/_sim/trade/") into ledger, and its check's
// violations.
func (w *binWorld) simResults(prefix string, ledger any) []string {
	w.t.Helper()
	if err := w.simGet(prefix+"ledger", ledger); err != nil {
		w.t.Fatal(err)
	}
	var check struct {
		Violations []string `json:"violations"`
	}
	if err := w.simGet(prefix+"check", &check); err != nil {
		w.t.Fatal(err)
	}
	return check.Violations
}

// stop ends a payd process with SIGTERM and waits for it (30 s at most).
func (w *binWorld) stop(cmd *exec.Cmd) {
	w.t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		w.t.Fatal(err)
	}
	wait(w.t, cmd, 30*time.Second)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
