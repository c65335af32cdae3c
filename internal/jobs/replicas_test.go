package jobs_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/jobs"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/testworld"
)

// TestReplicas_ShareTheBudget runs two replicas of payd on one database,
// each configured with the app's whole settle limit. With Membership each takes half and Douyin never answers 1001;
// without it, together they run at twice the limit and hear 1001.
func TestReplicas_ShareTheBudget(t *testing.T) {
	for _, share := range []bool{true, false} {
		t.Run(map[bool]string{true: "membership", false: "no membership"}[share], func(t *testing.T) {
			// Douyin grants 20/s; each replica is configured 10% under the
			// grant, as an operator would (two independent schedulers bunch
			// their arrivals now and then).
			const grant, limit, n = 20.0, 18.0, 40
			limits := map[douyin.API]float64{}
			simLimits := map[douyin.API]float64{}
			for _, api := range douyin.APIs {
				limits[api], simLimits[api] = 500, 1000
			}
			limits[douyin.APISettle], simLimits[douyin.APISettle] = limit, grant
			w := testworld.New(t, testworld.Options{Workers: 8, Limits: limits, Sim: func(c *douyinsim.Config) { c.Limits = simLimits }})
			ctx := context.Background()
			paid := w.Sim.Now().Add(-8 * 24 * time.Hour)
			for i := 0; i < n; i++ {
				w.SeedPaid(fmt.Sprintf("rp%02d", i), 1000, 0, paid)
			}
			w.Pass() // every order is known to be paid
			if _, err := w.Batch.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			clientB, err := douyin.New(douyin.Options{BaseURL: w.SimURL, Timeout: 5 * time.Second, Apps: []douyin.App{{AppID: testworld.AppID, Salt: testworld.Salt, Token: testworld.Token}}, Limits: limits})
			if err != nil {
				t.Fatal(err)
			}
			recB := reconcile.New(reconcile.Options{Store: w.Store, Provider: douyin.NewProvider(clientB), Clock: w.Clock, Policy: w.Policy, Workers: 8, Owner: "replica-b"})
			if share {
				for owner, c := range map[string]*douyin.Client{"replica-a": w.Client, "replica-b": clientB} {
					m := &jobs.Membership{Store: w.Store, Limiter: c.Limiter(), Owner: owner, Clock: w.Clock}
					if _, err := m.RunOnce(ctx); err != nil {
						t.Fatal(err)
					}
				}
				// A replica's first heartbeat may precede the other's: the
				// second round sees both.
				for owner, c := range map[string]*douyin.Client{"replica-a": w.Client, "replica-b": clientB} {
					m := &jobs.Membership{Store: w.Store, Limiter: c.Limiter(), Owner: owner, Clock: w.Clock}
					if got, err := m.RunOnce(ctx); err != nil || got != 2 {
						t.Fatalf("heartbeat of %s: %d replicas, %v; want 2", owner, got, err)
					}
				}
				if a, b := w.Client.Rate(testworld.AppID, douyin.APISettle), clientB.Rate(testworld.AppID, douyin.APISettle); a != limit/2 || b != limit/2 {
					t.Fatalf("settle rates %v and %v, want %v each", a, b, limit/2)
				}
			}
			var wg sync.WaitGroup
			start := time.Now()
			for _, rec := range []*reconcile.Reconciler{w.Rec, recB} {
				wg.Go(func() {
					if _, err := rec.RunOnce(ctx); err != nil {
						t.Errorf("RunOnce: %v", err)
					}
				})
			}
			wg.Wait()
			took := time.Since(start)
			st := w.Sim.Stats()
			busy := st.Busy()
			t.Logf("%d settles by two replicas in %s: %d answered 1001", st.ByAPI[douyin.APISettle][0], took.Round(time.Millisecond), busy)
			if share {
				if busy != 0 {
					t.Fatalf("%d calls answered 1001 with the budget shared", busy)
				}
				if st.ByAPI[douyin.APISettle][0] != n {
					t.Fatalf("%d settles accepted in one pass each, want %d", st.ByAPI[douyin.APISettle][0], n)
				}
			} else if busy == 0 {
				t.Fatal("two replicas each at the whole limit heard no 1001: the check above proves nothing")
			}
			w.Converge(20, 2*time.Second, func() bool { return w.OpenItems() == 0 })
			w.CheckClean()
		})
	}
}

