package trade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// Base URLs of the real service; paths are the same on both.
const (
	ProductionURL = "https://open.douyin.com"
	SandboxURL    = "https://open-sandbox.douyin.com"
)

// PathPrefix is the path of every business call, before its name and the
// trailing slash that is part of the path.
const PathPrefix = "/api/trade_basic/v1/developer/"

// DefaultTimeout bounds one HTTP call when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxResponse bounds how much of a response body is read.
const maxResponse = 1 << 20

// API names a trade_basic endpoint: the last element of its path.
type API string

// The endpoints payd calls.
const (
	APIOrderQuery   API = "order_query"
	APIQueryCPS     API = "query_cps"
	APIRefundCreate API = "refund_create"
	APIRefundQuery  API = "refund_query"
	APIRefundAudit  API = "refund_audit_callback"
	APISettleCreate API = "settle_create"
	APISettleQuery  API = "settle_query"
)

// Path is the endpoint's path, with its trailing slash.
func (a API) Path() string { return PathPrefix + string(a) + "/" }

// Write reports whether the call changes something at Douyin.
func (a API) Write() bool {
	return a == APIRefundCreate || a == APIRefundAudit || a == APISettleCreate
}

// Limit is the Limiter bucket of the endpoint.
func (a API) Limit() douyin.API {
	switch a {
	case APIOrderQuery:
		return douyin.APITradeOrderQuery
	case APIQueryCPS:
		return douyin.APITradeQueryCPS
	case APIRefundCreate:
		return douyin.APITradeRefundCreate
	case APIRefundQuery:
		return douyin.APITradeRefundQuery
	case APIRefundAudit:
		return douyin.APITradeRefundAudit
	case APISettleCreate:
		return douyin.APITradeSettleCreate
	}
	return douyin.APITradeSettleQuery
}

// TokenSource gives the client an app's access token. Refused is called
// when Douyin refused token: it returns the token to resend with once
// (re-read, or refreshed when the shared one is still the refused one).
type TokenSource interface {
	Token(ctx context.Context, appID string) (string, error)
	Refused(ctx context.Context, appID, token string) (string, error)
}

// CallInfo describes one finished HTTP exchange, for metrics and logs.
type CallInfo struct {
	AppID   string
	API     API
	Waited  time.Duration
	Latency time.Duration
	ErrNo   int // -1 when there was no parsable answer
	LogID   string
	Class   Class
}

// Options configure a Client.
type Options struct {
	// BaseURL is ProductionURL, SandboxURL or a simulator (scheme and host).
	BaseURL string
	// Tokens supplies access tokens; required.
	Tokens TokenSource
	// Limiter is the rate limiter, shared with other clients of the process
	// when given; else one with Limits, Burst and Now.
	Limiter *douyin.Limiter
	// Limits are calls per second per app for the trade APIs' buckets
	// (douyin.APITrade…); missing ones default to 30.
	Limits map[douyin.API]float64
	Burst  int
	Now    func() time.Time
	// Timeout bounds each HTTP exchange; DefaultTimeout when zero.
	Timeout    time.Duration
	HTTPClient *http.Client
	// Observe, when set, is called after every exchange.
	Observe func(CallInfo)
}

// Client calls trade_basic for any app its TokenSource knows.
type Client struct {
	base    string
	http    *http.Client
	tokens  TokenSource
	limiter *douyin.Limiter
	observe func(CallInfo)
}

// New returns a client, or an error naming the first bad option.
func New(opts Options) (*Client, error) {
	if !strings.HasPrefix(opts.BaseURL, "http://") && !strings.HasPrefix(opts.BaseURL, "https://") {
		return nil, fmt.Errorf("douyin trade: base URL %q: want http:// or https://", opts.BaseURL)
	}
	if opts.Tokens == nil {
		return nil, errors.New("douyin trade: tokens: required")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hc := douyin.HTTPClient(opts.HTTPClient, timeout)
	lim := opts.Limiter
	if lim == nil {
		lim = douyin.NewLimiter(opts.Limits, opts.Burst, opts.Now)
	}
	return &Client{base: strings.TrimRight(opts.BaseURL, "/"), http: hc, tokens: opts.Tokens, limiter: lim, observe: opts.Observe}, nil
}

// Limiter returns the client's rate limiter.
func (c *Client) Limiter() *douyin.Limiter { return c.limiter }

// envelope is what every answer shares.
type envelope struct {
	ErrNo  *int            `json:"err_no"`
	ErrMsg string          `json:"err_msg"`
	LogID  string          `json:"log_id"`
	Data   json.RawMessage `json:"data"`
}

// call sends req to api for appID with the shared token; a refused token is
// re-read (or refreshed) and the call resent once, unchanged. The data of a
// success is returned raw ("" for refund_audit_callback).
func (c *Client) call(ctx context.Context, appID string, api API, req any) (json.RawMessage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("douyin trade %s: encode request: %w", api, err)
	}
	tok, err := c.tokens.Token(ctx, appID)
	if err != nil {
		return nil, tokenError(api, err)
	}
	data, err := c.send(ctx, appID, api, tok, body)
	var ae *APIError
	if !errors.As(err, &ae) || !ae.TokenRefused() {
		return data, err
	}
	tok, terr := c.tokens.Refused(ctx, appID, tok)
	if terr != nil {
		return nil, tokenError(api, fmt.Errorf("after err_no %d (log_id %s): %w", ae.ErrNo, ae.LogID, terr))
	}
	return c.send(ctx, appID, api, tok, body)
}

