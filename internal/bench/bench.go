// Package bench is payd's performance harness: it measures how much of
// Douyin's rate budget payd uses, how it compares with the one-call-at-a-time
// script merchants run today, how fast a callback hint becomes a committed
// state, how the database work grows with the number of stored orders, and
// how many callbacks per second the callback endpoint verifies, stores and
// acknowledges. Every scenario runs against the simulator on loopback,
// bounded in count and time; `payd bench` runs them at full size, the
// package's tests at tiny sizes.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"gorm.io/gorm"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// AppID is the one app every scenario uses; its salt and token below are
// test values, not secrets.
const AppID = "ttbench000000001"

const (
	salt  = "bench-salt-not-a-secret"
	token = "bench-token-not-a-secret"
)

// Rig is a simulator, a store and a reconciler wired together on loopback.
type Rig struct {
	Sim    *douyinsim.Server
	SimURL string
	Store  *state.Store
	Client *douyin.Client
	Rec    *reconcile.Reconciler
	Policy reconcile.Policy

	simSrv *loopback
}

// RigOptions configure NewRig.
type RigOptions struct {
	// Dir holds the SQLite database; required.
	Dir string
	// Synchronous is SQLite's PRAGMA synchronous; FULL (payd's default)
	// when empty.
	Synchronous string
	// Limits are the calls per second per API, the same at the simulator
	// and in payd's client (as when payd is configured with what Douyin
	// grants). Missing APIs take douyin.DefaultLimits.
	Limits map[douyin.API]float64
	// ClientLimits, when set, replace Limits in payd's client only.
	ClientLimits map[douyin.API]float64
	// Latency is added to every simulator answer by a delaying handler in
	// front of it (the simulator itself answers at once).
	Latency time.Duration
	// Workers is the reconciler's concurrency; 32 when zero.
	Workers int
	// Poll is the reconciler's query schedule; one hour when nil, so that
	// only hints and write calls make calls.
	Poll []time.Duration
	// ProcessingDelay is how long a refund or settlement stays PROCESSING
	// at the simulator; 2s when zero.
	ProcessingDelay time.Duration
	// NotifyURL receives the simulator's callbacks; none when empty.
	NotifyURL string
	// Observe is told of every action the reconciler applied.
	Observe func(reconcile.ActionResult)
}

// NewRig starts a simulator (behind a delaying handler when Latency is
// set), opens and migrates a SQLite store in o.Dir and wires a client and a
// reconciler to them. Close stops it.
func NewRig(ctx context.Context, o RigOptions) (*Rig, error) {
	if o.Dir == "" {
		return nil, errors.New("new rig: dir: required")
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Poll == nil {
		o.Poll = []time.Duration{time.Hour}
	}
	sim, err := douyinsim.New(douyinsim.Config{
		Apps:            []douyinsim.App{{AppID: AppID, Salt: salt, Token: token}},
		Limits:          o.Limits,
		ProcessingDelay: o.ProcessingDelay,
		NotifyURL:       o.NotifyURL,
		CallbackScale:   0.01,
		Seed:            1,
	})
	if err != nil {
		return nil, fmt.Errorf("new rig: %w", err)
	}
	r := &Rig{Sim: sim}
	if r.simSrv, err = serveLoopback(sim.Handler(), o.Latency); err != nil {
		sim.Close()
		return nil, fmt.Errorf("new rig: %w", err)
	}
	r.SimURL = r.simSrv.URL
	r.Store, err = openStore(ctx, filepath.Join(o.Dir, "payd.db"), o.Synchronous)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("new rig: %w", err)
	}
	limits := o.Limits
	if o.ClientLimits != nil {
		limits = o.ClientLimits
	}
	r.Client, err = douyin.New(douyin.Options{
		BaseURL:  r.SimURL,
		Apps:     []douyin.App{{AppID: AppID, Salt: salt, Token: token}},
		Limits:   limits,
		Burst:    1,
		InFlight: config.DefaultInFlightWindow,
		HTTPClient: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute,
		}},
	})
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("new rig: %w", err)
	}
	r.Policy = reconcile.DefaultPolicy()
	r.Policy.Poll = o.Poll
	r.Policy.Jitter = 0
	r.Policy.Apps = map[string]reconcile.AppPolicy{AppID: {SettlePeriod: douyinsim.DefaultSettlePeriod, SettleDesc: "payd bench"}}
	r.Rec = reconcile.New(reconcile.Options{
		Store: r.Store, Provider: douyin.NewProvider(r.Client), Clock: clock.Real{}, Policy: r.Policy,
		Workers: o.Workers, Owner: "bench", Observe: o.Observe,
	})
	return r, nil
}

