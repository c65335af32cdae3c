// Package config reads payd's config.yaml in three steps: Default returns
// every default, Parse overlays a YAML document on it (expanding ${ENV} and
// ${ENV:-default} references in values), and Validate reports every problem
// at once, each naming the field by its YAML path
// ("douyin.apps[0].salt: required"). Load does all three for a file.
//
// Secrets (app salts and tokens, the admin token, endpoint secrets, the
// database password) never appear in an error; Redacted returns a copy safe
// to print.
package config

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/state"
)

// Config is the whole of config.yaml. Its zero value is not useful: start
// from Default.
type Config struct {
	// env maps a field's YAML path to the ${NAME} variables its value
	// names, for error messages; nil when none.
	env         map[string][]string
	Database    Database    `yaml:"database"`
	Douyin      Douyin      `yaml:"douyin"`
	Reconcile   Reconcile   `yaml:"reconcile"`
	SettleBatch SettleBatch `yaml:"settle_batch"`
	Sweep       Sweep       `yaml:"sweep"`
	Server      Server      `yaml:"server"`
	Events      Events      `yaml:"events"`
	Log         Log         `yaml:"log"`
	Sandbox     Sandbox     `yaml:"sandbox"`
	Console     Console     `yaml:"console"`
}

// Console configures the web console served on the admin listener at /.
type Console struct {
	// Timezone is the IANA zone the console shows times in (UTC on hover);
	// default Asia/Shanghai.
	Timezone string `yaml:"timezone"`
	// SessionTTL is how long a console sign-in lasts; default 12h, at most
	// 720h.
	SessionTTL Duration `yaml:"session_ttl"`
}

// Database says where payd keeps its state.
type Database struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is the SQLite file name or the PostgreSQL connection string
	// (secret: it may hold a password); default "payd.db".
	DSN string `yaml:"dsn"`
	// Synchronous is SQLite's PRAGMA synchronous: NORMAL, FULL (default) or
	// EXTRA, in any case. Ignored for PostgreSQL.
	Synchronous string `yaml:"synchronous"`
	// BusyTimeout is how long SQLite waits for a lock; default 5s, 0 = fail at once.
	BusyTimeout Duration `yaml:"busy_timeout"`
	// GroupCommitWait is the least time between two SQLite commits of the
	// reconciler's and the callback inbox's writes while they come faster
	// than one every GroupCommitWait/4: a write waits up to this long so
	// that one commit (and its fsync) serves many; default
	// DefaultGroupCommitWait, 0 = commit at once, at most 100ms. Ignored
	// for PostgreSQL.
	GroupCommitWait Duration `yaml:"group_commit_wait"`
}

// DefaultGroupCommitWait is database.group_commit_wait's default. At 20
// apps on SQLite FULL, 5 ms took a seventh off payd's CPU per Douyin
// call, and writes as sparse as one app's are not held (BENCHMARKS.md §7).
const DefaultGroupCommitWait = 5 * time.Millisecond

// Douyin configures the ecpay v1 client.
type Douyin struct {
	// BaseURL is the scheme and host of the API; default
	// https://developer.toutiao.com. The special value "sandbox" means
	// https://open-sandbox.douyin.com. Read it through URL.
	BaseURL string `yaml:"base_url"`
	// Timeout bounds one HTTP call; default 10s.
	Timeout Duration `yaml:"timeout"`
	// Limits are per-app rates in calls per second, keyed by API name
	// (create_order, query_order, create_refund, query_refund, settle,
	// query_settle, unsettle_amount). Keys given in YAML replace only those
	// defaults: 50 for create_refund, 30 for the rest.
	Limits map[string]float64 `yaml:"limits"`
	// Burst is the token-bucket size of every limiter; default 1.
	Burst int `yaml:"burst"`
	// InFlightWindow bounds the calls of one API for one app that are out
	// and not yet answered, across the replicas, to those its limit allows
	// in this window (at least one per replica, more when the answers take
	// longer than the window); default 100ms, 0 = no bound.
	InFlightWindow Duration `yaml:"in_flight_window"`
	// Trade configures the general trade system's client (apps with api:
	// trade).
	Trade Trade `yaml:"trade"`
	// AppDefaults holds, per API (ecpay, trade), the fields its apps share;
	// an app's own field wins (see AppDefaults).
	AppDefaults AppDefaults `yaml:"app_defaults"`
	// Apps are the mini-programs payd works for; at least one.
	Apps []App `yaml:"apps"`
}

