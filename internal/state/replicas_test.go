package state

import (
	"context"
	"fmt"
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

func TestNextPlace(t *testing.T) {
	for _, c := range []struct {
		name  string
		cur   int
		taken []int
		live  int
		want  int
	}{
		{"first to join", -1, nil, 1, 0},
		{"joins after 0 and 1", -1, []int{0, 1}, 3, 2},
		{"joins into a freed place", -1, []int{0, 2}, 3, 1},
		{"keeps its place", 1, []int{0, 2}, 3, 1},
		{"the highest above a free place moves down", 2, []int{0}, 2, 1},
		{"not the highest: stays", 1, []int{3}, 2, 1},
		{"alone at 1: moves to 0", 1, nil, 1, 0},
		{"at live but nothing lower free: stays", 2, []int{0, 1}, 3, 2},
	} {
		if got := nextPlace(c.cur, c.taken, c.live); got != c.want {
			t.Errorf("%s: nextPlace(%d, %v, %d) = %d, want %d", c.name, c.cur, c.taken, c.live, got, c.want)
		}
	}
}

// TestStore_HeartbeatPlaceStable: places are kept for life; a replica that
// restarts (its predecessor forgotten) takes the freed place and nobody
// else moves; when one leaves for good the highest moves down into its
// place; two joining at once get two places.
func TestStore_HeartbeatPlaceStable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const ttl = 10 * time.Second
		beat := func(owner string, wantPlace, wantN int) {
			t.Helper()
			p, n, err := e.HeartbeatPlace(ctx, owner, e.clock.Now(), ttl)
			must(t, err)
			if p != wantPlace || n != wantN {
				t.Fatalf("%s: place %d of %d, want %d of %d", owner, p, n, wantPlace, wantN)
			}
		}
		// Names that sort in another order than they join.
		beat("host/300", 0, 1)
		beat("host/200", 1, 2)
		beat("host/100", 2, 3)
		beat("host/300", 0, 3)
		// host/200 is killed and restarted as host/999.
		must(t, e.Leave(ctx, "host/200"))
		beat("host/999", 1, 3)
		beat("host/300", 0, 3)
		beat("host/100", 2, 3)
		// host/300 leaves for good: host/100, the highest, moves into 0.
		must(t, e.Leave(ctx, "host/300"))
		beat("host/999", 1, 3)
		beat("host/100", 0, 2)
		beat("host/999", 1, 2)
		// A replica recorded before places (schema 15) gets one at its
		// next heartbeat, and is counted once.
		must(t, e.DB().Create(&Replica{Owner: "host/old", SeenAt: e.clock.Now()}).Error)
		beat("host/old", 2, 3)
		must(t, e.Leave(ctx, "host/old"))
		// Two join at once.
		other := e.reopen(t)
		errs := make(chan error, 2)
		places := make(chan int, 2)
		for i, st := range []*Store{e.Store, other} {
			go func() {
				p, _, err := st.HeartbeatPlace(ctx, fmt.Sprintf("join/%d", i), e.clock.Now(), ttl)
				errs <- err
				places <- p
			}()
		}
		must(t, <-errs)
		must(t, <-errs)
		if a, b := <-places, <-places; a == b || min(a, b) != 2 || max(a, b) != 3 {
			t.Fatalf("two replicas joining at once took places %d and %d, want 2 and 3", a, b)
		}
	})
}
