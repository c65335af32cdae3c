package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/state"
)

// The one app every command test uses; its secrets reach the config only
// through the fake environment, as in production.
const (
	testApp        = "tt-cli-test"
	testSalt       = "cli-salt-0123456789"
	testToken      = "cli-token-0123456789"
	testAdminToken = "admin-token-0123456789"
)

// env is one command test's world: a config file and a database in a temp
// directory, a fake environment and, when asked, a simulator.
type env struct {
	t      *testing.T
	dir    string
	config string // path of the config file
	db     string // path of the SQLite database
	vars   map[string]string
	sim    *douyinsim.Server
	simURL string
}

// baseConfig is a minimal config: everything else takes its default.
const baseConfig = `database:
  dsn: ${TEST_DSN}
  synchronous: NORMAL
douyin:
  base_url: ${TEST_DOUYIN_URL:-http://127.0.0.1:1}
  timeout: 5s
  apps:
    - app_id: ` + testApp + `
      salt: ${PAYD_SALT}
      token: ${PAYD_TOKEN}
reconcile:
  jitter: 0
server:
  callback_listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  admin_token: ${PAYD_ADMIN_TOKEN}
  shutdown_timeout: 5s
log:
  level: warn
`

// newEnv writes baseConfig (or yaml when given) to a temp dir.
func newEnv(t *testing.T, yaml ...string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, config: filepath.Join(dir, "config.yaml"), db: filepath.Join(dir, "payd.db")}
	e.vars = map[string]string{
		"TEST_DSN":         e.db,
		"PAYD_SALT":        testSalt,
		"PAYD_TOKEN":       testToken,
		"PAYD_ADMIN_TOKEN": testAdminToken,
	}
	body := baseConfig
	if len(yaml) > 0 {
		body = yaml[0]
	}
	e.write("config.yaml", body)
	e.migrate()
	return e
}

// newEnvNoDB is newEnv without the database: only migrate and serve may
// create it.
func newEnvNoDB(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if err := os.Remove(e.db); err != nil {
		t.Fatal(err)
	}
	return e
}

// migrate creates the env's database, as payd migrate does.
func (e *env) migrate() {
	e.t.Helper()
	st, err := state.Open(context.Background(), state.Options{DSN: e.db, Synchronous: "NORMAL"})
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// write creates a file in the env's directory and returns its path.
func (e *env) write(name, body string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) getenv(k string) string { return e.vars[k] }

// withSim starts a simulator that knows the test app and points the
// config's douyin.base_url at it.
func (e *env) withSim() *env {
	e.t.Helper()
	limits := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		limits[api] = 1000
	}
	sim, err := douyinsim.New(douyinsim.Config{
		Apps:            []douyinsim.App{{AppID: testApp, Salt: testSalt, Token: testToken}},
		ProcessingDelay: time.Millisecond,
		Limits:          limits,
		Seed:            7,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sim.Close() })
	e.sim, e.simURL = sim, url
	e.vars["TEST_DOUYIN_URL"] = url
	return e
}

// seedPaid places a paid order at the simulator.
func (e *env) seedPaid(no string, total int64) {
	e.t.Helper()
	if err := e.sim.SeedOrder(douyinsim.SeedOrder{AppID: testApp, OutOrderNo: no, TotalAmount: total, Status: "SUCCESS", PaidAt: e.sim.Now().Add(-time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
}

// result is what one command run printed and returned.
type result struct {
	stdout, stderr string
	err            error
	code           int
}

// run executes payd with args (the --config flag added) in-process.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runCtx(context.Background(), append([]string{"--config", e.config}, args...)...)
}

// runCtx executes payd with exactly args.
func (e *env) runCtx(ctx context.Context, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb, e.getenv)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var code bytes.Buffer
	r := result{stdout: out.String(), stderr: errb.String(), err: err}
	r.code = exitCode(err, &code)
	return r
}

// ok fails the test unless the run succeeded.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("want success, got %v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
	}
	return r
}

// fails fails the test unless the run failed with exactly msg.
func (r result) fails(t *testing.T, msg string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("want error %q, got success\nstdout:\n%s", msg, r.stdout)
	}
	if r.err.Error() != msg {
		t.Fatalf("error:\n got  %q\n want %q", r.err.Error(), msg)
	}
}

// has fails the test unless s contains every want.
func has(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Fatalf("output lacks %q:\n%s", w, s)
		}
	}
}

// store opens the env's database for assertions.
func (e *env) store() *state.Store {
	e.t.Helper()
	st, err := state.Open(context.Background(), state.Options{DSN: e.db, Synchronous: "NORMAL"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

// summary reads the env's database summary.
func (e *env) summary() *state.Summary {
	e.t.Helper()
	st := e.store()
	s, err := st.Summary(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// count returns the rows of a table in the env's database.
func (e *env) count(table string) int64 {
	e.t.Helper()
	st := e.store()
	var n int64
	if err := st.DB().Table(table).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}
