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

// TestRetryCancel_itemSettlement: payd retry and cancel settlement take
// --item for an order settled item by item; without it, or with an item
// order that is not one of the order's settlements, they fail naming the
// order's item settlements and the flag, and nothing changes.
func TestRetryCancel_itemSettlement(t *testing.T) {
	e := newEnv(t).withSim()
	e.seedPaid("o-1", 1000)
	e.run("settle", "o-1", "--item", "it-1").ok(t)
	e.run("settle", "o-1", "--item", "it-2").ok(t)
	if r := e.run("apply"); r.code != 2 { // an ecpay app settles whole orders: both parked
		t.Fatalf("apply that parked: exit %d\n%s", r.code, r.stdout)
	}
	has(t, e.run("status").ok(t).stdout, "then: payd retry settlement o-1 --item it-1 --app "+testApp)
	items := "its item settlements: it-1 (parked), it-2 (parked)"
	e.run("retry", "settlement", "o-1").fails(t, "retry settlement of order o-1: order o-1 is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); "+items)
	e.run("cancel", "settlement", "o-1").fails(t, "cancel settlement of order o-1: order o-1 is settled item by item: name the item order with --item ITEM_ORDER_ID (admin API: \"item_order_id\"); "+items)
	e.run("retry", "settlement", "o-1", "--item", "it-9").fails(t, "retry settlement of item order it-9 of order o-1: item order it-9 is not one of the settlements of order o-1; "+items)
	e.run("cancel", "refund", "k", "--item", "it-1").fails(t, "--item names the item order of a settlement: cancel refund KEY takes none")
	e.run("retry", "settlement", "o-404", "--item", "it-1").fails(t, "retry settlement of item order it-1 of order o-404: no such order or no settlement declared for it")

	has(t, e.run("retry", "settlement", "o-1", "--item", "it-1").ok(t).stdout, "settlement of item order it-1 of order o-1: attempt 2 pending as st")
	has(t, e.run("cancel", "settlement", "o-1", "--item", "it-2", "--reason", "settled by hand").ok(t).stdout, "settlement of item order it-2 of order o-1: cancelled (number st")
	e.run("retry", "settlement", "o-1", "--item", "it-2").fails(t, "retry settlement of item order it-2 of order o-1: settlement of item order it-2 of order o-1 was cancelled: only a parked settlement can be retried")
	out := e.run("status", "o-1").ok(t).stdout
	has(t, out, "it-1", "pending", "it-2", "cancelled", "cancelled: settled by hand", "settlement.cancelled")
}
