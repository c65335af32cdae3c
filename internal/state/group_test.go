package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestGrouped_CommitsTogetherAndFailsAlone: calls made while a group
// commits go into the next group together; a call whose fn fails loses its
// own writes only, and every other call's writes are stored; a lone call
// is a group of one. Both backends (Grouped is meant for SQLite, but it
// must be right on either).
func TestGrouped_CommitsTogetherAndFailsAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const n = 12
		refunds := orderRefunds(t, e, "g", n, 1000)
		g := e.Grouped(64)

		// The first call holds its group open until the other n-1 calls
		// are queued behind it, so they must share the next group.
		// Its group is taken once its transaction began, so the others
		// start once its fn runs.
		release, running := make(chan struct{}), make(chan struct{})
		first := make(chan error, 1)
		go func() {
			first <- g.InTx(ctx, func(tx *Store) error {
				close(running)
				<-release
				return setErrTips(ctx, tx, refunds[0], "first")
			})
		}()
		<-running
		errs := make([]error, n)
		var wg sync.WaitGroup
		boom := errors.New("boom")
		for i := 1; i < n; i++ {
			wg.Go(func() {
				errs[i] = g.InTx(ctx, func(tx *Store) error {
					if err := setErrTips(ctx, tx, refunds[i], "grouped"); err != nil {
						return err
					}
					if i == 5 {
						return boom // written, then failed: rolled back alone
					}
					return nil
				})
			})
		}
		waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == n-1 })
		close(release)
		wg.Wait()
		must(t, <-first)
		for i := 1; i < n; i++ {
			if want := error(nil); i == 5 {
				if !errors.Is(errs[i], boom) {
					t.Fatalf("call %d: %v, want boom", i, errs[i])
				}
			} else if errs[i] != want {
				t.Fatalf("call %d: %v", i, errs[i])
			}
		}
		for i, rf := range refunds {
			var cur Refund
			must(t, e.DB().Where("id = ?", rf.ID).Take(&cur).Error)
			want := "grouped"
			switch i {
			case 0:
				want = "first"
			case 5:
				want = "" // its fn failed: its write is gone
			}
			if cur.ErrTips != want {
				t.Fatalf("refund %d: err_tips %q, want %q", i, cur.ErrTips, want)
			}
		}
		if groups, calls := g.GroupStats(); groups != 2 || calls != n {
			t.Fatalf("%d calls in %d groups, want %d in 2 (the first alone, then the rest together)", calls, groups, n)
		}
		// A lone call afterwards is a group of its own.
		must(t, g.InTx(ctx, func(tx *Store) error { return setErrTips(ctx, tx, refunds[5], "alone") }))
		if groups, _ := g.GroupStats(); groups != 3 {
			t.Fatalf("groups = %d, want 3", groups)
		}
	})
}

// TestGrouped_ManyCallers: many goroutines' calls, bounded in count, all
// stored, in fewer transactions than calls, none lost or doubled.
func TestGrouped_ManyCallers(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	const workers, each = 16, 25
	refunds := orderRefunds(t, e, "m", workers, 100000)
	g := e.Grouped(8)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range each {
				if err := g.InTx(ctx, func(tx *Store) error { return setErrTips(ctx, tx, refunds[w], fmt.Sprint(k)) }); err != nil {
					t.Errorf("worker %d call %d: %v", w, k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkLastWrites(t, e, refunds, each)
	groups, calls := g.GroupStats()
	if calls != workers*each || groups > calls {
		t.Fatalf("%d calls in %d groups, want %d calls", calls, groups, workers*each)
	}
	t.Logf("%d calls in %d transactions", calls, groups)
}

// checkLastWrites checks that each refund holds the last of each writes
// of setErrTips (0 to each-1) its worker made.
func checkLastWrites(t *testing.T, e *env, refunds []*Refund, each int) {
	t.Helper()
	for w, rf := range refunds {
		var cur Refund
		must(t, e.DB().Where("id = ?", rf.ID).Take(&cur).Error)
		if cur.ErrTips != fmt.Sprint(each-1) {
			t.Fatalf("refund %d: err_tips %q, want the last write %d", w, cur.ErrTips, each-1)
		}
	}
}

// setErrTips writes a refund's err_tips inside tx (any write would do).
func setErrTips(ctx context.Context, tx *Store, rf *Refund, tips string) error {
	return tx.session(ctx).Exec("UPDATE refunds SET err_tips = ? WHERE id = ?", tips, rf.ID).Error
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10 s")
}

// TestGrouped_JoinsWhileTheConnectionIsBusy: on SQLite's one connection,
// the calls made while another transaction (a claim, the callback inbox)
// holds it all wait in one group: the leader takes its group once its own
// transaction began, not before it waited for the connection.
func TestGrouped_JoinsWhileTheConnectionIsBusy(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	const n = 6
	refunds := orderRefunds(t, e, "j", n, 1000)
	g := e.Grouped(64)
	release := holdConnection(t, e)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = g.InTx(ctx, func(tx *Store) error { return setErrTips(ctx, tx, refunds[i], "joined") })
		})
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == n })
	release()
	wg.Wait()
	for i := range n {
		must(t, errs[i])
		if got := e.getRefund(t, refunds[i].ID).ErrTips; got != "joined" {
			t.Fatalf("refund %d: err_tips %q", i, got)
		}
	}
	if groups, calls := g.GroupStats(); groups != 1 || calls != n {
		t.Fatalf("%d calls in %d groups, want %d in 1", calls, groups, n)
	}
}

