package douyin

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
	"unicode/utf8"
)

// Base URLs of the real service.
const (
	ProductionURL = "https://developer.toutiao.com"
	SandboxURL    = "https://open-sandbox.douyin.com"
)

// DefaultTimeout bounds one HTTP call when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxResponse bounds how much of a response body is read.
const maxResponse = 1 << 20

// App is one mini-program's credentials.
type App struct {
	AppID        string
	Salt         string // request signature SALT; secret
	Token        string // callback Token; secret
	ThirdpartyID string // service-provider mode only
}

// String renders the app without its secrets.
func (a App) String() string { return fmt.Sprintf("app %s", a.AppID) }

// GoString renders the app without its secrets, also for %#v.
func (a App) GoString() string { return a.String() }

// CallInfo describes one finished call, for metrics and the attempt log.
type CallInfo struct {
	AppID   string
	API     API
	Waited  time.Duration // time spent waiting for a rate-limit token
	Latency time.Duration // time of the HTTP exchange
	ErrNo   int           // err_no, or -1 when there was no parsable answer
	Class   Class
}

// Options configure a Client.
type Options struct {
	// BaseURL is the scheme and host: ProductionURL, SandboxURL or a simulator.
	BaseURL string
	// Timeout bounds each HTTP call; DefaultTimeout when zero.
	Timeout time.Duration
	// Apps are the mini-programs the client may call for; none (a config of
	// trade apps only) leaves a client that refuses every call, whose
	// limiter the trade client shares.
	Apps []App
	// Limits are the per-app, per-API token-bucket rates in calls per second;
	// missing APIs take DefaultLimits. A zero Limits map means all defaults.
	Limits map[API]float64
	// Burst is the bucket size of every limiter; 1 when zero.
	Burst int
	// InFlight bounds each app's calls of one API in flight to those its
	// limit allows in this window (Limiter.SetInFlight); 0: no bound.
	InFlight time.Duration
	// Now is the clock of the limiter's recovery; time.Now when nil.
	Now func() time.Time
	// HTTPClient overrides the transport; its Timeout is replaced by Timeout.
	HTTPClient *http.Client
	// Observe, when set, is called after every call.
	Observe func(CallInfo)
}

// Client calls the ecpay v1 API for one or more apps, under per-app, per-API
// rate limits.
type Client struct {
	base    string
	http    *http.Client
	apps    map[string]App
	only    string // the app_id when exactly one app is configured
	limiter *Limiter
	observe func(CallInfo)
}

// New returns a client, or an error naming the first bad option.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("douyin: base URL: required")
	}
	if !strings.HasPrefix(opts.BaseURL, "http://") && !strings.HasPrefix(opts.BaseURL, "https://") {
		return nil, fmt.Errorf("douyin: base URL %q: want http:// or https://", opts.BaseURL)
	}
	apps := make(map[string]App, len(opts.Apps))
	for i, a := range opts.Apps {
		switch {
		case a.AppID == "":
			return nil, fmt.Errorf("douyin: apps[%d].app_id: required", i)
		case a.Salt == "":
			return nil, fmt.Errorf("douyin: apps[%d].salt: required", i)
		}
		if _, dup := apps[a.AppID]; dup {
			return nil, fmt.Errorf("douyin: apps[%d].app_id: %s configured twice", i, a.AppID)
		}
		apps[a.AppID] = a
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hc := HTTPClient(opts.HTTPClient, timeout)
	c := &Client{
		base:    strings.TrimRight(opts.BaseURL, "/"),
		http:    hc,
		apps:    apps,
		limiter: NewLimiter(opts.Limits, opts.Burst, opts.Now),
		observe: opts.Observe,
	}
	c.limiter.SetInFlight(opts.InFlight)
	if len(apps) == 1 {
		c.only = opts.Apps[0].AppID
	}
	return c, nil
}

// Limiter returns the client's rate limiter.
func (c *Client) Limiter() *Limiter { return c.limiter }

// Delay returns how long a call of api for appID would wait for its
// rate-limit token now.
func (c *Client) Delay(appID string, api API) time.Duration {
	return c.limiter.Delay(c.appID(appID), api)
}

// Rate returns the rate in force for api of appID, in calls per second.
func (c *Client) Rate(appID string, api API) float64 {
	return c.limiter.Rate(c.appID(appID), api)
}

// App returns the configured app with that id.
func (c *Client) App(appID string) (App, bool) {
	a, ok := c.apps[c.appID(appID)]
	return a, ok
}

func (c *Client) appID(id string) string {
	if id == "" {
		return c.only
	}
	return id
}

// CreateOrder pre-creates an order.
func (c *Client) CreateOrder(ctx context.Context, req CreateOrderRequest) (*CreateOrderResponse, error) {
	var resp struct {
		Data CreateOrderResponse `json:"data"`
	}
	if err := c.call(ctx, req.AppID, APICreateOrder, req.Fields(), &resp); err != nil {
		return nil, err
	}
	return &resp.Data, nil
}

