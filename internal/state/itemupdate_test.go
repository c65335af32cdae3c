package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// stepCase is one step tried on twin rows: the stored phase and attempt,
// the step's target phase and attempt (stored + delta), whether the
// caller's copy carries the right merchant number and the stored version,
// and (settlements) its amount.
type stepCase struct {
	from, to   Phase
	delta      int
	rightNo    bool
	stale      bool
	zeroAmount bool
}

func (c stepCase) String() string {
	return fmt.Sprintf("%s→%s attempt%+d rightNo=%t stale=%t zero=%t", c.from, c.to, c.delta, c.rightNo, c.stale, c.zeroAmount)
}

// stepCases lists every combination; zero amounts only when amounts says.
func stepCases(amounts bool) []stepCase {
	var cs []stepCase
	for _, from := range Phases {
		for _, to := range Phases {
			for _, delta := range []int{-1, 0, 1} {
				for _, bits := range []int{0, 1, 2, 3, 4, 5, 6, 7} {
					c := stepCase{from: from, to: to, delta: delta, rightNo: bits&1 != 0, stale: bits&2 != 0, zeroAmount: bits&4 != 0}
					if !amounts && c.zeroAmount {
						continue
					}
					cs = append(cs, c)
				}
			}
		}
	}
	return cs
}

// errKind names which of the Store's errors err is.
func errKind(err error) string {
	for _, k := range []error{ErrConflict, ErrInvalid, ErrNotFound} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return "ok"
}

// twins drives one kind of item through every stepCase on twin rows:
// stored makes a row in the case's stored state and returns the caller's
// copy of it; unread is the Store's update, read the step after reading
// the row (what that update did before), version the copy's version
// field; row reads a stored row's phase, attempt, version and amount.
type twins[T any] struct {
	prefix  string
	stored  func(t *testing.T, no string, c stepCase) *T
	unread  func(x *T, from Phase, ev NewEvent) error
	read    func(tx *gorm.DB, x *T, from Phase, ev NewEvent) error
	version func(x *T) *int64
	row     func(t *testing.T, x *T) string
}

// run checks, for every case, that the two steps fail the same way, with
// the same text (the twins' numbers swapped), or store the same row and
// the same events, and that every step made was made without reading the
// row.
func (w twins[T]) run(t *testing.T, e *env, cases []stepCase) {
	ctx := context.Background()
	unread, stepped := stepsUnread.Load(), int64(0)
	for i, c := range cases {
		noA, noB := fmt.Sprintf("%sa%d", w.prefix, i), fmt.Sprintf("%sb%d", w.prefix, i)
		a, b := w.stored(t, noA, c), w.stored(t, noB, c)
		ev := NewEvent{Type: EventSettlementAttemptFailed}
		errA := w.unread(a, c.from, ev)
		errB := e.write(ctx, func(tx *gorm.DB) error { return w.read(tx, b, c.from, ev) })
		if errB == nil {
			*w.version(b)++
			stepped++
		}
		if errKind(errA) != errKind(errB) {
			t.Fatalf("%s: unread %v, read %v", c, errA, errB)
		}
		if errA != nil && !strings.HasSuffix(errA.Error(), ": "+replaceNo(errB.Error(), noB, noA)) {
			t.Fatalf("%s: unread %q, read %q", c, errA, errB)
		}
		if ra, rb := w.row(t, a), w.row(t, b); ra != rb || *w.version(a) != *w.version(b) {
			t.Fatalf("%s: unread stored %s (copy v%d), read %s (copy v%d)", c, ra, *w.version(a), rb, *w.version(b))
		}
		if na, nb := eventsOf(t, e, noA), eventsOf(t, e, noB); na != nb {
			t.Fatalf("%s: %d events of the unread step, %d of the read one", c, na, nb)
		}
	}
	if n := stepsUnread.Load() - unread; n != stepped || stepped == 0 {
		t.Fatalf("%d of the %d steps made were made without reading the row", n, stepped)
	}
}

// eventsOf counts the events of order no.
func eventsOf(t *testing.T, e *env, no string) int64 {
	var n int64
	must(t, e.DB().Model(&Event{}).Where("out_order_no = ?", no).Count(&n).Error)
	return n
}

