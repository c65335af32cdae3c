package state

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestStore_ClaimDue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		var ids []int64
		for i := range 5 {
			o := e.order(t, fmt.Sprintf("o%d", i), 100)
			// Due in reverse order of creation: o4 first.
			o.NextActionAt = ptr(now.Add(-time.Duration(i) * time.Minute))
			must(t, e.UpdateOrder(ctx, o))
			ids = append(ids, o.ID)
		}
		idle := e.order(t, "idle", 100)
		idle.NextActionAt = nil
		must(t, e.UpdateOrder(ctx, idle))
		later := e.order(t, "later", 100)
		later.NextActionAt = ptr(now.Add(time.Hour))
		must(t, e.UpdateOrder(ctx, later))

		due, err := e.DueOrders(ctx, now, 10)
		must(t, err)
		if fmt.Sprint(due) != fmt.Sprint([]int64{ids[4], ids[3], ids[2], ids[1], ids[0]}) {
			t.Fatalf("DueOrders = %v, want oldest first %v", due, ids)
		}

		claims, err := e.ClaimDue(ctx, now, 3, 2*time.Minute, "w1")
		must(t, err)
		if len(claims) != 3 || claims[0].OrderID != ids[4] || claims[2].OrderID != ids[2] {
			t.Fatalf("claims %+v", claims)
		}
		until := now.Add(2 * time.Minute)
		for _, c := range claims {
			o := e.getOrder(t, c.OrderID)
			if o.Version != c.Version || o.LeaseOwner != "w1" || !timeEq(o.LeaseUntil, &until) || !timeEq(o.NextActionAt, &until) ||
				!c.LeaseUntil.Equal(until) || c.Owner != "w1" || c.HintSeq != o.HintSeq {
				t.Fatalf("claimed order %+v, claim %+v", o, c)
			}
		}
		// Claimed orders are not due again while the lease runs.
		rest, err := e.ClaimDue(ctx, now.Add(time.Minute), 10, time.Minute, "w2")
		must(t, err)
		if len(rest) != 2 || rest[0].OrderID != ids[1] || rest[1].OrderID != ids[0] {
			t.Fatalf("second claim %+v, want o1, o0", rest)
		}
		if again, err := e.ClaimDue(ctx, now.Add(time.Minute), 10, time.Minute, "w3"); err != nil || len(again) != 0 {
			t.Fatalf("third claim %+v, %v: want nothing", again, err)
		}
		// A worker that died: its orders are due once the lease has passed.
		e.clock.Advance(3 * time.Minute)
		after, err := e.ClaimDue(ctx, e.clock.Now(), 10, time.Minute, "w4")
		must(t, err)
		if len(after) != 5 {
			t.Fatalf("after the leases expired %d orders were claimed, want 5", len(after))
		}
		if after[0].Version != claims[0].Version+1 && after[0].Version != rest[0].Version+1 {
			t.Fatalf("reclaim did not bump the version: %+v", after[0])
		}
	})
}

func TestStore_ClaimDue_Invalid(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	_, err := s.ClaimDue(ctx, t0, 10, 0, "w")
	wantErr(t, err, ErrInvalid, "claim due orders: lease: 0s is not positive")
	_, err = s.ClaimDue(ctx, t0, 10, time.Minute, "")
	wantErr(t, err, ErrInvalid, `claim due orders: owner: "" is not 1..64 bytes`)
	if c, err := s.ClaimDue(ctx, t0, 0, time.Minute, "w"); err != nil || c != nil {
		t.Fatalf("limit 0: %v, %v", c, err)
	}
}

// TestStore_ClaimDue_Concurrent races claimers from two independent Stores
// on one database (two processes on SQLite, two replicas on PostgreSQL):
// every due order is claimed exactly once.
func TestStore_ClaimDue_Concurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		const orders = 60
		for i := range orders {
			e.order(t, fmt.Sprintf("o%d", i), 100)
		}
		opts := e.opts
		opts.MaxOpenConns = 3
		other, err := Open(ctx, opts)
		must(t, err)
		t.Cleanup(func() { _ = other.Close() })

		var mu sync.Mutex
		seen := map[int64]string{}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 6 {
			s := e.Store
			if w%2 == 1 {
				s = other
			}
			owner := fmt.Sprintf("w%d", w)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range orders { // bounded: each round claims at least one or stops
					claims, err := s.ClaimDue(ctx, now, 4, time.Minute, owner)
					if err != nil {
						errs <- err
						return
					}
					if len(claims) == 0 {
						return
					}
					mu.Lock()
					for _, c := range claims {
						if prev, dup := seen[c.OrderID]; dup {
							errs <- fmt.Errorf("order %d claimed by %s and %s", c.OrderID, prev, owner)
						}
						seen[c.OrderID] = owner
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(seen) != orders {
			t.Fatalf("%d orders claimed, want %d", len(seen), orders)
		}
	})
}

