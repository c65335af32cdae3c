package main

import (
	"strings"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	// A short poll, so a second apply finds the refund's answer due.
	e := newEnv(t, strings.Replace(baseConfig, "  jitter: 0\n", "  jitter: 0\n  poll: [\"10ms\"]\n", 1)).withSim()
	e.run("refund", "o-late", "--amount", "300", "--reason", "x", "--key", "late").ok(t)
	if r := e.run("apply"); r.code != 2 { // Douyin does not know o-late yet: parked
		t.Fatalf("apply that parked: exit %d, want 2", r.code)
	}
	has(t, e.run("status").ok(t).stdout, "! refund late (300 fen) of order o-late: Douyin does not know order o-late")

	// The order turns up at Douyin (it was created elsewhere); the operator retries.
	e.seedPaid("o-late", 1000)
	r := e.run("retry", "refund", "late").ok(t)
	has(t, r.stdout, "refund late: attempt 2 pending as late-2")
	e.run("apply").ok(t)
	time.Sleep(50 * time.Millisecond)
	e.run("apply").ok(t)
	has(t, e.run("status", "o-late").ok(t).stdout, "status:       SUCCESS", "late    300     succeeded  2")
	if got := e.sim.Ledger().Orders[0].RefundedAmount; got != 300 {
		t.Fatalf("ledger refunded %d, want 300", got)
	}

	e.run("retry", "refund", "late").fails(t, "retry refund late: refund late has succeeded: only a parked refund can be retried")
	e.run("retry", "refund", "nope").fails(t, "retry refund nope: no refund has that key")
	e.run("retry", "order", "o-late").fails(t, `retry order: want "refund KEY" or "settlement ORDER"`)
	e.run("retry", "settlement", "o-late").fails(t, "retry settlement of order o-late: no such order or no settlement declared for it")
}
