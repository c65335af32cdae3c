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
		due := func(app, no string, ago time.Duration) int64 { return orderAt(t, e, app, no, now.Add(-ago)) }
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
		// An app listed in Newest gives its whole share to the newest end
		// (big's left: b3..b7).
		claims, _, err = e.ClaimFair(ctx, now, Quota{Apps: map[string]int{"big": 2}, Newest: map[string]bool{"big": true}}, time.Minute, "w1", nil)
		must(t, err)
		if len(claims) != 2 || claims[0].OrderID+claims[1].OrderID != big[6]+big[7] {
			t.Fatalf("a share of two, newest only: %+v; want the newest two %d and %d", claims, big[6], big[7])
		}
		// An empty quota claims nothing; Others alone is the plain claim.
		if claims, _, err := e.ClaimFair(ctx, now, Quota{}, time.Minute, "w1", nil); err != nil || len(claims) != 0 {
			t.Fatalf("empty quota: %+v, %v", claims, err)
		}
		claims, _, err = e.ClaimFair(ctx, now, Quota{Others: 100}, time.Minute, "w1", nil)
		must(t, err)
		if len(claims) != 3 {
			t.Fatalf("%d claimed, want big's 3 left", len(claims))
		}
	})
}

// TestStore_ClaimAcrossApps: with one index per app, a claim that names no
// apps still takes the oldest due across all of them, in due order, at
// most its limit; plan's DueOrders and Scheduled read the same way; a
// claim that names its apps takes an order of an app first seen since its
// last claim (the apps' list is kept up to date by the inserts).
func TestStore_ClaimAcrossApps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		at := func(app, no string, when time.Time) int64 { return orderAt(t, e, app, no, when) }
		// Due times interleave across the apps: c1 < a1 < b1 < a2 < c2 < b2.
		c1 := at("c", "c1", now.Add(-6*time.Minute))
		a1 := at("a", "a1", now.Add(-5*time.Minute))
		b1 := at("b", "b1", now.Add(-4*time.Minute))
		a2 := at("a", "a2", now.Add(-3*time.Minute))
		at("c", "c2", now.Add(-2*time.Minute))
		at("b", "b2", now.Add(-time.Minute))
		s2 := at("b", "b3", now.Add(2*time.Minute))
		s1 := at("c", "c3", now.Add(time.Minute))
		at("a", "a3", now.Add(3*time.Minute))

		ids, err := e.DueOrders(ctx, now, 4)
		must(t, err)
		if want := []int64{c1, a1, b1, a2}; fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Fatalf("due orders %v, want the four oldest across apps %v", ids, want)
		}
		sched, err := e.Scheduled(ctx, now, 2)
		must(t, err)
		if len(sched) != 2 || sched[0].ID != s1 || sched[1].ID != s2 {
			t.Fatalf("scheduled %+v, want orders %d then %d", sched, s1, s2)
		}
		claims, err := e.ClaimDue(ctx, now, 4, time.Minute, "w1")
		must(t, err)
		var got []int64
		for _, c := range claims {
			got = append(got, c.OrderID)
		}
		if want := []int64{c1, a1, b1, a2}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}

		// A reconciler's claim names its apps; what it finds of the others
		// comes from a list it refreshes every second, which an insert
		// through this store updates at once.
		named := Quota{Apps: map[string]int{"a": 0, "b": 0, "c": 0}, Others: 5}
		claims, _, err = e.ClaimFair(ctx, now, named, time.Minute, "w1", nil)
		must(t, err)
		if len(claims) != 0 {
			t.Fatalf("claimed %+v with every app's share 0", claims)
		}
		late := at("late", "l1", now.Add(-time.Hour))
		claims, _, err = e.ClaimFair(ctx, now, named, time.Minute, "w1", nil)
		must(t, err)
		if len(claims) != 1 || claims[0].OrderID != late {
			t.Fatalf("claimed %+v, want the new app's order %d", claims, late)
		}
	})
}

// TestStore_OrderApps: the loose index scan lists each app with orders
// that have a next action once, sorted; nothing on an empty table, nor an
// app whose orders wait for nothing.
func TestStore_OrderApps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		apps, err := e.orderApps(e.session(ctx))
		must(t, err)
		if len(apps) != 0 {
			t.Fatalf("apps %v on an empty table", apps)
		}
		for i, app := range []string{"z", "a", "m", "a", "z", "z", "idle"} {
			o, _, err := e.UpsertOrder(ctx, OrderInput{AppID: app, OutOrderNo: fmt.Sprint("o", i), TotalAmount: 1}, e.clock.Now())
			must(t, err)
			if app == "idle" {
				o.NextActionAt = nil
				must(t, e.UpdateOrder(ctx, o))
			}
		}
		apps, err = e.orderApps(e.session(ctx))
		must(t, err)
		if fmt.Sprint(apps) != "[a m z]" {
			t.Fatalf("apps %v, want [a m z]", apps)
		}
	})
}

// orderAt records a paid order of app whose next action is at when, and
// returns its row id.
func orderAt(t *testing.T, e *env, app, no string, when time.Time) int64 {
	t.Helper()
	ctx := context.Background()
	o, _, err := e.UpsertOrder(ctx, OrderInput{AppID: app, OutOrderNo: no, TotalAmount: 100, Status: OrderSuccess}, e.clock.Now())
	must(t, err)
	o.NextActionAt = ptr(when)
	must(t, e.UpdateOrder(ctx, o))
	return o.ID
}