func TestStore_Release(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		claim := func(t *testing.T, no string) (Claim, *Order) {
			t.Helper()
			o := e.order(t, no, 100)
			claims, err := e.ClaimDue(ctx, e.clock.Now(), 1, time.Minute, "w1")
			must(t, err)
			if len(claims) != 1 || claims[0].OrderID != o.ID {
				t.Fatalf("claims %+v, want order %d", claims, o.ID)
			}
			return claims[0], o
		}

		t.Run("with a next time", func(t *testing.T) {
			c, o := claim(t, "r1")
			next := e.clock.Now().Add(time.Hour)
			must(t, e.Release(ctx, c, &next, e.clock.Now()))
			got := e.getOrder(t, o.ID)
			if got.LeaseUntil != nil || got.LeaseOwner != "" || !timeEq(got.NextActionAt, &next) || got.Version != c.Version+1 {
				t.Fatalf("released order %+v", got)
			}
		})
		t.Run("nothing to do", func(t *testing.T) {
			c, o := claim(t, "r2")
			must(t, e.Release(ctx, c, nil, e.clock.Now()))
			if got := e.getOrder(t, o.ID); got.NextActionAt != nil {
				t.Fatalf("next_action_at %s, want nil", fmtTime(got.NextActionAt))
			}
		})
		t.Run("a hint during the claim makes it due now", func(t *testing.T) {
			c, o := claim(t, "r3")
			e.clock.Advance(10 * time.Second)
			now := e.clock.Now()
			must(t, e.Hint(ctx, o.ID, now))
			next := now.Add(time.Hour)
			must(t, e.Release(ctx, c, &next, now))
			got := e.getOrder(t, o.ID)
			if !timeEq(got.NextActionAt, &now) {
				t.Fatalf("next_action_at %s, want now %s", fmtTime(got.NextActionAt), now)
			}
			got.NextActionAt = nil // out of the way of the next subtests
			must(t, e.UpdateOrder(ctx, &got))
		})
		t.Run("a hint during the claim makes items in flight due now", func(t *testing.T) {
			// The callback of a refund races its own create_refund's answer:
			// the answer, recorded after the hint, sets the refund's next
			// query an hour away; the release must undo that.
			o := e.order(t, "r3b", 100)
			r := e.refund(t, "r3b", "k-r3b", 10)
			claims, err := e.ClaimDue(ctx, e.clock.Now(), 10, time.Minute, "w1")
			must(t, err)
			var c Claim
			for _, cl := range claims {
				if cl.OrderID == o.ID {
					c = cl
				}
			}
			r.Phase = PhaseSubmitting
			must(t, e.UpdateRefund(ctx, r, PhasePending))
			now := e.clock.Now()
			// The refund's own callback is stored and hints the order.
			must(t, e.DB().Create(&Callback{AppID: o.AppID, Type: "refund", Signature: "sig-r3b", SubjectNo: r.OutRefundNo, OrderID: o.ID, Raw: "{}", ReceivedAt: now}).Error)
			must(t, e.Hint(ctx, o.ID, now))
			later := now.Add(time.Hour)
			r.Phase, r.NextActionAt = PhaseProcessing, &later
			must(t, e.UpdateRefund(ctx, r, PhaseSubmitting))
			must(t, e.Release(ctx, c, &later, now))
			if got := e.getRefund(t, r.ID); !timeEq(got.NextActionAt, &now) {
				t.Fatalf("refund next_action_at %s after its callback during the claim, want now %s", fmtTime(got.NextActionAt), now)
			}
			got := e.getOrder(t, o.ID)
			if !timeEq(got.NextActionAt, &now) {
				t.Fatalf("order next_action_at %s, want now", fmtTime(got.NextActionAt))
			}
			got.NextActionAt = nil // out of the way of the next subtests
			must(t, e.UpdateOrder(ctx, &got))
		})
		t.Run("another hint during the claim leaves items in flight alone", func(t *testing.T) {
			o := e.order(t, "r3c", 100)
			r := e.refund(t, "r3c", "k-r3c", 10)
			claims, err := e.ClaimDue(ctx, e.clock.Now(), 10, time.Minute, "w1")
			must(t, err)
			var c Claim
			for _, cl := range claims {
				if cl.OrderID == o.ID {
					c = cl
				}
			}
			now := e.clock.Now()
			later := now.Add(time.Hour)
			r.Phase, r.NextActionAt = PhaseSubmitting, &later
			must(t, e.UpdateRefund(ctx, r, PhasePending))
			must(t, e.Hint(ctx, o.ID, now)) // a payment callback, say: no callback of the refund
			must(t, e.Release(ctx, c, &later, now))
			if got := e.getRefund(t, r.ID); !timeEq(got.NextActionAt, &later) {
				t.Fatalf("refund next_action_at %s, want it left at %s", fmtTime(got.NextActionAt), later)
			}
			got := e.getOrder(t, o.ID)
			got.NextActionAt = nil
			must(t, e.UpdateOrder(ctx, &got))
		})
		t.Run("after the holder's own UpdateOrder", func(t *testing.T) {
			c, o := claim(t, "r4")
			v, err := e.LoadOrder(ctx, o.ID)
			must(t, err)
			v.Order.Status = OrderSuccess
			must(t, e.UpdateOrder(ctx, &v.Order))
			must(t, e.Release(ctx, c, nil, e.clock.Now()))
		})
		t.Run("lost lease", func(t *testing.T) {
			c, o := claim(t, "r5")
			e.clock.Advance(2 * time.Minute) // the lease expires; another worker claims
			c2, err := e.ClaimDue(ctx, e.clock.Now(), 1, time.Minute, "w2")
			must(t, err)
			if len(c2) != 1 || c2[0].OrderID != o.ID {
				t.Fatalf("reclaim %+v", c2)
			}
			wantErr(t, e.Release(ctx, c, nil, e.clock.Now()), ErrConflict, fmt.Sprintf("release order %d: conflict: row changed since it was read", o.ID))
			if got := e.getOrder(t, o.ID); got.LeaseOwner != "w2" {
				t.Fatalf("the loser's release cleared the winner's lease: %+v", got)
			}
			must(t, e.Release(ctx, c2[0], nil, e.clock.Now()))
		})
		t.Run("claim without lease falls back to the version", func(t *testing.T) {
			c, o := claim(t, "r6")
			bare := Claim{OrderID: c.OrderID, Version: c.Version, HintSeq: c.HintSeq}
			stale := bare
			stale.Version--
			wantErr(t, e.Release(ctx, stale, nil, e.clock.Now()), ErrConflict, "")
			must(t, e.Release(ctx, bare, nil, e.clock.Now()))
			if got := e.getOrder(t, o.ID); got.LeaseUntil != nil {
				t.Fatal("lease not cleared")
			}
		})
		t.Run("missing order", func(t *testing.T) {
			wantErr(t, e.Release(ctx, Claim{OrderID: 999, LeaseUntil: t0}, nil, t0), ErrNotFound, "")
		})
	})
}

