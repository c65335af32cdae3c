package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/state"
)

// TestDeclare_limits: /dev/zero is refused with a clear error (not an
// out-of-memory crash), as is --config /dev/zero; a YAML file with a second
// document is refused; a CSV saved by Excel (UTF-8 BOM) is accepted.
func TestDeclare_limits(t *testing.T) {
	e := newEnv(t)
	e.run("declare", "-f", "/dev/zero").fails(t, "zero: larger than 64 MiB, the most a declare file may hold: split it into several files")
	e.runCtx(t.Context(), "--config", "/dev/zero", "status").fails(t, "config /dev/zero: larger than 1 MiB, the most a config file may hold")
	two := e.write("two.yaml", "orders: [{out_order_no: o1, total_amount: 5}]\n---\norders: [{out_order_no: o2, total_amount: 5}]\n")
	e.run("declare", "-f", two).fails(t, "two.yaml:2: a second YAML document (after ---): a declare file holds one; merge them or declare each file on its own")
	if n := e.count("orders"); n != 0 {
		t.Fatalf("%d orders after refused files", n)
	}
	bom := e.write("excel.csv", "\ufeffkind,order,total_amount\r\norder,x-1,100\r\n")
	has(t, e.run("declare", "-f", bom).ok(t).stdout, "1 order, 0 refunds, 0 settlements: 1 new or changed")
}

// TestMissingDatabase: a mistyped path makes no empty database. Every
// command but migrate and serve refuses a missing one, naming the path and
// payd migrate, and logs nothing.
func TestMissingDatabase(t *testing.T) {
	e := newEnvNoDB(t)
	wishes := e.write("w.yaml", "orders: [{out_order_no: o1, total_amount: 5}]\n")
	want := "open database: no payd database at " + e.db + ": the file does not exist; check database.dsn (or PAYD_DSN), or create it with payd migrate"
	for _, args := range [][]string{
		{"plan"}, {"status"}, {"status", "o-1"}, {"apply"}, {"events"},
		{"refund", "o-1", "--amount", "1", "--reason", "x"}, {"settle", "o-1"}, {"declare", "-f", wishes},
		{"retry", "refund", "k1"},
	} {
		r := e.run(args...)
		if r.code != 1 || r.err == nil || r.err.Error() != want {
			t.Fatalf("%v: exit %d, error %v\nwant %s", args, r.code, r.err, want)
		}
		if r.stdout != "" || r.stderr != "" {
			t.Fatalf("%v printed:\n%s\n%s", args, r.stdout, r.stderr)
		}
		if _, err := os.Stat(e.db); !os.IsNotExist(err) {
			t.Fatalf("%v created the database", args)
		}
	}
	r := e.run("migrate").ok(t)
	has(t, r.stdout, "database "+e.db+" (sqlite) is at schema version")
	r = e.run("plan").ok(t)
	if strings.Contains(r.stderr, "migration") {
		t.Fatalf("plan logged a migration on a migrated database: %s", r.stderr)
	}
}

// TestApply_interrupted: an apply cut short says so, counts what is still
// due and exits 130, whatever else happened in the pass.
func TestApply_interrupted(t *testing.T) {
	slow := strings.Replace(baseConfig, "  timeout: 5s\n", "  timeout: 5s\n  burst: 1\n  limits: {query_order: 4}\n", 1)
	e := newEnv(t, slow).withSim()
	for i := range 12 {
		no := fmt.Sprintf("o-%d", i)
		e.seedPaid(no, 1000)
		e.run("refund", no, "--amount", "100", "--reason", "x", "--key", "k"+no).ok(t)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for e.sim.Stats().Calls() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	r := e.runCtx(ctx, "--config", e.config, "apply")
	if r.code != 130 {
		t.Fatalf("interrupted apply: exit %d (%v), want 130\n%s", r.code, r.err, r.stdout)
	}
	has(t, r.stdout, "Apply interrupted after ", "still due. Run payd apply again")
	if strings.Contains(r.stdout, "Apply complete") {
		t.Fatalf("an interrupted apply claims to be complete:\n%s", r.stdout)
	}
}

// TestVersion: payd version and payd --version print the version, the
// commit, the Go version and the schema version, and need no config.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := newEnvNoDB(t).runCtx(t.Context(), args...).ok(t)
		has(t, r.stdout, "payd ", "\ncommit ", "\n"+runtime.Version()+"\n", fmt.Sprintf("schema version %d\n", state.SchemaVersion))
	}
}

