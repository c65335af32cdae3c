package reliability

import (
	"bytes"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payd/payd/internal/pgtest"
	"github.com/payd/payd/internal/state"
)

// replicaRate and replicaSimRate: the three replicas are each configured
// with the app's whole limit, 10 % under what the simulator grants (as an
// operator would: the simulator counts arrivals, and a loaded machine
// bunches them); sharing must keep their sum under it through every kill,
// restart and join.
const (
	replicaRate    = 18
	replicaSimRate = 20
)

// TestCrash_ReplicasSIGKILL runs three `payd serve` on one PostgreSQL
// database (PAYD_TEST_POSTGRES_DSN, a schema of its own), with the
// sandbox's callbacks spread over the three by a round-robin proxy, and
// SIGKILLs a random replica every 0.3–2 s, PAYD_CRASH_KILLS times (6 by
// default), restarting it at once, while refunds and T+7 settlements of
// PAYD_CRASH_ORDERS orders (60 by default) run with faults injected. Then
// the three run to convergence. Every refund and settlement must be
// executed exactly once for its exact amount (the simulator's ledger and
// /_sim/check), payd's rows agree, and no replica logged a conflict or a
// deadlock; the calls answered 1001 are reported.
func TestCrash_ReplicasSIGKILL(t *testing.T) {
	dsn := pgtest.Schema(t, "payd_replicas_")
	kills := envInt(t, "PAYD_CRASH_KILLS", 6)
	n := envInt(t, "PAYD_CRASH_ORDERS", 60)
	w := newBinWorld(t, binConfig{
		AppID: "tt-replicas", Salt: "replicas-salt-6e1f0a9b", Token: "replicas-token-3c5d7e9f",
		AdminToken: "replicas-admin-token-7a8b9c0d1e", Faults: crashFaults,
		Rate: replicaRate, SimRate: replicaSimRate, Driver: "postgres", DB: dsn,
	})
	replicas := w.replicaConfigs(3)
	spread := spreadCallbacks(t, w.cfg.Callback, replicas)
	sandbox := w.startSandbox()

	wishes, st := w.seedEcpayWishes("m", n)
	start := time.Now()
	starts := w.killReplicas(replicas, kills, st)

	res := w.verifyEcpayRun(st, wishes)
	refunds, settlements, violations, stats := res.refunds, res.settlements, res.violations, res.stats
	bad, leasesLost := conflictLines(w.logs.String())
	if len(bad) > 0 {
		t.Fatalf("%d conflict or deadlock lines in the replicas' logs, e.g.:\n%s", len(bad), strings.Join(bad[:min(5, len(bad))], "\n"))
	}
	t.Logf("replicas: %d orders, 3 replicas, %d SIGKILLs, converged %s after the start; %d callbacks spread over the replicas",
		n, kills, time.Since(start).Round(time.Millisecond), spread.Load())
	// The 1001s are counted, not held to zero: on this machine's loaded
	// cores a few still come, near a replica's start (issue 17 keeps that
	// target open; RELIABILITY.md §1c has the figures and the split). A
	// 1001 is resent under the same number, so it costs time, never money.
	t.Logf("replicas: ledger: %d refunds and %d settlements executed exactly once, exact amounts; /_sim/check: %d violations; %d calls answered 1001", refunds, settlements, len(violations), stats.Busy())
	t.Logf("replicas: simulator answers by api/err_no: %s", formatCounts(simCalls(stats)))
	t.Logf("replicas: %d releases found their lease taken over by another replica (fenced, logged at warning)", leasesLost)
	near, later := busyNearStarts(t, st, starts, joinWindow)
	t.Logf("replicas: of payd's calls answered 1001, %d came within %s of a replica's start, %d later", near, joinWindow, later)
	w.stop(sandbox)
}

// replicaConfigs writes one config per replica: the world's, with the
// replica's own callback and admin listeners.
func (w *binWorld) replicaConfigs(n int) []*binWorld {
	w.t.Helper()
	out := make([]*binWorld, n)
	for i := range out {
		c := w.cfg
		c.Callback, c.Admin = freeAddr(w.t), freeAddr(w.t)
		var b bytes.Buffer
		if err := configTemplate.Execute(&b, c); err != nil {
			w.t.Fatal(err)
		}
		r := *w
		r.cfg, r.config = c, filepath.Join(w.dir, fmt.Sprintf("replica-%d.yaml", i))
		if err := os.WriteFile(r.config, b.Bytes(), 0o600); err != nil {
			w.t.Fatal(err)
		}
		out[i] = &r
	}
	return out
}

