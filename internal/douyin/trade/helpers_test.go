package trade

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// staticTokens is a TokenSource with one token per test; Refused hands out
// the next one and counts.
type staticTokens struct {
	mu      sync.Mutex
	tok     string
	next    string
	refused int
}

func (s *staticTokens) Token(context.Context, string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

func (s *staticTokens) Refused(_ context.Context, _, tok string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused++
	if tok == s.tok && s.next != "" {
		s.tok = s.next
	}
	return s.tok, nil
}

// seen is one request the fake server received.
type seen struct {
	Method, Path, Token, ContentType string
	Body                             map[string]any
}

// fakeServer answers every request with the next of answers (the last one
// repeats) and records what it saw.
type fakeServer struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []seen
	answers []answer
}

type answer struct {
	status int
	body   string
	delay  time.Duration
}

func newFake(t *testing.T, answers ...answer) *fakeServer {
	t.Helper()
	f := &fakeServer{answers: answers}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	s := seen{Method: r.Method, Path: r.URL.Path, Token: r.Header.Get("access-token"), ContentType: r.Header.Get("Content-Type")}
	_ = json.Unmarshal(raw, &s.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	a := f.answers[min(len(f.reqs), len(f.answers))-1]
	f.mu.Unlock()
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-r.Context().Done():
			return
		}
	}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeServer) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func newTestClient(t *testing.T, base string, tokens TokenSource) *Client {
	t.Helper()
	if tokens == nil {
		tokens = &staticTokens{tok: "clt.test"}
	}
	c, err := New(Options{BaseURL: base, Tokens: tokens, Limits: nil, Burst: 100, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func ok(data string) answer {
	return answer{body: `{"err_no":0,"err_msg":"success","log_id":"L0","data":` + data + `}`}
}

func fail(status, errNo int) answer {
	b, _ := json.Marshal(map[string]any{"err_no": errNo, "err_msg": "msg", "log_id": "LOG-1"})
	return answer{status: status, body: string(b)}
}
