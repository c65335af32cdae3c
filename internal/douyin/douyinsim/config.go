package douyinsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/douyin"
)

// Defaults applied to zero Config and Faults fields.
const (
	// DefaultSettlePeriod is how long after payment an order may be settled (T+7).
	DefaultSettlePeriod = 7 * 24 * time.Hour
	// DefaultProcessingDelay is how long a refund or settlement stays PROCESSING.
	DefaultProcessingDelay = 2 * time.Second
	// DefaultHang is how long an injected hang lasts.
	DefaultHang = 3 * time.Second
	// DefaultCallbackDelayMax bounds an injected callback delay.
	DefaultCallbackDelayMax = 2 * time.Second
	// DefaultCallbackTimeout bounds one callback attempt when Config.HTTPClient is nil.
	DefaultCallbackTimeout = 5 * time.Second
)

// App is one mini-program the simulator serves.
type App struct {
	AppID string
	Salt  string // request signature SALT; secret
	Token string // callback Token; secret
	// SettlePeriod is this app's time from payment to settleable, as Douyin
	// configures it per merchant; Config.SettlePeriod when zero.
	SettlePeriod time.Duration
}

// String renders the app without its secrets.
func (a App) String() string { return "app " + a.AppID }

// GoString renders the app without its secrets, also for %#v.
func (a App) GoString() string { return a.String() }

// Faults are the failures the simulator injects. Each float is a
// probability between 0 and 1 (default 0), rolled independently per request
// (or per callback, or per refund) from the simulator's seeded generator.
// It is also the sandbox section of payd's config file (config.Sandbox),
// hence the yaml tags: there is one definition of the faults.
type Faults struct {
	// Err1000NoEffect answers err_no 1000 without doing anything.
	Err1000NoEffect float64 `json:"err1000_no_effect" yaml:"err1000_no_effect"`
	// Err1000AfterEffect does what was asked, then answers err_no 1000.
	Err1000AfterEffect float64 `json:"err1000_after_effect" yaml:"err1000_after_effect"`
	// HTTP500 answers HTTP 500 without doing anything.
	HTTP500 float64 `json:"http500" yaml:"http500"`
	// HTTP500AfterEffect does what was asked, then answers HTTP 500.
	HTTP500AfterEffect float64 `json:"http500_after_effect" yaml:"http500_after_effect"`
	// HangAfterEffect does what was asked, then holds the answer for Hang
	// (or until the client gives up), past a client's timeout.
	HangAfterEffect float64 `json:"hang_after_effect" yaml:"hang_after_effect"`
	// Hang is how long a hang lasts; DefaultHang when zero. JSON: a Go
	// duration string ("3s").
	Hang time.Duration `json:"hang" yaml:"hang"`
	// CallbackDrop never sends a callback at all.
	CallbackDrop float64 `json:"callback_drop" yaml:"callback_drop"`
	// CallbackDuplicate sends a callback twice (each copy retried on its own).
	CallbackDuplicate float64 `json:"callback_duplicate" yaml:"callback_duplicate"`
	// CallbackDelay holds a callback's first attempt back by between half
	// and all of CallbackDelayMax.
	CallbackDelay float64 `json:"callback_delay" yaml:"callback_delay"`
	// CallbackDelayMax bounds a callback delay; DefaultCallbackDelayMax when
	// zero. JSON: a Go duration string ("2s").
	CallbackDelayMax time.Duration `json:"callback_delay_max" yaml:"callback_delay_max"`
	// RefundChannelFail accepts a refund, which then FAILs at the channel
	// with msg "channel failure".
	RefundChannelFail float64 `json:"refund_channel_fail" yaml:"refund_channel_fail"`
}

// faultsJSON is Faults on the wire: durations as Go duration strings.
type faultsJSON struct {
	Err1000NoEffect    float64 `json:"err1000_no_effect"`
	Err1000AfterEffect float64 `json:"err1000_after_effect"`
	HTTP500            float64 `json:"http500"`
	HTTP500AfterEffect float64 `json:"http500_after_effect"`
	HangAfterEffect    float64 `json:"hang_after_effect"`
	Hang               string  `json:"hang,omitempty"`
	CallbackDrop       float64 `json:"callback_drop"`
	CallbackDuplicate  float64 `json:"callback_duplicate"`
	CallbackDelay      float64 `json:"callback_delay"`
	CallbackDelayMax   string  `json:"callback_delay_max,omitempty"`
	RefundChannelFail  float64 `json:"refund_channel_fail"`
}

