package trade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
)

// memStore is a TokenStore in memory, with the database's semantics.
type memStore struct {
	mu     sync.Mutex
	tok    map[string]Token
	holder map[string]string
	until  map[string]time.Time
}

func newMemStore() *memStore {
	return &memStore{tok: map[string]Token{}, holder: map[string]string{}, until: map[string]time.Time{}}
}

func (m *memStore) Load(_ context.Context, app string) (Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tok[app], nil
}

func (m *memStore) Claim(_ context.Context, app, holder string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.holder[app]; h != "" && h != holder && m.until[app].After(now) {
		return false, nil
	}
	m.holder[app], m.until[app] = holder, until
	return true, nil
}

func (m *memStore) Replace(_ context.Context, app, old string, next Token) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tok[app].Value != old {
		return false, nil
	}
	m.tok[app] = next
	m.holder[app] = ""
	return true, nil
}

// tokenServer serves /oauth/client_token/: tokens tok-1, tok-2, … or the
// error code in code.
type tokenServer struct {
	*httptest.Server
	fetches atomic.Int32
	code    atomic.Int32
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if r.URL.Path != TokenPath || body["grant_type"] != "client_credential" || body["client_secret"] != "s3cret" {
			http.Error(w, "bad request", 400)
			return
		}
		n := ts.fetches.Add(1)
		if c := ts.code.Load(); c != 0 {
			fmt.Fprintf(w, `{"data":{"error_code":%d,"description":"refused"},"message":"error"}`, c)
			return
		}
		fmt.Fprintf(w, `{"data":{"access_token":"clt.tok-%d","expires_in":7200,"error_code":0,"description":""},"message":"success"}`, n)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func newTestTokens(t *testing.T, base string, store TokenStore, clk *clock.Fake, log *logrus.Entry) *Tokens {
	t.Helper()
	tk, err := NewTokens(TokensOptions{BaseURL: base, Apps: []Credential{{AppID: "tt1", Secret: "s3cret"}}, Store: store, Now: clk.Now, Poll: 5 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

var tokenT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestTokens_RefreshWhenLessThan15MinutesRemain(t *testing.T) {
	ts := newTokenServer(t)
	store, clk := newMemStore(), clock.NewFake(tokenT0)
	store.tok["tt1"] = Token{Value: "clt.seeded", ExpiresAt: tokenT0.Add(20 * time.Minute)}
	tk := newTestTokens(t, ts.URL, store, clk, nil)
	for i := 0; i < 3; i++ {
		if got, err := tk.Token(context.Background(), "tt1"); err != nil || got != "clt.seeded" {
			t.Fatalf("token %q %v, want the seeded one", got, err)
		}
	}
	clk.Advance(6 * time.Minute)
	got, err := tk.Token(context.Background(), "tt1")
	if err != nil || got != "clt.tok-1" || ts.fetches.Load() != 1 {
		t.Fatalf("token %q %v after %d fetches, want clt.tok-1 after 1", got, err, ts.fetches.Load())
	}
	if s := store.tok["tt1"]; s.Value != "clt.tok-1" || !s.ExpiresAt.Equal(clk.Now().Add(2*time.Hour)) {
		t.Errorf("stored %v", s)
	}
}

func TestTokens_ReReadsTheSharedRow(t *testing.T) {
	ts := newTokenServer(t)
	store, clk := newMemStore(), clock.NewFake(tokenT0)
	store.tok["tt1"] = Token{Value: "clt.a", ExpiresAt: tokenT0.Add(2 * time.Hour)}
	tk := newTestTokens(t, ts.URL, store, clk, nil)
	_, _ = tk.Token(context.Background(), "tt1")
	store.tok["tt1"] = Token{Value: "clt.b", ExpiresAt: tokenT0.Add(2 * time.Hour)}
	if got, _ := tk.Token(context.Background(), "tt1"); got != "clt.a" {
		t.Fatalf("within a minute: %q, want the cached clt.a", got)
	}
	clk.Advance(ReRead)
	if got, _ := tk.Token(context.Background(), "tt1"); got != "clt.b" || ts.fetches.Load() != 0 {
		t.Fatalf("after a minute: %q (%d fetches), want clt.b without fetching", got, ts.fetches.Load())
	}
}

func TestTokens_RefusedTokenRefreshedOnceAndCallResentOnce(t *testing.T) {
	ts := newTokenServer(t)
	store, clk := newMemStore(), clock.NewFake(tokenT0)
	store.tok["tt1"] = Token{Value: "clt.revoked", ExpiresAt: tokenT0.Add(2 * time.Hour)}
	var calls atomic.Int32
	var seenTokens []string
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		mu.Lock()
		seenTokens = append(seenTokens, r.Header.Get("access-token"))
		mu.Unlock()
		if r.Header.Get("access-token") == "clt.revoked" {
			fmt.Fprint(w, `{"err_no":28001003,"err_msg":"access_token无效","log_id":"L1"}`)
			return
		}
		fmt.Fprint(w, `{"err_no":0,"err_msg":"","log_id":"L2","data":{"order_id":"motb1","pay_status":"SUCCESS"}}`)
	}))
	t.Cleanup(api.Close)
	c := newTestClient(t, api.URL, newTestTokens(t, ts.URL, store, clk, nil))
	o, err := c.QueryOrder(context.Background(), OrderQueryRequest{AppID: "tt1", OrderID: "motb1"})
	if err != nil || o.PayStatus != "SUCCESS" {
		t.Fatalf("query: %v", err)
	}
	if ts.fetches.Load() != 1 || calls.Load() != 2 || seenTokens[1] != "clt.tok-1" {
		t.Fatalf("%d fetches, %d calls %v; want 1 fetch, the call resent once with the new token", ts.fetches.Load(), calls.Load(), seenTokens)
	}
}

func TestTokens_BadSecretStopsWithOneErrorLine(t *testing.T) {
	ts := newTokenServer(t)
	ts.code.Store(TokenErrBadSecret)
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	tk := newTestTokens(t, ts.URL, newMemStore(), clock.NewFake(tokenT0), logrus.NewEntry(l))
	c := newTestClient(t, "http://127.0.0.1:1", tk)
	for i := 0; i < 5; i++ {
		_, err := c.QueryOrder(context.Background(), OrderQueryRequest{AppID: "tt1", OrderID: "motb1"})
		if !errors.Is(err, ErrConfig) || Classify(err) != douyin.ClassConfig {
			t.Fatalf("call %d: %v (class %v), want a configuration error", i, err, Classify(err))
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if ts.fetches.Load() != 1 || len(lines) != 1 || !strings.Contains(lines[0], "level=error") || !strings.Contains(lines[0], "app=tt1") {
		t.Fatalf("%d fetches, log %q; want one fetch and one error line naming the app", ts.fetches.Load(), buf.String())
	}
}

func TestTokens_LimitRespected(t *testing.T) {
	ts := newTokenServer(t)
	ts.code.Store(TokenErrLimit)
	clk := clock.NewFake(tokenT0)
	tk := newTestTokens(t, ts.URL, newMemStore(), clk, nil)
	for i := 0; i < 3; i++ {
		if _, err := tk.Token(context.Background(), "tt1"); !errors.Is(err, ErrTokenLimited) || Classify(err) != douyin.ClassRetryable {
			t.Fatalf("%v, want ErrTokenLimited", err)
		}
	}
	if ts.fetches.Load() != 1 {
		t.Fatalf("%d fetches under 10020, want 1", ts.fetches.Load())
	}
	ts.code.Store(0)
	clk.Advance(LimitWait)
	if got, err := tk.Token(context.Background(), "tt1"); err != nil || got != "clt.tok-2" {
		t.Fatalf("after 5 minutes: %q %v", got, err)
	}
}

func TestTokens_OneFetchForConcurrentCallers(t *testing.T) {
	ts := newTokenServer(t)
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	store := newMemStore()
	clk := clock.NewFake(tokenT0)
	var tks []*Tokens
	for i := 0; i < 4; i++ {
		tks = append(tks, newTestTokens(t, ts.URL, store, clk, logrus.NewEntry(l)))
	}
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = tks[i%4].Token(context.Background(), "tt1")
		}()
	}
	wg.Wait()
	for i, g := range got {
		if g != "clt.tok-1" {
			t.Fatalf("caller %d got %q", i, g)
		}
	}
	if ts.fetches.Load() != 1 {
		t.Fatalf("%d fetches, want 1", ts.fetches.Load())
	}
	if strings.Contains(buf.String(), "clt.tok") {
		t.Fatalf("a token was logged: %s", buf.String())
	}
	if s := fmt.Sprintf("%v %#v %+v", store.tok["tt1"], store.tok["tt1"], Credential{AppID: "tt1", Secret: "s3cret"}); strings.Contains(s, "clt.tok") || strings.Contains(s, "s3cret") {
		t.Fatalf("formatting shows a secret: %s", s)
	}
}

func TestTokens_FailedFetchReleasesTheLease(t *testing.T) {
	ts := newTokenServer(t)
	ts.code.Store(TokenErrBadSecret)
	store, clk := newMemStore(), clock.NewFake(tokenT0)
	first := newTestTokens(t, ts.URL, store, clk, nil)
	second := newTestTokens(t, ts.URL, store, clk, nil)
	if _, err := first.Token(context.Background(), "tt1"); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := second.Token(ctx, "tt1"); !errors.Is(err, ErrConfig) {
		t.Fatalf("second replica: %v, want its own 10013 at once, not a wait for the lease", err)
	}
	if ts.fetches.Load() != 2 {
		t.Fatalf("%d fetches", ts.fetches.Load())
	}
}
