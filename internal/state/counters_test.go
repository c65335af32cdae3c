package state

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// checkCounters fails unless the counters (folded or not) equal a recount
// from the rows, key by key.
func checkCounters(t *testing.T, s *Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	var kinds []CounterKind
	for _, c := range contributions {
		kinds = append(kinds, c.kind)
	}
	got, err := s.Counters(ctx, CounterQuery{Kinds: kinds})
	must(t, err)
	want, err := s.Recount(ctx, now)
	must(t, err)
	key := func(c Counter) string { return fmt.Sprintf("%s/%s/%d/%s", c.Kind, c.Scope, c.Bucket, c.Label) }
	gm, wm := map[string]Counter{}, map[string]Counter{}
	for _, c := range got {
		if !isHistory(c.Kind) || c.Bucket >= now.Add(-CounterRetention).Unix() {
			gm[key(c)] = c
		}
	}
	for _, c := range want {
		if c.N != 0 || c.Amount != 0 {
			wm[key(c)] = c
		}
	}
	for k, w := range wm {
		if g := gm[k]; g.N != w.N || g.Amount != w.Amount {
			t.Errorf("counter %s: kept %d / %d, recounted %d / %d", k, g.N, g.Amount, w.N, w.Amount)
		}
	}
	for k, g := range gm {
		if _, ok := wm[k]; !ok {
			t.Errorf("counter %s: kept %d / %d, recounted nothing", k, g.N, g.Amount)
		}
	}
	if len(wm) == 0 {
		t.Fatal("nothing counted")
	}
}

// moveRefund moves refund key through the store's transition check.
func moveRefund(t *testing.T, s *Store, key string, to Phase, next bool) {
	t.Helper()
	var r Refund
	must(t, s.DB().Where("idem_key = ?", key).First(&r).Error)
	from := r.Phase
	if next {
		r.Attempt++
		r.OutRefundNo = RefundNo(r.Key, r.Attempt)
	}
	r.Phase = to
	must(t, s.UpdateRefund(context.Background(), &r, from))
}

func TestStore_CountersEqualRecount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		checkNone := func() {
			t.Helper()
			cs, err := e.Counters(ctx, CounterQuery{Kinds: []CounterKind{CountOrders}})
			must(t, err)
			if len(cs) != 0 {
				t.Fatalf("counters of an empty database: %+v", cs)
			}
		}
		checkNone()
		// Several writers at once (on PostgreSQL, stores of their own),
		// each on its own orders, with folds running beside them.
		var wg sync.WaitGroup
		stores := []*Store{e.Store, e.reopen(t), e.reopen(t)}
		for w, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 12 {
					no := fmt.Sprintf("w%d-o%d", w, i)
					paid := now.Add(-time.Duration(i) * time.Hour)
					o, _, err := s.UpsertOrder(ctx, OrderInput{AppID: fmt.Sprintf("app%d", i%2), OutOrderNo: no, TotalAmount: 1000 + int64(i), Status: OrderSuccess, PaidAt: &paid}, now)
					if err != nil {
						t.Error(err)
						return
					}
					key := no + "-r"
					if _, _, err := s.DeclareRefund(ctx, RefundWish{OutOrderNo: no, Key: key, Amount: 100 + int64(i)}, now); err != nil {
						t.Error(err)
						return
					}
					moveRefund(t, s, key, PhaseSubmitting, false)
					switch i % 4 {
					case 0:
						moveRefund(t, s, key, PhaseProcessing, false)
						moveRefund(t, s, key, PhaseSucceeded, false)
					case 1:
						moveRefund(t, s, key, PhaseParked, false)
						if _, err := s.RetryParked(ctx, key, now); err != nil {
							t.Error(err)
						}
					case 2:
						moveRefund(t, s, key, PhasePending, false)
						if _, err := s.CancelRefund(ctx, key, "kept", now); err != nil {
							t.Error(err)
						}
					}
					due := now.Add(time.Duration(i) * 24 * time.Hour)
					if _, _, err := s.DeclareSettlement(ctx, SettlementWish{OutOrderNo: no, DueAt: &due}, now); err != nil {
						t.Error(err)
					}
					if err := s.AppendAttempt(ctx, &Attempt{OrderID: o.ID, Resource: "order", API: "query_order", MerchantNo: no, ErrNo: []int{0, 1001, 12001}[i%3], Outcome: "ok", CreatedAt: now}); err != nil {
						t.Error(err)
					}
					if _, err := s.FoldCounters(ctx, now, 1); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		checkCounters(t, e.Store, now)
		// Bulk statements that no Go code path counts: a paid-at change
		// moves pending settlements between days, a settlement succeeds.
		must(t, e.DB().Exec("UPDATE orders SET settle_after = ?, cps_share = 7 WHERE app_id = 'app0'", now.Add(72*time.Hour)).Error)
		must(t, e.DB().Exec("UPDATE settlements SET due_at = NULL WHERE id % 2 = 0").Error)
		must(t, e.DB().Exec("UPDATE settlements SET phase = 'succeeded', amount = 900, done_at = ? WHERE id % 3 = 0", now).Error)
		must(t, e.DB().Exec("UPDATE orders SET auto_settle_at = settle_after WHERE id % 2 = 1").Error)
		checkCounters(t, e.Store, now)
		n, err := e.FoldCounters(ctx, now, 0)
		must(t, err)
		if n == 0 {
			t.Fatal("nothing left to fold")
		}
		checkCounters(t, e.Store, now)
		var left int64
		must(t, e.DB().Table("counter_deltas").Count(&left).Error)
		if left != 0 {
			t.Fatalf("%d deltas left after folding all", left)
		}
	})
}

