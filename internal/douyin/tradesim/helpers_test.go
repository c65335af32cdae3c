package tradesim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
)

const app = "tt0000000000000000a1"

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// platformKey is one RSA key for the whole test binary.
func platformKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// memStore is a trade.TokenStore in memory.
type memStore struct {
	mu     sync.Mutex
	tok    map[string]trade.Token
	holder map[string]string
	until  map[string]time.Time
}

func newMemStore() *memStore {
	return &memStore{tok: map[string]trade.Token{}, holder: map[string]string{}, until: map[string]time.Time{}}
}

func (m *memStore) Load(_ context.Context, a string) (trade.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tok[a], nil
}

func (m *memStore) Claim(_ context.Context, a, holder string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.holder[a]; h != "" && h != holder && m.until[a].After(now) {
		return false, nil
	}
	m.holder[a], m.until[a] = holder, until
	return true, nil
}

func (m *memStore) Replace(_ context.Context, a, old string, next trade.Token) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tok[a].Value != old {
		return false, nil
	}
	m.tok[a], m.holder[a] = next, ""
	return true, nil
}

// inbox receives callbacks, verifies them with the platform key and acks
// after failing the first failFirst deliveries.
type inbox struct {
	*httptest.Server
	mu        sync.Mutex
	got       []*trade.Callback
	attempts  int
	failFirst int
	bad       int
	// answer, when set, is the synchronous answer to pre_create_refund.
	answer func(cb *trade.Callback) []byte
}

func newInbox(t *testing.T) *inbox {
	in := &inbox{}
	pub := &platformKey(t).PublicKey
	keys := trade.Keys{PublicKey: func(string) *rsa.PublicKey { return pub }}
	in.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cb, err := keys.Verify(body, trade.HeadersFrom(r.Header))
		in.mu.Lock()
		defer in.mu.Unlock()
		in.attempts++
		if err != nil {
			in.bad++
			http.Error(w, err.Error(), 400)
			return
		}
		if in.attempts <= in.failFirst {
			http.Error(w, "not now", 500)
			return
		}
		in.got = append(in.got, cb)
		if cb.Type == trade.CallbackPreCreateRefund && in.answer != nil {
			_, _ = w.Write(in.answer(cb))
			return
		}
		_, _ = w.Write(trade.Ack)
	}))
	t.Cleanup(in.Close)
	return in
}

func (in *inbox) setAnswer(f func(cb *trade.Callback) []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.answer = f
}

func (in *inbox) setFailFirst(n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.failFirst = n
}

func (in *inbox) callbacks(typ trade.CallbackType) []*trade.Callback {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*trade.Callback
	for _, cb := range in.got {
		if cb.Type == typ {
			out = append(out, cb)
		}
	}
	return out
}

// waitFor polls cond for up to 5 s of wall time (callbacks are sent by the
// simulator's loop).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// bundle is one test's simulator, its URL, a real client and the inbox.
type bundle struct {
	sim    *Server
	url    string
	client *trade.Client
	inbox  *inbox
}

func setup(t *testing.T, mutate func(*Config)) *bundle {
	t.Helper()
	in := newInbox(t)
	cfg := Config{Apps: []App{{AppID: app, Secret: "s3cret", NotifyURL: in.URL, PreRefundURL: in.URL}}, PlatformKey: platformKey(t),
		RetrySchedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}, Rate: 1000, Hang: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	sim := New(cfg)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	tokens, err := trade.NewTokens(trade.TokensOptions{BaseURL: url, Apps: []trade.Credential{{AppID: app, Secret: "s3cret"}}, Store: newMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	limits := map[douyin.API]float64{}
	for _, a := range douyin.TradeAPIs {
		limits[a] = 10000
	}
	c, err := trade.New(trade.Options{BaseURL: url, Tokens: tokens, Limits: limits, Burst: 1000, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{sim: sim, url: url, client: c, inbox: in}
}

// seed creates one order through the control API and returns it with ids.
func (b *bundle) seed(t *testing.T, o SeedOrder) SeedOrder {
	t.Helper()
	if o.AppID == "" {
		o.AppID = app
	}
	var resp struct {
		Orders []SeedOrder `json:"orders"`
	}
	b.control(t, "orders", map[string]any{"orders": []SeedOrder{o}}, &resp)
	return resp.Orders[0]
}

// control posts to the control API and decodes the answer into out.
func (b *bundle) control(t *testing.T, path string, in, out any) {
	t.Helper()
	body, _ := json.Marshal(in)
	resp, err := http.Post(b.url+ControlPrefix+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("control %s: %d %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *bundle) refund(t *testing.T, orderID, no string, items ...trade.ItemAmount) (*trade.RefundCreated, error) {
	t.Helper()
	var total int64
	for _, it := range items {
		total += it.RefundAmount
	}
	return b.client.CreateRefund(context.Background(), trade.RefundCreateRequest{AppID: app, OrderID: orderID, OutRefundNo: no,
		RefundTotalAmount: total, ItemOrderDetail: items, RefundReason: []trade.RefundReason{{Code: 999, Text: "test"}}})
}

func (b *bundle) settle(t *testing.T, outOrderNo, no, item string) (*trade.SettleCreated, error) {
	t.Helper()
	return b.client.CreateSettle(context.Background(), trade.SettleCreateRequest{AppID: app, OutOrderNo: outOrderNo, OutSettleNo: no, SettleDesc: "test", ItemOrderID: item})
}

func (b *bundle) checkClean(t *testing.T) {
	t.Helper()
	if v := b.sim.Check(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}

func wantErrNo(t *testing.T, err error, want int) {
	t.Helper()
	if got := trade.ErrNo(err); got != want {
		t.Fatalf("err_no %d (%v), want %d", got, err, want)
	}
}

func oneItem(amount int64) []SeedItem { return []SeedItem{{SKUID: "sku", Amount: amount}} }

// getControl reads a control route.
func (b *bundle) getControl(t *testing.T, path string, out any) {
	t.Helper()
	resp, err := http.Get(b.url + ControlPrefix + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