func TestStore_UpdateOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "o1", 0)
		o.Status, o.TotalAmount, o.DouyinOrderID, o.CPSShare, o.CPSKnown = OrderSuccess, 990, "ord_1", 10, true
		o.PaidAt, o.SettleAfter, o.AutoSettleAt = ptr(t0), ptr(t0.Add(168*time.Hour)), ptr(t0.Add(168*time.Hour))
		o.CheckAt, o.CheckedAt, o.Checks = nil, ptr(t0), 3
		version := o.Version
		must(t, e.UpdateOrder(ctx, o, NewEvent{Type: EventOrderPaid, Payload: map[string]any{"amount": 990}}))
		got := e.getOrder(t, o.ID)
		if got.Version != version+1 || o.Version != version+1 || got.TotalAmount != 990 || got.DouyinOrderID != "ord_1" || !got.CPSKnown ||
			got.CPSShare != 10 || !timeEq(got.SettleAfter, o.SettleAfter) || !timeEq(got.CheckedAt, &t0) || got.Checks != 3 {
			t.Fatalf("stored %+v", got)
		}
		evs, err := e.Events(ctx, 0, 10)
		must(t, err)
		if len(evs) != 1 || evs[0].Type != EventOrderPaid || evs[0].AppID != "app1" || evs[0].OutOrderNo != "o1" ||
			evs[0].Payload != `{"amount":990}` || len(evs[0].ID) != 36 || evs[0].ID[:4] != "evt_" || !evs[0].CreatedAt.Equal(t0) {
			t.Fatalf("events %+v", evs)
		}

		t.Run("lost race", func(t *testing.T) {
			stale := *o
			stale.Version--
			stale.Status = OrderFail
			wantErr(t, e.UpdateOrder(ctx, &stale, NewEvent{Type: EventOrderClosed}), ErrConflict, "update order o1: conflict: row changed since it was read")
			if got := e.getOrder(t, o.ID); got.Status != OrderSuccess {
				t.Fatal("the stale update was written")
			}
			if types := e.eventTypes(t); types != "order.paid" {
				t.Fatalf("the stale update's event was written: %s", types)
			}
		})
		t.Run("UpsertOrder filling the amount wins over a stale copy", func(t *testing.T) {
			u := e.order(t, "u1", 0)
			stale := *u
			_, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "u1", TotalAmount: 100}, e.clock.Now())
			must(t, err)
			wantErr(t, e.UpdateOrder(ctx, &stale), ErrConflict, "")
		})
		t.Run("hints and leases are left alone", func(t *testing.T) {
			cur := e.getOrder(t, o.ID)
			must(t, e.Hint(ctx, o.ID, e.clock.Now()))
			cur.HintSeq = 0
			must(t, e.UpdateOrder(ctx, &cur))
			if got := e.getOrder(t, o.ID); got.HintSeq != 1 {
				t.Fatalf("UpdateOrder wrote hint_seq: %d", got.HintSeq)
			}
		})
		t.Run("invalid", func(t *testing.T) {
			cur := e.getOrder(t, o.ID)
			cur.Status = "PAID"
			wantErr(t, e.UpdateOrder(ctx, &cur), ErrInvalid, `update order o1: status: "PAID" is not a known order status`)
			cur = e.getOrder(t, o.ID)
			wantErr(t, e.UpdateOrder(ctx, &cur, NewEvent{}), ErrInvalid, "update order o1: event: type required")
			missing := Order{ID: 999, OutOrderNo: "m", Status: OrderUnknown, Version: 1}
			wantErr(t, e.UpdateOrder(ctx, &missing), ErrNotFound, "")
		})
	})
}

