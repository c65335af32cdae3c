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
	lt := &latencies{arrived: map[string]time.Time{}, samples: o.Samples, all: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hint: listen: %w", err)
	}
	rig, err := NewRig(ctx, RigOptions{
		Dir: o.Dir, Synchronous: o.Synchronous, ProcessingDelay: 20 * time.Millisecond,
		NotifyURL: "http://" + ln.Addr().String() + "/douyin/notify", Observe: lt.observe,
		Limits: map[douyin.API]float64{douyin.APICreateRefund: 300, douyin.APIQueryRefund: 300},
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("hint: %w", err)
	}
	defer rig.Close()
	defer serveHints(ctx, rig, ln, o.Batch, lt)()
	if err := declareHinted(ctx, rig, o); err != nil {
		return nil, err
	}
	select {
	case <-lt.all:
	case <-ctx.Done():
		lt.mu.Lock()
		n := len(lt.lat)
		lt.mu.Unlock()
		return nil, fmt.Errorf("hint: %d of %d callbacks turned into a committed state before the timeout", n, o.Samples)
	}
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return &HintResult{Samples: len(lt.lat), P50: Percentile(lt.lat, 50), P99: Percentile(lt.lat, 99), Max: Percentile(lt.lat, 100)}, nil
}

// latencies pairs each refund callback's arrival with the committed query
// that it caused.
type latencies struct {
	mu      sync.Mutex
	arrived map[string]time.Time // out_refund_no → first callback's arrival
	lat     []time.Duration
	samples int
	all     chan struct{} // closed once samples latencies are in
}

// observe is the reconciler's action observer: a successful refund query
// ends the latency of its callback.
func (l *latencies) observe(r reconcile.ActionResult) {
	if r.Action.Kind != reconcile.KindQueryRefund || r.Outcome != douyin.ClassOK.String() {
		return
	}
	t := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.arrived[r.Action.MerchantNo]; ok {
		delete(l.arrived, r.Action.MerchantNo)
		l.lat = append(l.lat, t.Sub(a))
		if len(l.lat) == l.samples {
			close(l.all)
		}
	}
}

// stamp records when a refund callback arrived, before anything else.
func (l *latencies) stamp(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.Now()
		body, err := io.ReadAll(io.LimitReader(r.Body, douyin.MaxCallbackBody+1))
		if err == nil {
			if cb, perr := douyin.ParseCallback(body); perr == nil && cb.Type == douyin.CallbackRefund {
				l.mu.Lock()
				if _, seen := l.arrived[cb.SubjectNo]; !seen {
					l.arrived[cb.SubjectNo] = t
				}
				l.mu.Unlock()
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// serveHints serves payd's callback handler on ln and runs the reconcile
// loop; the function it returns stops both.
func serveHints(ctx context.Context, rig *Rig, ln net.Listener, batch bool, lt *latencies) (stop func()) {
	var inbox server.Inbox = rig.Store
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if batch {
		b := server.NewBatchInbox(rig.Store, server.BatchInboxOptions{})
		inbox = b
		wg.Go(func() { b.Run(runCtx) })
	}
	h := server.NewCallbackHandler(server.CallbackOptions{
		Inbox: inbox, Tokens: map[string]string{AppID: token}, Waker: rig.Rec, Rate: 1e6, Burst: 1e6,
	})
	srv := &http.Server{Handler: lt.stamp(h), ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() { _ = srv.Serve(ln) })
	wg.Go(func() { rig.Rec.Run(runCtx) })
	return func() {
		_ = srv.Close()
		cancel()
		wg.Wait()
	}
}

// declareHinted seeds paid orders known to payd with nothing due, then
// declares one refund every o.Every.
func declareHinted(ctx context.Context, rig *Rig, o HintOptions) error {
	if err := rig.Seed(ctx, "h", o.Samples, Refund, time.Now()); err != nil {
		return fmt.Errorf("hint: %w", err)
	}
	for _, q := range []string{"DELETE FROM refunds", "UPDATE orders SET next_action_at = NULL"} {
		if err := rig.Store.DB().WithContext(ctx).Exec(q).Error; err != nil {
			return fmt.Errorf("hint: %w", err)
		}
	}
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	for i := 0; i < o.Samples; i++ {
		no := orderNo("h", i)
		if _, _, err := rig.Store.DeclareRefund(ctx, state.RefundWish{AppID: AppID, OutOrderNo: no, Key: "hk" + no, Amount: 100, Reason: "hint"}, time.Now()); err != nil {
			return fmt.Errorf("hint: declare refund of %s: %w", no, err)
		}
		rig.Rec.Wake()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("hint: %w", ctx.Err())
		}
	}
	return nil
}
