package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/server"
)

// LoadOptions configure LoadGen.
type LoadOptions struct {
	// URL is the callback endpoint (…/douyin/notify).
	URL string
	// N bounds the callbacks sent.
	N int
	// Concurrency is how many requests are in flight at once.
	Concurrency int
	// Duration bounds the run.
	Duration time.Duration
	// Orders is how many seeded orders (Intake's c00000000…) the payment
	// callbacks name, round robin.
	Orders int
}

// LoadResult counts what LoadGen sent and what was acknowledged.
type LoadResult struct {
	Sent   int64 `json:"sent"`
	Acked  int64 `json:"acked"`
	Failed int64 `json:"failed"`
	// Cut counts requests in flight when Duration ran out: their answers
	// were not awaited, so they count neither as acknowledged nor failed.
	Cut     int64         `json:"cut"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// FirstError is the first failure, for the report.
	FirstError string `json:"first_error,omitempty"`
}

// LoadGen posts up to N distinct, correctly signed payment callbacks to
// o.URL from Concurrency connections, until N are sent or Duration has
// passed, and counts the acknowledgements (HTTP 200 with err_no 0).
func LoadGen(ctx context.Context, o LoadOptions) (*LoadResult, error) {
	if o.URL == "" || o.N < 1 || o.Concurrency < 1 || o.Duration <= 0 || o.Orders < 1 {
		return nil, errors.New("loadgen: url, n, concurrency, duration and orders are required")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency, MaxConnsPerHost: o.Concurrency}, Timeout: 30 * time.Second}
	var next, acked, failed, cut atomic.Int64
	var firstErr sync.Once
	res := &LoadResult{}
	fail := func(err error) {
		failed.Add(1)
		firstErr.Do(func() { res.FirstError = err.Error() })
	}
	start := time.Now()
	ts := strconv.FormatInt(start.Unix(), 10)
	var wg sync.WaitGroup
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(o.N) {
					return
				}
				body, err := PaymentCallback(orderNo("c", int(i)%o.Orders), ts, "n"+strconv.FormatInt(i, 10))
				if err != nil {
					fail(err)
					continue
				}
				if err := post(ctx, hc, o.URL, body); err != nil {
					if ctx.Err() != nil {
						cut.Add(1) // in flight when the time ran out
						return
					}
					fail(err)
					continue
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Acked, res.Failed, res.Cut = acked.Load(), failed.Load(), cut.Load()
	res.Sent = res.Acked + res.Failed + res.Cut
	return res, nil
}

// PaymentCallback returns a payment callback for outOrderNo of the bench
// app, signed with its token.
func PaymentCallback(outOrderNo, timestamp, nonce string) ([]byte, error) {
	msg := douyin.PaymentMsg{AppID: AppID, CPOrderNo: outOrderNo, Way: "1", TotalAmount: Amount, Status: "SUCCESS", PaidAt: 1}
	return douyin.EncodeCallback(douyin.CallbackPayment, msg, token, timestamp, nonce)
}

var ackBody = []byte(`"err_no":0`)

func post(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, ackBody) {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// IntakeOptions configure Intake.
type IntakeOptions struct {
	// Dir holds the database; required.
	Dir string
	// Orders is how many paid orders payd knows; the callbacks name them.
	Orders int
	// Batch stores callbacks through server.BatchInbox (group commit)
	// instead of one transaction each.
	Batch bool
	// Synchronous is SQLite's PRAGMA synchronous (FULL when empty).
	Synchronous string
	// Load drives the endpoint at url (another process, in `payd bench
	// intake`) and reports what it sent.
	Load func(ctx context.Context, url string) (*LoadResult, error)
}

// IntakeResult is one Intake run.
type IntakeResult struct {
	Load *LoadResult
	// Stored is how many callbacks are in the inbox afterwards.
	Stored int64
	// Lost is how many acknowledged callbacks are not stored (must be 0).
	Lost int64
	// PerSecond is acknowledged callbacks per second.
	PerSecond float64
}

// Intake serves payd's callback endpoint on loopback over a store with
// Orders paid orders, lets o.Load drive it, and checks that every
// acknowledged callback is stored. The reconciler is not running: the hints
// are counted, not worked on, so the figure is the endpoint's own.
func Intake(ctx context.Context, o IntakeOptions) (*IntakeResult, error) {
	if o.Dir == "" || o.Orders < 1 || o.Load == nil {
		return nil, errors.New("intake: dir, orders ≥ 1 and load are required")
	}
	st, err := openStore(ctx, o.Dir+"/payd.db", o.Synchronous)
	if err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	defer st.Close()
	if err := seedStore(ctx, st, "c", o.Orders, Idle, time.Now(), 0, nil); err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var inbox server.Inbox = st
	if o.Batch {
		b := server.NewBatchInbox(st, server.BatchInboxOptions{})
		inbox = b
		wg.Add(1)
		go func() { defer wg.Done(); b.Run(runCtx) }()
	}
	var wakes atomic.Int64
	h := server.NewCallbackHandler(server.CallbackOptions{
		Inbox: inbox, Tokens: map[string]string{AppID: token}, Waker: wakeCounter{&wakes},
		// The pre-verification limit is for forged storms; the bench
		// measures what lies behind it.
		Rate: 1e6, Burst: 1e6,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stop()
		wg.Wait()
		return nil, fmt.Errorf("intake: listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	load, lerr := o.Load(ctx, "http://"+ln.Addr().String()+"/douyin/notify")
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	_ = srv.Shutdown(sctx)
	scancel()
	stop()
	wg.Wait()
	if lerr != nil {
		return nil, fmt.Errorf("intake: load: %w", lerr)
	}
	res := &IntakeResult{Load: load}
	if err := st.DB().WithContext(ctx).Raw("SELECT count(*) FROM callbacks").Scan(&res.Stored).Error; err != nil {
		return nil, fmt.Errorf("intake: count callbacks: %w", err)
	}
	res.Lost = max(0, load.Acked-res.Stored)
	res.PerSecond = float64(load.Acked) / load.Elapsed.Seconds()
	return res, nil
}

type wakeCounter struct{ n *atomic.Int64 }

func (w wakeCounter) Wake() { w.n.Add(1) }

// MarshalLoad encodes r for the parent process.
func MarshalLoad(r *LoadResult) ([]byte, error) { return json.Marshal(r) }

// UnmarshalLoad decodes what MarshalLoad wrote.
func UnmarshalLoad(b []byte) (*LoadResult, error) {
	var r LoadResult
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode load result: %w", err)
	}
	return &r, nil
}
