package reconcile

import (
	"fmt"
	"testing"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// TestWaitRoom_BackedUp: an app is backed up once minHeld of its orders
// wait for any of its budgets, whatever the budget; others are not.
func TestWaitRoom_BackedUp(t *testing.T) {
	pk := &waitRoom{q: map[budgetKey][]claimedOrder{}}
	apps := map[string]int{"a": 4, "b": 4, "c": 4}
	park := func(app string, call provider.Call, n int) {
		for i := range n {
			pk.put(budgetKey{app, call}, claimedOrder{claim: state.Claim{OrderID: int64(i), AppID: app}})
		}
	}
	park("a", provider.CallCreateSettle, minHeld)
	park("b", provider.CallCreateSettle, minHeld-2)
	park("b", provider.CallQuerySettle, 1)
	if got := fmt.Sprint(pk.backedUp(apps)); got != "map[a:true]" {
		t.Fatalf("backed up %s, want only a", got)
	}
	park("b", provider.CallQuerySettle, 1)
	if got := fmt.Sprint(pk.backedUp(apps)); got != "map[a:true b:true]" {
		t.Fatalf("backed up %s, want a and b", got)
	}
	for range minHeld {
		pk.take(func(k budgetKey) bool { return k.app == "a" })
	}
	if got := fmt.Sprint(pk.backedUp(apps)); got != "map[b:true]" {
		t.Fatalf("backed up %s after a's orders left, want only b", got)
	}
}
