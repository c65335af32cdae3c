package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// attempt builds the attempt-log row of one call; save writes it.
func attempt(v *state.OrderView, resource string, id int64, call provider.Call, no string, err error, latency time.Duration) *state.Attempt {
	errNo := provider.ErrNo(err)
	return &state.Attempt{
		OrderID: v.Order.ID, Resource: resource, ResourceID: id, API: string(call), MerchantNo: no,
		ErrNo: errNo, ErrTips: truncate(provider.Tips(err), 200), Outcome: provider.OutcomeName(err), LatencyMS: latency.Milliseconds(),
	}
}

// save records a call's attempt row and its result (apply, may be nil) in
// one transaction: one fsync per answer, and the log never shows an answer
// whose consequence was not written. If the result lost a race, the attempt
// is still recorded on its own: a call was made.
func (r *Reconciler) save(ctx context.Context, att *state.Attempt, apply func(tx *state.Store) error) error {
	fin, _ := ctx.Value(finishKey{}).(*finisher)
	if fin != nil {
		defer func() { fin.view = nil }() // it describes this answer only
	}
	releasing := false
	err := r.store.InTx(ctx, func(tx *state.Store) error {
		releasing = false
		if err := tx.AppendAttempt(ctx, att); err != nil {
			return fmt.Errorf("append attempt %s %s: %w", att.API, att.MerchantNo, err)
		}
		if apply == nil {
			return nil
		}
		if err := apply(tx); err != nil {
			return err
		}
		if fin != nil {
			releasing = r.finishInTx(ctx, tx, fin)
		}
		return nil
	})
	if err == nil && releasing {
		fin.released = true
	} else if fin != nil {
		fin.next = nil
	}
	if err != nil && (errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrInvalid)) {
		att.ID = 0
		if aerr := r.store.InTx(ctx, func(tx *state.Store) error { return tx.AppendAttempt(ctx, att) }); aerr != nil {
			return errors.Join(err, fmt.Errorf("append attempt %s %s: %w", att.API, att.MerchantNo, aerr))
		}
	}
	return err
}

// finisher lets the transaction that records an answer also release the
// order when that answer leaves nothing due now: one fsync instead of two.
type finisher struct {
	claim    state.Claim
	released bool
	next     *time.Time       // the next action time the release set
	view     *state.OrderView // the order as the answer leaves it; nil: read it
}

// answered tells the order's finisher, if any, what the order looks like
// once the answer being recorded is: the claim's view with the item
// replaced. Its rows cannot change under the lease but through hints,
// which the release honours, so the finish needs no re-read.
func answered(ctx context.Context, v *state.OrderView, rf *state.Refund, st *state.Settlement) {
	fin, _ := ctx.Value(finishKey{}).(*finisher)
	if fin == nil || v == nil {
		return
	}
	nv := *v
	if st != nil {
		s := *st
		switch {
		case v.Settlement != nil && v.Settlement.ID == s.ID:
			nv.Settlement = &s
		default:
			nv.ItemSettlements = append([]state.Settlement(nil), v.ItemSettlements...)
			for i := range nv.ItemSettlements {
				if nv.ItemSettlements[i].ID == s.ID {
					nv.ItemSettlements[i] = s
				}
			}
		}
	}
	if rf != nil {
		nv.Refunds = append([]state.Refund(nil), v.Refunds...)
		for i := range nv.Refunds {
			if nv.Refunds[i].ID == rf.ID {
				nv.Refunds[i] = *rf
			}
		}
	}
	fin.view = &nv
}

type finishKey struct{}

// finishInTx re-plans the order inside tx and, if nothing is due now,
// releases it there. A release that fails (a lost lease) is undone alone (a
// savepoint) and leaves the release to the worker.
func (r *Reconciler) finishInTx(ctx context.Context, tx *state.Store, fin *finisher) bool {
	v := fin.view
	if v == nil {
		var err error
		if v, err = tx.LoadOrder(ctx, fin.claim.OrderID); err != nil {
			return false
		}
	}
	now := r.clock.Now()
	acts := Plan(*v, now, r.policy)
	if len(DueNow(acts, now)) > 0 {
		return false
	}
	fin.next = NextAfter(acts, now)
	return tx.Release(ctx, fin.claim, fin.next, now) == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (r *Reconciler) jittered(now time.Time, schedule []time.Duration, n int) *time.Time {
	t := NextAt(now, schedule, n, r.policy.Jitter, r.rand())
	return &t
}