func TestMembership_SharesAndLeaves(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	ctx := context.Background()
	a := &jobs.Membership{Store: w.Store, Limiter: w.Client.Limiter(), Owner: "a", Clock: w.Clock, TTL: 10 * time.Second}
	lb := douyin.NewLimiter(nil, 1, nil)
	b := &jobs.Membership{Store: w.Store, Limiter: lb, Owner: "b", Clock: w.Clock, TTL: 10 * time.Second}
	for _, step := range []struct {
		m    *jobs.Membership
		want int
	}{{a, 1}, {b, 2}, {a, 2}} {
		if n, err := step.m.RunOnce(ctx); err != nil || n != step.want {
			t.Fatalf("%s: %d, %v; want %d", step.m.Owner, n, err, step.want)
		}
	}
	if w.Client.Limiter().Share() != 2 || lb.Share() != 2 {
		t.Fatalf("shares %d and %d, want 2 and 2", w.Client.Limiter().Share(), lb.Share())
	}
	b.Leave()
	if n, err := a.RunOnce(ctx); err != nil || n != 1 || w.Client.Limiter().Share() != 1 {
		t.Fatalf("after b left: %d, %v, share %d; want the whole budget back", n, err, w.Client.Limiter().Share())
	}
	// b dies without leaving: a takes the whole budget after the TTL.
	if _, err := b.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.RunOnce(ctx); n != 2 {
		t.Fatalf("b back: %d replicas, want 2", n)
	}
	w.Advance(11 * time.Second)
	if n, err := a.RunOnce(ctx); err != nil || n != 1 || w.Client.Limiter().Share() != 1 {
		t.Fatalf("b silent past the TTL: %d, %v, share %d; want 1", n, err, w.Client.Limiter().Share())
	}
	// Run heartbeats and leaves when its context ends.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.TTL = 50 * time.Millisecond
	go func() { defer close(done); b.Run(runCtx) }()
	time.Sleep(30 * time.Millisecond) // a few heartbeats at TTL/5
	cancel()
	<-done
	if n, _ := a.RunOnce(ctx); n != 1 {
		t.Fatalf("after b's Run ended: %d replicas, want 1 (it left)", n)
	}
}

func TestParseOwner(t *testing.T) {
	for _, tc := range []struct {
		owner string
		host  string
		pid   int
		ok    bool
	}{
		{jobs.FormatOwner("web-1", 4242), "web-1", 4242, true},
		{"pod/ns/7", "pod/ns", 7, true},
		{"host", "", 0, false},
		{"/12", "", 0, false},
		{"host/0", "", 0, false},
		{"host/x1", "", 0, false},
	} {
		host, pid, ok := jobs.ParseOwner(tc.owner)
		if host != tc.host || pid != tc.pid || ok != tc.ok {
			t.Errorf("ParseOwner(%q) = %q, %d, %v; want %q, %d, %v", tc.owner, host, pid, ok, tc.host, tc.pid, tc.ok)
		}
	}
}

// TestMembership_JoinWaitsUntilSeen: a replica that joins returns from Join
// only once the replica already running has heartbeated after it joined,
// so that one has shrunk its share before the newcomer makes a call.
func TestMembership_JoinWaitsUntilSeen(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	ctx := context.Background()
	a := &jobs.Membership{Store: w.Store, Limiter: w.Client.Limiter(), Owner: "a", Clock: w.Clock}
	if n, err := a.Join(ctx); err != nil || n != 1 {
		t.Fatalf("alone: %d, %v", n, err)
	}
	lb := douyin.NewLimiter(nil, 1, nil)
	b := &jobs.Membership{Store: w.Store, Limiter: lb, Owner: "b", Clock: w.Clock}
	joined := make(chan int, 1)
	go func() {
		n, err := b.Join(ctx)
		if err != nil {
			t.Errorf("join: %v", err)
		}
		joined <- n
	}()
	// a heartbeats on its own schedule until b's Join has returned; when
	// it does, a must already hold half the budget.
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("Join did not return after 200 heartbeats of the other replica")
		}
		shareBefore := w.Client.Limiter().Share()
		select {
		case n := <-joined:
			if n != 2 || shareBefore != 2 || lb.Share() != 2 {
				t.Fatalf("joined with %d replicas; shares a=%d b=%d, want 2 each before b calls", n, shareBefore, lb.Share())
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		w.Advance(time.Millisecond)
		if _, err := a.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