// refundIn returns a fresh refund of a new order, moved along path.
func refundIn(t *testing.T, e *env, key string, path ...Phase) *Refund {
	t.Helper()
	e.order(t, "o-"+key, 1000)
	r := e.refund(t, "o-"+key, key, 100)
	for _, p := range path {
		from := r.Phase
		r.Phase = p
		if newAttempt(from, p) {
			r.Attempt++
			r.OutRefundNo = RefundNo(r.Key, r.Attempt)
		}
		must(t, e.UpdateRefund(context.Background(), r, from))
	}
	return r
}

func TestStore_UpdateRefund(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		n := 0
		for _, from := range Phases {
			for _, to := range Phases {
				n++
				t.Run(fmt.Sprintf("%s to %s", from, to), func(t *testing.T) {
					var path []Phase
					switch from {
					case PhaseSubmitting:
						path = []Phase{PhaseSubmitting}
					case PhaseProcessing:
						path = []Phase{PhaseSubmitting, PhaseProcessing}
					case PhaseSucceeded:
						path = []Phase{PhaseSubmitting, PhaseSucceeded}
					case PhaseParked:
						path = []Phase{PhaseParked}
					case PhasePending:
					}
					r := refundIn(t, e, fmt.Sprintf("t%d", n), path...)
					version := r.Version
					r.Phase = to
					if newAttempt(from, to) {
						r.Attempt++
						r.OutRefundNo = RefundNo(r.Key, r.Attempt)
					}
					r.Checks, r.ErrNo, r.ErrTips, r.NextActionAt = 2, 1000, "busy", ptr(t0.Add(time.Minute))
					err := e.UpdateRefund(ctx, r, from)
					if !allowed(from, to) {
						wantErr(t, err, ErrInvalid, fmt.Sprintf("update refund %s: refund %s: %s → %s is not an allowed transition", r.OutRefundNo, r.Key, from, to))
						if got := e.getRefund(t, r.ID); got.Phase != from || got.Version != version {
							t.Fatalf("refused transition was written: %+v", got)
						}
						return
					}
					must(t, err)
					got := e.getRefund(t, r.ID)
					if got.Phase != to || got.Version != version+1 || r.Version != version+1 || got.Checks != 2 || got.ErrNo != 1000 ||
						got.ErrTips != "busy" || got.Attempt != r.Attempt || got.OutRefundNo != r.OutRefundNo || !timeEq(got.NextActionAt, r.NextActionAt) {
						t.Fatalf("stored %+v", got)
					}
				})
			}
		}

		t.Run("lost race on version", func(t *testing.T) {
			r := refundIn(t, e, "race1")
			a, b := *r, *r
			a.Phase = PhaseSubmitting
			must(t, e.UpdateRefund(ctx, &a, PhasePending))
			b.Phase = PhaseParked
			wantErr(t, e.UpdateRefund(ctx, &b, PhasePending, NewEvent{Type: EventRefundParked}), ErrConflict,
				"update refund race1-1: conflict: row changed since it was read")
			if got := e.getRefund(t, r.ID); got.Phase != PhaseSubmitting {
				t.Fatalf("phase %s, want the winner's submitting", got.Phase)
			}
			if types := e.eventTypes(t); types != "" {
				t.Fatalf("the loser's event was written: %s", types)
			}
		})
		t.Run("lost race on phase", func(t *testing.T) {
			r := refundIn(t, e, "race2", PhaseSubmitting)
			r.Phase = PhaseProcessing
			wantErr(t, e.UpdateRefund(ctx, r, PhasePending), ErrConflict, "")
		})
		t.Run("attempt rules", func(t *testing.T) {
			r := refundIn(t, e, "att", PhaseSubmitting, PhaseProcessing)
			// processing → pending must start attempt 2 …
			bad := *r
			bad.Phase = PhasePending
			wantErr(t, e.UpdateRefund(ctx, &bad, PhaseProcessing), ErrInvalid,
				"update refund att-1: refund att: processing → pending must start attempt 2, not 1")
			// … with attempt 2's number …
			bad.Attempt = 2
			wantErr(t, e.UpdateRefund(ctx, &bad, PhaseProcessing), ErrInvalid,
				"update refund att-1: refund att: merchant number of attempt 2 is att-2, not att-1")
			// … while submitting → pending keeps the number (it never took
			// effect) or starts the next attempt (a query found it FAILED) …
			s := refundIn(t, e, "keep", PhaseSubmitting)
			s.Phase = PhasePending
			s.Attempt = 3
			s.OutRefundNo = RefundNo(s.Key, 3)
			wantErr(t, e.UpdateRefund(ctx, s, PhaseSubmitting), ErrInvalid,
				"update refund keep-3: refund keep: submitting → pending must keep attempt 1 or start 2, not 3")
			s.Attempt = 2
			wantErr(t, e.UpdateRefund(ctx, s, PhaseSubmitting), ErrInvalid,
				"update refund keep-3: refund keep: merchant number of attempt 2 is keep-2, not keep-3")
			s.OutRefundNo = RefundNo(s.Key, 2)
			must(t, e.UpdateRefund(ctx, s, PhaseSubmitting))
			// … and every other move keeps it.
			s.Phase = PhaseSubmitting
			s.Attempt = 3
			s.OutRefundNo = RefundNo(s.Key, 3)
			wantErr(t, e.UpdateRefund(ctx, s, PhasePending), ErrInvalid,
				"update refund keep-3: refund keep: pending → submitting must keep attempt 2, not 3")
		})
		t.Run("events default to the order", func(t *testing.T) {
			r := refundIn(t, e, "ev", PhaseSubmitting, PhaseProcessing)
			r.Phase = PhaseSucceeded
			must(t, e.UpdateRefund(ctx, r, PhaseProcessing, NewEvent{Type: EventRefundSucceeded, Payload: struct {
				Key string `json:"key"`
			}{r.Key}}))
			evs, err := e.Events(ctx, 0, 10)
			must(t, err)
			last := evs[len(evs)-1]
			if last.Type != EventRefundSucceeded || last.AppID != "app1" || last.OutOrderNo != "o-ev" || last.Payload != `{"key":"ev"}` {
				t.Fatalf("event %+v", last)
			}
		})
		t.Run("missing", func(t *testing.T) {
			wantErr(t, e.UpdateRefund(ctx, &Refund{ID: 999, Phase: PhasePending}, PhasePending), ErrNotFound, "")
		})
	})
}

