package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/sandbox"
)

// TestSandbox_TradeBesideEcpay: payd sandbox serves the trade simulator
// beside the ecpay one on one listener; payd refund and payd apply on a
// trade app then go through the trade API with the client token shared in
// the database (one token fetched for both processes), and the trade
// ledger shows the refund executed once.
func TestSandbox_TradeBesideEcpay(t *testing.T) {
	const tradeApp = "tt-sandbox-trade"
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "platform.pem")
	if _, _, err := sandbox.PlatformKey(keyFile); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(baseConfig, "  apps:\n", `  trade:
    base_url: ${TEST_TRADE_URL:-http://127.0.0.1:1}
  apps:
    - app_id: `+tradeApp+`
      api: trade
      client_secret: ${PAYD_CLIENT_SECRET}
      platform_public_key_file: `+keyFile+`.pub
      order_entry_schema: {path: pages/order}
`, 1)
	cfg = strings.Replace(cfg, "  jitter: 0\n", "  jitter: 0\n  poll: [50ms]\n", 1) + "sandbox:\n  processing_delay: 10ms\n  callback_scale: 0\n"
	e := newEnv(t, cfg)
	e.vars["PAYD_CLIENT_SECRET"] = "sandbox-client-secret"
	stdout, _, cancel, done := e.background("sandbox", "--listen", "127.0.0.1:0", "--trade-key", keyFile)
	defer func() { cancel(); <-done }()
	var url string
	waitFor(t, 10*time.Second, "the trade simulator", func() bool {
		i := strings.Index(stdout.String(), "trade simulator on ")
		if i < 0 {
			return false
		}
		url, _, _ = strings.Cut(stdout.String()[i+len("trade simulator on "):], " ")
		return true
	})
	has(t, stdout.String(), "douyin simulator on "+url, "(app "+tradeApp+")", keyFile+".pub")
	e.vars["TEST_TRADE_URL"] = url
	e.vars["TEST_DOUYIN_URL"] = url

	if code, body := call(t, "POST", url+"/_sim/trade/orders", "", `{"orders":[{"app_id":"`+tradeApp+`","out_order_no":"to-1",
		"items":[{"sku_id":"a","amount":1000},{"sku_id":"b","amount":2000}]}]}`); code != http.StatusOK {
		t.Fatalf("seed: %d %s", code, body)
	}
	if code, body := call(t, "GET", url+"/_sim/check", "", ""); code != http.StatusOK {
		t.Fatalf("ecpay control API on the shared listener: %d %s", code, body)
	}
	if r := e.run("refund", "to-1", "--app", tradeApp, "--amount", "1200", "--reason", "sandbox", "--key", "to-1-r"); r.err != nil {
		t.Fatalf("payd refund: %v\n%s", r.err, r.stderr)
	}
	for i := 0; i < 20 && e.summary().Refunds["succeeded"] == 0; i++ {
		if r := e.run("apply"); r.err != nil {
			t.Fatalf("payd apply: %v\n%s%s", r.err, r.stdout, r.stderr)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if n := e.summary().Refunds["succeeded"]; n != 1 {
		r := e.run("status", "to-1", "--app", tradeApp)
		t.Logf("%s%s", r.stdout, r.stderr)
		t.Fatalf("refunds succeeded: %d", n)
	}
	if n := e.count("client_tokens"); n != 1 {
		t.Fatalf("client_tokens rows: %d", n)
	}
	_, body := call(t, "GET", url+"/_sim/trade/ledger", "", "")
	var ledger struct {
		Orders []struct {
			Refunds []struct {
				Amount     int64 `json:"amount"`
				Executions int   `json:"executions"`
			} `json:"refunds"`
		} `json:"orders"`
	}
	if err := json.Unmarshal([]byte(body), &ledger); err != nil || len(ledger.Orders) != 1 || len(ledger.Orders[0].Refunds) != 1 ||
		ledger.Orders[0].Refunds[0].Amount != 1200 || ledger.Orders[0].Refunds[0].Executions != 1 {
		t.Fatalf("trade ledger: %s (%v)", body, err)
	}
	if _, body := call(t, "GET", url+"/_sim/trade/check", "", ""); !strings.Contains(body, `"violations":[]`) {
		t.Fatalf("trade check: %s", body)
	}
}

// TestSandbox_TradeOnlyConfig: with a config of trade apps only, payd
// sandbox serves the trade simulator alone, and --app-id (with --salt and
// --token) defines an ecpay app beside it instead of indexing an ecpay app
// the config does not have (it panicked).
func TestSandbox_TradeOnlyConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "platform.pem")
	if _, _, err := sandbox.PlatformKey(keyFile); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, `database:
  dsn: ${TEST_DSN}
douyin:
  trade:
    base_url: http://127.0.0.1:1
  apps:
    - app_id: tt-only-trade
      api: trade
      client_secret: ${PAYD_CLIENT_SECRET}
      platform_public_key_file: `+keyFile+`.pub
server:
  admin_token: ${PAYD_ADMIN_TOKEN}
log:
  level: warn
`)
	e.vars["PAYD_CLIENT_SECRET"] = "only-trade-client-secret"
	for _, tc := range []struct {
		args []string
		want []string
		not  string
	}{
		{nil, []string{"trade simulator on ", "(app tt-only-trade)"}, "douyin simulator on"},
		{[]string{"--app-id", "tt-ecpay-beside", "--salt", "beside-salt", "--token", "beside-token"},
			[]string{"trade simulator on ", "douyin simulator on ", "(app tt-ecpay-beside)"}, ""},
	} {
		args := append([]string{"sandbox", "--listen", "127.0.0.1:0", "--trade-key", keyFile}, tc.args...)
		stdout, stderr, cancel, done := e.background(args...)
		waitFor(t, 10*time.Second, "the simulators of "+strings.Join(tc.args, " "), func() bool {
			select {
			case err := <-done:
				t.Fatalf("payd sandbox %v ended: %v\n%s", tc.args, err, stderr.String())
			default:
			}
			return strings.Contains(stdout.String(), "trade simulator on ")
		})
		has(t, stdout.String(), tc.want...)
		if tc.not != "" && strings.Contains(stdout.String(), tc.not) {
			t.Errorf("payd sandbox %v: %q", tc.args, stdout.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("payd sandbox %v: %v", tc.args, err)
		}
	}
}
