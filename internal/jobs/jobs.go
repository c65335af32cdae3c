// Package jobs holds payd's background triggers: the cron schedules that
// run the reconciler, settle_batch (settlements for every order past its
// settle period) and sweep (re-query what has waited too long), and the
// replicas' membership that divides Douyin's budgets.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// BatchStore is what settle_batch needs of the database.
type BatchStore interface {
	CreateDueSettlements(ctx context.Context, now time.Time, appIDs []string, limit int, desc string) (int, error)
	ObserveDueSettlements(ctx context.Context, now time.Time, appIDs []string, limit int) (int, error)
	AppsSettledByDouyin(ctx context.Context) ([]state.AppSetting, error)
	Summary(ctx context.Context) (*state.Summary, error)
}

// SettleBatch is the settle_batch job: it creates a settlement for every
// paid order whose settle period has passed, for apps with auto-settle on
// — or, for apps Douyin settles itself (settled_by: douyin, or a
// settle_create answered 23117), an observed one that the reconciler
// finds at Douyin and reports — then wakes the reconciler, which drives
// them.
type SettleBatch struct {
	Store  BatchStore
	Clock  clock.Clock
	Policy reconcile.Policy
	// Limit bounds the settlements created per run; 10000 when zero.
	Limit int
	// Wake is called after settlements were created (the reconciler's Wake).
	Wake func()
	Log  *logrus.Entry
	// Observe, when set, receives every run's summary (metrics).
	Observe func(BatchSummary)
	// Owner names this replica in the run's record (see recordBatch).
	Owner string
}

// BatchSummary is what one settle_batch run did, and where settlements
// stand after it.
type BatchSummary struct {
	Apps []string
	// Observed are the apps Douyin settles itself, and ObservedDue the
	// observed settlements created for them.
	Observed    []string
	ObservedDue int
	// Due is how many orders had passed their settle period without a
	// settlement: a settlement was created for each.
	Due int
	// Submitted, Succeeded and Failed count every settlement by phase after
	// the run (in flight, done, parked); the reconciler moves them.
	Pending, Submitted, Succeeded, Failed int64
}

// apps sorts the configured apps: Douyin settles those of settled_by:
// douyin and those it answered 23117 for (observed); payd settles the
// other apps with auto-settle on.
func (b *SettleBatch) apps(ctx context.Context) (BatchSummary, error) {
	var sum BatchSummary
	flagged, err := b.Store.AppsSettledByDouyin(ctx)
	if err != nil {
		return sum, err
	}
	byDouyin := map[string]bool{}
	for _, a := range flagged {
		byDouyin[a.AppID] = true
	}
	for id, a := range b.Policy.Apps {
		switch {
		case a.SettledByDouyin || byDouyin[id]:
			sum.Observed = append(sum.Observed, id)
		case a.AutoSettle:
			sum.Apps = append(sum.Apps, id)
		}
	}
	sort.Strings(sum.Apps)
	sort.Strings(sum.Observed)
	return sum, nil
}

// Locker runs a job on one replica at a time (state.Store.RunLocked): ran
// is false when another replica holds the job's lock.
type Locker interface {
	RunLocked(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error)
}

// locked runs fn under the job's lock when store is a Locker, else at once.
func locked(ctx context.Context, store any, name string, fn func(ctx context.Context) error) (bool, error) {
	if l, ok := store.(Locker); ok {
		return l.RunLocked(ctx, name, fn)
	}
	return true, fn(ctx)
}

// RunOnce creates the due settlements, in rounds of Limit until none is
// left. Replicas sharing a database run it one at a time: while another
// holds the job, it does nothing (an empty summary, no error).
func (b *SettleBatch) RunOnce(ctx context.Context) (BatchSummary, error) {
	var sum BatchSummary
	var err error
	_, lerr := locked(ctx, b.Store, "settle_batch", func(ctx context.Context) error {
		sum, err = b.runOnce(ctx)
		return nil
	})
	return sum, errors.Join(err, lerr)
}

// runOnce is RunOnce under the job's lock.
func (b *SettleBatch) runOnce(ctx context.Context) (BatchSummary, error) {
	start, wall := b.Clock.Now(), time.Now()
	sum, err := b.apps(ctx)
	if err != nil || len(sum.Apps)+len(sum.Observed) == 0 {
		return sum, err
	}
	limit := b.Limit
	if limit <= 0 {
		limit = 10000
	}
	create := func(ids []string, f func(ctx context.Context, now time.Time, ids []string, limit int) (int, error)) (int, error) {
		total := 0
		for ctx.Err() == nil && len(ids) > 0 {
			n, err := f(ctx, b.Clock.Now(), ids, limit)
			total += n
			if err != nil || n < limit {
				return total, err
			}
		}
		return total, nil
	}
	sum.Due, err = create(sum.Apps, func(ctx context.Context, now time.Time, ids []string, limit int) (int, error) {
		return b.Store.CreateDueSettlements(ctx, now, ids, limit, "")
	})
	if err != nil {
		return sum, fmt.Errorf("create due settlements: %w", err)
	}
	if sum.ObservedDue, err = create(sum.Observed, b.Store.ObserveDueSettlements); err != nil {
		return sum, fmt.Errorf("observe due settlements: %w", err)
	}
	if sum.Due+sum.ObservedDue > 0 && b.Wake != nil {
		b.Wake()
	}
	s, err := b.Store.Summary(ctx)
	if err != nil {
		return sum, fmt.Errorf("summarise settlements: %w", err)
	}
	sum.Pending = s.Settlements[state.PhasePending]
	sum.Submitted = s.Settlements[state.PhaseSubmitting] + s.Settlements[state.PhaseProcessing]
	sum.Succeeded = s.Settlements[state.PhaseSucceeded]
	sum.Failed = s.Settlements[state.PhaseParked]
	if b.Log != nil {
		b.Log.WithFields(logrus.Fields{
			"job": "settle_batch", "apps": len(sum.Apps), "due": sum.Due, "observed": sum.ObservedDue, "pending": sum.Pending,
			"submitted": sum.Submitted, "succeeded": sum.Succeeded, "failed": sum.Failed,
		}).Info("settle batch done")
	}
	if b.Observe != nil {
		b.Observe(sum)
	}
	b.recordBatch(ctx, sum, start, time.Since(wall))
	return sum, nil
}

