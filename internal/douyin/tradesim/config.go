package tradesim

import (
	"crypto/rsa"
	"time"
)

// Defaults applied to zero Config fields.
const (
	DefaultTokenTTL        = 2 * time.Hour
	DefaultTokenLimit      = 500 // client_token fetches per app in TokenWindow
	TokenWindow            = 5 * time.Minute
	TokenGrace             = 5 * time.Minute // what a newer fetch leaves the previous token
	DefaultRate            = 30              // calls per second per app and API
	DefaultProcessingDelay = 2 * time.Second
	DefaultAuditWindow     = 72 * time.Hour
	DefaultHang            = 3 * time.Second
	// DefaultCallbackDelayMax bounds the callback_delay fault's wait, as
	// the ecpay simulator's does.
	DefaultCallbackDelayMax = 2 * time.Second
	// CPSSettleDays is the fixed fulfilment D+N of CPS orders.
	CPSSettleDays = 3
)

// SettleRule is an app's settlement rule for ordinary orders.
type SettleRule string

// The settle rules of the console.
const (
	// RulePayment: D+N days after pay_time, whole orders only.
	RulePayment SettleRule = "payment"
	// RuleFulfilment: D+N days after the order (or item) was fulfilled.
	RuleFulfilment SettleRule = "fulfilment"
)

// App is one mini-program the simulator serves.
type App struct {
	AppID  string
	Secret string // client_secret; secret
	Rule   SettleRule
	// SettleDays is N of D+N; 7 when zero.
	SettleDays int
	// AutoSettle: Douyin settles the app's orders itself when due;
	// settle_create answers 23117.
	AutoSettle bool
	// NotifyURL receives payment, refund and settle callbacks unless a
	// request names its own; PreRefundURL receives pre_create_refund.
	NotifyURL, PreRefundURL string
	// OrderKey is the application public key uploaded in the console: it
	// verifies the Byte-Authorization of tt.requestOrder's order data
	// (RequestOrder); nil refuses RequestOrder.
	OrderKey *rsa.PublicKey
}

// String renders the app without its secret.
func (a App) String() string { return "app " + a.AppID }

// GoString renders the app without its secret, also for %#v.
func (a App) GoString() string { return a.String() }

// Faults are the failures the simulator injects: probabilities between 0
// and 1 rolled per write request from the seeded generator.
type Faults struct {
	// Err13000AfterEffect does what was asked, then answers 13000.
	Err13000AfterEffect float64 `json:"err13000_after_effect"`
	// Err23000AfterEffect does what was asked, then answers 23000.
	Err23000AfterEffect float64 `json:"err23000_after_effect"`
	// HTTP5xxAfterEffect does what was asked, then answers HTTP 502.
	HTTP5xxAfterEffect float64 `json:"http5xx_after_effect"`
	// HangAfterEffect does what was asked, then holds the answer for
	// Config.Hang or until the client leaves.
	HangAfterEffect float64 `json:"hang_after_effect"`
	// RefundChannelFail makes an accepted refund FAIL at the channel.
	RefundChannelFail float64 `json:"refund_channel_fail"`
	// CallbackDrop never sends a callback; CallbackDuplicate sends it twice.
	CallbackDrop      float64 `json:"callback_drop"`
	CallbackDuplicate float64 `json:"callback_duplicate"`
	// CallbackDelay holds a callback back for half to all of
	// Config.CallbackDelayMax (wall time) before its first send.
	CallbackDelay float64 `json:"callback_delay"`
}

// Config configures a Server.
type Config struct {
	Apps []App
	// PlatformKey signs callbacks (Douyin's key; payd holds its public
	// half); generated when nil.
	PlatformKey *rsa.PrivateKey
	// Start is the simulated clock's start; the wall time when zero.
	Start time.Time
	// TokenTTL is a client_token's life (DefaultTokenTTL); TokenLimit the
	// fetches allowed per app in TokenWindow (DefaultTokenLimit).
	TokenTTL   time.Duration
	TokenLimit int
	// Rate is calls per second per app and API (DefaultRate); above it 12001.
	Rate float64
	// ProcessingDelay is how long a refund or settlement stays PROCESSING
	// on the simulated clock (DefaultProcessingDelay).
	ProcessingDelay time.Duration
	// RetrySchedule is the wall-time wait before each callback retry; a
	// callback is given up after the last. Default 12s, 12s, 33s, 1m, 7m.
	RetrySchedule []time.Duration
	Hang          time.Duration
	// CallbackDelayMax bounds a delayed callback's wait (DefaultCallbackDelayMax).
	CallbackDelayMax time.Duration
	Faults           Faults
	Seed             int64
}

func (c *Config) defaults() {
	if c.TokenTTL <= 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.TokenLimit <= 0 {
		c.TokenLimit = DefaultTokenLimit
	}
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.ProcessingDelay <= 0 {
		c.ProcessingDelay = DefaultProcessingDelay
	}
	if len(c.RetrySchedule) == 0 {
		c.RetrySchedule = []time.Duration{12 * time.Second, 12 * time.Second, 33 * time.Second, time.Minute, 7 * time.Minute}
	}
	if c.Hang <= 0 {
		c.Hang = DefaultHang
	}
	if c.CallbackDelayMax <= 0 {
		c.CallbackDelayMax = DefaultCallbackDelayMax
	}
	for i := range c.Apps {
		if c.Apps[i].Rule == "" {
			c.Apps[i].Rule = RulePayment
		}
		if c.Apps[i].SettleDays <= 0 {
			c.Apps[i].SettleDays = 7
		}
	}
}