// beforeCounters takes the schema back to before step 14's triggers, as a
// test that rewinds to an older schema needs (those had none).
func (e *env) beforeCounters(t *testing.T) {
	t.Helper()
	must(t, dropCounterTriggers(e.DB(), e.dialect))
}

func TestStore_RecordPass(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i := range KeepPasses + 5 {
			must(t, e.RecordPass(ctx, Pass{Kind: PassReconcile, Replica: "r1", StartedAt: t0.Add(time.Duration(i) * time.Second), Actions: i}))
		}
		must(t, e.RecordPass(ctx, Pass{Kind: PassSettleBatch, Replica: "r2", StartedAt: t0.Add(-30 * 24 * time.Hour), Actions: 9}))
		// A batch a week and more after the first: the first is pruned by age.
		must(t, e.RecordPass(ctx, Pass{Kind: PassSettleBatch, Replica: "r2", StartedAt: t0, Actions: 3, Detail: "due 3"}))
		got, err := e.LastPasses(ctx, PassReconcile, 1000)
		must(t, err)
		if len(got) != KeepPasses || got[0].Actions != KeepPasses+4 || got[len(got)-1].Actions != 5 {
			t.Fatalf("%d reconcile passes kept, newest %d, oldest %d; want %d, %d, 5", len(got), got[0].Actions, got[len(got)-1].Actions, KeepPasses, KeepPasses+4)
		}
		b, err := e.LastPasses(ctx, PassSettleBatch, 10)
		must(t, err)
		if len(b) != 1 || b[0].Actions != 3 || b[0].Detail != "due 3" || b[0].Replica != "r2" {
			t.Fatalf("settle batches %+v", b)
		}
	})
}

// TestMigrate_CountersBackfill: step 14 on a database that has rows and no
// counters (written before it) counts every row, and the counters stay
// equal to a recount through the writes after it.
func TestMigrate_CountersBackfill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.beforeCounters(t)
		must(t, e.DB().Exec("DELETE FROM counters").Error)
		must(t, e.DB().Exec("DELETE FROM schema_versions WHERE version >= 14").Error)
		for i := range 5 {
			e.order(t, fmt.Sprintf("b%d", i), int64(1000+i))
			e.refund(t, fmt.Sprintf("b%d", i), fmt.Sprintf("bk%d", i), 100)
		}
		moveRefund(t, e.Store, "bk0", PhaseSubmitting, false)
		if cs, err := e.Counters(ctx, CounterQuery{Kinds: []CounterKind{CountOrders, CountRefunds}}); err != nil || len(cs) != 0 {
			t.Fatalf("counters before step 14: %+v %v", cs, err)
		}
		must(t, e.Migrate(ctx))
		checkCounters(t, e.Store, e.clock.Now())
		cs, err := e.Counters(ctx, CounterQuery{Kinds: []CounterKind{CountRefunds}})
		must(t, err)
		if len(cs) != 2 || cs[0].Label != "pending" || cs[0].N != 4 || cs[1].Label != "submitting" || cs[1].N != 1 {
			t.Fatalf("refund counters after the backfill: %+v", cs)
		}
		moveRefund(t, e.Store, "bk0", PhaseProcessing, false)
		_, err = e.CancelRefund(ctx, "bk1", "x", e.clock.Now())
		must(t, err)
		checkCounters(t, e.Store, e.clock.Now())
	})
}
