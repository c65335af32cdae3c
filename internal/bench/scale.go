package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/reconcile"
)

// ScaleOptions configure Scale.
type ScaleOptions struct {
	// Dir holds the database; required.
	Dir string
	// Orders is how many orders are stored, Due of them due now.
	Orders, Due int
	// Passes is how many times each pass is timed (the median is kept).
	Passes int
}

// ScaleResult is one Scale run. The database stays in Dir for `payd plan`
// and `payd serve` to be measured on.
type ScaleResult struct {
	Orders, Due int
	// DB is the SQLite file.
	DB string
	// Seed is how long seeding took.
	Seed time.Duration
	// Claim is the median time of claiming the Due orders (find and lease).
	Claim time.Duration
	// Pass is the median time of a whole reconcile pass over the Due
	// orders: claim, load, plan (nothing to call) and release each.
	Pass time.Duration
}

// Scale stores Orders orders (every one with a settlement, every third a
// refund), Due of them due now with nothing to call, and times the claim of
// the due orders and a whole reconcile pass over them.
func Scale(ctx context.Context, o ScaleOptions) (*ScaleResult, error) {
	if o.Dir == "" || o.Due < 1 || o.Orders < o.Due {
		return nil, errors.New("scale: dir, due ≥ 1 and orders ≥ due are required")
	}
	if o.Passes < 1 {
		o.Passes = 5
	}
	path := filepath.Join(o.Dir, "payd.db")
	st, err := openStore(ctx, path, "")
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	defer st.Close()
	now := time.Now()
	res := &ScaleResult{Orders: o.Orders, Due: o.Due, DB: path}
	start := time.Now()
	if err := seedStore(ctx, st, "i", o.Orders-o.Due, Idle, now, 0, nil); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	if err := seedStore(ctx, st, "d", o.Due, Hinted, now.Add(-time.Hour), time.Microsecond, nil); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	// The seeding's counter deltas are folded, as a running payd serve
	// folds them every few seconds: a table of millions of unfolded deltas
	// is not a state payd runs in.
	if _, err := st.FoldCounters(ctx, now, 0); err != nil {
		return nil, fmt.Errorf("scale: fold counters: %w", err)
	}
	if err := st.DB().WithContext(ctx).Exec("ANALYZE").Error; err != nil {
		return nil, fmt.Errorf("scale: analyze: %w", err)
	}
	res.Seed = time.Since(start)
	// Every pass below leaves the due orders with nothing due; make them
	// due again, as a batch of hints would.
	redue := func() error {
		return st.DB().WithContext(ctx).Exec("UPDATE orders SET next_action_at = ?, lease_until = NULL WHERE out_order_no LIKE 'd%'", now.Add(-time.Minute).UTC()).Error
	}
	var claims, passes []float64
	for i := 0; i < o.Passes; i++ {
		if err := redue(); err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		t := time.Now()
		c, err := st.ClaimDue(ctx, time.Now(), o.Due, time.Minute, "bench")
		if err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		claims = append(claims, time.Since(t).Seconds())
		if len(c) != o.Due {
			return nil, fmt.Errorf("scale: claimed %d, want %d", len(c), o.Due)
		}
	}
	rec := reconcile.New(reconcile.Options{Store: st, Clock: clock.Real{}, Policy: reconcile.DefaultPolicy(), Workers: 8, Owner: "bench"})
	for i := 0; i < o.Passes; i++ {
		if err := redue(); err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		ps, err := rec.RunOnce(ctx)
		if err != nil {
			return nil, fmt.Errorf("scale: reconcile pass: %w", err)
		}
		if ps.Orders != o.Due || ps.Errors != 0 || len(ps.Actions) != 0 {
			return nil, fmt.Errorf("scale: pass worked on %d orders (%d errors, actions %v), want %d with nothing to do", ps.Orders, ps.Errors, ps.Actions, o.Due)
		}
		passes = append(passes, ps.Duration.Seconds())
	}
	// Leave them due, for `payd plan` and `payd serve` to find.
	if err := redue(); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	res.Claim = time.Duration(Median(claims) * float64(time.Second))
	res.Pass = time.Duration(Median(passes) * float64(time.Second))
	return res, nil
}