// App is one mini-program's credentials and settlement policy.
type App struct {
	// AppID is the mini-program's app_id; required, unique.
	AppID string `yaml:"app_id"`
	// API is the Douyin payment API the app speaks: "ecpay" (guaranteed
	// payment, the default) or "trade" (the general trade system: see
	// TradeApp).
	API string `yaml:"api"`
	// Salt is the request-signing SALT from the console; required for ecpay
	// apps, secret.
	Salt string `yaml:"salt"`
	// Token is the callback Token from the console; required for ecpay
	// apps, secret. A trade app migrated from ecpay keeps it, to accept the
	// legacy callbacks of its old orders.
	Token string `yaml:"token"`
	// ClientKey is a trade app's client_key; default its app_id.
	ClientKey string `yaml:"client_key"`
	// ClientSecret is a trade app's client_secret (client_token); required
	// for trade apps, secret, and only from the environment
	// (${DOUYIN_CLIENT_SECRET}).
	ClientSecret string `yaml:"client_secret"`
	// PlatformPublicKeyFile names the PEM file of the platform public key
	// (console 密钥设置) that verifies a trade app's callbacks;
	// PlatformPublicKey is the PEM itself, only from the environment. A
	// trade app needs exactly one of them.
	PlatformPublicKeyFile string `yaml:"platform_public_key_file"`
	PlatformPublicKey     string `yaml:"platform_public_key"`
	// PrivateKeyFile names the PEM file (PKCS#1 or PKCS#8) of the
	// application private key that signs order data (payd order sign);
	// PrivateKey is the PEM itself, only from the environment; secret.
	// Optional: without one, payd order sign is refused.
	PrivateKeyFile string `yaml:"private_key_file"`
	PrivateKey     string `yaml:"private_key"`
	// KeyVersion is the console's version of the uploaded public key,
	// sent in Byte-Authorization; default "1".
	KeyVersion string `yaml:"key_version"`
	// SettleRule is a trade app's settlement rule as set in the console:
	// "payment" (D+N after payment, the default) or "fulfilment" (D+N after
	// the order, or an item, was fulfilled).
	SettleRule string `yaml:"settle_rule"`
	// SettleDays is N of the trade app's rule, in days; default 7, 0..365.
	SettleDays int `yaml:"settle_days"`
	// SettledBy is "payd" (default: payd sends settle_create) or "douyin"
	// (the console settles automatically; payd only observes and adopts).
	SettledBy string `yaml:"settled_by"`
	// OrderEntrySchema is the mini-program page sent with a trade app's
	// refunds; a declaration may override it. Path without a leading / or
	// query; Params is a JSON object template whose {out_order_no} is
	// replaced. Default path "" = not sent.
	OrderEntrySchema EntrySchema `yaml:"order_entry_schema"`
	// Audit is a trade app's audit policy for refunds users start that
	// need the merchant's decision; empty holds every one for a person.
	Audit AuditPolicy `yaml:"audit"`
	// ThirdpartyID is set only in service-provider mode.
	ThirdpartyID string `yaml:"thirdparty_id"`
	// SettlePeriod is the time after payment before an order may be settled;
	// default 168h (T+7).
	SettlePeriod Duration `yaml:"settle_period"`
	// AutoSettle makes the settle_batch job settle every order once its
	// period has passed; default true. Ignored (off) for a trade app with
	// settled_by: douyin.
	AutoSettle bool `yaml:"auto_settle"`
	// SettleDesc is the settle_desc sent to Douyin; default "payd
	// settlement", at most 80 characters.
	SettleDesc string `yaml:"settle_desc"`
	// NotifyURL is the callback URL sent with requests; default "" = the URL
	// set in the console. It must be https://, or http:// on 127.0.0.1 or
	// localhost (the sandbox).
	NotifyURL string `yaml:"notify_url"`
}