func TestStore_UpdateSettlement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		settlement := func(t *testing.T, no string) *Settlement {
			t.Helper()
			e.order(t, no, 1000)
			st, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: no}, e.clock.Now())
			must(t, err)
			return st
		}
		st := settlement(t, "s1")
		st.Phase, st.Amount = PhaseSubmitting, 990
		must(t, e.UpdateSettlement(ctx, st, PhasePending))
		st.Phase, st.SettleNo = PhaseProcessing, "dy_1"
		must(t, e.UpdateSettlement(ctx, st, PhaseSubmitting))
		// Douyin says FAIL: the next attempt needs a new number.
		next := *st
		next.Phase, next.SettleNo = PhasePending, ""
		next.Attempt = 2
		wantErr(t, e.UpdateSettlement(ctx, &next, PhaseProcessing), ErrInvalid,
			fmt.Sprintf("update settlement %s: settlement of order s1: merchant number of attempt 2 is %s, not %s", st.OutSettleNo, SettleNo("app1", "s1", 2), st.OutSettleNo))
		next.OutSettleNo = SettleNo("app1", "s1", 2)
		must(t, e.UpdateSettlement(ctx, &next, PhaseProcessing, NewEvent{Type: EventSettlementAttemptFailed}))
		got := e.getSettlement(t, st.ID)
		if got.Phase != PhasePending || got.Attempt != 2 || got.OutSettleNo != next.OutSettleNo || got.Amount != 990 || got.Version != next.Version {
			t.Fatalf("stored %+v", got)
		}
		if types := e.eventTypes(t); types != "settlement.attempt_failed" {
			t.Fatalf("events %s", types)
		}
		wantErr(t, e.UpdateSettlement(ctx, &Settlement{ID: 999, OutSettleNo: "st-none", Phase: PhasePending}, PhasePending), ErrNotFound,
			"update settlement st-none: not found")

		t.Run("lost race", func(t *testing.T) {
			stale := *st // the copy from before the new attempt
			stale.Phase = PhaseSucceeded
			wantErr(t, e.UpdateSettlement(ctx, &stale, PhaseProcessing), ErrConflict, "")
		})
		t.Run("succeeded is final", func(t *testing.T) {
			s := settlement(t, "s2")
			s.Phase = PhaseSubmitting
			must(t, e.UpdateSettlement(ctx, s, PhasePending))
			s.Phase = PhaseSucceeded
			must(t, e.UpdateSettlement(ctx, s, PhaseSubmitting))
			s.Phase = PhasePending
			wantErr(t, e.UpdateSettlement(ctx, s, PhaseSucceeded), ErrInvalid, "")
		})
		t.Run("nothing left to settle", func(t *testing.T) {
			s := settlement(t, "s3")
			s.Phase, s.Amount = PhaseSucceeded, 0
			must(t, e.UpdateSettlement(ctx, s, PhasePending))
			// With an amount it would claim money moved without a call.
			s4 := settlement(t, "s4")
			s4.Phase, s4.Amount = PhaseSucceeded, 10
			wantErr(t, e.UpdateSettlement(ctx, s4, PhasePending), ErrInvalid,
				fmt.Sprintf("update settlement %s: settlement of order s4: pending → succeeded is not an allowed transition", s4.OutSettleNo))
		})
	})
}

