package jobs_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/jobs"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

func TestScheduler_RunsAndStopWaitsForRunInFlight(t *testing.T) {
	var runs, finished atomic.Int32
	started := make(chan struct{}, 10)
	s, err := jobs.NewScheduler(context.Background(), nil, jobs.Schedule{Name: "tick", Spec: "@every 1s", Run: func(ctx context.Context) error {
		runs.Add(1)
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond) // a pass in flight
		finished.Add(1)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("job never ran")
	}
	if err := s.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if runs.Load() != finished.Load() {
		t.Fatalf("Stop returned with a run in flight: %d started, %d finished", runs.Load(), finished.Load())
	}
	n := runs.Load()
	time.Sleep(1200 * time.Millisecond)
	if runs.Load() != n {
		t.Fatal("a run started after Stop")
	}
}

func TestNewScheduler_BadSpecNamesTheJob(t *testing.T) {
	_, err := jobs.NewScheduler(context.Background(), nil, jobs.Schedule{Name: "settle_batch", Spec: "every day", Run: func(context.Context) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), `schedule settle_batch "every day"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestReconciler_CancelledPassStartsNothing(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	w.SeedPaid("oz", 1000, 0, w.Sim.Now())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ps, _ := w.Rec.RunOnce(ctx)
	if ps.Orders != 0 {
		t.Fatalf("worked on %d orders after cancel", ps.Orders)
	}
	if n := len(w.View("oz").Attempts); n != 0 {
		t.Fatalf("%d calls made after cancel", n)
	}
	// Nothing is left leased: a normal pass picks the order up at once.
	w.Pass()
	if o := w.View("oz").Order; o.Status != state.OrderSuccess {
		t.Fatalf("order %s after a normal pass", o.Status)
	}
}

func TestReconciler_WakeRunsAPass(t *testing.T) {
	w := testworld.New(t, testworld.Options{})
	w.SeedPaid("ow", 1000, 0, w.Sim.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Rec.Run(ctx); close(done) }()
	w.Rec.Wake()
	deadline := time.Now().Add(5 * time.Second)
	for w.View("ow").Order.Status != state.OrderSuccess {
		if time.Now().After(deadline) {
			t.Fatal("Wake did not lead to a pass")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// heldStore is a BatchStore and SweepStore whose job lock another replica
// holds: nothing may be read or written through it.
type heldStore struct{ t *testing.T }

func (h heldStore) RunLocked(context.Context, string, func(context.Context) error) (bool, error) {
	return false, nil
}
func (h heldStore) CreateDueSettlements(context.Context, time.Time, []string, int, string) (int, error) {
	h.t.Error("settle_batch ran while another replica held it")
	return 0, nil
}
func (h heldStore) ObserveDueSettlements(context.Context, time.Time, []string, int) (int, error) {
	h.t.Error("settle_batch observed while another replica held it")
	return 0, nil
}
func (h heldStore) AppsSettledByDouyin(context.Context) ([]state.AppSetting, error) {
	h.t.Error("settle_batch read the apps while another replica held it")
	return nil, nil
}
func (h heldStore) Summary(context.Context) (*state.Summary, error) {
	h.t.Error("settle_batch read while another replica held it")
	return &state.Summary{}, nil
}
func (h heldStore) HintStale(context.Context, time.Time, time.Duration, int) (int, error) {
	h.t.Error("sweep ran while another replica held it")
	return 0, nil
}

func TestJobs_OneReplicaAtATime(t *testing.T) {
	p := reconcile.DefaultPolicy()
	p.Apps = map[string]reconcile.AppPolicy{"app1": {AutoSettle: true}}
	woken := false
	b := &jobs.SettleBatch{Store: heldStore{t}, Clock: clock.NewFake(time.Now()), Policy: p, Wake: func() { woken = true }}
	if sum, err := b.RunOnce(context.Background()); err != nil || sum.Due != 0 || woken {
		t.Fatalf("settle_batch under another's lock: %+v, %v, woke %v", sum, err, woken)
	}
	s := &jobs.Sweep{Store: heldStore{t}, Clock: clock.NewFake(time.Now()), StaleAfter: time.Minute, Wake: func() { woken = true }}
	if n, err := s.RunOnce(context.Background()); err != nil || n != 0 || woken {
		t.Fatalf("sweep under another's lock: %d, %v, woke %v", n, err, woken)
	}
}