// The Douyin payment APIs an app may speak.
const (
	// APIEcpay names Douyin's guaranteed-payment API (ecpay v1).
	APIEcpay = "ecpay"
	// APITrade names the general trade system (trade_basic).
	APITrade = "trade"
)

// DefaultInFlightWindow is douyin.in_flight_window's default: an app's
// calls of one API in flight are at most those its limit allows in 100 ms
// (3 at 30/s), as many as a Douyin bucket that holds a tenth of a second
// of its rate (the simulator's) takes at once. BENCHMARKS.md §7 has the
// 1001s it keeps away on three replicas.
const DefaultInFlightWindow = 100 * time.Millisecond

// String renders the app without its secrets, also for %v and %+v.
func (a App) String() string { return fmt.Sprintf("app %s", a.AppID) }

// GoString renders the app without its secrets, for %#v.
func (a App) GoString() string { return a.String() }

// Workers per app, and the fewest, when reconcile.workers is left to
// payd: each of an app's calls holds a worker while its intent and its
// answer commit and Douyin answers (tens of milliseconds under load), and
// an app's settle and query_settle budgets of 30/s each keep several of
// its orders in hand at once. Measured with payd bench apps at 20 apps on
// SQLite, 32 workers used 0.72 of the settle budget and 8 per app 0.96.
// On PostgreSQL the replicas share each app's budget, and three replicas
// of 8 per app each heard more 1001s (15 and 41 in two runs) than of 32
// (4): there the default stays 32. The most, 512 (maxWorkers), is from
// 100 apps: 256 workers used 0.60 of the settle budget, 512 0.67 and 800
// 0.64 at more CPU per call.
const (
	workersPerApp = 8
	minWorkers    = 32
)

// Workers is reconcile.workers, or when it is 0: on SQLite 8 per app
// configured, at least 32 and at most 512; on PostgreSQL 32.
func (c *Config) Workers() int {
	switch {
	case c.Reconcile.Workers > 0:
		return c.Reconcile.Workers
	case c.Database.Driver == "postgres":
		return minWorkers
	}
	return min(max(workersPerApp*len(c.Douyin.Apps), minWorkers), maxWorkers)
}

// Reconcile configures the reconcile job.
type Reconcile struct {
	// Schedule is a cron spec (5 fields or a descriptor such as "@every 5s");
	// default "@every 5s". A callback also wakes the job at once.
	Schedule string `yaml:"schedule"`
	// Workers is how many orders are reconciled at once, 1..512; when 0
	// or absent, as many as the apps' budgets need on SQLite, 32 on
	// PostgreSQL (see Config.Workers).
	Workers int `yaml:"workers"`
	// Batch is how many due rows one pass claims at most; default 500.
	Batch int `yaml:"batch"`
	// Lease is how long a claimed row stays claimed; default 2m.
	Lease Duration `yaml:"lease"`
	// RefundAttempts is how many refund numbers are tried before a refund is
	// parked as failed; default 5.
	RefundAttempts int `yaml:"refund_attempts"`
	// SettleAttempts is how many settle numbers are tried before a
	// settlement is parked as failed; default 5.
	SettleAttempts int `yaml:"settle_attempts"`
	// Retry is the back-off after a FAIL or a retryable error, one entry per
	// attempt, the last repeating; default 1m, 5m, 30m, 2h, 12h.
	Retry Backoff `yaml:"retry"`
	// SettleRetry is the back-off after a settlement attempt FAILed, one
	// entry per attempt, the last repeating; default [1h, 3h, 8h, 12h], so
	// that five attempts span a day: a settle FAIL is most often a period
	// not yet passed, which minutes do not change.
	SettleRetry Backoff `yaml:"settle_retry"`
	// Jitter spreads every delay by up to this fraction either way; default
	// 0.2, 0..1.
	Jitter float64 `yaml:"jitter"`
	// Poll is the query schedule while a status is PROCESSING or unknown,
	// the last repeating; default 5s, 15s, 1m, 5m, 30m.
	Poll Backoff `yaml:"poll"`
}

