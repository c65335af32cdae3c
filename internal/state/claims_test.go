package state

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

// TestStore_ClaimFair: app "big" has a backlog due before anything of app
// "small"; a claim by quota still takes small's orders; of big's it takes
// the oldest and the newest due (half each, what was just hinted); the
// others' quota takes only apps not listed.
func TestStore_ClaimFair(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		due := func(app, no string, ago time.Duration) int64 {
			o, _, err := e.UpsertOrder(ctx, OrderInput{AppID: app, OutOrderNo: no, TotalAmount: 100, Status: OrderSuccess}, now)
			must(t, err)
			o.NextActionAt = ptr(now.Add(-ago))
			must(t, e.UpdateOrder(ctx, o))
			return o.ID
		}
		var big []int64
		for i := range 10 {
			big = append(big, due("big", fmt.Sprintf("b%d", i), time.Hour-time.Duration(i)*time.Minute))
		}
		small := []int64{due("small", "s0", time.Minute), due("small", "s1", 0)}
		other := due("unlisted", "u0", 2*time.Hour)

		claims, _, err := e.ClaimFair(ctx, now, Quota{Apps: map[string]int{"big": 3, "small": 3}}, time.Minute, "w1", nil)
		must(t, err)
		got := map[string][]int64{}
		for _, c := range claims {
			got[c.AppID] = append(got[c.AppID], c.OrderID)
		}
		sort.Slice(got["big"], func(i, j int) bool { return got["big"][i] < got["big"][j] })
		sort.Slice(got["small"], func(i, j int) bool { return got["small"][i] < got["small"][j] })
		if want := []int64{big[0], big[1], big[9]}; fmt.Sprint(got["big"]) != fmt.Sprint(want) || fmt.Sprint(got["small"]) != fmt.Sprint(small) || len(got) != 2 {
			t.Fatalf("claimed %v; want big's two oldest and newest %v, small's %v and nothing unlisted", got, want, small)
		}
		claims, _, err = e.ClaimFair(ctx, now, Quota{Apps: map[string]int{"big": 0, "small": 1}, Others: 5}, time.Minute, "w1", nil)
		must(t, err)
		if len(claims) != 1 || claims[0].OrderID != other || claims[0].AppID != "unlisted" {
			t.Fatalf("claims %+v; want only the unlisted app's order %d", claims, other)
		}
		// A share of one goes to the oldest due, or with NewestOdd to the
		// newest (big's left: b2..b8).
		one := func(newest bool) int64 {
			t.Helper()
			claims, _, err := e.ClaimFair(ctx, now, Quota{Apps: map[string]int{"big": 1}, NewestOdd: newest}, time.Minute, "w1", nil)
			must(t, err)
			if len(claims) != 1 {
				t.Fatalf("share of one (newest %v): %+v", newest, claims)
			}
			return claims[0].OrderID
		}
		if id := one(false); id != big[2] {
			t.Fatalf("share of one: order %d, want the oldest %d", id, big[2])
		}
		if id := one(true); id != big[8] {
			t.Fatalf("share of one, newest odd: order %d, want the newest %d", id, big[8])
		}
		// An empty quota claims nothing; Others alone is the plain claim.
		if claims, _, err := e.ClaimFair(ctx, now, Quota{}, time.Minute, "w1", nil); err != nil || len(claims) != 0 {
			t.Fatalf("empty quota: %+v, %v", claims, err)
		}
		claims, _, err = e.ClaimFair(ctx, now, Quota{Others: 100}, time.Minute, "w1", nil)
		must(t, err)
		if len(claims) != 5 {
			t.Fatalf("%d claimed, want big's 5 left", len(claims))
		}
	})
}
