package reconcile

import (
	"testing"

	"github.com/payd/payd/internal/state"
)

// TestNextScan: full claims that find mostly idle orders read more at a
// time, claims that hand out more than the quota read less, and a short
// claim or an empty one grows it no further.
func TestNextScan(t *testing.T) {
	for _, c := range []struct {
		name                        string
		scan, busy, got, want, base int
		next                        int
	}{
		{"all idle, full: grow", 1, 0, 8, 8, 8, 4},
		{"all idle again: grow", 4, 0, 32, 32, 8, 16},
		{"at the bound", 64, 0, 512, 512, 8, 64},
		{"a quarter busy, full: grow", 4, 3, 32, 32, 8, 16},
		{"about the quota busy: keep", 4, 6, 32, 32, 8, 4},
		{"more than the quota busy: halve", 16, 20, 128, 128, 8, 8},
		{"all busy at one: keep", 1, 8, 8, 8, 8, 1},
		{"short claim, idle: keep", 16, 0, 5, 128, 8, 16},
		{"short claim, busy beyond the quota: halve", 16, 9, 12, 128, 8, 8},
		{"nothing due: keep", 4, 0, 0, 32, 8, 4},
	} {
		if got := nextScan(c.scan, c.busy, c.got, c.want, c.base); got != c.next {
			t.Errorf("%s: nextScan(%d, busy %d, got %d, want %d, base %d) = %d, want %d", c.name, c.scan, c.busy, c.got, c.want, c.base, got, c.next)
		}
	}
}

// TestScaleQuota: every share is multiplied, none beyond maxChunk, and the
// quota asked for is their sum.
func TestScaleQuota(t *testing.T) {
	q := scaleQuota(state.Quota{Apps: map[string]int{"a": 8, "b": 0, "c": 100}, Others: 3}, 8)
	if q.Apps["a"] != 64 || q.Apps["b"] != 0 || q.Apps["c"] != maxChunk || q.Others != 24 {
		t.Fatalf("scaleQuota ×8 = %+v", q)
	}
	if got := quotaTotal(q); got != 64+maxChunk+24 {
		t.Fatalf("quotaTotal = %d", got)
	}
	one := state.Quota{Others: 8}
	if q := scaleQuota(one, 1); q.Others != 8 || q.Apps != nil {
		t.Fatalf("scaleQuota ×1 = %+v", q)
	}
}

// TestPassDone: a pass ends only when nothing is in hand and a short claim
// over every app found nothing to work on, idle orders or none.
func TestPassDone(t *testing.T) {
	for _, c := range []struct {
		name                    string
		busy, inHand, got, want int
		allApps, done           bool
	}{
		{"nothing due", 0, 0, 0, 8, true, true},
		{"only idle orders, all read", 0, 0, 1, 8, true, true},
		{"idle orders, maybe more due", 0, 0, 8, 8, true, false},
		{"orders in hand", 0, 2, 0, 8, true, false},
		{"work claimed", 1, 0, 1, 8, true, false},
		{"other apps not looked at", 0, 0, 0, 8, false, false},
	} {
		if got := passDone(c.busy, c.inHand, c.got, c.want, c.allApps); got != c.done {
			t.Errorf("%s: passDone = %v, want %v", c.name, got, c.done)
		}
	}
}