// SettleBatch configures the job that creates settlements for orders whose
// settle period has passed.
type SettleBatch struct {
	// Schedule is a cron spec; default "0 3 * * *" (03:00 every day, local time
	// unless prefixed with CRON_TZ=).
	Schedule string `yaml:"schedule"`
	// Limit is how many settlements one run creates at most; default 10000.
	Limit int `yaml:"limit"`
}

// Sweep configures the job that re-queries work stuck in processing.
type Sweep struct {
	// Schedule is a cron spec; default "@every 10m".
	Schedule string `yaml:"schedule"`
	// StaleAfter is how long a row may stay processing before it is
	// re-queried; default 30m.
	StaleAfter Duration `yaml:"stale_after"`
}

// Server configures payd serve's two HTTP listeners.
type Server struct {
	// CallbackListen is host:port for POST /douyin/notify and /healthz;
	// default 127.0.0.1:8080.
	CallbackListen string `yaml:"callback_listen"`
	// AdminListen is host:port for the admin API and /metrics; default
	// 127.0.0.1:8081.
	AdminListen string `yaml:"admin_listen"`
	// AdminToken is the admin API's bearer token; secret, required by
	// ValidateServe, at least 16 characters.
	AdminToken string `yaml:"admin_token"`
	// ViewerToken signs in to the console read-only: it sees every page and
	// changes nothing (it does not open the /v1 API). Secret, optional
	// (empty: no viewer sign-in); when set at least 16 characters and
	// different from AdminToken.
	ViewerToken string `yaml:"viewer_token"`
	// CallbackRate bounds unverified callback traffic, in requests per
	// second; default 200.
	CallbackRate float64 `yaml:"callback_rate"`
	// CallbackBurst is the bucket size for CallbackRate; default 400.
	CallbackBurst int `yaml:"callback_burst"`
	// ShutdownTimeout bounds the wait for work in flight on shutdown;
	// default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Events configures delivery of events to the merchant's backend.
type Events struct {
	// Endpoints receive signed events; none by default.
	Endpoints []Endpoint `yaml:"endpoints"`
	// Retry is the delay before each redelivery, the last repeating; default
	// 10s, 30s, 1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, then 12h six times (about
	// 3.7 days in all).
	Retry Backoff `yaml:"retry"`
	// Timeout bounds one delivery; default 10s.
	Timeout Duration `yaml:"timeout"`
	// Concurrency is how many deliveries run at once; default 4.
	Concurrency int `yaml:"concurrency"`
	// Tolerance is how far a signed timestamp may be from the receiver's
	// clock; default 5m.
	Tolerance Duration `yaml:"tolerance"`
}

// Endpoint is one receiver of events.
type Endpoint struct {
	// Name identifies the endpoint in logs and `payd events`; required, unique.
	Name string `yaml:"name"`
	// URL receives POSTed events; http:// or https://.
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature; secret, at least 16 characters.
	Secret string `yaml:"secret"`
	// Types are the event types sent here; empty (default) = all of
	// EventTypes.
	Types []string `yaml:"types"`
}

// String renders the endpoint without its secret, also for %v and %+v.
func (e Endpoint) String() string { return fmt.Sprintf("endpoint %s", e.Name) }

// GoString renders the endpoint without its secret, for %#v.
func (e Endpoint) GoString() string { return e.String() }

// Wants reports whether events of type typ are sent to the endpoint.
func (e Endpoint) Wants(typ string) bool {
	return len(e.Types) == 0 || slices.Contains(e.Types, typ)
}

// EventTypes are the event types an endpoint may subscribe to.
var EventTypes = []string{
	string(state.EventOrderPaid),
	string(state.EventOrderClosed),
	string(state.EventRefundSucceeded),
	string(state.EventRefundAttemptFailed),
	string(state.EventRefundParked),
	string(state.EventSettlementSucceeded),
	string(state.EventSettlementAttemptFailed),
	string(state.EventSettlementParked),
	string(state.EventRefundCancelled),
	string(state.EventSettlementCancelled),
	string(state.EventRefundRequested),
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// Sandbox configures the built-in Douyin simulator used by `payd sandbox`
// and `payd demo`. It serves the apps of Douyin.Apps.
type Sandbox struct {
	// Listen is host:port of the simulator; default 127.0.0.1:8090.
	Listen string `yaml:"listen"`
	// SettlePeriod is how long after payment the simulator allows settle;
	// default 168h, 0 = at once.
	SettlePeriod Duration `yaml:"settle_period"`
	// ProcessingDelay is how long refunds and settlements stay PROCESSING;
	// default 2s.
	ProcessingDelay Duration `yaml:"processing_delay"`
	// NotifyURL is the console callback URL, used when a request has no
	// notify_url; default "" = no callbacks.
	NotifyURL string `yaml:"notify_url"`
	// CallbackScale multiplies the simulator's callback delays and retry
	// intervals; default 1 (Douyin's timing), 0.01 is a hundred times faster.
	CallbackScale float64 `yaml:"callback_scale"`
	// Seed seeds the fault generator, so a run can be repeated; default 1.
	Seed int64 `yaml:"seed"`
	// Limits are the simulator's rates in calls per second per app, keyed as
	// Douyin.Limits; beyond them it answers 1001. Default: Douyin's documented
	// limits.
	Limits map[string]float64 `yaml:"limits"`
	// Faults are the simulator's injected failures: probabilities 0..1,
	// default 0 (none), and the durations that shape them (hang default 3s,
	// callback_delay_max default 2s). The type is the simulator's own, so
	// every fault it knows can be configured.
	Faults douyinsim.Faults `yaml:"faults"`
}

// SandboxName is the value of douyin.base_url that selects Douyin's sandbox,
// douyin.SandboxURL.
const SandboxName = "sandbox"

// URL returns the base URL to call: BaseURL, with "sandbox" resolved to
// douyin.SandboxURL.
func (d Douyin) URL() string {
	if d.BaseURL == SandboxName {
		return douyin.SandboxURL
	}
	return d.BaseURL
}

// APINames are the keys Douyin.Limits and Sandbox.Limits accept.
func APINames() []string {
	names := make([]string, len(douyin.APIs))
	for i, a := range douyin.APIs {
		names[i] = string(a)
	}
	return names
}

// DefaultLimits returns Douyin's documented per-app rates, in calls per
// second, keyed by API name.
func DefaultLimits() map[string]float64 {
	m := make(map[string]float64, len(douyin.DefaultLimits))
	for api, r := range douyin.DefaultLimits {
		m[string(api)] = r
	}
	return m
}

// DefaultApp returns the defaults of the fields an app may leave out.
func DefaultApp() App {
	return App{
		API:          APIEcpay,
		SettlePeriod: D(7 * 24 * time.Hour),
		AutoSettle:   true,
		SettleDesc:   "payd settlement",
		KeyVersion:   "1",
		SettleRule:   RulePayment,
		SettleDays:   7,
		SettledBy:    SettledByPayd,
	}
}

// Default returns the configuration used for every field config.yaml leaves
// out. It has no apps, so it does not validate by itself.
func Default() *Config {
	return &Config{
		Database: Database{
			Driver:      "sqlite",
			DSN:         "payd.db",
			Synchronous: "FULL",
			BusyTimeout: D(5 * time.Second),

			GroupCommitWait: D(DefaultGroupCommitWait),
		},
		Douyin: Douyin{
			BaseURL:        douyin.ProductionURL,
			Timeout:        D(10 * time.Second),
			AppDefaults:    AppDefaults{},
			Limits:         DefaultLimits(),
			Burst:          1,
			InFlightWindow: D(DefaultInFlightWindow),
			Trade:          Trade{BaseURL: trade.ProductionURL, Limits: DefaultTradeLimits()},
		},
		Reconcile: Reconcile{
			Schedule:       "@every 5s",
			Batch:          500,
			Lease:          D(2 * time.Minute),
			RefundAttempts: 5,
			SettleAttempts: 5,
			Retry:          backoff(time.Minute, 5*time.Minute, 30*time.Minute, 2*time.Hour, 12*time.Hour),
			SettleRetry:    backoff(time.Hour, 3*time.Hour, 8*time.Hour, 12*time.Hour),
			Jitter:         0.2,
			Poll:           backoff(5*time.Second, 15*time.Second, time.Minute, 5*time.Minute, 30*time.Minute),
		},
		SettleBatch: SettleBatch{Schedule: "0 3 * * *", Limit: 10000},
		Sweep:       Sweep{Schedule: "@every 10m", StaleAfter: D(30 * time.Minute)},
		Server: Server{
			CallbackListen:  "127.0.0.1:8080",
			AdminListen:     "127.0.0.1:8081",
			CallbackRate:    200,
			CallbackBurst:   400,
			ShutdownTimeout: D(30 * time.Second),
		},
		Events: Events{
			Retry: backoff(10*time.Second, 30*time.Second, time.Minute, 5*time.Minute, 15*time.Minute,
				30*time.Minute, time.Hour, 2*time.Hour, 4*time.Hour, 8*time.Hour,
				12*time.Hour, 12*time.Hour, 12*time.Hour, 12*time.Hour, 12*time.Hour, 12*time.Hour),
			Timeout:     D(10 * time.Second),
			Concurrency: 4,
			Tolerance:   D(5 * time.Minute),
		},
		Log:     Log{Level: "info", Format: "json"},
		Console: Console{Timezone: "Asia/Shanghai", SessionTTL: D(12 * time.Hour)},
		Sandbox: Sandbox{
			Listen:          "127.0.0.1:8090",
			SettlePeriod:    D(7 * 24 * time.Hour),
			ProcessingDelay: D(2 * time.Second),
			CallbackScale:   1,
			Seed:            1,
			Limits:          DefaultLimits(),
			Faults: douyinsim.Faults{
				Hang:             douyinsim.DefaultHang,
				CallbackDelayMax: douyinsim.DefaultCallbackDelayMax,
			},
		},
	}
}

// clone returns a deep copy of c: no slice or map is shared.
func (c *Config) clone() Config {
	r := *c
	r.Douyin.Limits = maps.Clone(c.Douyin.Limits)
	r.Douyin.Trade.Limits = maps.Clone(c.Douyin.Trade.Limits)
	r.Douyin.Apps = slices.Clone(c.Douyin.Apps)
	r.Douyin.AppDefaults = maps.Clone(c.Douyin.AppDefaults)
	r.Reconcile.Retry = slices.Clone(c.Reconcile.Retry)
	r.Reconcile.SettleRetry = slices.Clone(c.Reconcile.SettleRetry)
	r.Reconcile.Poll = slices.Clone(c.Reconcile.Poll)
	r.Events.Endpoints = slices.Clone(c.Events.Endpoints)
	for i := range r.Events.Endpoints {
		r.Events.Endpoints[i].Types = slices.Clone(r.Events.Endpoints[i].Types)
	}
	r.Events.Retry = slices.Clone(c.Events.Retry)
	r.Sandbox.Limits = maps.Clone(c.Sandbox.Limits)
	return r
}
