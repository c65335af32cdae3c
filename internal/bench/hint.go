package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/server"
	"github.com/payd/payd/internal/state"
)

// HintOptions configure Hint.
type HintOptions struct {
	// Dir holds the database; required.
	Dir string
	// Samples is how many refunds are declared, one callback each.
	Samples int
	// Every is the pause between two declarations; 50ms when zero (well
	// inside every budget).
	Every time.Duration
	// Batch stores callbacks through server.BatchInbox instead of one
	// transaction each.
	Batch bool
	// Synchronous is SQLite's PRAGMA synchronous (FULL when empty).
	Synchronous string
	// Timeout bounds the run; 2 minutes when zero.
	Timeout time.Duration
}

// HintResult is the distribution of hint latencies.
type HintResult struct {
	Samples  int
	P50, P99 time.Duration
	Max      time.Duration
}

// Hint measures the time from a verified callback arriving at payd's
// callback endpoint to the state it announces being committed: refunds are
// declared one by one against the simulator, which finishes each after
// 20ms and sends a refund callback; payd's poll schedule is an hour, so only
// the callback's hint makes the reconciler query the refund and commit
// succeeded. Rate budgets are far from exhausted.
func Hint(ctx context.Context, o HintOptions) (*HintResult, error) {
	if o.Dir == "" || o.Samples < 1 {
		return nil, errors.New("hint: dir and samples ≥ 1 are required")
	}
	if o.Every <= 0 {
		o.Every = 50 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	var mu sync.Mutex
	arrived := map[string]time.Time{}
	var lat []time.Duration
	all := make(chan struct{})
	observe := func(r reconcile.ActionResult) {
		if r.Action.Kind != reconcile.KindQueryRefund || r.Outcome != douyin.ClassOK.String() {
			return
		}
		t := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if a, ok := arrived[r.Action.MerchantNo]; ok {
			delete(arrived, r.Action.MerchantNo)
			lat = append(lat, t.Sub(a))
			if len(lat) == o.Samples {
				close(all)
			}
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hint: listen: %w", err)
	}
	rig, err := NewRig(ctx, RigOptions{
		Dir: o.Dir, Synchronous: o.Synchronous, ProcessingDelay: 20 * time.Millisecond,
		NotifyURL: "http://" + ln.Addr().String() + "/douyin/notify", Observe: observe,
		Limits: map[douyin.API]float64{douyin.APICreateRefund: 300, douyin.APIQueryRefund: 300},
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("hint: %w", err)
	}
	defer rig.Close()

	var inbox server.Inbox = rig.Store
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if o.Batch {
		b := server.NewBatchInbox(rig.Store, server.BatchInboxOptions{})
		inbox = b
		wg.Add(1)
		go func() { defer wg.Done(); b.Run(runCtx) }()
	}
	h := server.NewCallbackHandler(server.CallbackOptions{
		Inbox: inbox, Tokens: map[string]string{AppID: token}, Waker: rig.Rec, Rate: 1e6, Burst: 1e6,
	})
	// Record when each refund callback arrives, before anything else.
	stamp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.Now()
		body, err := io.ReadAll(io.LimitReader(r.Body, douyin.MaxCallbackBody+1))
		if err == nil {
			if cb, perr := douyin.ParseCallback(body); perr == nil && cb.Type == douyin.CallbackRefund {
				mu.Lock()
				if _, seen := arrived[cb.SubjectNo]; !seen {
					arrived[cb.SubjectNo] = t
				}
				mu.Unlock()
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: stamp, ReadHeaderTimeout: 10 * time.Second}
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	go func() { defer wg.Done(); rig.Rec.Run(runCtx) }()
	defer func() {
		_ = srv.Close()
		stop()
		wg.Wait()
	}()

	// Paid orders, already known to payd with nothing due.
	if err := rig.Seed(ctx, "h", o.Samples, Refund, time.Now()); err != nil {
		return nil, fmt.Errorf("hint: %w", err)
	}
	if err := rig.Store.DB().WithContext(ctx).Exec("DELETE FROM refunds").Error; err != nil {
		return nil, fmt.Errorf("hint: %w", err)
	}
	if err := rig.Store.DB().WithContext(ctx).Exec("UPDATE orders SET next_action_at = NULL").Error; err != nil {
		return nil, fmt.Errorf("hint: %w", err)
	}
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	for i := 0; i < o.Samples; i++ {
		no := orderNo("h", i)
		if _, _, err := rig.Store.DeclareRefund(ctx, state.RefundWish{AppID: AppID, OutOrderNo: no, Key: "hk" + no, Amount: 100, Reason: "hint"}, time.Now()); err != nil {
			return nil, fmt.Errorf("hint: declare refund of %s: %w", no, err)
		}
		rig.Rec.Wake()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("hint: %w", ctx.Err())
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		return nil, fmt.Errorf("hint: %d of %d callbacks turned into a committed state before the timeout", n, o.Samples)
	}
	mu.Lock()
	defer mu.Unlock()
	return &HintResult{Samples: len(lat), P50: Percentile(lat, 50), P99: Percentile(lat, 99), Max: Percentile(lat, 100)}, nil
}
