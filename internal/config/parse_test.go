package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv backed by m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// parse parses doc with the variables of m.
func parse(t *testing.T, doc string, m map[string]string) (*Config, error) {
	t.Helper()
	return ParseWithEnv(strings.NewReader(doc), env(m))
}

// mustParse parses doc and fails the test on an error.
func mustParse(t *testing.T, doc string, m map[string]string) *Config {
	t.Helper()
	c, err := parse(t, doc, m)
	if err != nil {
		t.Fatalf("ParseWithEnv: %v", err)
	}
	return c
}

// lines splits a joined error into its problems.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

const oneApp = `douyin:
  apps:
    - app_id: tt1
      salt: s
      token: k
`

func TestParseWithEnv_Defaults(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "---\n", "{}\n"} {
		c, err := parse(t, doc, nil)
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("%q: got %+v, want Default()", doc, c)
		}
	}

	c := mustParse(t, oneApp, nil)
	want := Default()
	app := DefaultApp()
	app.AppID, app.Salt, app.Token = "tt1", "s", "k"
	want.Douyin.Apps = []App{app}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseWithEnv_Overrides(t *testing.T) {
	c := mustParse(t, `database:
  driver: postgres
  busy_timeout: 1500ms
douyin:
  base_url: sandbox
  limits:
    settle: 10
  apps:
    - app_id: tt1
      salt: s
      token: k
      auto_settle: false
      settle_period: 72h
    - app_id: tt2
      salt: s2
      token: k2
      settle_desc: ""
reconcile:
  workers: 3
  jitter: 0
  retry: [10s, 1h]
sandbox:
  seed: -7
  faults:
    http500: 0.25
    http500_after_effect: 0.5
    callback_delay_max: 90s
`, nil)
	if c.Database.Driver != "postgres" || c.Database.DSN != "payd.db" || c.Database.BusyTimeout.Duration != 1500*time.Millisecond {
		t.Errorf("database = %+v", c.Database)
	}
	if got := c.Douyin.URL(); got != "https://open-sandbox.douyin.com" {
		t.Errorf("URL() = %q", got)
	}
	wantLimits := DefaultLimits()
	wantLimits["settle"] = 10
	if !reflect.DeepEqual(c.Douyin.Limits, wantLimits) {
		t.Errorf("limits = %v, want defaults with settle 10", c.Douyin.Limits)
	}
	a0, a1 := c.Douyin.Apps[0], c.Douyin.Apps[1]
	if a0.AutoSettle || a0.SettlePeriod.Duration != 72*time.Hour || a0.SettleDesc != "payd settlement" {
		t.Errorf("apps[0] = %+v", a0)
	}
	// An explicit empty string is a value, not a missing key.
	if !a1.AutoSettle || a1.SettlePeriod.Duration != 168*time.Hour || a1.SettleDesc != "" {
		t.Errorf("apps[1] = %#v %v %v %q", a1, a1.AutoSettle, a1.SettlePeriod, a1.SettleDesc)
	}
	if c.Reconcile.Workers != 3 || c.Reconcile.Jitter != 0 || c.Reconcile.Batch != 500 {
		t.Errorf("reconcile = %+v", c.Reconcile)
	}
	if want := backoff(10*time.Second, time.Hour); !reflect.DeepEqual(c.Reconcile.Retry, want) {
		t.Errorf("retry = %v, want %v (a list replaces the default)", c.Reconcile.Retry, want)
	}
	if c.Sandbox.Seed != -7 || c.Sandbox.Faults.HTTP500 != 0.25 || c.Sandbox.Faults.Hang != 3*time.Second ||
		c.Sandbox.Faults.HTTP500AfterEffect != 0.5 || c.Sandbox.Faults.CallbackDelayMax != 90*time.Second {
		t.Errorf("sandbox = %+v", c.Sandbox)
	}
	// The defaults are not shared with the parsed config.
	if Default().Douyin.Limits["settle"] != 30 {
		t.Error("parsing changed the default limits")
	}
}