// recordBatch stores the run's record for the console when the store
// keeps them (*state.Store does); a failure is logged, not returned.
func (b *SettleBatch) recordBatch(ctx context.Context, sum BatchSummary, start time.Time, took time.Duration) {
	rec, ok := b.Store.(interface {
		RecordPass(ctx context.Context, p state.Pass) error
	})
	if !ok {
		return
	}
	p := state.Pass{Kind: state.PassSettleBatch, Replica: b.Owner, StartedAt: start, DurationMS: took.Milliseconds(),
		Orders: len(sum.Apps) + len(sum.Observed), Actions: sum.Due, Calls: sum.ObservedDue,
		Detail: fmt.Sprintf("after it: %d pending, %d at Douyin, %d succeeded, %d parked", sum.Pending, sum.Submitted, sum.Succeeded, sum.Failed)}
	if err := rec.RecordPass(context.WithoutCancel(ctx), p); err != nil && b.Log != nil {
		b.Log.WithError(err).Warn("record the settle batch")
	}
}

// SweepStore is what the sweep needs of the database.
type SweepStore interface {
	HintStale(ctx context.Context, now time.Time, olderThan time.Duration, limit int) (int, error)
}

// Sweep re-queries anything that has been submitting or processing for
// longer than StaleAfter, so a lost callback costs minutes, not money.
type Sweep struct {
	Store      SweepStore
	Clock      clock.Clock
	StaleAfter time.Duration
	Wake       func()
	Log        *logrus.Entry
}

// RunOnce hints the stale orders and wakes the reconciler; it returns how
// many orders were hinted. Replicas sharing a database run it one at a
// time: while another holds the job, it hints nothing.
func (s *Sweep) RunOnce(ctx context.Context) (int, error) {
	n := 0
	var err error
	_, lerr := locked(ctx, s.Store, "sweep", func(ctx context.Context) error {
		n, err = s.Store.HintStale(ctx, s.Clock.Now(), s.StaleAfter, 10000)
		return nil
	})
	if err = errors.Join(err, lerr); err != nil {
		return n, fmt.Errorf("sweep stale items: %w", err)
	}
	if n > 0 && s.Wake != nil {
		s.Wake()
	}
	if s.Log != nil && n > 0 {
		s.Log.WithFields(logrus.Fields{"job": "sweep", "hinted": n}).Info("sweep hinted stale orders")
	}
	return n, nil
}

// Schedule is one cron entry: a spec and the job it triggers.
type Schedule struct {
	Name string
	Spec string
	Run  func(ctx context.Context) error
}

// Scheduler runs jobs on cron schedules. Cron is only a trigger: a run that
// is still going when its next tick comes is skipped, and Stop waits for the
// runs in flight.
type Scheduler struct {
	cron *cron.Cron
	ctx  context.Context
	wg   sync.WaitGroup
	log  *logrus.Entry
}

// NewScheduler parses the schedules; an error names the bad one.
func NewScheduler(ctx context.Context, log *logrus.Entry, schedules ...Schedule) (*Scheduler, error) {
	s := &Scheduler{
		cron: cron.New(cron.WithParser(cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor))),
		ctx:  ctx,
		log:  log,
	}
	for _, sc := range schedules {
		job := cron.NewChain(cron.SkipIfStillRunning(cron.DiscardLogger)).Then(cron.FuncJob(func() {
			s.wg.Add(1)
			defer s.wg.Done()
			if s.ctx.Err() != nil {
				return
			}
			if err := sc.Run(s.ctx); err != nil && s.log != nil {
				s.log.WithError(err).WithField("job", sc.Name).Error("job failed")
			}
		}))
		if _, err := s.cron.AddJob(sc.Spec, job); err != nil {
			return nil, fmt.Errorf("schedule %s %q: %w", sc.Name, sc.Spec, err)
		}
	}
	return s, nil
}

// Start begins triggering.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop stops triggering and waits up to timeout for runs in flight.
func (s *Scheduler) Stop(timeout time.Duration) error {
	done := s.cron.Stop().Done()
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("jobs still running after %s", timeout)
	}
	s.wg.Wait()
	return nil
}
