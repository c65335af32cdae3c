package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// shippedPath is the documented example config at the repository root.
const shippedPath = "../../config.yaml"

func readShipped(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(shippedPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestShippedConfig(t *testing.T) {
	raw := readShipped(t)
	c, err := ParseWithEnv(bytes.NewReader(raw), env(nil))
	if err != nil {
		t.Fatalf("parse %s: %v", shippedPath, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("validate %s with no variables set: %v", shippedPath, err)
	}
	// payd serve needs a real admin token, which the file does not ship.
	if got, want := lines(c.ValidateServe()), []string{"server.admin_token: required (the config reads it from PAYD_ADMIN_TOKEN: set it in the environment)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ValidateServe = %q, want %q", got, want)
	}

	t.Run("documents the defaults", func(t *testing.T) {
		// Every value in the file is the default except these, which the
		// file's comments call out as "Shipped:".
		want := Default()
		app := DefaultApp()
		app.AppID, app.Salt, app.Token = "tt0000000000sandbox", "sandbox-salt", "sandbox-token"
		want.Douyin.Apps = []App{app}
		want.Douyin.BaseURL = "http://127.0.0.1:8090"
		want.Douyin.Trade.BaseURL = "http://127.0.0.1:8090"
		want.Events.Endpoints = []Endpoint{}
		want.Sandbox.NotifyURL = "http://" + want.Server.CallbackListen + "/douyin/notify"
		c := *c
		c.env = nil // where values came from, for errors; not a setting
		if !reflect.DeepEqual(&c, want) {
			t.Errorf("shipped config differs from the defaults:\n%s", yamlDiff(t, &c, want))
		}
	})

	t.Run("production variables", func(t *testing.T) {
		c, err := ParseWithEnv(bytes.NewReader(raw), env(map[string]string{
			"PAYD_APP_ID":      "tt07e3715e98c9aac0",
			"PAYD_SALT":        "real-salt",
			"PAYD_TOKEN":       "real-token",
			"PAYD_DOUYIN_URL":  "https://developer.toutiao.com",
			"PAYD_ADMIN_TOKEN": "a-long-admin-token-0123",
			"PAYD_DSN":         "/var/lib/payd/payd.db",
		}))
		if err != nil {
			t.Fatal(err)
		}
		a := c.Douyin.Apps[0]
		if a.AppID != "tt07e3715e98c9aac0" || a.Salt != "real-salt" || a.Token != "real-token" ||
			c.Douyin.URL() != "https://developer.toutiao.com" || c.Database.DSN != "/var/lib/payd/payd.db" {
			t.Errorf("variables not applied: %+v %+v %+v", a, c.Douyin, c.Database)
		}
		if err := errors.Join(c.Validate(), c.ValidateServe()); err != nil {
			t.Errorf("validate: %v", err)
		}
	})

	t.Run("every key is in the file", func(t *testing.T) {
		var root yaml.Node
		if err := yaml.Unmarshal(raw, &root); err != nil {
			t.Fatal(err)
		}
		var missing []string
		var walk func(n *yaml.Node, typ reflect.Type, path string)
		walk = func(n *yaml.Node, typ reflect.Type, path string) {
			for name, f := range yamlFields(typ) {
				p := join(path, name)
				v := value(n, name)
				if v == nil {
					missing = append(missing, p)
					continue
				}
				switch {
				case f.Type.Kind() == reflect.Struct && f.Type != durationType:
					walk(v, f.Type, p)
				case f.Type == reflect.TypeOf([]App{}):
					walk(v.Content[0], reflect.TypeOf(App{}), p+"[0]")
				case f.Type == reflect.TypeOf(AppDefaults{}):
					// Shown empty, with an example in a comment: its
					// fields are the app's, shown under apps[0].
				case f.Type.Kind() == reflect.Map:
					names := APINames()
					if p == "douyin.trade.limits" {
						names = TradeAPINames()
					}
					for _, api := range names {
						if value(v, api) == nil {
							missing = append(missing, join(p, api))
						}
					}
				}
			}
		}
		walk(root.Content[0], reflect.TypeOf(Config{}), "")
		// Endpoint keys are documented in a comment: a shipped endpoint
		// would receive the demo's events.
		for _, key := range []string{"name:", "url:", "secret:", "types:"} {
			if !strings.Contains(string(raw), "#       "+key) && !strings.Contains(string(raw), "#     - "+key) {
				missing = append(missing, "events.endpoints[].{"+key+"} example")
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			t.Errorf("config.yaml does not show: %s", strings.Join(missing, ", "))
		}
	})
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("ok", func(t *testing.T) {
		t.Setenv("PAYD_TEST_SALT", "salt-from-env")
		p := write("ok.yaml", "douyin:\n  apps:\n    - app_id: tt1\n      salt: ${PAYD_TEST_SALT}\n      token: k\n")
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Douyin.Apps[0].Salt != "salt-from-env" {
			t.Errorf("salt = %q", c.Douyin.Apps[0].Salt)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(dir, "nope.yaml")
		_, err := Load(p)
		if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read config: open "+p+":") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("parse error", func(t *testing.T) {
		p := write("typo.yaml", "log:\n  levle: info\n")
		_, err := Load(p)
		want := "parse config " + p + `: line 2: log.levle: unknown field; did you mean "level"?`
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		p := write("bad.yaml", "log:\n  level: loud\n")
		_, err := Load(p)
		want := "invalid config " + p + ":\n" + `douyin.apps: at least one app required` + "\n" + `log.level: "loud": want debug, info, warn or error`
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	})
}

func TestResolvePath(t *testing.T) {
	tests := []struct {
		flag, env, want string
	}{
		{"/etc/payd/payd.yaml", "/from/env.yaml", "/etc/payd/payd.yaml"},
		{"", "/from/env.yaml", "/from/env.yaml"},
		{"", "", "config.yaml"},
		{"local.yaml", "", "local.yaml"},
	}
	for _, tt := range tests {
		got := ResolvePath(tt.flag, env(map[string]string{"PAYD_CONFIG": tt.env}))
		if got != tt.want {
			t.Errorf("ResolvePath(%q) with PAYD_CONFIG=%q = %q, want %q", tt.flag, tt.env, got, tt.want)
		}
	}
	t.Setenv("PAYD_CONFIG", "/process/env.yaml")
	if got := ResolvePath("", nil); got != "/process/env.yaml" {
		t.Errorf("ResolvePath with nil getenv = %q, want the process's PAYD_CONFIG", got)
	}
}

func TestConfig_Redacted(t *testing.T) {
	c := valid()
	c.Douyin.Apps[0].NotifyURL = "https://u:np@merchant.example/notify"
	c.Douyin.Apps = append(c.Douyin.Apps, App{AppID: "tt2"}) // secrets not set
	c.Database.DSN = "postgres://payd:pgpass@db:5432/payd?sslmode=require"
	c.Events.Endpoints[0].Types = []string{"order.paid"}
	orig := c.clone()

	r := c.Redacted()
	if r.Douyin.Apps[0].Salt != Mask || r.Douyin.Apps[0].Token != Mask || r.Server.AdminToken != Mask || r.Events.Endpoints[0].Secret != Mask {
		t.Errorf("secrets not masked: %+v", r)
	}
	if r.Douyin.Apps[1].Salt != "" || r.Douyin.Apps[1].Token != "" {
		t.Errorf("unset secrets should stay empty, got %q %q", r.Douyin.Apps[1].Salt, r.Douyin.Apps[1].Token)
	}
	if want := "postgres://payd:***@db:5432/payd?sslmode=require"; r.Database.DSN != want {
		t.Errorf("dsn = %q, want %q", r.Database.DSN, want)
	}
	if want := "https://u:***@merchant.example/notify"; r.Douyin.Apps[0].NotifyURL != want {
		t.Errorf("notify_url = %q, want %q", r.Douyin.Apps[0].NotifyURL, want)
	}
	if r.Douyin.Apps[0].AppID != "tt1" || r.Reconcile.Workers != Default().Reconcile.Workers {
		t.Errorf("non-secrets changed: %+v", r)
	}

	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"salt-1", "token-1", "admin-token-0123456789", "0123456789abcdef", "pgpass", ":np@"} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("printed config shows %q:\n%s", s, out)
		}
	}

	// The copy shares nothing with the original.
	r.Douyin.Limits["settle"] = 1
	r.Reconcile.Retry[0] = D(time.Hour)
	r.Events.Endpoints[0].Types[0] = "x"
	r.Sandbox.Limits["settle"] = 1
	if !reflect.DeepEqual(c.clone(), orig) {
		t.Error("changing the redacted copy changed the original")
	}

	// What payd config prints reads back as the same config.
	back, err := ParseWithEnv(bytes.NewReader(out), env(nil))
	if err != nil {
		t.Fatalf("parse printed config: %v\n%s", err, out)
	}
	if want := c.Redacted(); !reflect.DeepEqual(*back, want) {
		t.Errorf("printed config reads back differently:\n got %+v\nwant %+v\n%s", *back, want, out)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"payd.db": "payd.db",
		"file:payd.db?_pragma=busy_timeout(5000)":        "file:payd.db?_pragma=busy_timeout(5000)",
		"postgres://u@h/db":                              "postgres://u@h/db",
		"postgres://u:p%40ss@h/db":                       "postgres://u:***@h/db",
		"postgres://h/db?sslmode=disable&password=x&a=1": "postgres://h/db?sslmode=disable&password=***&a=1",
		"host=h user=u password=secret dbname=d":         "host=h user=u password=*** dbname=d",
		`host=h password='a b\' c' dbname=d`:             "host=h password=*** dbname=d",
		"host=h PASSWORD = x":                            "host=h PASSWORD = ***",
		// URLs url.Parse refuses still hide their password.
		"postgres://u:s3cret@host:bad/db": "postgres://u:***@host:bad/db",
		"postgres://u:s3%zz@h/db":         "postgres://u:***@h/db",
	} {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                               "0s",
		1500 * time.Millisecond:         "1.5s",
		time.Minute:                     "1m",
		90 * time.Minute:                "1h30m",
		168 * time.Hour:                 "168h",
		time.Hour + 5*time.Second:       "1h0m5s",
		-5 * time.Minute:                "-5m",
		10*time.Minute + 30*time.Second: "10m30s",
	} {
		if got := D(d).String(); got != want {
			t.Errorf("D(%v).String() = %q, want %q", time.Duration(d), got, want)
		}
		back, err := time.ParseDuration(D(d).String())
		if err != nil || back != d {
			t.Errorf("%q reads back as %v, %v", D(d).String(), back, err)
		}
	}

	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 2m30s"), &v); err != nil || v.D != D(150*time.Second) {
		t.Errorf("decode 2m30s = %v, %v", v.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: 5x"), &v); err == nil || !strings.Contains(err.Error(), `line 1: "5x": not a duration`) {
		t.Errorf("decode 5x: %v", err)
	}
	if err := yaml.Unmarshal([]byte("d: [1s]"), &v); err == nil {
		t.Error("decode [1s]: want an error")
	}
	out, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
	}{D(168 * time.Hour)})
	if err != nil || string(out) != "d: 168h\n" {
		t.Errorf("marshal = %q, %v", out, err)
	}
}