// MarshalJSON implements json.Marshaler, writing durations as strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{
		Err1000NoEffect:    f.Err1000NoEffect,
		Err1000AfterEffect: f.Err1000AfterEffect,
		HTTP500:            f.HTTP500,
		HTTP500AfterEffect: f.HTTP500AfterEffect,
		HangAfterEffect:    f.HangAfterEffect,
		CallbackDrop:       f.CallbackDrop,
		CallbackDuplicate:  f.CallbackDuplicate,
		CallbackDelay:      f.CallbackDelay,
		RefundChannelFail:  f.RefundChannelFail,
	}
	if f.Hang != 0 {
		j.Hang = f.Hang.String()
	}
	if f.CallbackDelayMax != 0 {
		j.CallbackDelayMax = f.CallbackDelayMax.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler. Unknown keys are an error, so a
// misspelt fault is not silently ignored.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := strictJSON(b, &j); err != nil {
		return fmt.Errorf("decode faults: %w", err)
	}
	out := Faults{
		Err1000NoEffect:    j.Err1000NoEffect,
		Err1000AfterEffect: j.Err1000AfterEffect,
		HTTP500:            j.HTTP500,
		HTTP500AfterEffect: j.HTTP500AfterEffect,
		HangAfterEffect:    j.HangAfterEffect,
		CallbackDrop:       j.CallbackDrop,
		CallbackDuplicate:  j.CallbackDuplicate,
		CallbackDelay:      j.CallbackDelay,
		RefundChannelFail:  j.RefundChannelFail,
	}
	var err error
	if out.Hang, err = parseDuration("hang", j.Hang); err != nil {
		return err
	}
	if out.CallbackDelayMax, err = parseDuration("callback_delay_max", j.CallbackDelayMax); err != nil {
		return err
	}
	*f = out
	return nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return d, nil
}

// Probability is one fault probability of Faults, named by its key.
type Probability struct {
	// Key is the JSON and YAML key ("http500_after_effect").
	Key string
	// P points into the Faults it came from.
	P *float64
}

// Probabilities returns every probability of f with its key, in declaration
// order, so that validation, flags and configs never list them by hand.
func (f *Faults) Probabilities() []Probability {
	return []Probability{
		{"err1000_no_effect", &f.Err1000NoEffect},
		{"err1000_after_effect", &f.Err1000AfterEffect},
		{"http500", &f.HTTP500},
		{"http500_after_effect", &f.HTTP500AfterEffect},
		{"hang_after_effect", &f.HangAfterEffect},
		{"callback_drop", &f.CallbackDrop},
		{"callback_duplicate", &f.CallbackDuplicate},
		{"callback_delay", &f.CallbackDelay},
		{"refund_channel_fail", &f.RefundChannelFail},
	}
}

// DurationField is one duration of Faults, named by its key.
type DurationField struct {
	// Key is the JSON and YAML key ("hang").
	Key string
	// D points into the Faults it came from.
	D *time.Duration
}

// Durations returns every duration of f with its key, in declaration order.
func (f *Faults) Durations() []DurationField {
	return []DurationField{{"hang", &f.Hang}, {"callback_delay_max", &f.CallbackDelayMax}}
}

// Validate reports the first probability outside [0, 1] or negative
// duration, naming the field.
func (f Faults) Validate() error {
	for _, p := range f.Probabilities() {
		if !(*p.P >= 0 && *p.P <= 1) { // also rejects NaN
			return fmt.Errorf("faults.%s: %v is not a probability in [0, 1]", p.Key, *p.P)
		}
	}
	for _, d := range f.Durations() {
		if *d.D < 0 {
			return fmt.Errorf("faults.%s: %s is negative", d.Key, *d.D)
		}
	}
	return nil
}

func (f Faults) hang() time.Duration {
	if f.Hang == 0 {
		return DefaultHang
	}
	return f.Hang
}

func (f Faults) callbackDelayMax() time.Duration {
	if f.CallbackDelayMax == 0 {
		return DefaultCallbackDelayMax
	}
	return f.CallbackDelayMax
}

