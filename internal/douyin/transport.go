package douyin

import (
	"fmt"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
)

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
