package main

import (
	"testing"

	"github.com/payd/payd/internal/api"
)

// TestJSONOutputs_publicKeys walks every --json output and fails on a key
// that is not snake_case or names an internal field.
func TestJSONOutputs_publicKeys(t *testing.T) {
	e := newEnv(t).withSim()
	e.seedPaid("o-1", 1000)
	e.run("refund", "o-1", "--amount", "100", "--reason", "x", "--key", "k1").ok(t)
	e.run("settle", "o-1", "--at", "2030-01-02", "--receiver", "m-1:100").ok(t)
	e.run("refund", "o-ghost", "--amount", "100", "--reason", "x", "--key", "ghost").ok(t)
	e.run("apply")
	for _, args := range [][]string{
		{"status", "--json"},
		{"status", "o-1", "--json"},
		{"status", "o-ghost", "--json"},
		{"plan", "--json"},
		{"events", "--json"},
	} {
		r := e.run(args...)
		if r.code == 1 {
			t.Fatalf("%v: %v\n%s", args, r.err, r.stderr)
		}
		bad, err := api.BadKeys([]byte(r.stdout))
		if err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", args, err, r.stdout)
		}
		if len(bad) > 0 {
			t.Fatalf("%v: keys not fit for a public answer: %v\n%s", args, bad, r.stdout)
		}
	}
}
