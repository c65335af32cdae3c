package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/state"
)

// BudgetOptions configure Budget.
type BudgetOptions struct {
	// Dir holds the database; required.
	Dir string
	// N is how many settlements are due (and, with Mix, as many refunds
	// and order queries besides).
	N int
	// Limit is the simulator's and payd's rate for each API used, in calls
	// per second.
	Limit float64
	// Mix adds N refunds (create_refund) and N unknown orders (query_order)
	// to the N settlements, each API on its own budget of Limit.
	Mix bool
	// Blocked, with Mix, makes every settlement due before every refund
	// and query (a settle batch just created them); otherwise the three
	// kinds come due interleaved, as declarations and callbacks arrive.
	Blocked bool
	// Workers is the reconciler's concurrency (32 when zero).
	Workers int
	// Latency is added to every simulator answer.
	Latency time.Duration
	// Synchronous is SQLite's PRAGMA synchronous (FULL when empty).
	Synchronous string
	// Timeout bounds the pass; 10 minutes when zero.
	Timeout time.Duration
	// API is the API of the app and the simulator: APIEcpay (when empty)
	// or APITrade (the trade simulator, a trade app; settle_create,
	// refund_create, order_query and query_cps at Limit).
	API string
}

// BudgetResult is one Budget run.
type BudgetResult struct {
	N     int
	Limit float64
	// API is the run's BudgetOptions.API.
	API string
	// Calls counts the answered calls by API; Busy the answers
	// BusyErrNo (the API's "too many calls": ecpay 1001, trade 12001).
	Calls     map[douyin.API]int64
	Busy      int64
	BusyErrNo int
	// Wall is the reconcile pass's time, Ideal the least time the rate
	// limits allow for the calls made (every API in parallel: the most
	// calls of one API, at least N, over Limit).
	Wall, Ideal time.Duration
	// Use is Ideal/Wall: the fraction of the rate budget used.
	Use float64
}

func (o *BudgetOptions) check() error {
	switch {
	case o.Dir == "":
		return errors.New("dir: required")
	case o.N < 1:
		return errors.New("n: want at least 1")
	case o.Limit <= 0:
		return errors.New("limit: want a positive rate")
	case o.API != "" && o.API != APIEcpay && o.API != APITrade:
		return fmt.Errorf("api %q: want %s or %s", o.API, APIEcpay, APITrade)
	}
	if o.API == "" {
		o.API = APIEcpay
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	return nil
}

// budgetAPIs are the ecpay APIs a Budget run limits at Limit (a trade
// run limits every trade API).
var budgetAPIs = []douyin.API{douyin.APISettle, douyin.APICreateRefund, douyin.APIQueryOrder}

// Budget seeds N due settlements (and with Mix, N due refunds and N orders
// to query), runs one reconcile pass against the simulator of o.API with
// its rate at Limit, and reports how close to the limit payd ran and how
// many calls were answered "too many calls" (1001; the trade system's
// 12001).
func Budget(ctx context.Context, o BudgetOptions) (*BudgetResult, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("budget: %w", err)
	}
	w, err := newBudgetWorld(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("budget: %w", err)
	}
	defer w.close()
	// Due times lie in the past, a microsecond apart: interleaved across
	// kinds, or with Blocked every settlement first.
	start := time.Now().Add(-time.Minute)
	step := time.Microsecond
	later := time.Duration(0)
	if o.Blocked {
		later = time.Duration(o.N) * step
	}
	if err := w.seed(ctx, "s", o.N, Settle, start, step); err != nil {
		return nil, fmt.Errorf("budget: %w", err)
	}
	if o.Mix {
		if err := w.seed(ctx, "r", o.N, Refund, start.Add(later), step); err != nil {
			return nil, fmt.Errorf("budget: %w", err)
		}
		if err := w.seed(ctx, "q", o.N, Query, start.Add(2*later), step); err != nil {
			return nil, fmt.Errorf("budget: %w", err)
		}
	}
	// Let the simulator's buckets fill, as a daemon that has been idle.
	time.Sleep(200 * time.Millisecond)
	before := w.answers()
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ps, err := w.rec.RunOnce(pctx)
	if err != nil {
		return nil, fmt.Errorf("budget: reconcile pass: %w", err)
	}
	after := w.answers()
	res := &BudgetResult{N: o.N, Limit: o.Limit, API: o.API, Calls: map[douyin.API]int64{}, BusyErrNo: w.busy, Wall: ps.Duration}
	for api, byErr := range after {
		for errNo, n := range byErr {
			d := n - before[api][errNo]
			res.Calls[api] += d
			if errNo == w.busy {
				res.Busy += d
			}
		}
	}
	// The busiest API bounds the pass: N calls, or more where a kind
	// costs more than one call of an API (a trade refund queries the
	// order first).
	most := int64(o.N)
	for api, n := range res.Calls {
		most = max(most, n-after[api][w.busy]+before[api][w.busy])
	}
	res.Ideal = time.Duration(float64(most) / o.Limit * float64(time.Second))
	res.Use = res.Ideal.Seconds() / res.Wall.Seconds()
	if err := checkBudgetDone(ctx, w.store, o); err != nil {
		return res, fmt.Errorf("budget: %w; the pass: %d orders, %d stopped on an error, actions %v", err, ps.Orders, ps.Errors, ps.Actions)
	}
	return res, nil
}

