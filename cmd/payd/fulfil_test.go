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
