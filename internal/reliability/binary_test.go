package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/payd/payd/internal/sandbox"
)

// The built payd binary, shared by the tests of one run.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	if db := os.Getenv(holdLockEnv); db != "" {
		os.Exit(holdLock(db))
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// paydBinary builds ./cmd/payd once per test run and returns its path.
func paydBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if buildDir, err = os.MkdirTemp("", "payd-reliability-"); err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(buildDir, "payd")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/payd")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/payd: %w\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// freeAddr returns a loopback address nobody listens on (listen on :0, close).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// binConfig is what the config.yaml template needs.
type binConfig struct {
	DB, Sim, Callback, Admin string
	AppID, Salt, Token       string
	AdminToken, Level        string
	Faults                   string // YAML mapping of sandbox.faults, one line
	Rate                     int    // payd's calls per second per API; 200 when zero
	SimRate                  int    // the sandbox's limit per API; 300 when zero
	// Driver is the database driver ("" = sqlite, DB a file of the
	// world's); for "postgres" the test sets DB to the DSN.
	Driver string
	// Trade makes the app a trade-system app (api: trade), served by the
	// sandbox's trade simulator: Token is then its client_secret, passed
	// to every process in the environment as config.yaml reads it, and
	// the platform key is created in the world's directory.
	Trade    bool
	TradeKey string // set by newBinWorld: the platform key's PEM file
}

// tradeSecretEnv is the variable a trade world's config.yaml reads its
// client_secret from (payd takes it only from the environment).
const tradeSecretEnv = "PAYD_RELIABILITY_CLIENT_SECRET"

var configTemplate = template.Must(template.New("config").Parse(`database:
{{- if .Driver}}
  driver: {{.Driver}}
{{- end}}
  dsn: {{.DB}}
  synchronous: FULL
  busy_timeout: 5s
douyin:
  base_url: http://{{.Sim}}
  timeout: 1s
  limits: {create_order: {{.Rate}}, query_order: {{.Rate}}, create_refund: {{.Rate}}, query_refund: {{.Rate}}, settle: {{.Rate}}, query_settle: {{.Rate}}, unsettle_amount: {{.Rate}}}
{{- if .Trade}}
  trade:
    base_url: http://{{.Sim}}
    limits: {order_query: {{.Rate}}, query_cps: {{.Rate}}, refund_create: {{.Rate}}, refund_query: {{.Rate}}, refund_audit_callback: {{.Rate}}, settle_create: {{.Rate}}, settle_query: {{.Rate}}}
  apps:
    - app_id: {{.AppID}}
      api: trade
      client_secret: ${` + tradeSecretEnv + `}
      platform_public_key_file: {{.TradeKey}}.pub
      settle_rule: payment
      settle_days: 7
{{- else}}
  apps:
    - app_id: {{.AppID}}
      salt: {{.Salt}}
      token: {{.Token}}
      settle_period: 168h
{{- end}}
      auto_settle: false
      settle_desc: reliability
reconcile:
  schedule: "@every 1s"
  workers: 16
  lease: 5s
  refund_attempts: 20
  settle_attempts: 20
  retry: [1s, 2s]
  settle_retry: [1s, 2s]
  jitter: 0.2
  poll: [500ms, 1s]
settle_batch:
  schedule: "@every 1s"
sweep:
  schedule: "@every 2s"
  stale_after: 3s
server:
  callback_listen: {{.Callback}}
  admin_listen: {{.Admin}}
  admin_token: {{.AdminToken}}
  shutdown_timeout: 5s
log:
  level: {{.Level}}
  format: json
sandbox:
  listen: {{.Sim}}
  settle_period: 168h
  processing_delay: 500ms
  notify_url: http://{{.Callback}}/douyin/notify
  callback_scale: 0.01
  seed: 11
  limits: {create_order: {{.SimRate}}, query_order: {{.SimRate}}, create_refund: {{.SimRate}}, query_refund: {{.SimRate}}, settle: {{.SimRate}}, query_settle: {{.SimRate}}, unsettle_amount: {{.SimRate}}}
  faults: {{.Faults}}
`))

// binWorld is payd as a user runs it: a config.yaml in a temporary
// directory, `payd sandbox` as one process and `payd serve` as another.
type binWorld struct {
	t      *testing.T
	bin    string
	dir    string
	config string
	cfg    binConfig
	logs   *lockedBuffer // every line any payd process wrote
}