// checkBudgetDone verifies that every seeded item got its call answered.
func checkBudgetDone(ctx context.Context, st *state.Store, o BudgetOptions) error {
	s, err := st.Summary(ctx)
	if err != nil {
		return err
	}
	moved := func(m map[state.Phase]int64) int64 {
		return m[state.PhaseProcessing] + m[state.PhaseSucceeded]
	}
	if got := moved(s.Settlements); got != int64(o.N) {
		return fmt.Errorf("%d of %d settlements accepted after the pass (by phase: %v)", got, o.N, s.Settlements)
	}
	if o.Mix {
		if got := moved(s.Refunds); got != int64(o.N) {
			return fmt.Errorf("%d of %d refunds accepted after the pass (by phase: %v)", got, o.N, s.Refunds)
		}
		if got := s.Orders[state.OrderSuccess]; got != int64(3*o.N) {
			return fmt.Errorf("%d of %d orders SUCCESS after the pass", got, 3*o.N)
		}
	}
	return nil
}

// ScriptOptions configure Script.
type ScriptOptions struct {
	// Dir holds the database; required.
	Dir string
	// N is how many orders each side settles.
	N int
	// Limit is the simulator's and payd's settle rate, in calls per second.
	Limit float64
	// Latency is added to every simulator answer (e.g. 50ms).
	Latency time.Duration
	// Workers is the reconciler's concurrency (32 when zero).
	Workers int
	// Synchronous is SQLite's PRAGMA synchronous (FULL when empty).
	Synchronous string
}

// ScriptResult compares payd with the usual script on the same simulator in
// the same run.
type ScriptResult struct {
	N                      int
	PaydWall, ScriptWall   time.Duration
	PaydBusy, ScriptBusy   int64
	Speedup                float64 // ScriptWall / PaydWall
	PaydCalls, ScriptCalls int64
}

// Script settles N orders with payd (one reconcile pass) and N others the
// way merchants' scripts do it today — one order at a time, each call
// waiting for the last answer, as the public PHP SDK's examples do — on
// the same simulator with Latency added to every answer.
func Script(ctx context.Context, o ScriptOptions) (*ScriptResult, error) {
	if o.Dir == "" || o.N < 1 || o.Limit <= 0 {
		return nil, errors.New("script: dir, n ≥ 1 and a positive limit are required")
	}
	limits := map[douyin.API]float64{douyin.APISettle: o.Limit}
	rig, err := NewRig(ctx, RigOptions{Dir: o.Dir, Synchronous: o.Synchronous, Limits: limits, Workers: o.Workers, Latency: o.Latency})
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	defer rig.Close()
	now := time.Now()
	if err := rig.Seed(ctx, "p", o.N, Settle, now); err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	if err := rig.Seed(ctx, "x", o.N, Settle, now); err != nil { // the script's orders: payd leaves them alone below
		return nil, fmt.Errorf("script: %w", err)
	}
	// Only payd's orders are due for payd.
	if err := rig.Store.DB().WithContext(ctx).Exec("UPDATE orders SET next_action_at = NULL WHERE out_order_no LIKE 'x%'").Error; err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	time.Sleep(200 * time.Millisecond)
	res := &ScriptResult{N: o.N}

	s0 := rig.Sim.Stats()
	ps, err := rig.Rec.RunOnce(ctx)
	if err != nil {
		return nil, fmt.Errorf("script: reconcile pass: %w", err)
	}
	s1 := rig.Sim.Stats()
	res.PaydWall = ps.Duration
	res.PaydCalls = s1.Requests - s0.Requests
	res.PaydBusy = s1.Busy() - s0.Busy()

	// The script: its own client, no rate limiter (the SDK has none), one
	// call after the other.
	script, err := douyin.New(douyin.Options{
		BaseURL: rig.SimURL, Apps: []douyin.App{{AppID: AppID, Salt: salt, Token: token}},
		Limits: map[douyin.API]float64{douyin.APISettle: 1e9}, HTTPClient: &http.Client{},
	})
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	start := time.Now()
	for i := 0; i < o.N; i++ {
		no := orderNo("x", i)
		_, err := script.Settle(ctx, douyin.SettleRequest{AppID: AppID, OutOrderNo: no, OutSettleNo: state.SettleNo(AppID, no, 1), SettleDesc: "script"})
		if err != nil && douyin.ErrNo(err) != douyin.ErrNoBusy {
			return nil, fmt.Errorf("script: settle %s: %w", no, err)
		}
	}
	res.ScriptWall = time.Since(start)
	s2 := rig.Sim.Stats()
	res.ScriptCalls = s2.Requests - s1.Requests
	res.ScriptBusy = s2.Busy() - s1.Busy()
	res.Speedup = res.ScriptWall.Seconds() / res.PaydWall.Seconds()
	return res, nil
}