// TestCancel: a parked refund that can never succeed is withdrawn with an
// event and a history line; plan then has nothing to say about it. A
// refund in flight is refused with the reason.
func TestCancel(t *testing.T) {
	e := newEnv(t).withSim()
	e.run("refund", "o-ghost", "--amount", "100", "--reason", "x", "--key", "ghost").ok(t)
	e.run("apply") // Douyin does not know o-ghost: parked
	r := e.run("cancel", "refund", "ghost", "--reason", "order never existed").ok(t)
	if r.stdout != "refund ghost: cancelled (100 fen, attempt 1)\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = e.run("plan")
	if r.code != 0 {
		t.Fatalf("plan after the cancel: exit %d\n%s", r.code, r.stdout)
	}
	has(t, r.stdout, "No changes.")
	r = e.run("status", "o-ghost").ok(t)
	has(t, r.stdout, "ghost   100     cancelled", "cancelled: order never existed", "refund.cancelled")
	has(t, e.run("status").ok(t).stdout, "cancelled  1", "No parked items.")

	// In flight: refused, nothing changed.
	e.seedPaid("o-1", 1000)
	e.run("refund", "o-1", "--amount", "100", "--reason", "x", "--key", "k1").ok(t)
	e.run("apply").ok(t)
	before := e.tables()
	e.run("cancel", "refund", "k1").fails(t, "cancel refund k1: refund k1 of order o-1 cannot be cancelled: attempt 1 is processing at Douyin and money may move; wait until payd status shows it succeeded or parked")
	if e.tables() != before {
		t.Fatal("a refused cancel changed the database")
	}
	e.run("cancel", "refund", "nope").fails(t, "cancel refund nope: no refund has that key (payd status ORDER lists an order's refunds)")
	e.run("cancel", "order", "o-1").fails(t, `cancel order: want "refund KEY" or "settlement ORDER"`)

	// A settlement: withdrawn, and settle_batch leaves the order alone.
	e.run("settle", "o-1", "--at", "2030-01-02").ok(t)
	has(t, e.run("cancel", "settlement", "o-1").ok(t).stdout, "settlement of order o-1: cancelled (number st")
}

// TestRefund_derivedKeyNotInErrors: a refund declared without --key is
// named in errors by its order and amount, not by the derived key the user
// never saw.
func TestRefund_derivedKeyNotInErrors(t *testing.T) {
	e := newEnv(t)
	e.run("declare", "-f", e.write("o.yaml", "orders: [{out_order_no: o-1, total_amount: 100}]\n")).ok(t)
	e.run("refund", "o-1", "--amount", "500", "--reason", "too much").
		fails(t, "refund o-1: declare refund of 500 fen of order o-1: refund 500 exceeds what remains of order o-1: 100 of 100 fen")
}

// TestConfigCmd: payd config prints the effective configuration with
// secrets masked; --log-level overrides log.level.
func TestConfigCmd(t *testing.T) {
	e := newEnv(t)
	r := e.run("config").ok(t)
	has(t, r.stdout, "app_id: "+testApp, "salt: '***'", "admin_token: '***'", "level: warn")
	for _, s := range []string{testSalt, testToken, testAdminToken} {
		if strings.Contains(r.stdout, s) {
			t.Fatalf("payd config printed a secret:\n%s", r.stdout)
		}
	}
	has(t, e.run("--log-level", "debug", "--log-format", "text", "config").ok(t).stdout, "level: debug", "format: text")
	e.run("--log-level", "loud", "config").fails(t, "config "+e.config+`: log.level: "loud": want debug, info, warn or error`)
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		438*time.Hour + 12*time.Minute + 4*time.Second: "18d6h",
		6*24*time.Hour + 23*time.Hour + 59*time.Minute: "6d23h",
		7 * 24 * time.Hour:          "7d",
		3*time.Hour + 5*time.Minute: "3h5m",
		10 * time.Second:            "10s",
		90 * time.Second:            "1m30s",
		-time.Second:                "0s",
	} {
		if got := api.HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%s) = %s, want %s", d, got, want)
		}
	}
}