func newBinWorld(t *testing.T, c binConfig) *binWorld {
	t.Helper()
	w := &binWorld{t: t, bin: paydBinary(t), dir: t.TempDir(), logs: &lockedBuffer{}}
	if c.Driver == "" {
		c.DB = filepath.Join(w.dir, "payd.db")
	}
	if c.SimRate == 0 {
		c.SimRate = 300
	}
	c.Sim, c.Callback, c.Admin = freeAddr(t), freeAddr(t), freeAddr(t)
	if c.Level == "" {
		c.Level = "info"
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Faults == "" {
		c.Faults = "{}"
	}
	if c.Trade {
		c.TradeKey = filepath.Join(w.dir, "platform.pem")
		if _, _, err := sandbox.PlatformKey(c.TradeKey); err != nil {
			t.Fatal(err)
		}
	}
	w.cfg = c
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, c); err != nil {
		t.Fatal(err)
	}
	w.config = filepath.Join(w.dir, "config.yaml")
	if err := os.WriteFile(w.config, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// lockedBuffer collects the output of several processes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs payd with args in the background; the process is killed at
// the end of the test if it is still running.
func (w *binWorld) start(args ...string) *exec.Cmd {
	w.t.Helper()
	cmd := exec.Command(w.bin, w.args(args)...)
	cmd.Dir = w.dir
	cmd.Env = w.env()
	cmd.Stdout, cmd.Stderr = w.logs, w.logs
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start payd %s: %v", args[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	w.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	procDone.Store(cmd, done)
	return cmd
}

// args are a payd command's arguments with the world's config; the
// sandbox of a trade world signs its callbacks with the world's key.
func (w *binWorld) args(args []string) []string {
	out := append(append([]string(nil), args...), "--config", w.config)
	if w.cfg.Trade && args[0] == "sandbox" {
		out = append(out, "--trade-key", w.cfg.TradeKey)
	}
	return out
}

// env is a payd process's environment: no PAYD_CONFIG, and a trade
// world's client_secret.
func (w *binWorld) env() []string {
	env := append(os.Environ(), "PAYD_CONFIG=")
	if w.cfg.Trade {
		env = append(env, tradeSecretEnv+"="+w.cfg.Token)
	}
	return env
}

var procDone sync.Map // *exec.Cmd → chan struct{} closed when it exited

// exited reports whether cmd has ended.
func exited(cmd *exec.Cmd) bool {
	ch, _ := procDone.Load(cmd)
	select {
	case <-ch.(chan struct{}):
		return true
	default:
		return false
	}
}

// wait waits up to d for cmd to end.
func wait(t *testing.T, cmd *exec.Cmd, d time.Duration) {
	t.Helper()
	ch, _ := procDone.Load(cmd)
	select {
	case <-ch.(chan struct{}):
	case <-time.After(d):
		t.Fatalf("payd %s did not exit within %s", cmd.Args[1], d)
	}
}

// run runs payd with args to completion and returns its stdout.
func (w *binWorld) run(args ...string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, w.args(args)...)
	cmd.Dir = w.dir
	cmd.Env = w.env()
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, w.logs)
	cmd.Stderr = w.logs
	if err := cmd.Run(); err != nil {
		w.t.Fatalf("payd %s: %v\n%s", strings.Join(args, " "), err, w.logs.String())
	}
	return out.String()
}

// startSandbox starts `payd sandbox` and waits until it answers.
func (w *binWorld) startSandbox() *exec.Cmd {
	w.t.Helper()
	cmd := w.start("sandbox")
	deadline := time.Now().Add(30 * time.Second)
	clock := "/_sim/clock"
	if w.cfg.Trade {
		clock = "/_sim/trade/clock" // a trade world's sandbox serves the trade simulator only
	}
	for {
		var clk struct{ Now string }
		if err := w.simGet(clock, &clk); err == nil {
			return cmd
		}
		if exited(cmd) || time.Now().After(deadline) {
			w.t.Fatalf("payd sandbox did not come up:\n%s", w.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// simGet reads a control endpoint of the sandbox into v.
func (w *binWorld) simGet(path string, v any) error {
	resp, err := httpClient.Get("http://" + w.cfg.Sim + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// simPost posts v to a control endpoint of the sandbox.
func (w *binWorld) simPost(path string, v any) {
	w.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	resp, err := httpClient.Post("http://"+w.cfg.Sim+path, "application/json", bytes.NewReader(b))
	if err != nil {
		w.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		w.t.Fatalf("POST %s: %s: %s", path, resp.Status, body)
	}
}

// simNow reads the simulator's clock.
func (w *binWorld) simNow() time.Time {
	w.t.Helper()
	var clk struct {
		Now string `json:"now"`
	}
	if err := w.simGet("/_sim/clock", &clk); err != nil {
		w.t.Fatal(err)
	}
	now, err := time.Parse(time.RFC3339Nano, clk.Now)
	if err != nil {
		w.t.Fatal(err)
	}
	return now
}