// Close stops the simulator and closes the store.
func (r *Rig) Close() {
	if r.simSrv != nil {
		r.simSrv.Close()
	}
	if r.Sim != nil {
		_ = r.Sim.Close()
	}
	if r.Store != nil {
		_ = r.Store.Close()
	}
}

// openStore opens and migrates a SQLite store at path.
func openStore(ctx context.Context, path, synchronous string) (*state.Store, error) {
	st, err := state.Open(ctx, state.Options{Driver: state.DriverSQLite, DSN: path, Synchronous: synchronous, Logger: quietLog()})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	return st, nil
}

// loopback is a simulator's HTTP server on a free loopback port.
type loopback struct {
	URL string
	srv *http.Server
	wg  sync.WaitGroup
}

// serveLoopback serves h, behind a delaying handler when latency > 0, on
// a free port of 127.0.0.1.
func serveLoopback(h http.Handler, latency time.Duration) (*loopback, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if latency > 0 {
		h = delayed(h, latency)
	}
	l := &loopback{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(ln)
	}()
	return l, nil
}

// Close stops the server and waits for it.
func (l *loopback) Close() {
	_ = l.srv.Close()
	l.wg.Wait()
}

// delayed answers every request through h after d: a network and a
// service that take d to answer.
func delayed(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	})
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// Kind is what a seeded order needs done.
type Kind int

// The kinds of seeded orders.
const (
	// Idle orders are paid, settled, some refunded; nothing is due.
	Idle Kind = iota
	// Settle orders are paid past T+7 with a pending settlement due now:
	// one settle call each.
	Settle
	// Refund orders are paid with a pending refund due now: one
	// create_refund call each.
	Refund
	// Query orders are not known yet: one query_order call each.
	Query
	// Hinted orders are like Idle, but due now: a pass finds them, plans
	// and finds nothing to call.
	Hinted
)

// orderNo names the i-th seeded order.
func orderNo(prefix string, i int) string { return fmt.Sprintf("%s%08d", prefix, i) }

// Amount is every seeded order's total, in fen.
const Amount = 10_000

// Seed writes n orders of kind k named prefix00000000… into the store, in
// transactions of 20,000 rows, and, unless k is Idle or Hinted, the same
// paid orders at the simulator (paid 8 days before now, so that T+7 has
// passed). Idle and Hinted orders get a succeeded settlement, and every
// third one a succeeded refund.
func (r *Rig) Seed(ctx context.Context, prefix string, n int, k Kind, now time.Time) error {
	return seedStore(ctx, r.Store, prefix, n, k, now, 0, ecpaySeeder(r.Sim))
}

// SeedStaggered is Seed with the i-th order due at now+i*step, so that
// orders of several kinds seeded with the same step come due interleaved.
func (r *Rig) SeedStaggered(ctx context.Context, prefix string, n int, k Kind, now time.Time, step time.Duration) error {
	return seedStore(ctx, r.Store, prefix, n, k, now, step, ecpaySeeder(r.Sim))
}

// seeder creates orders, paid at paid, at a simulator; with known (every
// kind but Query) it fills in what order_query would have told payd.
type seeder func(orders []state.Order, paid time.Time, known bool) error

// ecpaySeeder seeds sim's ecpay orders; nil without a simulator.
func ecpaySeeder(sim *douyinsim.Server) seeder {
	if sim == nil {
		return nil
	}
	return func(orders []state.Order, paid time.Time, _ bool) error {
		seeds := make([]douyinsim.SeedOrder, len(orders))
		for i, o := range orders {
			seeds[i] = douyinsim.SeedOrder{AppID: o.AppID, OutOrderNo: o.OutOrderNo, TotalAmount: Amount, Status: "SUCCESS", PaidAt: paid}
		}
		return sim.SeedOrders(seeds)
	}
}