// tokenError is a call that could not get a token: a configuration error
// as such, anything else a call never sent.
func tokenError(api API, err error) error {
	if errors.Is(err, ErrConfig) {
		return fmt.Errorf("douyin trade %s: access token: %w", api, err)
	}
	return &TransportError{API: api, Err: fmt.Errorf("access token: %w", err)}
}

// send is one exchange under the rate limit, classified and observed.
func (c *Client) send(ctx context.Context, appID string, api API, token string, body []byte) (json.RawMessage, error) {
	info := CallInfo{AppID: appID, API: api, ErrNo: -1}
	data, err := c.exchange(ctx, appID, api, token, body, &info)
	info.Class = Classify(err)
	var ae *APIError
	switch {
	case err == nil:
		info.ErrNo = 0
	case errors.As(err, &ae):
		info.ErrNo = ae.ErrNo
		if ae.ErrNo == ErrNoTooFrequent || ae.ErrNo == ErrNoTooFrequentGW {
			c.limiter.Backoff(appID, api.Limit())
		}
	}
	info.LogID = LogID(err)
	if c.observe != nil {
		c.observe(info)
	}
	return data, err
}

func (c *Client) exchange(ctx context.Context, appID string, api API, token string, body []byte, info *CallInfo) (json.RawMessage, error) {
	done, waited, err := c.limiter.Take(ctx, appID, api.Limit())
	info.Waited = waited
	if err != nil {
		return nil, &TransportError{API: api, Err: fmt.Errorf("wait for rate limit: %w", err)}
	}
	answered := time.Duration(0) // an answer's latency, for the calls in flight
	defer func() { done(answered) }()
	var trace douyin.SendTrace
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace.Hooks()), http.MethodPost, c.base+api.Path(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("douyin trade %s: build request: %w", api, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("access-token", token)
	if err := ctx.Err(); err != nil {
		return nil, &TransportError{API: api, Err: fmt.Errorf("before sending: %w", err)}
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		info.Latency = time.Since(start)
		return nil, &TransportError{API: api, Sent: trace.Sent(err), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	info.Latency = time.Since(start)
	answered = info.Latency
	if err != nil {
		return nil, &TransportError{API: api, Sent: true, Status: resp.StatusCode, Err: fmt.Errorf("read response: %w", err)}
	}
	return decodeAnswer(api, resp.StatusCode, raw)
}

// decodeAnswer classifies an answer on its err_no whatever the HTTP status,
// except that a 5xx, or a body that is not the envelope, is Unknown.
func decodeAnswer(api API, status int, raw []byte) (json.RawMessage, error) {
	var env envelope
	jerr := json.Unmarshal(raw, &env)
	if jerr == nil && env.ErrNo == nil {
		jerr = errors.New("no err_no")
	}
	if status >= 500 {
		return nil, &TransportError{API: api, Sent: true, Status: status, LogID: env.LogID, Err: fmt.Errorf("server error: %s", douyin.Snippet(raw))}
	}
	if jerr != nil {
		return nil, &TransportError{API: api, Sent: true, Status: status, LogID: env.LogID, Err: fmt.Errorf("no envelope in %s: %w", douyin.Snippet(raw), jerr)}
	}
	if *env.ErrNo != ErrNoSuccess {
		return nil, &APIError{API: api, Status: status, ErrNo: *env.ErrNo, ErrMsg: env.ErrMsg, LogID: env.LogID}
	}
	if status != http.StatusOK {
		return nil, &TransportError{API: api, Sent: true, Status: status, LogID: env.LogID, Err: fmt.Errorf("err_no 0 with http %d", status)}
	}
	data := bytes.TrimSpace(env.Data)
	if api != APIRefundAudit && (len(data) == 0 || bytes.Equal(data, []byte("null"))) {
		return nil, &TransportError{API: api, Sent: true, LogID: env.LogID, Err: errors.New("err_no 0 without data")}
	}
	return data, nil
}

// decodeData decodes a success's data into out, keeping nothing from a
// failure but the log; a data object that does not decode is Unknown.
func decodeData(api API, data json.RawMessage, out any) error {
	if err := json.Unmarshal(data, out); err != nil {
		return &TransportError{API: api, Sent: true, Err: fmt.Errorf("decode data %s: %w", douyin.Snippet(data), err)}
	}
	return nil
}