func TestParseWithEnv_Anchors(t *testing.T) {
	// Anchors live inside known keys: a top-level x_ key is unknown.
	_, err := parse(t, "x_app: &app {salt: s}\n", nil)
	if want := []string{`line 1: x_app: unknown field`}; !reflect.DeepEqual(lines(err), want) {
		t.Errorf("got %q, want %q", lines(err), want)
	}

	c := mustParse(t, `douyin:
  apps:
    - &app
      app_id: tt1
      salt: s
      token: k
      auto_settle: false
    - <<: *app
      app_id: tt2
`, nil)
	if len(c.Douyin.Apps) != 2 {
		t.Fatalf("apps = %v", c.Douyin.Apps)
	}
	for _, a := range c.Douyin.Apps {
		if a.Salt != "s" || a.AutoSettle || a.SettleDesc != "payd settlement" {
			t.Errorf("%s: salt %q auto_settle %v desc %q", a.AppID, a.Salt, a.AutoSettle, a.SettleDesc)
		}
	}
}

func TestParseWithEnv_Env(t *testing.T) {
	vars := map[string]string{
		"SALT":    "from-env",
		"EMPTY":   "",
		"WORKERS": "12",
		"TRICKY":  "a: b # c\n- d",
		"PERIOD":  "72h",
		"NO":      "false",
	}
	tests := []struct {
		name string
		doc  string
		got  func(*Config) any
		want any
	}{
		{"set", "douyin:\n  apps:\n    - salt: ${SALT}\n", func(c *Config) any { return c.Douyin.Apps[0].Salt }, "from-env"},
		{"inside text", "log:\n  level: x${SALT}y\n", func(c *Config) any { return c.Log.Level }, "xfrom-envy"},
		{"default unused", "douyin:\n  apps: [{salt: '${SALT:-dflt}'}]\n", func(c *Config) any { return c.Douyin.Apps[0].Salt }, "from-env"},
		{"default for missing", "douyin:\n  apps:\n    - salt: ${NOPE:-sandbox-salt}\n", func(c *Config) any { return c.Douyin.Apps[0].Salt }, "sandbox-salt"},
		{"default for empty", "douyin:\n  apps:\n    - salt: ${EMPTY:-d}\n", func(c *Config) any { return c.Douyin.Apps[0].Salt }, "d"},
		{"empty default", "database:\n  dsn: x${NOPE:-}\n", func(c *Config) any { return c.Database.DSN }, "x"},
		{"missing is empty", "database:\n  dsn: a${NOPE}b\n", func(c *Config) any { return c.Database.DSN }, "ab"},
		{"missing keeps the default", "reconcile:\n  workers: ${NOPE}\n", func(c *Config) any { return c.Reconcile.Workers }, Default().Reconcile.Workers},
		{"missing leaves a secret empty", "douyin:\n  apps:\n    - salt: ${NOPE}\n", func(c *Config) any { return c.Douyin.Apps[0].Salt }, ""},
		{"missing keeps an app default", "douyin:\n  apps:\n    - auto_settle: ${NOPE}\n", func(c *Config) any { return c.Douyin.Apps[0].AutoSettle }, true},
		{"missing keeps a list", "reconcile:\n  retry: ${NOPE}\n", func(c *Config) any { return c.Reconcile.Retry }, Default().Reconcile.Retry},
		{"typed number", "reconcile:\n  workers: ${WORKERS}\n", func(c *Config) any { return c.Reconcile.Workers }, 12},
		{"typed default", "reconcile:\n  workers: ${NOPE:-9}\n", func(c *Config) any { return c.Reconcile.Workers }, 9},
		{"typed bool", "douyin:\n  apps:\n    - auto_settle: ${NO}\n", func(c *Config) any { return c.Douyin.Apps[0].AutoSettle }, false},
		{"duration", "sweep:\n  stale_after: ${PERIOD}\n", func(c *Config) any { return c.Sweep.StaleAfter }, D(72 * time.Hour)},
		{"no YAML injection", "douyin:\n  apps:\n    - salt: ${TRICKY}\n", func(c *Config) any { return c.Douyin.Apps[0].Salt }, "a: b # c\n- d"},
		{"quoted stays a string", `log: {level: "${WORKERS}"}`, func(c *Config) any { return c.Log.Level }, "12"},
		{"escape", "database:\n  dsn: $${SALT}\n", func(c *Config) any { return c.Database.DSN }, "${SALT}"},
		{"lone dollars", "database: {dsn: a$b$$c$}", func(c *Config) any { return c.Database.DSN }, "a$b$$c$"},
		{"not in keys or comments", "# ${NOPE\nlog: {level: debug} # ${\n", func(c *Config) any { return c.Log.Level }, "debug"},
		{"no recursion", "database:\n  dsn: ${NESTED}\n", func(c *Config) any { return c.Database.DSN }, "${SALT}"},
	}
	vars["NESTED"] = "${SALT}"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.doc, vars)
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseWithEnv_Errors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown key", oneApp + "reconcile:\n  wokers: 4\n",
			[]string{`line 7: reconcile.wokers: unknown field; did you mean "workers"?`}},
		{"unknown key in a list", "douyin:\n  apps:\n    - app_id: tt1\n      salts: s\n",
			[]string{`line 4: douyin.apps[0].salts: unknown field; did you mean "salt"?`}},
		{"unknown section", "reconciler: {}\nfoo: 1\n",
			[]string{`line 1: reconciler: unknown field; did you mean "reconcile"?`, `line 2: foo: unknown field`}},
		{"repeated key", "log:\n  level: info\n  level: debug\n",
			[]string{`line 3: log.level: repeated (first at line 2)`}},
		{"bad duration", "reconcile:\n  retry: [1m, 5m, 5x]\n",
			[]string{`line 2: reconcile.retry[2]: "5x": not a duration`}},
		{"duration without unit", "douyin:\n  timeout: 10\n",
			[]string{`line 2: douyin.timeout: "10": not a duration (missing unit, as in "10s")`}},
		{"fault duration without unit", "sandbox:\n  faults:\n    hang: 3\n",
			[]string{`line 3: sandbox.faults.hang: "3": not a duration (missing unit, as in "3s")`}},
		{"unknown fault", "sandbox:\n  faults:\n    http_500: 1\n",
			[]string{`line 3: sandbox.faults.http_500: unknown field; did you mean "http500"?`}},
		{"duration list element empty", "reconcile:\n  poll: [5s, ~]\n",
			[]string{`line 2: reconcile.poll[1]: empty`}},
		{"duration as a list", "sweep:\n  stale_after: [1m]\n",
			[]string{`line 2: sweep.stale_after: want a duration such as "5s", not a list`}},
		{"not an integer", "reconcile:\n  workers: many\n  batch: 1.5\n",
			[]string{`line 2: reconcile.workers: "many": not an integer`, `line 3: reconcile.batch: "1.5": not an integer`}},
		{"quoted integer", "reconcile:\n  workers: \"4\"\n",
			[]string{`line 2: reconcile.workers: "4": not an integer (write it without quotes)`}},
		{"not a number", "reconcile:\n  jitter: lots\n",
			[]string{`line 2: reconcile.jitter: "lots": not a number`}},
		{"not a bool", "douyin:\n  apps:\n    - auto_settle: sometimes\n",
			[]string{`line 3: douyin.apps[0].auto_settle: "sometimes": want true or false`}},
		{"list for a string", "log:\n  level: [info]\n",
			[]string{`line 2: log.level: want a single value, not a list`}},
		{"value for a section", "server: yes\n",
			[]string{`line 1: server: want a mapping, not a single value`}},
		{"mapping for a list", "douyin:\n  apps:\n    app_id: tt1\n",
			[]string{`line 3: douyin.apps: want a list, not a mapping`}},
		{"limits value", "douyin:\n  limits:\n    settle: fast\n",
			[]string{`line 3: douyin.limits.settle: "fast": not a number`}},
		{"top level list", "- a\n",
			[]string{`line 1: (top level): want a mapping, not a list`}},
		{"unterminated reference", "douyin:\n  apps:\n    - salt: abc${SALT\n",
			[]string{`line 3: douyin.apps[0].salt: ${ without a closing }`}},
		{"bad reference", "database:\n  dsn: ${1X}\n  driver: ${A-b}\n",
			[]string{
				`line 2: database.dsn: bad variable reference: want ${NAME} or ${NAME:-default}`,
				`line 3: database.driver: bad variable reference: want ${NAME} or ${NAME:-default}`,
			}},
		{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n",
			[]string{`line 2: only one YAML document is allowed`}},
		{"syntax", "log:\n  level: info\n bad\n",
			[]string{`yaml: line 2: did not find expected key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.doc, map[string]string{"SALT": "s"})
			if c != nil {
				t.Errorf("got a config with the error")
			}
			if got := lines(err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseWithEnv_ErrorsHideValues(t *testing.T) {
	const secret = "Zq9-very-secret"
	for _, doc := range []string{
		"douyin:\n  apps:\n    - salt: " + secret + "${}\n",
		"douyin:\n  apps:\n    - token: " + secret + "${X\n",
		"douyin:\n  apps:\n    - salt: [" + secret + "]\n",
		"server: {admin_token: {a: " + secret + "}}\n",
	} {
		_, err := parse(t, doc, nil)
		if err == nil {
			t.Fatalf("%q: want an error", doc)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestParse_ReadsProcessEnv(t *testing.T) {
	t.Setenv("PAYD_TEST_LEVEL", "warn")
	c, err := Parse(strings.NewReader("log:\n  level: ${PAYD_TEST_LEVEL}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "warn" {
		t.Errorf("level = %q, want warn", c.Log.Level)
	}
}

func TestParse_ReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := Parse(failingReader{boom}); !errors.Is(err, boom) || err.Error() != "read: boom" {
		t.Errorf("got %v, want it to wrap %v", err, boom)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestExpand(t *testing.T) {
	get := env(map[string]string{"A": "1", "B_2": "two"})
	for in, want := range map[string]string{
		"":                "",
		"plain":           "plain",
		"${A}${B_2}":      "1two",
		"${A:-x}-${C:-y}": "1-y",
		"${C:-a:-b}":      "a:-b",
		"${C:-{x}":        "{x",
		"$${A}":           "${A}",
		"$$${A}":          "$${A}",
		"$":               "$",
		"cost: $5":        "cost: $5",
		"a}b":             "a}b",
	} {
		got, err := expand(in, get)
		if err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${", "${A", "${}", "${:-x}", "${A B}", "${A-x}", "${9}", "x${A}${"} {
		if got, err := expand(in, get); err == nil {
			t.Errorf("expand(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseWithEnv_MergeErrorsOnce(t *testing.T) {
	_, err := parse(t, `douyin:
  apps:
    - &app
      app_id: tt1
      salts: s
    - <<: *app
      app_id: tt2
    - <<: *app
      app_id: tt3
`, nil)
	want := []string{`line 5: douyin.apps[0].salts: unknown field; did you mean "salt"?`}
	if got := lines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseWithEnv_MergeLists(t *testing.T) {
	c := mustParse(t, `sandbox:
  limits: &lim
    settle: 5
douyin:
  limits:
    <<: *lim
    query_order: 7
  apps:
    - &creds
      app_id: tt1
      salt: s
      token: k
    - &policy
      app_id: tt2
      salt: s2
      token: k2
      auto_settle: false
    - <<: [*policy, *creds]
      app_id: tt3
`, nil)
	if got := c.Douyin.Limits; got["settle"] != 5 || got["query_order"] != 7 || got["create_refund"] != 50 {
		t.Errorf("limits = %v", got)
	}
	a := c.Douyin.Apps[2]
	if a.AppID != "tt3" || a.Salt != "s2" || a.AutoSettle || a.SettleDesc != "payd settlement" {
		t.Errorf("apps[2] = %s salt %q auto_settle %v desc %q", a, a.Salt, a.AutoSettle, a.SettleDesc)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// TestParse_sizeLimit: a config file of more than MaxSize is refused
// without being read whole (/dev/zero would never end).
func TestParse_sizeLimit(t *testing.T) {
	z, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if _, err := ParseWithEnv(z, func(string) string { return "" }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ParseWithEnv(/dev/zero): %v, want ErrTooLarge", err)
	}
	ok := "log:\n  level: info\n" + strings.Repeat("# padding\n", (MaxSize-30)/10)
	if _, err := ParseWithEnv(strings.NewReader(ok), func(string) string { return "" }); err != nil {
		t.Fatalf("a config just under 1 MiB: %v", err)
	}
}
