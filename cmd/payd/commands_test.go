package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

func TestMigrate(t *testing.T) {
	e := newEnv(t)
	want := fmt.Sprintf("database %s (sqlite) is at schema version %d\n", e.db, state.SchemaVersion)
	if r := e.run("migrate").ok(t); r.stdout != want {
		t.Fatalf("stdout %q, want %q", r.stdout, want)
	}
	// Running it again is a no-op on an up-to-date database.
	if r := e.run("migrate").ok(t); r.stdout != want {
		t.Fatalf("second run: stdout %q, want %q", r.stdout, want)
	}
	st := e.store()
	v, err := st.AppliedVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v != state.SchemaVersion {
		t.Fatalf("applied version %d, want %d", v, state.SchemaVersion)
	}
	e.run("migrate", "extra").fails(t, `unknown command "extra" for "payd migrate"`)
}

func TestConfigPath(t *testing.T) {
	e := newEnv(t)
	other := filepath.Join(e.dir, "other.yaml")
	if err := os.WriteFile(other, []byte(strings.Replace(baseConfig, "${TEST_DSN}", "${OTHER_DSN}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	otherDB := filepath.Join(e.dir, "other.db")
	e.vars["OTHER_DSN"] = otherDB

	t.Run("flag wins over PAYD_CONFIG", func(t *testing.T) {
		e.vars["PAYD_CONFIG"] = other
		defer delete(e.vars, "PAYD_CONFIG")
		r := e.runCtx(context.Background(), "--config", e.config, "migrate").ok(t)
		has(t, r.stdout, e.db)
	})
	t.Run("PAYD_CONFIG when no flag", func(t *testing.T) {
		e.vars["PAYD_CONFIG"] = other
		defer delete(e.vars, "PAYD_CONFIG")
		r := e.runCtx(context.Background(), "migrate").ok(t)
		has(t, r.stdout, otherDB)
	})
	t.Run("./config.yaml otherwise", func(t *testing.T) {
		t.Chdir(e.dir)
		r := e.runCtx(context.Background(), "migrate").ok(t)
		has(t, r.stdout, e.db)
	})
	t.Run("missing file names it", func(t *testing.T) {
		t.Chdir(t.TempDir())
		e.runCtx(context.Background(), "migrate").fails(t, "config: open config.yaml: no such file or directory (name the config file with --config FILE or PAYD_CONFIG, or run payd in the directory of config.yaml)")
	})
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  func(string) string
		unset string
		want  string
	}{
		{
			name:  "missing salt",
			unset: "PAYD_SALT",
			want:  "douyin.apps[0].salt: required",
		},
		{
			name:  "missing token",
			unset: "PAYD_TOKEN",
			want:  "douyin.apps[0].token: required",
		},
		{
			name: "bad field value",
			yaml: func(s string) string { return strings.Replace(s, "timeout: 5s", "timeout: five", 1) },
			want: "douyin.timeout",
		},
		{
			name: "unknown field",
			yaml: func(s string) string { return strings.Replace(s, "  timeout: 5s", "  timout: 5s", 1) },
			want: "timout",
		},
		{
			name: "bad log level",
			yaml: func(s string) string { return strings.Replace(s, "level: warn", "level: loud", 1) },
			want: "log.level",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := baseConfig
			if tc.yaml != nil {
				body = tc.yaml(body)
			}
			e := newEnvNoDB(t)
			e.write("config.yaml", body)
			if tc.unset != "" {
				delete(e.vars, tc.unset)
			}
			for _, args := range [][]string{{"migrate"}, {"status"}, {"refund", "o-1", "--amount", "1", "--reason", "x"}} {
				r := e.run(args...)
				if r.err == nil {
					t.Fatalf("%v: want an error naming %q", args, tc.want)
				}
				msg := r.err.Error()
				if !strings.HasPrefix(msg, "config "+e.config+": ") || !strings.Contains(msg, tc.want) {
					t.Fatalf("%v: error %q, want it to start with the file and name %q", args, msg, tc.want)
				}
				for _, secret := range []string{testSalt, testToken, testAdminToken} {
					if strings.Contains(msg+r.stdout+r.stderr, secret) {
						t.Fatalf("%v: output holds a secret: %s", args, msg)
					}
				}
			}
			if _, err := os.Stat(e.db); !os.IsNotExist(err) {
				t.Fatalf("a bad config must not create the database: %v", err)
			}
		})
	}
	t.Run("exact message for a missing secret", func(t *testing.T) {
		e := newEnv(t)
		delete(e.vars, "PAYD_SALT")
		e.run("migrate").fails(t, "config "+e.config+": douyin.apps[0].salt: required (the config reads it from PAYD_SALT: set it in the environment)")
	})
	t.Run("serve without admin token", func(t *testing.T) {
		e := newEnv(t)
		e.vars["PAYD_ADMIN_TOKEN"] = ""
		e.run("serve").fails(t, "config: server.admin_token: required (the config reads it from PAYD_ADMIN_TOKEN: set it in the environment)")
	})
}

func TestRefund(t *testing.T) {
	e := newEnv(t).withSim()
	e.seedPaid("o-1", 1000)

	r := e.run("refund", "o-1", "--amount", "200", "--reason", "size", "--key", "o-1-r1").ok(t)
	if want := "refund o-1-r1 of order o-1: 200 fen declared (phase pending, next number o-1-r1-1)\n"; r.stdout != want {
		t.Fatalf("stdout %q, want %q", r.stdout, want)
	}
	r = e.run("refund", "o-1", "--amount", "200", "--reason", "size", "--key", "o-1-r1").ok(t)
	if want := "refund o-1-r1 of order o-1: 200 fen already declared, unchanged (phase pending, next number o-1-r1-1)\n"; r.stdout != want {
		t.Fatalf("repeat: stdout %q, want %q", r.stdout, want)
	}
	if n := e.count("refunds"); n != 1 {
		t.Fatalf("%d refunds after declaring one twice", n)
	}

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"refund", "o-1", "--reason", "x"}, "--amount: required (fen)"},
			{[]string{"refund", "o-1", "--amount", "5"}, "--reason: required"},
			{[]string{"refund", "--amount", "5", "--reason", "x"}, "accepts 1 arg(s), received 0"},
			{[]string{"refund", "o-1", "--amount", "abc", "--reason", "x"}, `invalid argument "abc" for "--amount" flag: strconv.ParseInt: parsing "abc": invalid syntax`},
			{[]string{"refund", "o-1", "--amount", "0", "--reason", "x", "--key", "k0"}, "refund o-1: declare refund k0: amount: 0 is not positive"},
			{[]string{"refund", "o-1", "--amount", "-5", "--reason", "x", "--key", "kneg"}, "refund o-1: declare refund kneg: amount: -5 is not positive"},
			{[]string{"refund", "o-1", "--amount", "5", "--reason", "x", "--key", "bad key!"}, `refund o-1: declare refund bad key!: key: "bad key!" is not 1..60 of [0-9A-Za-z_-]`},
			{[]string{"refund", "o-1", "--amount", "5", "--reason", "x", "--app", "tt-other"}, "--app tt-other: not configured in douyin.apps"},
			{[]string{"refund", "o-1", "--amount", "300", "--reason", "other", "--key", "o-1-r1"}, `refund o-1: declare refund o-1-r1: idempotency key reused with different content: key o-1-r1 was declared for order o-1, amount 200, reason "size"`},
		}
		for _, tc := range tests {
			e.run(tc.args...).fails(t, tc.want)
		}
		if n := e.count("refunds"); n != 1 {
			t.Fatalf("%d refunds after bad input, want 1", n)
		}
	})

	// Learn the order's total: then a refund beyond what remains is refused.
	e.run("apply").ok(t)
	e.run("refund", "o-1", "--amount", "801", "--reason", "too much", "--key", "o-1-r2").
		fails(t, "refund o-1: declare refund o-1-r2: refund 801 exceeds what remains of order o-1: 800 of 1000 fen")
	e.run("refund", "o-1", "--amount", "800", "--reason", "the rest", "--key", "o-1-r3").ok(t)
	if n := e.count("refunds"); n != 2 {
		t.Fatalf("%d refunds, want 2", n)
	}
}

