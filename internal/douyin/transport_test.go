package douyin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClient_KeepsItsConnections runs rounds of calls in flight at once, as
// reconcile workers make them, and counts the connections the server saw
// opened: after the first round every call finds an idle connection. With
// net/http's default of two idle connections per host, every round after
// the first dialled again for all but two of its calls.
func TestClient_KeepsItsConnections(t *testing.T) {
	const inFlight, rounds = 32, 4
	var opened atomic.Int64
	release := make(chan struct{})
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release // every call of the round is in flight at once
		writeJSON(w, `{"err_no":2008,"err_tips":"订单不存在"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, func(o *Options) { o.Limits = map[API]float64{APIQueryOrder: 1e6}; o.Burst = inFlight })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for round := range rounds {
		var done sync.WaitGroup
		arrived.Add(inFlight)
		for range inFlight {
			done.Go(func() {
				_, err := c.QueryOrder(ctx, QueryOrderRequest{AppID: testApp, OutOrderNo: "ord-1"})
				if ae := (*APIError)(nil); !errors.As(err, &ae) || ae.ErrNo != 2008 {
					t.Errorf("round %d: %v, want Douyin's answer 2008", round, err)
				}
			})
		}
		arrived.Wait()
		for range inFlight {
			release <- struct{}{}
		}
		done.Wait()
		time.Sleep(20 * time.Millisecond) // the transport takes answered connections back
	}
	// Every round after the first would open 30 with the default; allow a
	// few for a connection not yet back in the pool when its round began.
	if got, most := opened.Load(), int64(inFlight+inFlight/4); got > most {
		t.Errorf("%d rounds of %d calls opened %d connections, want at most %d (one per call in flight, kept)", rounds, inFlight, got, most)
	}
	if got := opened.Load(); got < inFlight {
		t.Errorf("opened %d connections for %d calls in flight at once, want %d", got, inFlight, inFlight)
	}
}

// TestHTTPClient_KeepsWhatItIsGiven: a caller's client keeps its transport
// and redirect policy; the timeout is the one given; the caller's client
// itself is not changed.
func TestHTTPClient_KeepsWhatItIsGiven(t *testing.T) {
	own := &http.Transport{}
	follow := func(*http.Request, []*http.Request) error { return nil }
	base := &http.Client{Transport: own, CheckRedirect: follow, Timeout: time.Minute}
	hc := HTTPClient(base, 3*time.Second)
	if hc.Transport != own || hc.CheckRedirect == nil || hc.Timeout != 3*time.Second {
		t.Errorf("HTTPClient(base) = transport %v, timeout %v; want base's transport and 3s", hc.Transport, hc.Timeout)
	}
	if base.Timeout != time.Minute {
		t.Errorf("base's timeout changed to %v", base.Timeout)
	}
	def := HTTPClient(nil, time.Second)
	if def.Transport != sharedTransport() || def.CheckRedirect == nil {
		t.Errorf("HTTPClient(nil): transport %v, want the shared one with a redirect policy", def.Transport)
	}
	if tr := sharedTransport(); tr.MaxIdleConnsPerHost != IdleConnsPerHost || tr.Proxy == nil {
		t.Errorf("shared transport keeps %d idle per host (want %d), proxy from the environment %v", tr.MaxIdleConnsPerHost, IdleConnsPerHost, tr.Proxy != nil)
	}
}