// TestGrouped_ClaimCommitsWithTheGroup: a claim made through Grouped while
// a write is queued shares that write's transaction, takes its orders
// (leased to its owner, as Store.ClaimFair would) and reports an invalid
// request as Store.ClaimFair does.
func TestGrouped_ClaimCommitsWithTheGroup(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	now := e.clock.Now()
	ids := []int64{orderAt(t, e, "app1", "c0", now.Add(-time.Minute)), orderAt(t, e, "app1", "c1", now.Add(-time.Second))}
	w0 := e.order(t, "w0", 1000)
	rf := e.refund(t, "w0", "w0-r", 100) // its declaration makes w0 due too
	ids = append(ids, w0.ID)
	g := e.Grouped(64)
	release := holdConnection(t, e)
	var claims []Claim
	var claimErr, writeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		claims, _, claimErr = g.ClaimFair(ctx, now, Quota{Apps: map[string]int{"app1": 5}}, time.Minute, "w1", nil)
	})
	wg.Go(func() { writeErr = g.InTx(ctx, func(tx *Store) error { return setErrTips(ctx, tx, rf, "beside") }) })
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == 2 })
	release()
	wg.Wait()
	must(t, claimErr)
	must(t, writeErr)
	if len(claims) != len(ids) {
		t.Fatalf("claimed %+v, want orders %v", claims, ids)
	}
	for _, c := range claims {
		if o := e.getOrder(t, c.OrderID); o.LeaseOwner != "w1" || o.LeaseUntil == nil {
			t.Fatalf("order %d after the claim: owner %q, lease %v", c.OrderID, o.LeaseOwner, o.LeaseUntil)
		}
	}
	if groups, calls := g.GroupStats(); groups != 1 || calls != 2 {
		t.Fatalf("%d calls in %d groups, want the claim and the write in 1", calls, groups)
	}
	_, _, err := g.ClaimFair(ctx, now, Quota{Others: 1}, 0, "w1", nil)
	wantErr(t, err, ErrInvalid, "claim due orders: lease: 0s is not positive")
}

// TestGrouped_CallbacksCommitWithTheGroup: a callback batch stored through
// Grouped while a write is queued shares that write's transaction, and
// its callbacks come out as Store.InsertCallbacks gives them: stored,
// duplicate (a twin in the batch) or refused, the paid order hinted.
func TestGrouped_CallbacksCommitWithTheGroup(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	o := e.order(t, "cb0", 1000)
	o.NextActionAt = nil
	must(t, e.UpdateOrder(ctx, o))
	e.order(t, "w1", 1000)
	rf := e.refund(t, "w1", "w1-r", 100)
	g := e.Grouped(64)
	release := holdConnection(t, e)
	cbs := []*Callback{
		{AppID: "app1", Type: "payment", Signature: "g1", SubjectNo: "cb0", Raw: "{}"},
		{AppID: "app1", Type: "payment", Signature: "g1", SubjectNo: "cb0", Raw: "{}"}, // twin
		{AppID: "app1", Type: "", Signature: "g2", SubjectNo: "cb0", Raw: "{}"},        // invalid
	}
	var res []CallbackResult
	var writeErr error
	var wg sync.WaitGroup
	wg.Go(func() { res = g.InsertCallbacks(ctx, cbs, e.clock.Now()) })
	wg.Go(func() { writeErr = g.InTx(ctx, func(tx *Store) error { return setErrTips(ctx, tx, rf, "beside") }) })
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == 2 })
	release()
	wg.Wait()
	must(t, writeErr)
	if !res[0].Inserted || res[0].Err != nil || res[1].Inserted || res[1].Err != nil || res[2].Inserted || !errors.Is(res[2].Err, ErrInvalid) {
		t.Fatalf("results %+v; want stored, duplicate, invalid", res)
	}
	if got := e.getOrder(t, o.ID); got.NextActionAt == nil || got.HintSeq != o.HintSeq+1 {
		t.Fatalf("order after its payment callback: next %v, hint %d (was %d)", got.NextActionAt, got.HintSeq, o.HintSeq)
	}
	if groups, calls := g.GroupStats(); groups != 1 || calls != 2 {
		t.Fatalf("%d calls in %d groups, want the batch and the write in 1", calls, groups)
	}
}

// holdConnection holds SQLite's one connection in a transaction of its
// own until the returned func is called, which waits for it to end.
func holdConnection(t *testing.T, e *env) func() {
	t.Helper()
	release, holding := make(chan struct{}), make(chan struct{})
	other := make(chan error, 1)
	go func() {
		other <- e.InTx(context.Background(), func(tx *Store) error { close(holding); <-release; return nil })
	}()
	<-holding
	return func() { close(release); must(t, <-other) }
}

// orderRefunds records n orders of total fen, prefix and a number each,
// and a refund of 100 fen on each; it returns the refunds.
func orderRefunds(t *testing.T, e *env, prefix string, n int, total int64) []*Refund {
	t.Helper()
	var refunds []*Refund
	for i := range n {
		no := fmt.Sprintf("%s%02d", prefix, i)
		e.order(t, no, total)
		refunds = append(refunds, e.refund(t, no, no+"-r", 100))
	}
	return refunds
}