// QueryOrder returns an order's status at Douyin.
func (c *Client) QueryOrder(ctx context.Context, req QueryOrderRequest) (*QueryOrderResponse, error) {
	var resp QueryOrderResponse
	if err := c.call(ctx, req.AppID, APIQueryOrder, req.Fields(), &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// CreateRefund starts a refund; success only means it was accepted.
func (c *Client) CreateRefund(ctx context.Context, req CreateRefundRequest) (*CreateRefundResponse, error) {
	var resp CreateRefundResponse
	if err := c.call(ctx, req.AppID, APICreateRefund, req.Fields(), &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// QueryRefund returns a refund's status; a refund Douyin does not know is an
// APIError with err_no 3101.
func (c *Client) QueryRefund(ctx context.Context, req QueryRefundRequest) (*RefundInfo, error) {
	var resp struct {
		RefundInfo RefundInfo `json:"refundInfo"`
	}
	if err := c.call(ctx, req.AppID, APIQueryRefund, req.Fields(), &resp); err != nil {
		return nil, err
	}
	return &resp.RefundInfo, nil
}

// Settle asks Douyin to settle an order; success only means it was accepted.
func (c *Client) Settle(ctx context.Context, req SettleRequest) (*SettleResponse, error) {
	var resp SettleResponse
	if err := c.call(ctx, req.AppID, APISettle, req.Fields(), &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// QuerySettle returns a settlement's status.
func (c *Client) QuerySettle(ctx context.Context, req QuerySettleRequest) (*SettleInfo, error) {
	var resp struct {
		SettleInfo SettleInfo `json:"settle_info"`
	}
	if err := c.call(ctx, req.AppID, APIQuerySettle, req.Fields(), &resp); err != nil {
		return nil, err
	}
	return &resp.SettleInfo, nil
}

// UnsettleAmount returns how much of an order can still be settled.
func (c *Client) UnsettleAmount(ctx context.Context, req UnsettleAmountRequest) (*UnsettleAmountResponse, error) {
	var resp struct {
		UnsettleAmountResponse
		Data *UnsettleAmountResponse `json:"data"`
	}
	if err := c.call(ctx, req.AppID, APIUnsettleAmount, req.Fields(), &resp); err != nil {
		return nil, err
	}
	if resp.Data != nil {
		return resp.Data, nil
	}
	return &resp.UnsettleAmountResponse, nil
}

// envelope is the part every answer shares.
type envelope struct {
	ErrNo   *int   `json:"err_no"`
	ErrTips string `json:"err_tips"`
}

// call signs fields, waits for a rate-limit token, posts and decodes the
// answer into out.
func (c *Client) call(ctx context.Context, appID string, api API, fields []Field, out any) error {
	app, ok := c.apps[c.appID(appID)]
	if !ok {
		return fmt.Errorf("douyin %s: %w %q", api, ErrUnknownApp, appID)
	}
	info := CallInfo{AppID: app.AppID, API: api, ErrNo: -1}
	err := c.exchange(ctx, app, api, fields, out, &info)
	info.Class = Classify(err)
	if ae := (*APIError)(nil); errors.As(err, &ae) {
		info.ErrNo = ae.ErrNo
		if ae.ErrNo == ErrNoBusy {
			c.limiter.Backoff(app.AppID, api)
		}
	} else if err == nil {
		info.ErrNo = 0
	}
	if c.observe != nil {
		c.observe(info)
	}
	return err
}

func (c *Client) exchange(ctx context.Context, app App, api API, fields []Field, out any, info *CallInfo) error {
	all := make([]Field, 0, len(fields)+2)
	all = append(all, Field{Key: "app_id", Value: app.AppID})
	if app.ThirdpartyID != "" {
		all = append(all, Field{Key: "thirdparty_id", Value: app.ThirdpartyID})
	}
	all = append(all, fields...)
	for _, f := range all {
		// JSON would send U+FFFD for a bad byte while the signature covers
		// the byte itself: Douyin would answer 2008, which reads as a
		// configuration error.
		if !utf8.ValidString(f.Value) {
			return fmt.Errorf("douyin %s: field %s: not valid UTF-8", api, f.Key)
		}
	}
	body := EncodeBody(all, Sign(Params(all), app.Salt))

	done, waited, err := c.limiter.Take(ctx, app.AppID, api)
	info.Waited = waited
	if err != nil {
		return &TransportError{API: api, Err: fmt.Errorf("wait for rate limit: %w", err)}
	}
	answered := time.Duration(0) // an answer's latency, for the calls in flight
	defer func() { done(answered) }()
	var trace SendTrace
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace.Hooks()), http.MethodPost, c.base+api.Path(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("douyin %s: build request: %w", api, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := ctx.Err(); err != nil {
		return &TransportError{API: api, Err: fmt.Errorf("before sending: %w", err)}
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	info.Latency = time.Since(start)
	if err != nil {
		return &TransportError{API: api, Sent: trace.Sent(err), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	info.Latency = time.Since(start)
	answered = info.Latency
	if err != nil {
		return &TransportError{API: api, Sent: true, Status: statusIfNot200(resp.StatusCode), Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return &TransportError{API: api, Sent: true, Status: resp.StatusCode, Err: fmt.Errorf("unexpected status: %s", Snippet(raw))}
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.ErrNo == nil {
		if err == nil {
			err = errors.New("no err_no")
		}
		return &TransportError{API: api, Sent: true, Err: fmt.Errorf("decode response %s: %w", Snippet(raw), err)}
	}
	if *env.ErrNo != ErrNoSuccess {
		return &APIError{API: api, ErrNo: *env.ErrNo, ErrTips: env.ErrTips}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &TransportError{API: api, Sent: true, Err: fmt.Errorf("decode response %s: %w", Snippet(raw), err)}
	}
	return nil
}

func statusIfNot200(code int) int {
	if code == http.StatusOK {
		return 0
	}
	return code
}