func TestStore_RetryParked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		r := refundIn(t, e, "p1", PhaseSubmitting, PhaseParked)
		e.clock.Advance(time.Hour)
		now := e.clock.Now()
		before := e.getOrder(t, r.OrderID)
		got, err := e.RetryParked(ctx, "p1", now)
		must(t, err)
		stored := e.getRefund(t, r.ID)
		if got.Phase != PhasePending || got.Attempt != 2 || got.OutRefundNo != "p1-2" || stored.OutRefundNo != "p1-2" ||
			stored.Version != r.Version+1 || !timeEq(stored.NextActionAt, &now) || stored.ParkReason != "" || stored.DoneAt != nil {
			t.Fatalf("retried refund %+v", stored)
		}
		if o := e.getOrder(t, r.OrderID); o.HintSeq != before.HintSeq+1 {
			t.Fatalf("order not hinted: hint_seq %d → %d", before.HintSeq, o.HintSeq)
		}

		_, err = e.RetryParked(ctx, "p1", now)
		wantErr(t, err, ErrInvalid, "retry refund p1: refund p1 is pending: only a parked refund can be retried")
		_, err = e.RetryParked(ctx, "nope", now)
		wantErr(t, err, ErrNotFound, "retry refund nope: not found")

		t.Run("amount checked again", func(t *testing.T) {
			e.order(t, "full", 1000)
			a := e.refund(t, "full", "fa", 600)
			a.Phase = PhaseParked
			must(t, e.UpdateRefund(ctx, a, PhasePending))
			e.refund(t, "full", "fb", 500) // fits only because fa failed
			_, err := e.RetryParked(ctx, "fa", now)
			wantErr(t, err, ErrInvalid, "retry refund fa: refund 600 exceeds what remains of order full: 500 of 1000 fen")
		})
		t.Run("order closed or not found", func(t *testing.T) {
			o := e.order(t, "nf", 1000)
			x := e.refund(t, "nf", "nf1", 10)
			o = ptr(e.getOrder(t, o.ID))
			o.Status = OrderNotFound
			must(t, e.UpdateOrder(ctx, o))
			x.Phase = PhaseParked
			must(t, e.UpdateRefund(ctx, x, PhasePending))
			_, err := e.RetryParked(ctx, "nf1", now)
			must(t, err)
			if got := e.getOrder(t, o.ID); got.Status != OrderUnknown {
				t.Fatalf("NOT_FOUND order after retry: %s, want UNKNOWN (query again)", got.Status)
			}
			o = ptr(e.getOrder(t, o.ID))
			o.Status = OrderTimeout
			must(t, e.UpdateOrder(ctx, o))
			x = ptr(e.getRefund(t, x.ID))
			x.Phase = PhaseParked
			must(t, e.UpdateRefund(ctx, x, PhasePending))
			_, err = e.RetryParked(ctx, "nf1", now)
			wantErr(t, err, ErrInvalid, "retry refund nf1: order nf is TIMEOUT at Douyin: nothing to refund")
		})
	})
}