func TestRefund_unknownOrderIsParked(t *testing.T) {
	e := newEnv(t).withSim()
	e.run("refund", "o-ghost", "--amount", "100", "--reason", "x", "--key", "ghost").ok(t)
	// An apply that parks an item names it and exits 2: something needs you.
	r := e.run("apply")
	if r.code != 2 {
		t.Fatalf("apply that parked: exit %d (%v), want 2\n%s", r.code, r.err, r.stdout)
	}
	has(t, r.stdout, "o-ghost query_order o-ghost: not_found", "o-ghost park_refund ghost-1: local",
		"Apply complete: 1 order, 2 actions, 0 errors, 1 parked in ",
		"Parked by this pass, waiting for you (1):\n  ! refund ghost (100 fen) of order o-ghost: Douyin does not know order o-ghost\n      then: payd retry refund ghost\n")
	// plan shows it under its own heading and exits 2, never "No changes".
	r = e.run("plan")
	if r.code != 2 || strings.Contains(r.stdout, "No changes") {
		t.Fatalf("plan with a parked item: exit %d\n%s", r.code, r.stdout)
	}
	has(t, r.stdout, "Parked, waiting for you (1):", "then: payd retry refund ghost", "Plan: 0 to do now, 0 scheduled, 1 parked.")
	r = e.run("status").ok(t)
	has(t, r.stdout, "PARKED", "! refund ghost (100 fen) of order o-ghost: Douyin does not know order o-ghost\n      then: payd retry refund ghost\n")
	r = e.run("status", "o-ghost").ok(t)
	has(t, r.stdout, "status:       NOT_FOUND", "Douyin does not know order o-ghost", "refund.parked")
	// Nothing was sent to create a refund for it.
	if n := e.sim.Stats().ByAPI["create_refund"]; len(n) != 0 {
		t.Fatalf("create_refund called for an unknown order: %v", n)
	}
	// And a new wish on it is refused with the reason.
	e.run("refund", "o-ghost", "--amount", "100", "--reason", "again", "--key", "ghost2").
		fails(t, "refund o-ghost: declare refund ghost2: order o-ghost is NOT_FOUND at Douyin: nothing to refund")
}

