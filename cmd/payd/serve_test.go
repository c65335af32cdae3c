package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/state"
)

// syncBuffer is a bytes.Buffer safe for a command writing in one goroutine
// while the test reads in another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// background runs payd with args until the returned cancel is called; the
// returned channel yields its error.
func (e *env) background(args ...string) (stdout, stderr *syncBuffer, cancel context.CancelFunc, done <-chan error) {
	e.t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	finished := make(chan struct{})
	root := newRoot(stdout, stderr, e.getenv)
	root.SetArgs(append([]string{"--config", e.config}, args...))
	go func() {
		defer close(finished)
		ch <- root.ExecuteContext(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			e.t.Error("command did not stop within 10s of its context ending")
		}
	})
	return stdout, stderr, cancel, ch
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopped waits for a background command's error.
func stopped(t *testing.T, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("command still running %s after cancel", within)
		return nil
	}
}

// call makes an HTTP request with an optional bearer token and returns the
// status and body.
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServe_command(t *testing.T) {
	e := newEnv(t, strings.Replace(baseConfig, "level: warn", "level: info", 1)).withSim()
	_, stderr, cancel, done := e.background("serve")
	var cbAddr, adminAddr string
	waitFor(t, 10*time.Second, "the serving log line", func() bool {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "payd serving" {
				cbAddr, _ = line["callbacks"].(string)
				adminAddr, _ = line["admin"].(string)
				return true
			}
		}
		return false
	})
	for _, a := range []string{cbAddr, adminAddr} {
		if h, _, err := net.SplitHostPort(a); err != nil || h != "127.0.0.1" {
			t.Fatalf("listener %q is not on 127.0.0.1", a)
		}
	}
	if code, body := call(t, "GET", "http://"+cbAddr+"/healthz", "", ""); code != 200 || body != `{"status":"ok"}` {
		t.Fatalf("callback /healthz: %d %s", code, body)
	}
	if code, _ := call(t, "GET", "http://"+adminAddr+"/v1/status", testAdminToken, ""); code != 200 {
		t.Fatalf("admin /v1/status: %d", code)
	}
	if code, body := call(t, "GET", "http://"+adminAddr+"/v1/status", "", ""); code != 401 || !strings.Contains(body, "missing or wrong bearer token") {
		t.Fatalf("admin without token: %d %s", code, body)
	}
	// A declared refund is driven to Douyin by the running daemon.
	e.seedPaid("o-1", 1000)
	if code, body := call(t, "POST", "http://"+adminAddr+"/v1/orders/o-1/refunds", testAdminToken, `{"key":"k1","amount":100,"reason":"x"}`); code != 201 {
		t.Fatalf("declare refund: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "the refund to reach Douyin", func() bool {
		for _, o := range e.sim.Ledger().Orders {
			if len(o.Refunds) == 1 {
				return true
			}
		}
		return false
	})

	// serve counts itself among the replicas sharing the Douyin budgets.
	if n := e.count("replicas"); n != 1 {
		t.Fatalf("%d replicas recorded while serving, want 1", n)
	}

	// SIGTERM is a cancelled context: serve drains and returns nil.
	cancel()
	if err := stopped(t, done, 10*time.Second); err != nil {
		t.Fatalf("serve after cancel: %v", err)
	}
	has(t, stderr.String(), "payd shutting down")
	if _, err := net.DialTimeout("tcp", adminAddr, time.Second); err == nil {
		t.Fatal("admin listener still open after shutdown")
	}
	if n := e.count("replicas"); n != 0 {
		t.Fatalf("%d replicas recorded after serve stopped, want 0 (it leaves)", n)
	}
	// The passes that did work are recorded for the console.
	if n := e.count("passes"); n == 0 {
		t.Fatal("no reconcile pass recorded by serve")
	}
	// The database was closed cleanly and holds the refund.
	if s := e.summary(); s.Refunds[state.PhasePending] != 0 || len(s.Refunds) == 0 {
		t.Fatalf("refunds after serve: %+v", s.Refunds)
	}
}