// joinWindow is how long after a replica's start a 1001 counts as the
// join's: the replica's wait for the others to see it, and one heartbeat.
const joinWindow = 6 * time.Second

// busyNearStarts splits payd's calls answered 1001 (its attempt log) into
// those within window after one of starts and the others.
func busyNearStarts(t *testing.T, st *state.Store, starts []time.Time, window time.Duration) (near, later int) {
	t.Helper()
	var at []time.Time
	if err := st.DB().Raw("SELECT created_at FROM attempts WHERE err_no = 1001").Scan(&at).Error; err != nil {
		t.Fatal(err)
	}
	for _, a := range at {
		if slices.ContainsFunc(starts, func(s time.Time) bool { return !a.Before(s) && a.Sub(s) < window }) {
			near++
		} else {
			later++
		}
	}
	return near, later
}

// killReplicas starts every replica, SIGKILLs a random one every 0.3–2 s
// kills times and restarts it at once, then waits (at most convergeWithin)
// until st holds nothing open, and stops them all. It returns when each
// replica process was started.
func (w *binWorld) killReplicas(replicas []*binWorld, kills int, st *state.Store) []time.Time {
	t := w.t
	seed := uint64(time.Now().UnixNano())
	t.Logf("replicas: kill timing seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 17))
	procs := make([]*exec.Cmd, len(replicas))
	var starts []time.Time
	for i, r := range replicas {
		starts = append(starts, time.Now())
		procs[i] = r.start("serve")
	}
	for k := 0; k < kills; k++ {
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(1700*time.Millisecond))))
		i := rng.IntN(len(procs))
		if exited(procs[i]) {
			t.Fatalf("replica %d exited by itself before kill %d:\n%s", i, k+1, tail(w.logs.String(), 4000))
		}
		if err := procs[i].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", k+1, err)
		}
		wait(t, procs[i], 10*time.Second)
		starts = append(starts, time.Now())
		procs[i] = replicas[i].start("serve")
	}
	w.awaitConverged(st, procs...)
	for _, p := range procs {
		w.stop(p)
	}
	return starts
}

// spreadCallbacks serves addr (the callback URL the sandbox posts to) and
// passes each callback to the next replica in turn, the next one after it
// when that one is down; it counts the callbacks passed on.
func spreadCallbacks(t *testing.T, addr string, replicas []*binWorld) *atomic.Int64 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var next, passed atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		first := int(next.Add(1))
		for k := range replicas {
			rep := replicas[(first+k)%len(replicas)]
			resp, err := client.Post("http://"+rep.cfg.Callback+r.URL.RequestURI(), r.Header.Get("Content-Type"), bytes.NewReader(body))
			if err != nil {
				continue // down (killed, or not up yet): the next one
			}
			out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			passed.Add(1)
			rw.WriteHeader(resp.StatusCode)
			_, _ = rw.Write(out)
			return
		}
		http.Error(rw, "no replica up", http.StatusBadGateway) // the simulator retries
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &passed
}

// deadlockRE matches a PostgreSQL deadlock or serialization failure;
// conflictRE a write that found its row changed by another replica.
var (
	deadlockRE = regexp.MustCompile(`deadlock|40P01|40001|could not serialize`)
	conflictRE = regexp.MustCompile(`row changed since it was read`)
)

// conflictLines returns the log lines that report a collision: any
// deadlock, and any conflict but a release whose lease another replica
// took over meanwhile (the lease did its work: the order was fenced off
// from its old holder; those are counted in leasesLost).
func conflictLines(logs string) (bad []string, leasesLost int) {
	for _, line := range strings.Split(logs, "\n") {
		switch {
		case deadlockRE.MatchString(line):
			bad = append(bad, line)
		case conflictRE.MatchString(line) && strings.Contains(line, `"msg":"release order"`):
			leasesLost++
		case conflictRE.MatchString(line):
			bad = append(bad, line)
		}
	}
	return bad, leasesLost
}