func TestSettle(t *testing.T) {
	e := newEnv(t).withSim()
	e.seedPaid("o-1", 1000)
	r := e.run("settle", "o-1", "--at", "2030-01-02", "--receiver", "m-1:100").ok(t)
	has(t, r.stdout, "settlement of order o-1 created (phase pending, number st")
	r = e.run("settle", "o-1", "--at", "2030-01-02", "--receiver", "m-1:100").ok(t)
	has(t, r.stdout, "settlement of order o-1 unchanged (phase pending")
	r = e.run("settle", "o-1", "--at", "2030-01-02", "--receiver", "m-1:200").ok(t)
	has(t, r.stdout, "settlement of order o-1 changed (phase pending")
	if n := e.count("settlements"); n != 1 {
		t.Fatalf("%d settlements, want 1", n)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"settle", "o-1", "--at", "tomorrow"}, `--at "tomorrow": want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD`},
		{[]string{"settle", "o-1", "--receiver", "m1"}, `--receiver "m1": want MERCHANT_UID:FEN`},
		{[]string{"settle", "o-1", "--receiver", "m1:-3"}, `--receiver "m1:-3": amount "-3": want a positive whole number of fen`},
		{[]string{"settle", "o-1", "--receiver", "m1:1", "--receiver", "m2:1", "--receiver", "m3:1", "--receiver", "m4:1", "--receiver", "m5:1"}, "settle o-1: declare settlement of order o-1: receivers: 5 given, at most 4"},
		{[]string{"settle"}, "accepts 1 arg(s), received 0"},
	}
	for _, tc := range tests {
		e.run(tc.args...).fails(t, tc.want)
	}
	st := e.store()
	h, err := st.History(context.Background(), testApp, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if h.Settlement == nil || h.Settlement.DueAt == nil || h.Settlement.DueAt.Format("2006-01-02") != "2030-01-02" {
		t.Fatalf("settlement not as declared: %+v", h.Settlement)
	}
}

const declareYAML = `orders:
  - {out_order_no: d-1, total_amount: 1000}
  - {out_order_no: d-2, total_amount: 2000}
refunds:
  - {order: d-1, key: d-1-r1, amount: 200, reason: size}
settlements:
  - order: d-2
    at: 2030-01-01
    receivers: [{merchant_uid: m-1, amount: 100}]
`

const declareCSV = `kind,order,total_amount,key,amount,reason,at,receivers
order,c-1,1000,,,,,
refund,c-1,,c-1-r1,300,size,,
settlement,c-1,,,,,2030-01-01,m-1:100;m-2:50
`

