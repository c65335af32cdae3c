package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRefundNo(t *testing.T) {
	if got := RefundNo("k1", 3); got != "k1-3" {
		t.Fatalf("RefundNo = %s, want k1-3", got)
	}
	long := strings.Repeat("k", 60)
	if got := RefundNo(long, 999); len(got) != 64 || !merchantNoRE.MatchString(got) {
		t.Fatalf("RefundNo of a 60-character key, attempt 999 = %q (%d chars): not a merchant number", got, len(got))
	}
}

func TestSettleNo(t *testing.T) {
	a := SettleNo("app1", "o1", 1)
	if a != SettleNo("app1", "o1", 1) {
		t.Fatal("SettleNo is not deterministic")
	}
	// sha256("app1/o1") begins 92e796018a9c4f94.
	if want := "st92e796018a9c4f94-1"; a != want {
		t.Fatalf("SettleNo = %s, want %s", a, want)
	}
	for _, other := range []string{SettleNo("app2", "o1", 1), SettleNo("app1", "o2", 1), SettleNo("app1", "o1", 2)} {
		if other == a {
			t.Fatalf("SettleNo collides: %s", a)
		}
	}
	if got := SettleNo("a", strings.Repeat("x", 64), 50); len(got) > 64 || !merchantNoRE.MatchString(got) {
		t.Fatalf("SettleNo = %q: not a merchant number of at most 64 characters", got)
	}
}

func TestStore_DeclareRefund(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		o := e.order(t, "o1", 1000)
		e.order(t, "closed", 1000)
		closed, err := e.GetOrder(ctx, "app1", "closed")
		must(t, err)
		closed.Status = OrderTimeout
		must(t, e.UpdateOrder(ctx, closed))

		t.Run("new refund", func(t *testing.T) {
			e.clock.Advance(time.Second)
			now := e.clock.Now()
			r, created, err := e.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k1", Amount: 400, Reason: "broken"}, now)
			must(t, err)
			if !created || r.Phase != PhasePending || r.Attempt != 1 || r.OutRefundNo != "k1-1" || r.OrderID != o.ID || !timeEq(r.NextActionAt, &now) {
				t.Fatalf("refund %+v", r)
			}
			got := e.getOrder(t, o.ID)
			if got.HintSeq != o.HintSeq+1 || !timeEq(got.NextActionAt, o.NextActionAt) {
				// o was due at t0 already: the hint keeps the earlier time.
				t.Fatalf("order after declaration: hint_seq %d next %s", got.HintSeq, fmtTime(got.NextActionAt))
			}
		})
		t.Run("same key same content is a no-op", func(t *testing.T) {
			before := e.getOrder(t, o.ID)
			r, created, err := e.DeclareRefund(ctx, RefundWish{AppID: "app1", OutOrderNo: "o1", Key: "k1", Amount: 400, Reason: "broken"}, now)
			must(t, err)
			if created || r.OutRefundNo != "k1-1" {
				t.Fatalf("created=%v refund %+v", created, r)
			}
			if after := e.getOrder(t, o.ID); after.HintSeq != before.HintSeq {
				t.Fatalf("a no-op declaration changed the order: hint_seq %d → %d", before.HintSeq, after.HintSeq)
			}
		})
		for _, tc := range []struct {
			name   string
			w      RefundWish
			target error
			msg    string
		}{
			{"key reused: amount", RefundWish{OutOrderNo: "o1", Key: "k1", Amount: 401, Reason: "broken"}, ErrKeyReused,
				`declare refund k1: idempotency key reused with different content: key k1 was declared for order o1, amount 400, reason "broken"`},
			{"key reused: reason", RefundWish{OutOrderNo: "o1", Key: "k1", Amount: 400}, ErrKeyReused, ""},
			{"key reused: order", RefundWish{AppID: "app1", OutOrderNo: "closed", Key: "k1", Amount: 400, Reason: "broken"}, ErrKeyReused, ""},
			{"exceeds remaining", RefundWish{OutOrderNo: "o1", Key: "k2", Amount: 601}, ErrInvalid,
				"declare refund k2: refund 601 exceeds what remains of order o1: 600 of 1000 fen"},
			{"zero amount", RefundWish{OutOrderNo: "o1", Key: "k3", Amount: 0}, ErrInvalid, "declare refund k3: amount: 0 is not positive"},
			{"negative amount", RefundWish{OutOrderNo: "o1", Key: "k3", Amount: -5}, ErrInvalid, "declare refund k3: amount: -5 is not positive"},
			{"key empty", RefundWish{OutOrderNo: "o1", Amount: 1}, ErrInvalid, `declare refund : key: "" is not 1..60 of [0-9A-Za-z_-]`},
			{"key charset", RefundWish{OutOrderNo: "o1", Key: "k 1", Amount: 1}, ErrInvalid, `declare refund k 1: key: "k 1" is not 1..60 of [0-9A-Za-z_-]`},
			{"key too long", RefundWish{OutOrderNo: "o1", Key: strings.Repeat("k", 61), Amount: 1}, ErrInvalid, ""},
			{"reason too long", RefundWish{OutOrderNo: "o1", Key: "k4", Amount: 1, Reason: strings.Repeat("退", 101)}, ErrInvalid,
				"declare refund k4: reason: 101 characters, at most 100"},
			{"bad out_order_no", RefundWish{AppID: "app1", OutOrderNo: "o/1", Key: "k5", Amount: 1}, ErrInvalid,
				`declare refund k5: out_order_no: "o/1" is not 1..64 of [0-9A-Za-z_-*]`},
			{"unknown order without app", RefundWish{OutOrderNo: "nope", Key: "k6", Amount: 1}, ErrInvalid,
				"declare refund k6: order nope is not known to payd: app_id is required to record it"},
			{"closed order", RefundWish{OutOrderNo: "closed", Key: "k7", Amount: 1}, ErrInvalid,
				"declare refund k7: order closed is TIMEOUT at Douyin: nothing to refund"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := e.DeclareRefund(ctx, tc.w, now)
				wantErr(t, err, tc.target, tc.msg)
			})
		}
		t.Run("reason of 100 characters is fine", func(t *testing.T) {
			_, _, err := e.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k8", Amount: 100, Reason: strings.Repeat("退", 100)}, now)
			must(t, err)
		})
		t.Run("failed refunds do not count", func(t *testing.T) {
			// k1 (400) and k8 (100) leave 500; park k8 and 600 fits.
			r := e.getRefund(t, mustRefundID(t, e, "k8"))
			r.Phase = PhaseParked
			must(t, e.UpdateRefund(ctx, &r, PhasePending))
			_, _, err := e.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k9", Amount: 600}, now)
			must(t, err)
			_, _, err = e.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k10", Amount: 1}, now)
			wantErr(t, err, ErrInvalid, "declare refund k10: refund 1 exceeds what remains of order o1: 0 of 1000 fen")
		})
		t.Run("unknown order is recorded UNKNOWN and due", func(t *testing.T) {
			e.clock.Advance(time.Minute)
			now := e.clock.Now()
			r, created, err := e.DeclareRefund(ctx, RefundWish{AppID: "app2", OutOrderNo: "new1", Key: "n1", Amount: 1_000_000_000}, now)
			must(t, err)
			if !created {
				t.Fatal("not created")
			}
			got := e.getOrder(t, r.OrderID)
			if got.AppID != "app2" || got.Status != OrderUnknown || got.TotalAmount != 0 || !timeEq(got.NextActionAt, &now) {
				t.Fatalf("order recorded as %+v", got)
			}
			// The order now exists: a second refund on it needs no app_id.
			_, _, err = e.DeclareRefund(ctx, RefundWish{OutOrderNo: "new1", Key: "n2", Amount: 1}, now)
			must(t, err)
		})
	})
}