func TestBackoff_Delay(t *testing.T) {
	b := backoff(time.Second, time.Minute, time.Hour)
	for n, want := range map[int]time.Duration{-1: time.Second, 0: time.Second, 1: time.Minute, 2: time.Hour, 3: time.Hour, 1000: time.Hour} {
		if got := b.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	if got := Backoff(nil).Delay(3); got != 0 {
		t.Errorf("empty Delay = %v, want 0", got)
	}
}

func TestEndpoint_Wants(t *testing.T) {
	all := Endpoint{Name: "a"}
	some := Endpoint{Name: "b", Types: []string{"refund.parked"}}
	for _, typ := range EventTypes {
		if !all.Wants(typ) {
			t.Errorf("an endpoint without types should want %s", typ)
		}
		if got := some.Wants(typ); got != (typ == "refund.parked") {
			t.Errorf("Wants(%s) = %v", typ, got)
		}
	}
}

func TestApp_StringHidesSecrets(t *testing.T) {
	a := App{AppID: "tt1", Salt: "salt-Zq9", Token: "token-Zq9"}
	e := Endpoint{Name: "ep", Secret: "secret-Zq9"}
	c := valid()
	c.Douyin.Apps = []App{a}
	c.Events.Endpoints = []Endpoint{e}
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", a, a, a, a),
		fmt.Sprintf("%v %+v %#v", e, e, e),
		fmt.Sprintf("%v %+v", c.Douyin, c.Events),
	} {
		if strings.Contains(s, "Zq9") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestDefault_Fresh(t *testing.T) {
	a, b := Default(), Default()
	a.Douyin.Limits["settle"] = 1
	a.Reconcile.Retry[0] = D(0)
	a.Sandbox.Limits["settle"] = 1
	if !reflect.DeepEqual(b, Default()) {
		t.Error("Default() values share maps or slices")
	}
	if got, want := DefaultLimits(), map[string]float64{
		"create_order": 30, "query_order": 30, "create_refund": 50, "query_refund": 30,
		"settle": 30, "query_settle": 30, "unsettle_amount": 30,
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultLimits() = %v, want %v", got, want)
	}
}

// yamlDiff renders got and want as YAML and returns the lines of each that
// the other lacks.
func yamlDiff(t *testing.T, got, want *Config) string {
	t.Helper()
	g, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
	var b strings.Builder
	for _, l := range gl {
		if !slices.Contains(wl, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	for _, l := range wl {
		if !slices.Contains(gl, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}

// TestConfig_Workers: reconcile.workers when given; else on SQLite 8 per
// app, at least 32 and at most 512, and on PostgreSQL 32.
func TestConfig_Workers(t *testing.T) {
	for _, tc := range []struct {
		driver              string
		workers, apps, want int
	}{
		{"sqlite", 0, 1, 32}, {"sqlite", 0, 4, 32}, {"sqlite", 0, 5, 40}, {"sqlite", 0, 20, 160}, {"sqlite", 0, 32, 256}, {"sqlite", 0, 50, 400}, {"sqlite", 0, 64, 512},
		{"sqlite", 0, 100, 512}, {"sqlite", 12, 100, 12}, {"sqlite", 512, 1, 512},
		{"postgres", 0, 1, 32}, {"postgres", 0, 100, 32}, {"postgres", 64, 100, 64},
	} {
		c := Default()
		c.Database.Driver = tc.driver
		c.Reconcile.Workers = tc.workers
		c.Douyin.Apps = make([]App, tc.apps)
		if got := c.Workers(); got != tc.want {
			t.Errorf("%s, workers %d with %d apps: %d, want %d", tc.driver, tc.workers, tc.apps, got, tc.want)
		}
	}
}