// TestUpdateSettlement_UnreadStepsAsTheReadOne: for every stored phase,
// target phase, attempt step, right or wrong merchant number, current or
// stale version and zero or non-zero amount, UpdateSettlement (which steps
// without reading the row when the caller's copy allows) and the step
// after reading the row (updateSettlementRead, what UpdateSettlement did
// before) fail alike or store alike (see twins.run). Both backends.
func TestUpdateSettlement_UnreadStepsAsTheReadOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		twins[Settlement]{
			prefix: "u",
			stored: func(t *testing.T, no string, c stepCase) *Settlement {
				t.Helper()
				e.order(t, no, 1000)
				st, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: no}, e.clock.Now())
				must(t, err)
				must(t, e.DB().Exec("UPDATE settlements SET phase = ?, attempt = 2, out_settle_no = ? WHERE id = ?",
					c.from, SettleNo("app1", no, 2), st.ID).Error)
				cur := e.getSettlement(t, st.ID)
				// The caller's copy: the row as read, stepped as the case says.
				cur.Phase, cur.Attempt, cur.Amount = c.to, 2+c.delta, 500
				cur.OutSettleNo = SettleNo("app1", no, cur.Attempt+btoi(!c.rightNo))
				cur.Version -= int64(btoi(c.stale))
				if c.zeroAmount {
					cur.Amount = 0
				}
				return &cur
			},
			unread: func(st *Settlement, from Phase, ev NewEvent) error { return e.UpdateSettlement(ctx, st, from, ev) },
			read: func(tx *gorm.DB, st *Settlement, from Phase, ev NewEvent) error {
				return e.updateSettlementRead(tx, st, from, settlementCols(st, e.now()), []NewEvent{ev})
			},
			version: func(st *Settlement) *int64 { return &st.Version },
			row: func(t *testing.T, st *Settlement) string {
				g := e.getSettlement(t, st.ID)
				return fmt.Sprintf("%s/%d v%d %d", g.Phase, g.Attempt, g.Version, g.Amount)
			},
		}.run(t, e, stepCases(true))
	})
}

// TestUpdateRefund_UnreadStepsAsTheReadOne is the same for refunds.
func TestUpdateRefund_UnreadStepsAsTheReadOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		twins[Refund]{
			prefix: "r",
			stored: func(t *testing.T, no string, c stepCase) *Refund {
				t.Helper()
				e.order(t, no, 1000)
				r := e.refund(t, no, no+"-r", 100)
				must(t, e.DB().Exec("UPDATE refunds SET phase = ?, attempt = 2, out_refund_no = ? WHERE id = ?",
					c.from, RefundNo(r.Key, 2), r.ID).Error)
				cur := e.getRefund(t, r.ID)
				cur.Phase, cur.Attempt = c.to, 2+c.delta
				cur.OutRefundNo = RefundNo(cur.Key, cur.Attempt+btoi(!c.rightNo))
				cur.Version -= int64(btoi(c.stale))
				return &cur
			},
			unread: func(r *Refund, from Phase, ev NewEvent) error { return e.UpdateRefund(ctx, r, from, ev) },
			read: func(tx *gorm.DB, r *Refund, from Phase, ev NewEvent) error {
				return e.updateRefundRead(tx, r, from, refundCols(r, e.now()), []NewEvent{ev})
			},
			version: func(r *Refund) *int64 { return &r.Version },
			row: func(t *testing.T, r *Refund) string {
				g := e.getRefund(t, r.ID)
				return fmt.Sprintf("%s/%d v%d", g.Phase, g.Attempt, g.Version)
			},
		}.run(t, e, stepCases(false))
	})
}

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// replaceNo is msg about order no b (of app1) told of order no a: its
// number and its settlements' numbers.
func replaceNo(msg, b, a string) string {
	hash := func(no string) string { s := SettleNo("app1", no, 0); return s[:len(s)-2] }
	return strings.ReplaceAll(strings.ReplaceAll(msg, hash(b), hash(a)), b, a)
}