func TestServe_startDaemon(t *testing.T) {
	e := newEnv(t).withSim()
	g := &globals{configPath: e.config, getenv: e.getenv, stdout: io.Discard, stderr: io.Discard}
	cfg, err := g.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), cfg, daemon.Options{Log: daemon.NewLogger(cfg.Log, io.Discard), CallbackLn: cbLn, AdminLn: adLn})
	if err != nil {
		t.Fatal(err)
	}
	if d.CallbackAddr() != cbLn.Addr().String() || d.AdminAddr() != adLn.Addr().String() {
		t.Fatalf("daemon listens on %s and %s, not the listeners given", d.CallbackAddr(), d.AdminAddr())
	}
	code, body := call(t, "GET", "http://"+d.AdminAddr()+"/metrics", "", "")
	if code != 200 || !strings.Contains(body, "payd_") {
		t.Fatalf("/metrics: %d", code)
	}
	if !strings.Contains(body, "\npayd_replicas 1\n") {
		t.Fatalf("/metrics does not report this replica alone: want payd_replicas 1")
	}
	// A forged callback is refused and stored nowhere.
	code, _ = call(t, "POST", "http://"+d.CallbackAddr()+"/douyin/notify", "", `{"timestamp":"1","nonce":"n","type":"refund","msg":"{\"appid\":\"`+testApp+`\",\"cp_refundno\":\"x-1\"}","msg_signature":"00"}`)
	if code != http.StatusUnauthorized {
		t.Fatalf("forged callback: %d", code)
	}
	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := e.count("callbacks"); n != 0 {
		t.Fatalf("%d callbacks stored", n)
	}
	// ... but counted, at shutdown, for every replica's console.
	if n := e.count("counter_deltas"); n != 1 {
		t.Fatalf("%d counter rows after the forged callback, want 1 (refused, flushed at shutdown)", n)
	}
	// A second daemon on the same database starts again after a clean stop.
	d2, err := daemon.Start(context.Background(), cfg, daemon.Options{Log: daemon.NewLogger(cfg.Log, io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Run("listener in use", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		c := *cfg
		c.Server.CallbackListen = busy.Addr().String()
		_, err = daemon.Start(context.Background(), &c, daemon.Options{Log: daemon.NewLogger(cfg.Log, io.Discard)})
		if err == nil || !strings.HasPrefix(err.Error(), "callback listener: listen tcp "+busy.Addr().String()+": bind: address already in use") {
			t.Fatalf("want a callback listener error, got %v", err)
		}
	})
}

func TestSandbox(t *testing.T) {
	e := newEnv(t)
	stdout, _, cancel, done := e.background("sandbox", "--listen", "127.0.0.1:0", "--processing-delay", "10ms")
	var url string
	waitFor(t, 10*time.Second, "the sandbox's address", func() bool {
		out := stdout.String()
		if rest, ok := strings.CutPrefix(out, "douyin simulator on "); ok {
			url, _, _ = strings.Cut(rest, " ")
			return true
		}
		return false
	})
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("sandbox URL %q is not on 127.0.0.1", url)
	}
	has(t, stdout.String(), "(app "+testApp+"); control API under "+url+"/_sim/")
	code, body := call(t, "GET", url+"/_sim/ledger", "", "")
	var l struct {
		Orders []any `json:"orders"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
		t.Fatalf("/_sim/ledger: %d %s", code, body)
	}
	cancel()
	if err := stopped(t, done, 10*time.Second); err != nil {
		t.Fatalf("sandbox after cancel: %v", err)
	}
	if _, err := http.Get(url + "/_sim/ledger"); err == nil {
		t.Fatal("sandbox still answers after it stopped")
	}

	t.Run("bad flags", func(t *testing.T) {
		e.run("sandbox", "--http500", "2").fails(t, "--http500 2: want a probability between 0 and 1")
		r := e.run("sandbox", "--listen", "nohost")
		if r.err == nil || !strings.HasPrefix(r.err.Error(), "sandbox: ") {
			t.Fatalf("bad listen address: %v", r.err)
		}
	})
}

func TestDemo(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	r := e.run("demo", "--orders", "20", "--timeout", "60s")
	if r.err != nil {
		t.Fatalf("demo: %v\n%s", r.err, r.stdout)
	}
	if took := time.Since(start); took > 45*time.Second {
		t.Errorf("demo --orders 20 took %s", took)
	}
	has(t, r.stdout, "payd demo summary", "orders:        60 paid, 60 SUCCESS in payd", "app tt0000000000tradedemo (trade):",
		"app tt0000000000tradeauto (trade, settled by Douyin):", "ledger check:  clean")
	// Every event written reached the built-in receiver: at least each
	// order's order.paid.
	m := regexp.MustCompile(`events: +(\d+) written, (\d+) delivered to the built-in receiver \(verified, in order, no duplicates\)`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] != m[2] {
		t.Fatalf("demo summary has no clean events line:\n%s", r.stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n < 60 {
		t.Errorf("demo wrote %d events for 60 paid orders, want at least 60", n)
	}
	e.run("demo", "--orders", "0").fails(t, "--orders: want at least 1")
}

// TestServe_secondOnSQLite: SQLite is single-replica. A second payd serve
// on the same file refuses to start, naming the running one (pid, host)
// and pointing to PostgreSQL, and leaves no replica record behind; once
// the first stops, a new one starts.
func TestServe_secondOnSQLite(t *testing.T) {
	e := newEnv(t).withSim()
	g := &globals{configPath: e.config, getenv: e.getenv, stdout: io.Discard, stderr: io.Discard}
	cfg, err := g.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	opts := daemon.Options{Log: daemon.NewLogger(cfg.Log, io.Discard)}
	d, err := daemon.Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	_, err = daemon.Start(context.Background(), cfg, opts)
	want := fmt.Sprintf("database %s is in use by another payd serve (pid %d on host %s): SQLite allows one payd serve at a time; stop that one, or set database.driver: postgres to run several replicas (payd apply beside it is fine)", e.db, os.Getpid(), host)
	if err == nil || err.Error() != want {
		t.Fatalf("second serve: %v\nwant %s", err, want)
	}
	if n := e.count("replicas"); n != 1 {
		t.Fatalf("%d replicas recorded, want the first alone", n)
	}
	// apply beside serve stays allowed.
	e.run("apply").ok(t)
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d2, err := daemon.Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("serve after the first stopped: %v", err)
	}
	if err := d2.Stop(); err != nil {
		t.Fatal(err)
	}

	t.Run("a failed start leaves no replica record", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		c := *cfg
		c.Server.AdminListen = busy.Addr().String()
		if _, err := daemon.Start(context.Background(), &c, opts); err == nil {
			t.Fatal("started on a busy admin listener")
		}
		if n := e.count("replicas"); n != 0 {
			t.Fatalf("%d replicas left behind by a failed start", n)
		}
	})
}

// TestGCPercent: serve collects at serveGCPercent unless GOGC says
// otherwise (the operator's value, applied by the runtime, stands).
func TestGCPercent(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if p, ok := gcPercent(getenv); !ok || p != serveGCPercent {
		t.Errorf("without GOGC: %d, %t; want %d", p, ok, serveGCPercent)
	}
	for _, v := range []string{"100", "off", "50"} {
		env["GOGC"] = v
		if _, ok := gcPercent(getenv); ok {
			t.Errorf("GOGC=%s: serve sets its own percent, want the operator's kept", v)
		}
	}
}