func mustRefundID(t *testing.T, e *env, key string) int64 {
	t.Helper()
	var r Refund
	must(t, e.DB().Where("idem_key = ?", key).First(&r).Error)
	return r.ID
}

func TestStore_DeclareSettlement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		o := e.order(t, "o1", 1000)
		// The reconciler saw it paid and scheduled auto-settlement.
		o.AutoSettleAt = ptr(t0.Add(7 * 24 * time.Hour))
		must(t, e.UpdateOrder(ctx, o))
		due := t0.Add(8 * 24 * time.Hour)
		w := SettlementWish{AppID: "app1", OutOrderNo: "o1", DueAt: &due, Receivers: []Receiver{{MerchantUID: "m1", Amount: 200}, {MerchantUID: "m2", Amount: 100}}, Desc: "weekly"}

		st, created, err := e.DeclareSettlement(ctx, w, now)
		must(t, err)
		if !created || st.Phase != PhasePending || st.Attempt != 1 || st.OutSettleNo != SettleNo("app1", "o1", 1) ||
			st.Receivers != `[{"merchant_uid":"m1","amount":200},{"merchant_uid":"m2","amount":100}]` || !timeEq(st.DueAt, &due) || st.Desc != "weekly" {
			t.Fatalf("settlement %+v", st)
		}
		if got := e.getOrder(t, o.ID); got.AutoSettleAt != nil || got.Version != o.Version+1 {
			t.Fatalf("order after declaration: auto_settle_at %s, version %d (want nil, %d)", fmtTime(got.AutoSettleAt), got.Version, o.Version+1)
		}
		rs, err := st.ReceiverList()
		must(t, err)
		if len(rs) != 2 || rs[1] != (Receiver{MerchantUID: "m2", Amount: 100}) {
			t.Fatalf("ReceiverList = %+v", rs)
		}

		t.Run("identical is a no-op", func(t *testing.T) {
			again, created, err := e.DeclareSettlement(ctx, w, now)
			must(t, err)
			if created || again.Version != st.Version {
				t.Fatalf("created=%v version %d → %d", created, st.Version, again.Version)
			}
		})
		t.Run("pending changes", func(t *testing.T) {
			w2 := w
			w2.Receivers = []Receiver{{MerchantUID: "m3", Amount: 300}}
			w2.DueAt = nil
			changed, created, err := e.DeclareSettlement(ctx, w2, now)
			must(t, err)
			got := e.getSettlement(t, st.ID)
			if created || changed.Version != st.Version+1 || got.Version != st.Version+1 || got.Receivers != `[{"merchant_uid":"m3","amount":300}]` || got.DueAt != nil {
				t.Fatalf("created=%v stored %+v", created, got)
			}
			w = w2
		})
		for _, tc := range []struct {
			name string
			rs   []Receiver
			desc string
			msg  string
		}{
			{"five receivers", []Receiver{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}}, "", "declare settlement of order o1: receivers: 5 given, at most 4"},
			{"no uid", []Receiver{{"", 1}}, "", "declare settlement of order o1: receivers[0].merchant_uid: required"},
			{"zero amount", []Receiver{{"a", 1}, {"b", 0}}, "", "declare settlement of order o1: receivers[1].amount: 0 is not positive"},
			{"duplicate uid", []Receiver{{"a", 1}, {"a", 2}}, "", "declare settlement of order o1: receivers[1].merchant_uid: a appears twice"},
			{"over 30%", []Receiver{{"a", 200}, {"b", 101}}, "", "declare settlement of order o1: receivers: 301 fen together, more than 30% of the order's 1000 fen"},
			{"desc too long", nil, strings.Repeat("d", 81), "declare settlement of order o1: desc: 81 characters, at most 80"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "o1", Receivers: tc.rs, Desc: tc.desc}, now)
				wantErr(t, err, ErrInvalid, tc.msg)
			})
		}
		t.Run("exactly 30% is fine", func(t *testing.T) {
			must(t, ValidateReceivers([]Receiver{{"a", 150}, {"b", 150}}, 1000))
			must(t, ValidateReceivers([]Receiver{{"a", 1_000_000}}, 0)) // total unknown: checked later
		})
		t.Run("not pending cannot change", func(t *testing.T) {
			cur := e.getSettlement(t, st.ID)
			cur.Phase = PhaseSubmitting
			must(t, e.UpdateSettlement(ctx, &cur, PhasePending))
			_, created, err := e.DeclareSettlement(ctx, w, now)
			must(t, err) // identical: a no-op
			if created {
				t.Fatal("created")
			}
			w2 := w
			w2.Desc = "other"
			_, _, err = e.DeclareSettlement(ctx, w2, now)
			wantErr(t, err, ErrInvalid, "declare settlement of order o1: settlement of order o1 is submitting: it cannot change")
		})
		t.Run("closed order", func(t *testing.T) {
			c := e.order(t, "c1", 500)
			c.Status = OrderFail
			must(t, e.UpdateOrder(ctx, c))
			_, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "c1"}, now)
			wantErr(t, err, ErrInvalid, "declare settlement of order c1: order c1 is FAIL at Douyin: nothing to settle")
		})
		t.Run("unknown order is recorded", func(t *testing.T) {
			st, created, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app3", OutOrderNo: "u1", Receivers: []Receiver{{"a", 5000}}}, now)
			must(t, err)
			if got := e.getOrder(t, st.OrderID); !created || got.Status != OrderUnknown || got.AppID != "app3" {
				t.Fatalf("created=%v order %+v", created, got)
			}
		})
	})
}

