package config

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// valid returns a config that passes Validate and ValidateServe.
func valid() *Config {
	c := Default()
	a := DefaultApp()
	a.AppID, a.Salt, a.Token = "tt1", "salt-1", "token-1"
	c.Douyin.Apps = []App{a}
	c.Server.AdminToken = "admin-token-0123456789"
	c.Events.Endpoints = []Endpoint{{Name: "backend", URL: "https://merchant.example/events", Secret: "0123456789abcdef"}}
	return c
}

func TestConfig_Validate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if err := valid().ValidateServe(); err != nil {
		t.Fatalf("valid config, serve: %v", err)
	}
	if got, want := lines(Default().Validate()), []string{"douyin.apps: at least one app required"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Default().Validate() = %q, want %q", got, want)
	}

	secondApp := func(c *Config) {
		a := c.Douyin.Apps[0]
		a.AppID = "tt2"
		c.Douyin.Apps = append(c.Douyin.Apps, a)
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // nil: valid
	}{
		// database
		{"driver", func(c *Config) { c.Database.Driver = "mysql" }, []string{`database.driver: "mysql": want sqlite or postgres`}},
		{"postgres", func(c *Config) { c.Database.Driver = "postgres"; c.Database.DSN = "postgres://u:p@h/db" }, nil},
		{"dsn", func(c *Config) { c.Database.DSN = "" }, []string{`database.dsn: required`}},
		{"synchronous", func(c *Config) { c.Database.Synchronous = "OFF" }, []string{`database.synchronous: "OFF": want NORMAL, FULL or EXTRA`}},
		{"synchronous any case", func(c *Config) { c.Database.Synchronous = "normal" }, nil},
		{"busy timeout", func(c *Config) { c.Database.BusyTimeout = D(-time.Second) }, []string{`database.busy_timeout: -1s: must not be negative`}},
		{"busy timeout zero", func(c *Config) { c.Database.BusyTimeout = D(0) }, nil},

		// douyin
		{"base url sandbox", func(c *Config) { c.Douyin.BaseURL = "sandbox" }, nil},
		{"base url simulator", func(c *Config) { c.Douyin.BaseURL = "http://127.0.0.1:8090" }, nil},
		{"base url empty", func(c *Config) { c.Douyin.BaseURL = "" }, []string{`douyin.base_url: required`}},
		{"base url scheme", func(c *Config) { c.Douyin.BaseURL = "ftp://x" }, []string{`douyin.base_url: want an http:// or https:// URL with a host`}},
		{"base url no host", func(c *Config) { c.Douyin.BaseURL = "developer.toutiao.com" }, []string{`douyin.base_url: want an http:// or https:// URL with a host`}},
		{"base url query", func(c *Config) { c.Douyin.BaseURL = "https://x?a=1" }, []string{`douyin.base_url: must not have a query or fragment: API paths are appended to it`}},
		{"timeout", func(c *Config) { c.Douyin.Timeout = D(0) }, []string{`douyin.timeout: 0s: must be positive`}},
		{"limits", func(c *Config) {
			c.Douyin.Limits["refund"] = 5
			c.Douyin.Limits["settle"] = -1
			c.Douyin.Limits["query_order"] = 0
		}, []string{
			`douyin.limits.query_order: 0: must be a positive number`,
			`douyin.limits.refund: unknown API; want one of create_order, query_order, create_refund, query_refund, settle, query_settle, unsettle_amount`,
			`douyin.limits.settle: -1: must be a positive number`,
		}},
		{"limits infinite", func(c *Config) { c.Douyin.Limits["settle"] = math.Inf(1) }, []string{`douyin.limits.settle: +Inf: must be a positive number`}},
		{"limits partial", func(c *Config) { c.Douyin.Limits = map[string]float64{"settle": 5} }, nil},
		{"burst", func(c *Config) { c.Douyin.Burst = 0 }, []string{`douyin.burst: 0: must be at least 1`}},
		{"in flight window negative", func(c *Config) { c.Douyin.InFlightWindow = D(-time.Millisecond) }, []string{`douyin.in_flight_window: -1ms: want 0 (no bound) up to 10s`}},
		{"in flight window long", func(c *Config) { c.Douyin.InFlightWindow = D(time.Minute) }, []string{`douyin.in_flight_window: 1m: want 0 (no bound) up to 10s`}},
		{"in flight window off", func(c *Config) { c.Douyin.InFlightWindow = D(0) }, nil},
		{"group commit wait negative", func(c *Config) { c.Database.GroupCommitWait = D(-time.Millisecond) }, []string{`database.group_commit_wait: -1ms: want 0 (commit at once) up to 100ms`}},
		{"group commit wait long", func(c *Config) { c.Database.GroupCommitWait = D(time.Second) }, []string{`database.group_commit_wait: 1s: want 0 (commit at once) up to 100ms`}},
		{"group commit wait off", func(c *Config) { c.Database.GroupCommitWait = D(0) }, nil},
		{"no apps", func(c *Config) { c.Douyin.Apps = nil }, []string{`douyin.apps: at least one app required`}},
		{"app id", func(c *Config) { c.Douyin.Apps[0].AppID = "" }, []string{`douyin.apps[0].app_id: required`}},
		{"app id repeated", func(c *Config) { secondApp(c); secondApp(c); c.Douyin.Apps[2].AppID = "tt1" }, []string{`douyin.apps[2].app_id: "tt1" repeats douyin.apps[0]`}},
		{"secrets missing", func(c *Config) { secondApp(c); c.Douyin.Apps[1].Salt = ""; c.Douyin.Apps[1].Token = "" }, []string{
			`douyin.apps[1].salt: required`,
			`douyin.apps[1].token: required`,
		}},
		{"secrets padded", func(c *Config) { c.Douyin.Apps[0].Salt = "salt\n"; c.Douyin.Apps[0].Token = " token" }, []string{
			`douyin.apps[0].salt: has leading or trailing white space`,
			`douyin.apps[0].token: has leading or trailing white space`,
		}},
		{"settle period", func(c *Config) { c.Douyin.Apps[0].SettlePeriod = D(0) }, []string{`douyin.apps[0].settle_period: 0s: must be positive`}},
		{"settle desc", func(c *Config) { c.Douyin.Apps[0].SettleDesc = "" }, []string{`douyin.apps[0].settle_desc: required`}},
		{"settle desc 80 runes", func(c *Config) { c.Douyin.Apps[0].SettleDesc = strings.Repeat("结", 80) }, nil},
		{"settle desc 81 runes", func(c *Config) { c.Douyin.Apps[0].SettleDesc = strings.Repeat("结", 81) }, []string{`douyin.apps[0].settle_desc: 81 characters: at most 80`}},
		{"notify https", func(c *Config) { c.Douyin.Apps[0].NotifyURL = "https://merchant.example/douyin/notify" }, nil},
		{"notify localhost", func(c *Config) { c.Douyin.Apps[0].NotifyURL = "http://localhost:8080/douyin/notify" }, nil},
		{"notify loopback", func(c *Config) { c.Douyin.Apps[0].NotifyURL = "http://127.0.0.1:8080/douyin/notify" }, nil},
		{"notify http", func(c *Config) { c.Douyin.Apps[0].NotifyURL = "http://merchant.example/notify" }, []string{`douyin.apps[0].notify_url: http:// is allowed only on 127.0.0.1 or localhost; want https://`}},
		{"notify not a url", func(c *Config) { c.Douyin.Apps[0].NotifyURL = "merchant.example/notify" }, []string{`douyin.apps[0].notify_url: want an https:// URL (http:// only on 127.0.0.1 or localhost)`}},

		// reconcile
		{"schedule", func(c *Config) { c.Reconcile.Schedule = "every 5s" }, []string{`reconcile.schedule: "every 5s": expected exactly 5 fields, found 2: [every 5s]`}},
		{"schedule empty", func(c *Config) { c.Reconcile.Schedule = "" }, []string{`reconcile.schedule: required`}},
		{"schedule cron", func(c *Config) { c.Reconcile.Schedule = "*/5 * * * *" }, nil},
		{"workers", func(c *Config) { c.Reconcile.Workers = -1 }, []string{`reconcile.workers: -1: want 0..512`}},
		{"workers as the apps need", func(c *Config) { c.Reconcile.Workers = 0 }, nil},
		{"workers max", func(c *Config) { c.Reconcile.Workers = 513 }, []string{`reconcile.workers: 513: want 0..512`}},
		{"batch", func(c *Config) { c.Reconcile.Batch = -1 }, []string{`reconcile.batch: -1: must be at least 1`}},
		{"lease", func(c *Config) { c.Reconcile.Lease = D(0) }, []string{`reconcile.lease: 0s: must be positive`}},
		{"lease shorter than a call", func(c *Config) { c.Reconcile.Lease = D(10 * time.Second) }, []string{`reconcile.lease: 10s: must be longer than douyin.timeout (10s)`}},
		{"attempts", func(c *Config) { c.Reconcile.RefundAttempts = 0; c.Reconcile.SettleAttempts = 51 }, []string{
			`reconcile.refund_attempts: 0: want 1..50`,
			`reconcile.settle_attempts: 51: want 1..50`,
		}},
		{"retry empty", func(c *Config) { c.Reconcile.Retry = nil }, []string{`reconcile.retry: at least one delay required`}},
		{"retry negative", func(c *Config) { c.Reconcile.Retry = backoff(time.Minute, -5*time.Minute, 0) }, []string{
			`reconcile.retry[1]: -5m: must be positive`,
			`reconcile.retry[2]: 0s: must be positive`,
		}},
		{"jitter", func(c *Config) { c.Reconcile.Jitter = 1.5 }, []string{`reconcile.jitter: 1.5: want 0..1`}},
		{"jitter NaN", func(c *Config) { c.Reconcile.Jitter = math.NaN() }, []string{`reconcile.jitter: NaN: want 0..1`}},
		{"jitter bounds", func(c *Config) { c.Reconcile.Jitter = 1 }, nil},
		{"poll", func(c *Config) { c.Reconcile.Poll = Backoff{} }, []string{`reconcile.poll: at least one delay required`}},

		// settle_batch, sweep
		{"settle batch", func(c *Config) { c.SettleBatch.Schedule = "0 3 * *"; c.SettleBatch.Limit = 0 }, []string{
			`settle_batch.schedule: "0 3 * *": expected exactly 5 fields, found 4: [0 3 * *]`,
			`settle_batch.limit: 0: must be at least 1`,
		}},
		{"sweep", func(c *Config) { c.Sweep.Schedule = "@often"; c.Sweep.StaleAfter = D(-time.Minute) }, []string{
			`sweep.schedule: "@often": unrecognized descriptor: @often`,
			`sweep.stale_after: -1m: must be positive`,
		}},

		// server
		{"listen", func(c *Config) { c.Server.CallbackListen = "8080"; c.Server.AdminListen = "127.0.0.1:80800" }, []string{
			`server.callback_listen: "8080": want host:port, such as 127.0.0.1:8080`,
			`server.admin_listen: "127.0.0.1:80800": want host:port, such as 127.0.0.1:8080`,
		}},
		{"listen all interfaces", func(c *Config) { c.Server.CallbackListen = ":8080" }, nil},
		{"listen same", func(c *Config) { c.Server.AdminListen = c.Server.CallbackListen }, []string{`server.admin_listen: "127.0.0.1:8080": same address as server.callback_listen`}},
		{"listen any port", func(c *Config) { c.Server.AdminListen = "127.0.0.1:0"; c.Server.CallbackListen = "127.0.0.1:0" }, nil},
		{"callback limits", func(c *Config) { c.Server.CallbackRate = 0; c.Server.CallbackBurst = -1 }, []string{
			`server.callback_rate: 0: must be a positive number`,
			`server.callback_burst: -1: must be at least 1`,
		}},
		{"shutdown", func(c *Config) { c.Server.ShutdownTimeout = D(0) }, []string{`server.shutdown_timeout: 0s: must be positive`}},
		{"admin token not needed", func(c *Config) { c.Server.AdminToken = "" }, nil},

		// console
		{"console zone", func(c *Config) { c.Console.Timezone = "Mars/Olympus" }, []string{
			`console.timezone: "Mars/Olympus" is not an IANA time zone (such as Asia/Shanghai or UTC)`,
		}},
		{"console zone required", func(c *Config) { c.Console.Timezone = "" }, []string{`console.timezone: required`}},
		{"console utc", func(c *Config) { c.Console.Timezone = "UTC" }, nil},
		{"console session", func(c *Config) { c.Console.SessionTTL = D(0) }, []string{`console.session_ttl: 0s: must be positive`}},
		{"console session long", func(c *Config) { c.Console.SessionTTL = D(721 * time.Hour) }, []string{`console.session_ttl: 721h0m0s: at most 720h`}},

		// events
		{"endpoint", func(c *Config) { c.Events.Endpoints[0] = Endpoint{Secret: "short"} }, []string{
			`events.endpoints[0].name: required`,
			`events.endpoints[0].url: required`,
		}},
		{"endpoint url", func(c *Config) { c.Events.Endpoints[0].URL = "mailto:a@b" }, []string{`events.endpoints[0].url: want an http:// or https:// URL with a host`}},
		{"endpoint http", func(c *Config) { c.Events.Endpoints[0].URL = "http://10.0.0.2:9000/events?k=v" }, nil},
		{"endpoint secret is for serve only", func(c *Config) { c.Events.Endpoints[0].Secret = "" }, nil},
		{"endpoint types", func(c *Config) {
			c.Events.Endpoints[0].Types = []string{"refund.succeeded", "refund.failed", "refund.succeeded"}
		}, []string{
			`events.endpoints[0].types[1]: "refund.failed": unknown event type; want one of order.paid, order.closed, refund.succeeded, refund.attempt_failed, refund.parked, settlement.succeeded, settlement.attempt_failed, settlement.parked, refund.cancelled, settlement.cancelled, refund.requested`,
			`events.endpoints[0].types[2]: "refund.succeeded": repeated`,
		}},
		{"endpoint names", func(c *Config) {
			c.Events.Endpoints = append(c.Events.Endpoints, c.Events.Endpoints[0])
		}, []string{`events.endpoints[1].name: "backend" repeats events.endpoints[0]`}},
		{"events", func(c *Config) {
			c.Events.Retry = nil
			c.Events.Timeout = D(0)
			c.Events.Concurrency = 0
			c.Events.Tolerance = D(-time.Second)
		}, []string{
			`events.retry: at least one delay required`,
			`events.timeout: 0s: must be positive`,
			`events.concurrency: 0: want 1..256`,
			`events.tolerance: -1s: must be positive`,
		}},

		// log
		{"log", func(c *Config) { c.Log.Level = "verbose"; c.Log.Format = "JSON" }, []string{
			`log.level: "verbose": want debug, info, warn or error`,
			`log.format: "JSON": want json or text`,
		}},

		// sandbox
		{"sandbox listen", func(c *Config) { c.Sandbox.Listen = c.Server.AdminListen }, []string{`sandbox.listen: "127.0.0.1:8081": same address as server.admin_listen`}},
		{"sandbox listen bad", func(c *Config) { c.Sandbox.Listen = "" }, []string{`sandbox.listen: required`}},
		{"sandbox durations", func(c *Config) {
			c.Sandbox.SettlePeriod = D(0)
			c.Sandbox.ProcessingDelay = D(-time.Second)
			c.Sandbox.Faults.Hang = -time.Second
			c.Sandbox.Faults.CallbackDelayMax = -time.Second
		}, []string{
			`sandbox.processing_delay: -1s: must not be negative`,
			`sandbox.faults.hang: -1s: must not be negative`,
			`sandbox.faults.callback_delay_max: -1s: must not be negative`,
		}},
		{"sandbox notify", func(c *Config) { c.Sandbox.NotifyURL = "127.0.0.1:8080/douyin/notify" }, []string{`sandbox.notify_url: want an http:// or https:// URL with a host`}},
		{"sandbox scale", func(c *Config) { c.Sandbox.CallbackScale = -0.5 }, []string{`sandbox.callback_scale: -0.5: must not be negative`}},
		{"sandbox scale zero", func(c *Config) { c.Sandbox.CallbackScale = 0 }, nil},
		{"sandbox limits", func(c *Config) { c.Sandbox.Limits = map[string]float64{"settle": 0} }, []string{`sandbox.limits.settle: 0: must be a positive number`}},
		{"sandbox faults", func(c *Config) {
			f := &c.Sandbox.Faults
			f.Err1000NoEffect, f.Err1000AfterEffect, f.HTTP500, f.HangAfterEffect = 1.01, -0.1, 1, 0.5
			f.CallbackDrop, f.CallbackDuplicate, f.CallbackDelay, f.RefundChannelFail = 2, 3, 4, math.NaN()
			f.HTTP500AfterEffect = 1.5
		}, []string{
			`sandbox.faults.err1000_no_effect: 1.01: want 0..1`,
			`sandbox.faults.err1000_after_effect: -0.1: want 0..1`,
			`sandbox.faults.http500_after_effect: 1.5: want 0..1`,
			`sandbox.faults.callback_drop: 2: want 0..1`,
			`sandbox.faults.callback_duplicate: 3: want 0..1`,
			`sandbox.faults.callback_delay: 4: want 0..1`,
			`sandbox.faults.refund_channel_fail: NaN: want 0..1`,
		}},

		// several sections at once: every problem, in file order
		{"all at once", func(c *Config) {
			c.Database.Driver = ""
			c.Douyin.Apps[0].Salt = ""
			c.Reconcile.Retry[2] = D(-time.Second)
			c.Log.Format = ""
		}, []string{
			`database.driver: "": want sqlite or postgres`,
			`douyin.apps[0].salt: required`,
			`reconcile.retry[2]: -1s: must be positive`,
			`log.format: "": want json or text`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(c)
			if got := lines(c.Validate()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestConfig_ValidateServe(t *testing.T) {
	tests := []struct {
		token string
		want  []string
	}{
		{"admin-token-0123456789", nil},
		{"", []string{"server.admin_token: required"}},
		{"short-token", []string{"server.admin_token: too short: at least 16 characters"}},
		{"admin-token-0123456789\n", []string{"server.admin_token: has leading or trailing white space"}},
	}
	for _, tt := range tests {
		c := valid()
		c.Server.AdminToken = tt.token
		if got := lines(c.ValidateServe()); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("token %q: got %q, want %q", tt.token, got, tt.want)
		}
		// Validate does not need the token.
		if err := c.Validate(); err != nil {
			t.Errorf("token %q: Validate: %v", tt.token, err)
		}
	}
}

func TestConfig_ValidateServeViewerToken(t *testing.T) {
	tests := []struct {
		token string
		want  []string
	}{
		{"", nil},
		{"viewer-token-0123456789", nil},
		{"short", []string{"server.viewer_token: too short: at least 16 characters"}},
		{"admin-token-0123456789", []string{"server.viewer_token: same as server.admin_token: a viewer would be an admin"}},
	}
	for _, tt := range tests {
		c := valid()
		c.Server.AdminToken = "admin-token-0123456789"
		c.Server.ViewerToken = tt.token
		if got := lines(c.ValidateServe()); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("viewer token %q: got %q, want %q", tt.token, got, tt.want)
		}
	}
}

func TestConfig_ValidateHidesSecrets(t *testing.T) {
	secrets := []string{" salt-Zq9 ", "token-Zq9\n", "adm-Zq9", "ep-Zq9", "pg-pass-Zq9"}
	c := valid()
	c.Douyin.Apps[0].Salt = secrets[0]
	c.Douyin.Apps[0].Token = secrets[1]
	c.Server.AdminToken = secrets[2]
	c.Events.Endpoints[0].Secret = secrets[3]
	c.Events.Endpoints[0].URL = "ftp://user:" + secrets[4] + "@host/"
	c.Douyin.Apps[0].NotifyURL = "http://user:" + secrets[4] + "@example.com/"
	c.Database.DSN = "host=h password=" + secrets[4]
	err := c.Validate()
	serveErr := c.ValidateServe()
	if err == nil || serveErr == nil {
		t.Fatalf("want errors, got %v and %v", err, serveErr)
	}
	text := err.Error() + "\n" + serveErr.Error() + "\n" + c.Douyin.Apps[0].String() + c.Events.Endpoints[0].GoString()
	for _, s := range secrets {
		if strings.Contains(text, strings.TrimSpace(s)) {
			t.Errorf("a secret %q is shown in:\n%s", s, text)
		}
	}
}

// TestConfig_ValidateServe_eventSecrets: the events secret matters only to
// payd serve, which signs the events; read-only commands run without it.
func TestConfig_ValidateServe_eventSecrets(t *testing.T) {
	c := valid()
	c.Server.AdminToken = "admin-token-0123456789"
	c.Events.Endpoints[0].Secret = ""
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate without an events secret: %v", err)
	}
	want := []string{`events.endpoints[0].secret: required`}
	if got := lines(c.ValidateServe()); !reflect.DeepEqual(got, want) {
		t.Fatalf("ValidateServe: got %q, want %q", got, want)
	}
	c.Events.Endpoints[0].Secret = "short"
	want = []string{`events.endpoints[0].secret: too short: at least 16 characters`}
	if got := lines(c.ValidateServe()); !reflect.DeepEqual(got, want) {
		t.Fatalf("ValidateServe: got %q, want %q", got, want)
	}
}
