package douyin

import (
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IdleConnsPerHost is how many idle keep-alive connections the clients
// keep to one Douyin host: as many as calls may be in flight at once
// (reconcile.workers goes up to a few hundred). net/http's default keeps
// two, so that of 32 workers calling at once 30 closed their connection
// after each answer and dialled (over TLS, handshook) a new one for the
// next call.
const IdleConnsPerHost = 256

// sharedTransport is the transport of every client built without one of
// its own: one pool of connections per host for all apps and both APIs.
var sharedTransport = sync.OnceValue(func() *http.Transport {
	return KeepingTransport(IdleConnsPerHost, 2*IdleConnsPerHost)
})

// KeepingTransport is a copy of net/http's default transport that keeps
// perHost idle connections to each host and total in all (net/http keeps
// two per host): for a sender with that many requests in flight.
func KeepingTransport(perHost, total int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = perHost
	t.MaxIdleConns = total
	return t
}

// HTTPClient is the client both APIs' clients send with: a copy of base
// (a new one when nil) with timeout, sending through the shared transport
// unless base has a transport of its own, and reporting a redirect as the
// 3xx it is (following it would turn the POST into a GET elsewhere).
func HTTPClient(base *http.Client, timeout time.Duration) *http.Client {
	hc := &http.Client{}
	if base != nil {
		c := *base
		hc = &c
	}
	hc.Timeout = timeout
	if hc.Transport == nil {
		hc.Transport = sharedTransport()
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return hc
}

// Snippet returns the start of a body for an error message.
func Snippet(b []byte) string {
	const n = 120
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// SendTrace watches a request on its way out, for both Douyin APIs'
// clients. A transport that asked for a connection and never got one sent
// nothing; once it has a connection, bytes may have reached the server.
type SendTrace struct {
	getConn, gotConn atomic.Bool
}

// Hooks is the trace to attach to the request (httptrace.WithClientTrace).
func (t *SendTrace) Hooks() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) { t.getConn.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { t.gotConn.Store(true) },
	}
}

// Sent reports whether the request that failed with err may have reached
// the server. Transports that do not report connections (a custom
// RoundTripper) fall back to the error: only a failed dial proves nothing
// was sent.
func (t *SendTrace) Sent(err error) bool {
	switch {
	case t.gotConn.Load():
		return true
	case t.getConn.Load():
		return false
	}
	return !notSent(err)
}
