package reconcile_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

// slowOrders is fakeProvider answering each order query after delay, and
// counting the queries per order.
type slowOrders struct {
	*fakeProvider
	delay time.Duration
	mu    sync.Mutex
	per   map[string]int
}

func (s *slowOrders) QueryOrder(ctx context.Context, o provider.OrderRef) (*provider.OrderInfo, error) {
	time.Sleep(s.delay)
	s.mu.Lock()
	s.per[o.OutOrderNo]++
	s.mu.Unlock()
	return s.fakeProvider.QueryOrder(ctx, o)
}

// TestReconciler_SlowProviderNoOrderTwice: Douyin answers slower than a
// claim hands out orders (four workers, 40 ms a call, 120 orders, a lease
// of 1.2 s: the last would start after 1.2 s). No order is queried twice
// (none is worked after its lease ran out and it was claimed again), and
// every order is learned.
func TestReconciler_SlowProviderNoOrderTwice(t *testing.T) {
	ctx := context.Background()
	paidAt := time.Now().Add(-time.Hour).UTC()
	fake := &slowOrders{fakeProvider: newFakeProvider(time.Now, paidAt), delay: 40 * time.Millisecond, per: map[string]int{}}
	st := storetest.Open(t, nil)
	const n = 120
	for i := range n {
		if _, _, err := st.UpsertOrder(ctx, state.OrderInput{AppID: "fake", OutOrderNo: fmt.Sprintf("o%03d", i)}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	p := reconcile.DefaultPolicy()
	p.Jitter = 0
	rec := reconcile.New(reconcile.Options{Store: st, Provider: fake, Clock: clock.Real{}, Policy: p, Workers: 4, Lease: 1200 * time.Millisecond, MaxOrders: 500})
	letGo := 0
	deadline := time.Now().Add(30 * time.Second)
	for len(fake.per) < n && time.Now().Before(deadline) {
		ps, err := rec.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		letGo += ps.LetGo
	}
	for no, k := range fake.per {
		if k != 1 {
			t.Errorf("order %s queried %d times, want once", no, k)
		}
	}
	if len(fake.per) != n {
		t.Fatalf("%d of %d orders queried", len(fake.per), n)
	}
	t.Logf("%d orders let go as their lease ran low", letGo)
}
