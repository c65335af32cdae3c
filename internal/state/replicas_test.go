package state

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestStore_Heartbeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const ttl = 15 * time.Second
		beat := func(owner string, want int) {
			t.Helper()
			n, err := e.Heartbeat(ctx, owner, e.clock.Now(), ttl)
			must(t, err)
			if n != want {
				t.Fatalf("heartbeat of %s at %s: %d replicas alive, want %d", owner, e.clock.Now().Sub(t0), n, want)
			}
		}
		beat("a", 1)
		beat("b", 2)
		beat("a", 2) // a repeat is not a new replica
		e.clock.Advance(10 * time.Second)
		beat("a", 2) // b was heard of 10 s ago
		e.clock.Advance(10 * time.Second)
		beat("a", 1) // b silent for 20 s: gone
		beat("b", 2) // and back
		must(t, e.Leave(ctx, "b"))
		beat("a", 1)
		must(t, e.Leave(ctx, "nobody")) // leaving twice, or never joined, is fine

		// Another Store on the same database sees the same replicas.
		other := e.reopen(t)
		if n, err := other.Heartbeat(ctx, "c", e.clock.Now(), ttl); err != nil || n != 2 {
			t.Fatalf("second store: %d, %v; want 2 (a and c)", n, err)
		}

		for _, bad := range []struct {
			owner string
			ttl   time.Duration
			want  string
		}{
			{"", ttl, `heartbeat: owner: "" is not 1..64 bytes`},
			{strings.Repeat("x", 65), ttl, "is not 1..64 bytes"},
			{"a", 0, "heartbeat: ttl: 0s is not positive"},
		} {
			_, err := e.Heartbeat(ctx, bad.owner, e.clock.Now(), bad.ttl)
			if err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("Heartbeat(%q, %s) = %v, want an error containing %q", bad.owner, bad.ttl, err, bad.want)
			}
		}
	})
}
