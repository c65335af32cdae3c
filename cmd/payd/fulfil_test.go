package main

import (
	"strings"
	"testing"
)

func TestFulfil(t *testing.T) {
	e := newEnv(t).withSim()
	e.seedPaid("o-1", 1000)
	r := e.run("fulfil", "o-1", "--at", "2026-01-02").ok(t)
	has(t, r.stdout, "fulfilment of order o-1 created (fulfilled at 2026-01-02T00:00:00Z)")
	r = e.run("fulfil", "o-1").ok(t)
	has(t, r.stdout, "fulfilment of order o-1 unchanged (fulfilled at 2026-01-02T00:00:00Z)")
	r = e.run("fulfil", "o-1", "--item", "it-7").ok(t)
	has(t, r.stdout, "fulfilment of order o-1 item it-7 created")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fulfil", "o-1", "--at", "soon"}, `--at "soon": want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD`},
		{[]string{"fulfil", "o-1", "--item", "a b"}, `fulfil o-1: declare fulfilment of order o-1: item_order_id: "a b" is not 1..64 printable characters without spaces (Douyin's item_order_id)`},
		{[]string{"fulfil", "o-1", "--app", "tt-nope"}, "--app tt-nope: not configured in douyin.apps"},
	} {
		e.run(tc.args...).fails(t, tc.want)
	}
	if r := e.run("fulfil", "o-1", "--item", "it-8", "--at", "2999-01-01"); r.err == nil ||
		!strings.Contains(r.err.Error(), "fulfil o-1: declare fulfilment of order o-1: fulfilled_at: 2999-01-01T00:00:00Z is in the future") {
		t.Fatalf("a fulfilment in the future: %v", r.err)
	}
	if n := e.count("fulfilments"); n != 2 {
		t.Fatalf("%d fulfilments, want 2", n)
	}
}

// TestDeclare_fulfilments: declare files carry fulfilments (YAML
// fulfilments, CSV kind fulfil); a bad one names its line and writes nothing.
func TestDeclare_fulfilments(t *testing.T) {
	e := newEnv(t)
	y := e.write("f.yaml", "orders:\n  - {out_order_no: d-1, total_amount: 1000}\nfulfilments:\n  - {order: d-1, at: 2026-01-02}\n  - {order: d-1, item: it-1}\n")
	r := e.run("declare", "-f", y).ok(t)
	has(t, r.stdout, "1 order, 0 refunds, 0 settlements, 2 fulfilments: 3 new or changed, 0 unchanged")
	c := e.write("f.csv", "kind,order,item,at\nfulfil,d-1,it-2,2026-01-03\nfulfil,d-1,it-1,\n")
	r = e.run("declare", "-f", c).ok(t)
	has(t, r.stdout, "0 orders, 0 refunds, 0 settlements, 2 fulfilments: 1 new or changed, 1 unchanged")
	if n := e.count("fulfilments"); n != 3 {
		t.Fatalf("%d fulfilments, want 3", n)
	}
	bad := e.write("bad.csv", "kind,order,item,at\nfulfil,d-1,it-3,\nfulfil,d-1,a b,\n")
	e.run("declare", "-f", bad).fails(t, `bad.csv:3: fulfilment of d-1: declare fulfilment of order d-1: item_order_id: "a b" is not 1..64 printable characters without spaces (Douyin's item_order_id) (nothing from `+bad+` was written)`)
	e.run("declare", "-f", e.write("at.yaml", "fulfilments:\n  - {order: d-1, at: soon}\n")).fails(t, `at.yaml:2: fulfilment of d-1: at "soon": want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD`)
	if n := e.count("fulfilments"); n != 3 {
		t.Fatalf("%d fulfilments after the bad files, want 3", n)
	}
}

// TestSettle_item: payd settle --item declares the settlement of one item
// order; the order can then not be settled whole as well.
func TestSettle_item(t *testing.T) {
	e := newEnv(t).withSim()
	e.seedPaid("o-1", 1000)
	has(t, e.run("settle", "o-1", "--item", "it-1").ok(t).stdout, "settlement of order o-1 item it-1 created (phase pending, number st")
	has(t, e.run("settle", "o-1", "--item", "it-2").ok(t).stdout, "settlement of order o-1 item it-2 created")
	e.run("settle", "o-1").fails(t, "settle o-1: declare settlement of order o-1: item_order_id: order o-1 is settled item by item (2 item settlements): declare the settlement of each item order, or cancel those first")
	if n := e.count("settlements"); n != 2 {
		t.Fatalf("%d settlements, want 2", n)
	}
}