// Config configures a Server. Zero fields take the defaults named below.
type Config struct {
	// Apps are the mini-programs served; at least one, each with an AppID
	// and a Salt.
	Apps []App
	// SettlePeriod is how long after payment an order may be settled, for
	// apps without their own; DefaultSettlePeriod (T+7) when zero.
	SettlePeriod time.Duration
	// ProcessingDelay is the simulated time a refund or settlement stays
	// PROCESSING before it succeeds or fails; DefaultProcessingDelay when
	// zero.
	ProcessingDelay time.Duration
	// Start is the simulated time at start; the wall clock when zero.
	Start time.Time
	// NotifyURL receives callbacks (the console's URL) unless the request
	// carried its own notify_url; "" sends none.
	NotifyURL string
	// CallbackScale multiplies Douyin's callback retry schedule; 1 when zero.
	// Tests use e.g. 0.001 (15 s becomes 15 ms).
	CallbackScale float64
	// Limits are the per-app, per-API rates in calls per second; missing
	// APIs (or a nil map) take douyin.DefaultLimits, a negative rate means
	// unlimited. A call over the rate is answered err_no 1001. The buckets
	// run on the wall clock and hold max(1, rate/10) tokens.
	Limits map[douyin.API]float64
	// Faults are the failures injected from the start.
	Faults Faults
	// Seed seeds every random choice (faults, nonces), for repeatable runs.
	Seed int64
	// WithdrawableBalance is each app's initial withdrawable balance in fen
	// (0 by default). Successful settlements add the merchant's share to it;
	// refunds with all_settle=1 take from it.
	WithdrawableBalance int64
	// Logger gets one info line per API call (api, app, no, err_no, fault);
	// nil discards.
	Logger *logrus.Entry
	// HTTPClient sends callbacks; one with a DefaultCallbackTimeout timeout
	// when nil.
	HTTPClient *http.Client
}

// withDefaults validates cfg and fills its zero fields.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Apps) == 0 {
		return cfg, errors.New("douyinsim: apps: at least one app required")
	}
	seen := make(map[string]bool, len(cfg.Apps))
	for i, a := range cfg.Apps {
		switch {
		case a.AppID == "":
			return cfg, fmt.Errorf("douyinsim: apps[%d].app_id: required", i)
		case a.Salt == "":
			return cfg, fmt.Errorf("douyinsim: apps[%d].salt: required", i)
		case seen[a.AppID]:
			return cfg, fmt.Errorf("douyinsim: apps[%d].app_id: %s configured twice", i, a.AppID)
		case a.SettlePeriod < 0:
			return cfg, fmt.Errorf("douyinsim: apps[%d].settle_period: negative", i)
		}
		seen[a.AppID] = true
	}
	switch {
	case cfg.SettlePeriod < 0:
		return cfg, errors.New("douyinsim: settle_period: negative")
	case cfg.ProcessingDelay < 0:
		return cfg, errors.New("douyinsim: processing_delay: negative")
	case cfg.CallbackScale < 0:
		return cfg, errors.New("douyinsim: callback_scale: negative")
	case cfg.WithdrawableBalance < 0:
		return cfg, errors.New("douyinsim: withdrawable_balance: negative")
	}
	if err := cfg.Faults.Validate(); err != nil {
		return cfg, fmt.Errorf("douyinsim: %w", err)
	}
	if cfg.NotifyURL != "" {
		if err := checkCallbackURL(cfg.NotifyURL); err != nil {
			return cfg, fmt.Errorf("douyinsim: notify_url: %w", err)
		}
	}
	if cfg.SettlePeriod == 0 {
		cfg.SettlePeriod = DefaultSettlePeriod
	}
	cfg.Apps = slices.Clone(cfg.Apps)
	for i := range cfg.Apps {
		if cfg.Apps[i].SettlePeriod == 0 {
			cfg.Apps[i].SettlePeriod = cfg.SettlePeriod
		}
	}
	if cfg.ProcessingDelay == 0 {
		cfg.ProcessingDelay = DefaultProcessingDelay
	}
	if cfg.CallbackScale == 0 {
		cfg.CallbackScale = 1
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultCallbackTimeout, Transport: callbackTransport(len(cfg.Apps))}
	}
	if cfg.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		l.SetLevel(logrus.PanicLevel)
		cfg.Logger = logrus.NewEntry(l)
	}
	return cfg, nil
}

// callbackTransport is the default callback sender's transport: it keeps a
// connection for every callback that may be in flight (maxInFlightCallbacks
// per app, at most 1024), where net/http keeps two per host and would
// dial most callbacks anew.
func callbackTransport(apps int) *http.Transport {
	n := min(max(apps, 1)*maxInFlightCallbacks, 1024)
	return douyin.KeepingTransport(n, n)
}
