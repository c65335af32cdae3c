package server

import (
	"context"
	"sync"
	"time"

	"github.com/payd/payd/internal/logkey"
)

// RefusalCounter stores refused callbacks' counts per app, reason and
// hour. *state.Store satisfies it; an Inbox that does not is not asked.
type RefusalCounter interface {
	CountRefusedCallbacks(ctx context.Context, app, reason string, at time.Time, n int64) error
}

// refusalFlush is how long refusals are added up in memory before they
// are written: unverified traffic costs at most one row per app and reason
// this often, however much of it comes (a forged storm included).
const refusalFlush = 5 * time.Second

// refusals adds up refused callbacks and writes them, at most every
// refusalFlush, through the inbox's RefusalCounter. Only configured apps
// are named: an app_id from a body that did not verify is anyone's to
// choose, so any other is counted under "".
type refusals struct {
	h       *CallbackHandler
	mu      sync.Mutex
	pending map[[2]string]int64 // (app, reason) → refused since the last flush
	armed   bool                // a flush is scheduled
}

func newRefusals(h *CallbackHandler) *refusals {
	return &refusals{h: h, pending: map[[2]string]int64{}}
}

func (r *refusals) add(app, reason string) {
	rc, ok := r.h.o.Inbox.(RefusalCounter)
	if !ok || rc == nil {
		return
	}
	if _, known := r.h.o.Tokens[app]; !known && r.h.o.PlatformKeys[app] == nil {
		app = ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[[2]string{app, reason}]++
	if !r.armed {
		r.armed = true
		time.AfterFunc(refusalFlush, func() { r.Flush(context.Background()) })
	}
}

// Flush writes what was refused since the last flush. A write that fails
// is logged and its counts are kept for the next flush.
func (r *refusals) Flush(ctx context.Context) {
	rc, ok := r.h.o.Inbox.(RefusalCounter)
	if !ok {
		return
	}
	r.mu.Lock()
	batch := r.pending
	r.pending, r.armed = map[[2]string]int64{}, false
	r.mu.Unlock()
	now := r.h.o.Clock.Now()
	for k, n := range batch {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := rc.CountRefusedCallbacks(ctx, k[0], k[1], now, n)
		cancel()
		if err != nil {
			r.h.o.Log.WithError(err).WithField(logkey.App, k[0]).Warn("count refused callbacks")
			r.mu.Lock()
			r.pending[k] += n
			r.mu.Unlock()
		}
	}
}

// FlushRefusals writes the refused callbacks added up so far now
// (shutdown, tests) instead of at the next flush.
func (h *CallbackHandler) FlushRefusals(ctx context.Context) { h.refusals.Flush(ctx) }

// CountRefusedCallbacks passes refused callbacks' counts to the store the
// inbox batches for, when it keeps them (*state.Store does).
func (b *BatchInbox) CountRefusedCallbacks(ctx context.Context, app, reason string, at time.Time, n int64) error {
	if rc, ok := b.store.(RefusalCounter); ok {
		return rc.CountRefusedCallbacks(ctx, app, reason, at, n)
	}
	return nil
}

var _ RefusalCounter = (*BatchInbox)(nil)