func TestStore_RetryParkedSettlement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		e.order(t, "s1", 1000)
		st, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "s1", Receivers: []Receiver{{"m", 300}}}, now)
		must(t, err)
		_, err = e.RetryParkedSettlement(ctx, "", "s1", now)
		wantErr(t, err, ErrInvalid, "retry settlement of order s1: settlement of order s1 is pending: only a parked settlement can be retried")
		st.Phase, st.ParkReason = PhaseParked, "settle rejected"
		must(t, e.UpdateSettlement(ctx, st, PhasePending))
		got, err := e.RetryParkedSettlement(ctx, "", "s1", now)
		must(t, err)
		stored := e.getSettlement(t, st.ID)
		if got.Attempt != 2 || stored.Phase != PhasePending || stored.OutSettleNo != SettleNo("app1", "s1", 2) || stored.ParkReason != "" || stored.Version != st.Version+1 {
			t.Fatalf("retried settlement %+v", stored)
		}
		_, err = e.RetryParkedSettlement(ctx, "app1", "none", now)
		wantErr(t, err, ErrNotFound, "")
		e.order(t, "s2", 1000)
		_, err = e.RetryParkedSettlement(ctx, "app1", "s2", now)
		wantErr(t, err, ErrNotFound, "retry settlement of order s2: settlement: not found")
	})
}