func TestStore_DeclareSettlementMakesStaleTransitionConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		e.order(t, "o1", 1000)
		_, _, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "o1"}, now)
		must(t, err)
		v, err := e.LoadOrder(ctx, e.getOrder(t, 1).ID)
		must(t, err)
		stale := *v.Settlement
		// The merchant changes the receivers while the reconciler holds the
		// old copy: submitting with the old receivers must fail.
		_, _, err = e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "o1", Receivers: []Receiver{{"m", 10}}}, now)
		must(t, err)
		stale.Phase = PhaseSubmitting
		wantErr(t, e.UpdateSettlement(ctx, &stale, PhasePending), ErrConflict, "")
	})
}

func TestStore_CreateDueSettlements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		mk := func(app, no string, autoAt *time.Time) *Order {
			o, _, err := e.UpsertOrder(ctx, OrderInput{AppID: app, OutOrderNo: no, TotalAmount: 100, Status: OrderSuccess}, now)
			must(t, err)
			o.AutoSettleAt = autoAt
			o.NextActionAt = nil
			must(t, e.UpdateOrder(ctx, o))
			return o
		}
		a1 := mk("app1", "a1", ptr(now.Add(-3*time.Hour)))
		a2 := mk("app1", "a2", ptr(now.Add(-2*time.Hour)))
		a3 := mk("app1", "a3", ptr(now.Add(-1*time.Hour)))
		future := mk("app1", "f1", ptr(now.Add(time.Hour)))
		other := mk("app2", "b1", ptr(now.Add(-5*time.Hour)))
		has := mk("app1", "h1", ptr(now.Add(-4*time.Hour)))
		// h1 got a settlement some other way; its AutoSettleAt is stale.
		must(t, e.DB().Create(&Settlement{OrderID: has.ID, Phase: PhasePending, Attempt: 1, OutSettleNo: SettleNo("app1", "h1", 1), Version: 1}).Error)

		n, err := e.CreateDueSettlements(ctx, now, []string{"app1"}, 2, "auto")
		must(t, err)
		// Oldest first: h1 (only cleared) and a1 fill the limit of 2.
		if n != 1 {
			t.Fatalf("created %d, want 1", n)
		}
		n, err = e.CreateDueSettlements(ctx, now, []string{"app1"}, 10, "auto")
		must(t, err)
		if n != 2 {
			t.Fatalf("second run created %d, want 2", n)
		}
		for _, o := range []*Order{a1, a2, a3} {
			v, err := e.LoadOrder(ctx, o.ID)
			must(t, err)
			if v.Settlement == nil || !v.Settlement.Auto || v.Settlement.DueAt != nil || v.Settlement.Desc != "auto" || v.Order.AutoSettleAt != nil {
				t.Errorf("order %s: settlement %+v auto_settle_at %s", o.OutOrderNo, v.Settlement, fmtTime(v.Order.AutoSettleAt))
			}
			if !timeEq(v.Order.NextActionAt, &now) || v.Order.HintSeq == 0 {
				t.Errorf("order %s not hinted: next %s hint_seq %d", o.OutOrderNo, fmtTime(v.Order.NextActionAt), v.Order.HintSeq)
			}
		}
		for _, o := range []*Order{future, other} {
			if v, _ := e.LoadOrder(ctx, o.ID); v.Settlement != nil || v.Order.AutoSettleAt == nil {
				t.Errorf("order %s should be untouched: %+v", o.OutOrderNo, v)
			}
		}
		if got := e.getOrder(t, has.ID); got.AutoSettleAt != nil {
			t.Errorf("h1: auto_settle_at not cleared")
		}
		if n, err := e.CreateDueSettlements(ctx, now, []string{"app1"}, 10, "auto"); err != nil || n != 0 {
			t.Fatalf("third run: %d, %v; want 0", n, err)
		}
	})
}