func TestDeclare(t *testing.T) {
	for _, tc := range []struct {
		name, file, body, summary string
		orders, refunds, sets     int64
	}{
		{"yaml", "wishes.yaml", declareYAML, "2 orders, 1 refund, 1 settlement", 2, 1, 1},
		{"csv", "wishes.csv", declareCSV, "1 order, 1 refund, 1 settlement", 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			path := e.write(tc.file, tc.body)
			r := e.run("declare", "-f", path).ok(t)
			n := tc.orders + tc.refunds + tc.sets
			if want := fmt.Sprintf("%s: %s: %d new or changed, 0 unchanged\n", path, tc.summary, n); r.stdout != want {
				t.Fatalf("stdout %q, want %q", r.stdout, want)
			}
			before := e.tables()
			r = e.run("declare", "-f", path).ok(t)
			if want := fmt.Sprintf("%s: %s: 0 new or changed, %d unchanged\n", path, tc.summary, n); r.stdout != want {
				t.Fatalf("second apply: stdout %q, want %q", r.stdout, want)
			}
			if after := e.tables(); after != before {
				t.Fatalf("applying twice changed the database:\n before %v\n after  %v", before, after)
			}
			if got := [3]int64{e.count("orders"), e.count("refunds"), e.count("settlements")}; got != [3]int64{tc.orders, tc.refunds, tc.sets} {
				t.Fatalf("rows %v", got)
			}
			// The receivers arrive as written.
			var receivers string
			if err := e.store().DB().Raw("SELECT receivers FROM settlements").Scan(&receivers).Error; err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(receivers, `"merchant_uid":"m-1","amount":100`) {
				t.Fatalf("receivers stored as %s", receivers)
			}
		})
	}
}

