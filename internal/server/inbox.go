package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payd/payd/internal/state"
)

// BatchStore stores many callbacks in one transaction. *state.Store
// satisfies it.
type BatchStore interface {
	InsertCallbacks(ctx context.Context, cbs []*state.Callback, now time.Time) []state.CallbackResult
}

var (
	_ BatchStore = (*state.Store)(nil)
	_ BatchStore = (*state.Grouped)(nil)
)

// DefaultBatchMax is BatchInbox's largest batch when BatchInboxOptions.Max
// is zero.
const DefaultBatchMax = 256

// ErrInboxClosed is returned to callers still waiting when a BatchInbox
// stops; their callbacks are not acknowledged, so Douyin sends them again.
var ErrInboxClosed = errors.New("callback inbox closed")

// BatchInboxOptions configure a BatchInbox.
type BatchInboxOptions struct {
	// Max bounds the callbacks committed in one transaction;
	// DefaultBatchMax when zero.
	Max int
}

// BatchInbox is an Inbox with group commit: callbacks that arrive while a
// transaction is being committed wait and go together in the next one, so
// one fsync serves many callbacks. A caller's InsertCallback returns only
// after the transaction holding its row has committed, so the handler
// never acknowledges a callback that is not on disk. When callbacks arrive
// one at a time, each goes at once in a batch of one: batching adds no
// delay, only the wait for the commit in flight.
type BatchInbox struct {
	store BatchStore
	max   int
	reqs  chan *inboxReq
}

var _ Inbox = (*BatchInbox)(nil)

type inboxReq struct {
	cb   *state.Callback
	now  time.Time
	done chan state.CallbackResult // buffered: the loop never blocks on it
}

// NewBatchInbox returns a BatchInbox over store. Run must be running for
// InsertCallback to make progress.
func NewBatchInbox(store BatchStore, o BatchInboxOptions) *BatchInbox {
	if o.Max <= 0 {
		o.Max = DefaultBatchMax
	}
	return &BatchInbox{store: store, max: o.Max, reqs: make(chan *inboxReq, o.Max)}
}

// InsertCallback queues cb and waits until the batch holding it has
// committed (see state.Store.InsertCallback for what storing does). When
// ctx ends first it returns ctx's error; the callback may still be stored,
// and Douyin's resend is then a duplicate.
func (b *BatchInbox) InsertCallback(ctx context.Context, cb *state.Callback, now time.Time) (bool, error) {
	if cb.ReceivedAt.IsZero() {
		cb.ReceivedAt = now
	}
	req := &inboxReq{cb: cb, now: now, done: make(chan state.CallbackResult, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return false, fmt.Errorf("queue callback: %w", ctx.Err())
	}
	select {
	case r := <-req.done:
		return r.Inserted, r.Err
	case <-ctx.Done():
		return false, fmt.Errorf("wait for callback commit: %w", ctx.Err())
	}
}

// Run commits queued callbacks in batches until ctx is done; then it
// answers ErrInboxClosed to every callback still queued. Stop the HTTP
// servers before ctx ends, so that no callback is queued after.
func (b *BatchInbox) Run(ctx context.Context) {
	batch := make([]*inboxReq, 0, b.max)
	cbs := make([]*state.Callback, 0, b.max)
	for {
		if ctx.Err() != nil {
			b.drain()
			return
		}
		select {
		case <-ctx.Done():
			b.drain()
			return
		case req := <-b.reqs:
			batch = append(batch[:0], req)
		}
		// Take whatever queued up while the last commit ran.
	fill:
		for len(batch) < b.max {
			select {
			case req := <-b.reqs:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		cbs = cbs[:0]
		now := batch[0].now
		for _, r := range batch {
			cbs = append(cbs, r.cb)
			if r.now.After(now) {
				now = r.now
			}
		}
		// The commit must finish even when ctx ends meanwhile: callers
		// are waiting for its outcome.
		res := b.store.InsertCallbacks(context.WithoutCancel(ctx), cbs, now)
		for i, r := range batch {
			r.done <- res[i]
			batch[i] = nil
		}
	}
}

func (b *BatchInbox) drain() {
	for {
		select {
		case req := <-b.reqs:
			req.done <- state.CallbackResult{Err: ErrInboxClosed}
		default:
			return
		}
	}
}