func TestStore_AppendAttempt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		o := e.order(t, "o1", 100)
		a := &Attempt{OrderID: o.ID, Resource: "order", ResourceID: o.ID, API: "query_order", MerchantNo: "o1", ErrNo: 0, Outcome: "ok", LatencyMS: 12}
		must(t, e.AppendAttempt(ctx, a))
		if a.ID == 0 || !a.CreatedAt.Equal(t0) {
			t.Fatalf("attempt %+v", a)
		}
		full := &Attempt{OrderID: o.ID, Resource: "refund", ResourceID: 7, API: "create_refund", MerchantNo: "o1-r-2", ErrNo: 2000,
			ErrTips: "退款失败", Outcome: "permanent", LatencyMS: 345, CreatedAt: t0.Add(1500 * time.Microsecond)}
		must(t, e.AppendAttempt(ctx, full))
		var got Attempt
		must(t, e.DB().First(&got, full.ID).Error)
		if got.ID != a.ID+1 || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", *full) {
			t.Fatalf("stored %+v, want %+v", got, *full)
		}
		wantErr(t, e.AppendAttempt(ctx, a), ErrInvalid, "append attempt query_order o1: id: attempts are only appended, 1 given")
		wantErr(t, e.AppendAttempt(ctx, &Attempt{OrderID: o.ID, API: "query_order", MerchantNo: "o1"}), ErrInvalid,
			"append attempt query_order o1: resource, api, merchant_no and outcome are required")
		wantErr(t, e.AppendAttempt(ctx, &Attempt{OrderID: 999, Resource: "order", API: "query_order", MerchantNo: "x", Outcome: "ok"}), ErrNotFound,
			"append attempt query_order x: order 999: not found")
	})
}

func TestStore_HintStale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// At t0: a refund processing and a settlement submitting, both of
		// which will go stale; a pending refund that never counts.
		stale := refundIn(t, e, "stale", PhaseSubmitting, PhaseProcessing)
		stale.NextActionAt = ptr(t0.Add(24 * time.Hour))
		stale.Checks++
		must(t, e.UpdateRefund(ctx, stale, PhaseProcessing))
		e.order(t, "so", 1000)
		st, _, err := e.DeclareSettlement(ctx, SettlementWish{OutOrderNo: "so"}, t0)
		must(t, err)
		st.Phase = PhaseSubmitting
		must(t, e.UpdateSettlement(ctx, st, PhasePending))
		pending := refundIn(t, e, "pend")
		// Later: a fresh processing refund.
		e.clock.Advance(20 * time.Minute)
		fresh := refundIn(t, e, "fresh", PhaseSubmitting, PhaseProcessing)
		// Every order released with nothing to do, so hints show.
		for _, id := range []int64{stale.OrderID, st.OrderID, pending.OrderID, fresh.OrderID} {
			o := e.getOrder(t, id)
			o.NextActionAt = nil
			must(t, e.UpdateOrder(ctx, &o))
		}

		now := e.clock.Now()
		n, err := e.HintStale(ctx, now, 10*time.Minute, 100)
		must(t, err)
		if n != 2 {
			t.Fatalf("hinted %d orders, want 2", n)
		}
		for _, id := range []int64{stale.OrderID, st.OrderID} {
			if o := e.getOrder(t, id); !timeEq(o.NextActionAt, &now) {
				t.Errorf("order %d not hinted", id)
			}
		}
		for _, id := range []int64{pending.OrderID, fresh.OrderID} {
			if o := e.getOrder(t, id); o.NextActionAt != nil {
				t.Errorf("order %d hinted though nothing of it is stale", id)
			}
		}
		if r := e.getRefund(t, stale.ID); !timeEq(r.NextActionAt, &now) || r.Version != stale.Version {
			t.Errorf("stale refund: next %s version %d; want now and unchanged version", fmtTime(r.NextActionAt), r.Version)
		}
		if n, err := e.HintStale(ctx, now, 10*time.Minute, 1); err != nil || n != 1 {
			t.Fatalf("limit 1: %d, %v", n, err)
		}
	})
}

// TestTransitions_Documented pins the transition table to the one in
// UpdateRefund's documentation.
func TestTransitions_Documented(t *testing.T) {
	want := map[Phase]string{
		PhasePending:    "[parked pending submitting]",
		PhaseSubmitting: "[parked pending processing submitting succeeded]",
		PhaseProcessing: "[parked pending processing succeeded]",
		PhaseParked:     "[pending]",
		PhaseSucceeded:  "[]",
	}
	for _, from := range Phases {
		var to []string
		for _, p := range Phases {
			if allowed(from, p) {
				to = append(to, string(p))
			}
		}
		sort.Strings(to)
		if got := fmt.Sprint(to); got != want[from] {
			t.Errorf("%s → %s, want %s", from, got, want[from])
		}
	}
}