// tables is a fingerprint of every row payd's declare writes.
func (e *env) tables() string {
	e.t.Helper()
	st := e.store()
	var b strings.Builder
	for _, q := range []string{
		"SELECT app_id, out_order_no, total_amount, status, version FROM orders ORDER BY id",
		"SELECT idem_key, amount, reason, phase, version FROM refunds ORDER BY id",
		"SELECT out_settle_no, phase, receivers, version FROM settlements ORDER BY id",
		"SELECT COUNT(*) FROM events",
	} {
		rows, err := st.DB().Raw(q).Rows()
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

func TestDeclare_badFiles(t *testing.T) {
	tests := []struct {
		name, file, body, want string
	}{
		{"bad row in the middle names its line", "w.yaml", `orders:
  - {out_order_no: d-1, total_amount: 1000}
refunds:
  - {order: d-1, key: d-1-r1, amount: 200, reason: size}
  - {order: d-1, key: d-1-r2, amount: -5, reason: size}
`, "w.yaml:5: refund of d-1: declare refund d-1-r2: amount: -5 is not positive (nothing from %s was written)"},
		{"amount beyond the order", "w.yaml", `orders:
  - {out_order_no: d-1, total_amount: 1000}
refunds:
  - {order: d-1, key: d-1-r1, amount: 600, reason: a}
  - {order: d-1, key: d-1-r2, amount: 600, reason: b}
`, "w.yaml:5: refund of d-1: declare refund d-1-r2: refund 600 exceeds what remains of order d-1: 400 of 1000 fen (nothing from %s was written)"},
		{"unknown field", "w.yaml", `refunds:
  - {order: d-1, key: k, amount: 1, reason: r}
  - {order: d-1, key: k2, amout: 1, reason: r}
`, `w.yaml:3: refunds: unknown field "amout" (want app_id, order, key, amount, reason)`},
		{"wrong type", "w.yaml", `refunds:
  - order: d-1
    amount: lots
`, "w.yaml:2: refunds: line 3: cannot unmarshal !!str `lots` into int64"},
		{"receiver field misspelt", "w.yaml", "settlements:\n  - order: d-1\n    receivers:\n      - {merchant_id: m1, amount: 5}\n", `w.yaml:4: settlements: receivers: unknown field "merchant_id" (want merchant_uid, amount)`},
		{"unknown section", "w.yaml", "refundz: []\n", `w.yaml:1: unknown section "refundz" (want orders, refunds, settlements or fulfilments)`},
		{"not yaml", "w.yaml", "orders: [\n", "w.yaml: yaml: line 1: did not find expected node content"},
		{"empty", "w.yaml", "", "w.yaml: no declarations found"},
		{"bad date", "w.yaml", "settlements:\n  - {order: d-1, at: soon}\n", `w.yaml:2: settlement of d-1: at "soon": want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD`},
		{"csv bad number", "w.csv", "kind,order,amount,reason\nrefund,d-1,200,a\nrefund,d-1,12x,b\n", `w.csv:3: refund: amount "12x": want a whole number of fen`},
		{"csv bad kind", "w.csv", "kind,order\norder,d-1\nrefnd,d-1\n", `w.csv:3: kind "refnd": want order, refund, settlement or fulfil`},
		{"csv unknown column", "w.csv", "kind,ordr\n", `w.csv:1: unknown column "ordr" (want kind, app_id, order, total_amount, key, amount, reason, at, receivers, desc, item)`},
		{"csv too many fields", "w.csv", "kind,order\norder,d-1,extra\n", "w.csv:2: 3 fields, header has 2"},
		{"csv bad receiver", "w.csv", "kind,order,receivers\nsettlement,d-1,m1\n", `w.csv:2: settlement: receiver "m1": want MERCHANT_UID:FEN`},
		{"csv row bad at apply", "w.csv", "kind,order,total_amount,key,amount,reason\norder,d-1,1000,,,\nrefund,d-1,,k1,100,a\nrefund,d-1,,k 2,100,a\n", `w.csv:4: refund of d-1: declare refund k 2: key: "k 2" is not 1..60 of [0-9A-Za-z_-] (nothing from %s was written)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			path := e.write(tc.file, tc.body)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, path)
			}
			e.run("declare", "-f", path).fails(t, want)
			if _, err := os.Stat(e.db); err == nil {
				if got := e.count("orders") + e.count("refunds") + e.count("settlements") + e.count("events"); got != 0 {
					t.Fatalf("%d rows written by a bad file", got)
				}
			}
		})
	}
	t.Run("missing -f", func(t *testing.T) {
		newEnv(t).run("declare").fails(t, "-f FILE: required")
	})
	t.Run("missing file", func(t *testing.T) {
		e := newEnv(t)
		p := filepath.Join(e.dir, "nope.yaml")
		e.run("declare", "-f", p).fails(t, "declare: open "+p+": no such file or directory")
	})
}

func TestPlan(t *testing.T) {
	e := newEnv(t).withSim()
	r := e.run("plan")
	if r.err != nil || r.code != 0 {
		t.Fatalf("empty plan: code %d, err %v", r.code, r.err)
	}
	has(t, r.stdout, "No changes. Every order is in its desired state.")
	if r := e.run("plan", "extra"); r.code != 1 {
		t.Fatalf("plan with an argument: exit code %d, want 1 (an error, not a plan)", r.code)
	}
	e.run("plan", "extra").fails(t, `unknown command "extra" for "payd plan"`)
	e.run("plan", "--jsn").fails(t, "unknown flag: --jsn")

	e.seedPaid("o-1", 1000)
	e.run("refund", "o-1", "--amount", "100", "--reason", "x", "--key", "k1").ok(t)
	r = e.run("plan")
	if r.code != 2 {
		t.Fatalf("plan with work due: exit code %d (err %v), want 2", r.code, r.err)
	}
	has(t, r.stdout, "Due now (1):", "? query_order", "o-1", "Plan: 1 to do now")
	r = e.run("plan", "--json")
	if r.code != 2 {
		t.Fatalf("plan --json: exit code %d, want 2", r.code)
	}
	var rep api.PlanReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("plan --json is not JSON: %v\n%s", err, r.stdout)
	}
	if len(rep.Due) != 1 || rep.Due[0].Action != string(reconcile.KindQueryOrder) {
		t.Fatalf("due %+v", rep.Due)
	}
	// plan sends nothing.
	if c := e.sim.Stats().Calls(); c != 0 {
		t.Fatalf("plan made %d Douyin calls", c)
	}
	// After apply only scheduled work remains: exit 0.
	e.run("apply").ok(t)
	r = e.run("plan")
	if r.code != 0 {
		t.Fatalf("after apply: exit code %d, want 0\n%s", r.code, r.stdout)
	}
	has(t, r.stdout, "Scheduled (1):", "query_refund", "k1-1")
}

func TestApply(t *testing.T) {
	e := newEnv(t).withSim()
	e.seedPaid("o-1", 1000)
	e.seedPaid("o-2", 500)
	e.run("refund", "o-1", "--amount", "100", "--reason", "x", "--key", "k1").ok(t)
	e.run("refund", "o-2", "--amount", "500", "--reason", "all", "--key", "k2").ok(t)
	r := e.run("apply").ok(t)
	has(t, r.stdout, "o-1 create_refund k1-1: ok", "o-2 create_refund k2-1: ok", "Apply complete: 2 orders, 4 actions, 0 errors, 0 parked in ")
	if n := e.count("replicas"); n != 0 {
		t.Fatalf("%d replicas recorded after apply, want 0 (it shares the budget only while it runs)", n)
	}
	// Douyin's ledger has each refund exactly once.
	refunds := 0
	for _, o := range e.sim.Ledger().Orders {
		for _, rf := range o.Refunds {
			refunds++
			if rf.Executions > 1 {
				t.Fatalf("refund %s executed %d times", rf.OutRefundNo, rf.Executions)
			}
		}
	}
	if refunds != 2 {
		t.Fatalf("ledger has %d refunds, want 2", refunds)
	}
	// Nothing due: a second apply does nothing.
	r = e.run("apply").ok(t)
	has(t, r.stdout, "Apply complete: 0 orders, 0 actions, 0 errors, 0 parked in ")
	if p := e.sim.Check(); len(p) != 0 {
		t.Fatalf("ledger check: %v", p)
	}

	t.Run("douyin unreachable", func(t *testing.T) {
		e := newEnv(t)
		e.vars["TEST_DOUYIN_URL"] = "http://127.0.0.1:1"
		e.run("refund", "o-1", "--amount", "100", "--reason", "x", "--key", "k1").ok(t)
		r := e.run("apply")
		if r.err != nil {
			t.Fatalf("apply: %v", r.err)
		}
		has(t, r.stdout, "o-1 query_order o-1: ")
		if s := e.summary(); s.Refunds[state.PhasePending] != 1 {
			t.Fatalf("refund moved without Douyin: %+v", s.Refunds)
		}
	})
}

func TestStatus(t *testing.T) {
	e := newEnv(t).withSim()
	r := e.run("status").ok(t)
	has(t, r.stdout, "ORDERS", "No parked items.")
	e.seedPaid("o-1", 1000)
	e.run("refund", "o-1", "--amount", "100", "--reason", "x", "--key", "k1").ok(t)
	e.run("apply").ok(t)
	r = e.run("status").ok(t)
	has(t, r.stdout, "SUCCESS", "REFUNDS", "processing  1      100", "No parked items.")
	r = e.run("status", "o-1").ok(t)
	has(t, r.stdout, "Order o-1 (app "+testApp+")", "status:       SUCCESS", "total:        1000 fen", "k1  ", "create_refund", "query_order")
	r = e.run("status", "o-1", "--json").ok(t)
	var h map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	r = e.run("status", "--json").ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || h["summary"] == nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	e.run("status", "o-none").fails(t, "status o-none: history of order o-none: not found")
	e.run("status", "a", "b").fails(t, "accepts at most 1 arg(s), received 2")
}

// TestApply_forgetsDeadLocalReplicas: a process joining the replicas
// removes those of its host whose process is gone (a killed payd the
// supervisor restarted), and keeps live ones and other hosts'.
func TestApply_forgetsDeadLocalReplicas(t *testing.T) {
	e := newEnv(t).withSim()
	e.run("migrate").ok(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	ghost := fmt.Sprintf("%s/%d", host, dead.Process.Pid)
	live := fmt.Sprintf("%s/%d", host, os.Getppid())
	other := "another-host/" + strconv.Itoa(dead.Process.Pid)
	st := e.store()
	for _, o := range []string{ghost, live, other} {
		if _, err := st.Heartbeat(context.Background(), o, time.Now(), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	e.run("apply").ok(t)
	owners, err := st.ReplicaOwners(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{other, live}
	sort.Strings(want)
	if strings.Join(owners, ",") != strings.Join(want, ",") {
		t.Fatalf("replicas after apply: %v, want %s and %s (the dead %s forgotten, apply gone)", owners, other, live, ghost)
	}
}