// TestStore_DeclareRefund_Concurrent declares refunds of one order from
// goroutines on two independent Stores: the remaining-amount check holds
// under the race, and an unknown order is recorded once.
func TestStore_DeclareRefund_Concurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		opts := e.opts
		opts.MaxOpenConns = 3
		other, err := Open(ctx, opts)
		must(t, err)
		t.Cleanup(func() { _ = other.Close() })
		e.order(t, "known", 1000)

		race := func(no string) (created, refused int) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range 12 {
				s := e.Store
				if i%2 == 1 {
					s = other
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, ok, err := s.DeclareRefund(ctx, RefundWish{AppID: "app1", OutOrderNo: no, Key: fmt.Sprintf("%s-k%d", no, i), Amount: 100}, now)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && ok:
						created++
					case errors.Is(err, ErrInvalid):
						refused++
					default:
						t.Errorf("declaration %d: created=%v err=%v", i, ok, err)
					}
				}()
			}
			wg.Wait()
			return created, refused
		}
		if created, refused := race("known"); created != 10 || refused != 2 {
			t.Fatalf("known order of 1000 fen: %d refunds of 100 created, %d refused; want 10 and 2", created, refused)
		}
		if created, _ := race("unknown"); created != 12 {
			t.Fatalf("unknown order: %d of 12 declarations created", created)
		}
		var n int64
		must(t, e.DB().Model(&Order{}).Where("out_order_no = ?", "unknown").Count(&n).Error)
		if n != 1 {
			t.Fatalf("the unknown order was recorded %d times", n)
		}
	})
}