func seedStore(ctx context.Context, st *state.Store, prefix string, n int, k Kind, now time.Time, step time.Duration, seed seeder) error {
	return seedApp(ctx, st, AppID, prefix, n, k, now, step, seed)
}

// seedApp is seedStore for the orders of app.
func seedApp(ctx context.Context, st *state.Store, app, prefix string, n int, k Kind, now time.Time, step time.Duration, seed seeder) error {
	const chunk = 20_000
	now = now.UTC().Truncate(time.Microsecond)
	paid := now.Add(-8 * 24 * time.Hour)
	settleAfter := paid.Add(douyinsim.DefaultSettlePeriod)
	for base := 0; base < n; base += chunk {
		size := min(chunk, n-base)
		orders := make([]state.Order, size)
		for i := range orders {
			no := orderNo(prefix, base+i)
			o := &orders[i]
			due := now.Add(time.Duration(base+i) * step)
			*o = state.Order{AppID: app, OutOrderNo: no, TotalAmount: Amount, Status: state.OrderSuccess,
				PaidAt: &paid, SettleAfter: &settleAfter, CPSKnown: true, CheckedAt: &paid, Version: 1,
				CreatedAt: paid, UpdatedAt: paid}
			switch k {
			case Settle, Refund:
				o.NextActionAt = &due
			case Query:
				*o = state.Order{AppID: app, OutOrderNo: no, Status: state.OrderUnknown, NextActionAt: &due, Version: 1,
					CreatedAt: now, UpdatedAt: now}
			case Hinted:
				o.NextActionAt = &due
			case Idle:
			}
		}
		if seed != nil && k != Idle && k != Hinted {
			if err := seed(orders, paid, k != Query); err != nil {
				return fmt.Errorf("seed simulator: %w", err)
			}
		}
		err := st.DB().WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.CreateInBatches(orders, 500).Error; err != nil {
				return fmt.Errorf("insert orders: %w", err)
			}
			var refunds []state.Refund
			var settlements []state.Settlement
			for i := range orders {
				o := &orders[i]
				key := "k" + o.OutOrderNo
				switch k {
				case Settle:
					settlements = append(settlements, state.Settlement{OrderID: o.ID, Phase: state.PhasePending, Attempt: 1,
						OutSettleNo: state.SettleNo(app, o.OutOrderNo, 1), NextActionAt: &now, Version: 1})
				case Refund:
					refunds = append(refunds, state.Refund{OrderID: o.ID, Key: key, Amount: 100, Reason: "bench", Phase: state.PhasePending,
						Attempt: 1, OutRefundNo: state.RefundNo(key, 1), NextActionAt: &now, Version: 1})
				case Idle, Hinted:
					settlements = append(settlements, state.Settlement{OrderID: o.ID, Phase: state.PhaseSucceeded, Attempt: 1,
						OutSettleNo: state.SettleNo(app, o.OutOrderNo, 1), Amount: Amount, DoneAt: &settleAfter, Version: 1})
					if (base+i)%3 == 0 {
						refunds = append(refunds, state.Refund{OrderID: o.ID, Key: key, Amount: 100, Phase: state.PhaseSucceeded,
							Attempt: 1, OutRefundNo: state.RefundNo(key, 1), DoneAt: &paid, Version: 1})
					}
				case Query:
				}
			}
			if len(refunds) > 0 {
				if err := tx.CreateInBatches(refunds, 500).Error; err != nil {
					return fmt.Errorf("insert refunds: %w", err)
				}
			}
			if len(settlements) > 0 {
				if err := tx.CreateInBatches(settlements, 500).Error; err != nil {
					return fmt.Errorf("insert settlements: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed %d orders: %w", n, err)
		}
	}
	return nil
}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile returns the p-th percentile (0..100, nearest rank) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(p/100*float64(len(s))+0.999999) - 1
	rank = max(0, min(rank, len(s)-1))
	return s[rank]
}
