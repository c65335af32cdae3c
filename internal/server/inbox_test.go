package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

// slowBatches records the batches it is given and commits each only when
// told to.
type slowBatches struct {
	mu      sync.Mutex
	batches [][]string
	entered chan struct{} // told when a commit starts, if not nil
	commit  chan struct{}
	fail    string // a signature answered with an error
}

func (s *slowBatches) InsertCallbacks(_ context.Context, cbs []*state.Callback, _ time.Time) []state.CallbackResult {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	<-s.commit
	res := make([]state.CallbackResult, len(cbs))
	var sigs []string
	for i, cb := range cbs {
		sigs = append(sigs, cb.Signature)
		res[i].Inserted = true
		if cb.Signature == s.fail {
			res[i] = state.CallbackResult{Err: errors.New("boom")}
		}
	}
	s.mu.Lock()
	s.batches = append(s.batches, sigs)
	s.mu.Unlock()
	return res
}

func TestBatchInbox_InsertCallback(t *testing.T) {
	t.Run("callbacks arriving during a commit share the next one", func(t *testing.T) {
		st := &slowBatches{entered: make(chan struct{}), commit: make(chan struct{}), fail: "cb-3"}
		b := NewBatchInbox(st, BatchInboxOptions{Max: 4})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.Run(ctx); close(done) }()

		type answer struct {
			ok  bool
			err error
		}
		answers := make([]chan answer, 6)
		send := func(i int) {
			answers[i] = make(chan answer, 1)
			go func() {
				ok, err := b.InsertCallback(context.Background(), &state.Callback{Signature: fmt.Sprintf("cb-%d", i)}, time.Now())
				answers[i] <- answer{ok, err}
			}()
		}
		send(0)
		<-st.entered // cb-0's commit has started and is held
		for i := 1; i < 6; i++ {
			send(i)
		}
		waitFor(t, func() bool { return len(b.reqs) == 4 }) // the queue holds Max; the fifth caller waits to queue
		select {
		case a := <-answers[0]:
			t.Fatalf("acknowledged before its commit: %+v", a)
		case <-time.After(20 * time.Millisecond):
		}
		st.commit <- struct{}{}
		for range 2 {
			<-st.entered
			st.commit <- struct{}{}
		}
		for i := range answers {
			a := <-answers[i]
			if i == 3 {
				if a.err == nil {
					t.Errorf("cb-3: want the store's error, got %+v", a)
				}
				continue
			}
			if !a.ok || a.err != nil {
				t.Errorf("cb-%d: %+v", i, a)
			}
		}
		cancel()
		<-done
		if len(st.batches) != 3 || len(st.batches[0]) != 1 || len(st.batches[1]) != 4 || len(st.batches[2]) != 1 {
			t.Fatalf("batches %v: want sizes 1, 4 (Max), 1", st.batches)
		}
	})
	t.Run("a caller whose context ends is answered", func(t *testing.T) {
		st := &slowBatches{commit: make(chan struct{})}
		b := NewBatchInbox(st, BatchInboxOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		// Run is not running: nothing commits.
		for range DefaultBatchMax {
			b.reqs <- &inboxReq{done: make(chan state.CallbackResult, 1)}
		}
		if _, err := b.InsertCallback(ctx, &state.Callback{Signature: "x"}, time.Now()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the deadline", err)
		}
	})
	t.Run("callbacks still queued at shutdown are refused", func(t *testing.T) {
		b := NewBatchInbox(&slowBatches{commit: make(chan struct{})}, BatchInboxOptions{})
		req := &inboxReq{cb: &state.Callback{Signature: "late"}, done: make(chan state.CallbackResult, 1)}
		b.reqs <- req
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b.Run(ctx)
		select {
		case r := <-req.done:
			if !errors.Is(r.Err, ErrInboxClosed) {
				t.Fatalf("got %+v, want ErrInboxClosed", r)
			}
		default:
			// Run may have taken it into a batch instead: then the blocked
			// commit would hang, which the select above rules out.
			t.Fatal("queued callback not answered at shutdown")
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
