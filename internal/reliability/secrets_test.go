package reliability

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

// TestSecrets_NotInDebugLogs runs a whole scenario with the built binary at
// log.level debug — sandbox and serve as processes, faults injected,
// declarations through a file and the admin API, a forged callback, an
// admin request with a wrong token, status and plan — converges it, and
// finds neither the salt, nor the callback token, nor the admin token in
// any line any payd process wrote.
func TestSecrets_NotInDebugLogs(t *testing.T) {
	c := binConfig{
		AppID: "tt-secrets", Salt: "SALT-must-not-leak-5e0c1f", Token: "TOKEN-must-not-leak-a39d7b",
		AdminToken: "ADMIN-must-not-leak-77c2e81d", Level: "debug",
		Faults: `{err1000_after_effect: 0.1, http500: 0.1, hang_after_effect: 0.05, hang: 1500ms, callback_duplicate: 0.2, refund_channel_fail: 0.2}`,
	}
	w := newBinWorld(t, c)
	c = w.cfg
	w.startSandbox()
	const n = 20
	paid := w.simNow().Add(-8 * 24 * time.Hour)
	seeds := make([]douyinsim.SeedOrder, 0, n)
	var decl strings.Builder
	decl.WriteString("settlements:\n")
	for i := 0; i < n; i++ {
		seeds = append(seeds, douyinsim.SeedOrder{OutOrderNo: fmt.Sprintf("s%02d", i), TotalAmount: 1000, Status: "SUCCESS", PaidAt: paid})
		fmt.Fprintf(&decl, "  - {order: s%02d}\n", i)
	}
	w.simPost("/_sim/orders", map[string]any{"orders": seeds})
	file := filepath.Join(w.dir, "wishes.yaml")
	if err := os.WriteFile(file, []byte(decl.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w.run("migrate") // only migrate and serve create the database
	w.run("declare", "-f", file)
	serve := w.start("serve")

	admin := func(method, path, tok, body string) int {
		t.Helper()
		var resp *http.Response
		var err error
		for try := 0; try < 100; try++ { // serve may still be starting
			req, _ := http.NewRequest(method, "http://"+c.Admin+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			if resp, err = httpClient.Do(req); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < n; i += 2 {
		if code := admin(http.MethodPost, fmt.Sprintf("/v1/orders/s%02d/refunds", i), c.AdminToken, `{"key":"k`+fmt.Sprint(i)+`","amount":100,"reason":"secrets"}`); code != http.StatusCreated {
			t.Fatalf("declare refund through the admin API: %d", code)
		}
	}
	if code := admin(http.MethodGet, "/v1/status", c.AdminToken[:10]+"-wrong", ""); code != http.StatusUnauthorized {
		t.Fatalf("admin request with a wrong token: %d, want 401", code)
	}
	// A callback signed with the wrong token, and one signed right.
	for _, tok := range []string{"not-" + c.Token, c.Token} {
		msg := fmt.Sprintf(`{"appid":%q,"cp_refundno":"k0-1","cp_extra":"","status":"SUCCESS","refund_amount":100,"is_all_settled":false,"refunded_at":%d,"message":"","order_id":"x","refund_no":"y"}`, c.AppID, time.Now().Unix())
		body, err := douyin.EncodeCallback(douyin.CallbackRefund, msg, tok, fmt.Sprint(time.Now().Unix()), "nonce-"+tok[:3])
		if err != nil {
			t.Fatal(err)
		}
		resp, err := httpClient.Post("http://"+c.Callback+"/douyin/notify", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	st, err := state.Open(context.Background(), state.Options{DSN: filepath.Join(w.dir, "payd.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s, err := st.Summary(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if testworld.OpenIn(s) == 0 && s.Settlements[state.PhaseSucceeded] == n {
			break
		}
		if exited(serve) || time.Now().After(deadline) {
			t.Fatalf("scenario did not converge: %+v\n%s", s, tail(w.logs.String(), 4000))
		}
		time.Sleep(250 * time.Millisecond)
	}
	w.run("status")
	w.run("status", "s00")
	w.run("plan")
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait(t, serve, 30*time.Second)

	logs := w.logs.String()
	lines := strings.Split(logs, "\n")
	if !strings.Contains(logs, `"level":"debug"`) || len(lines) < 100 {
		t.Fatalf("expected a debug-level log of the whole scenario, got %d lines:\n%s", len(lines), tail(logs, 2000))
	}
	for _, secret := range []struct{ name, value string }{{"salt", c.Salt}, {"callback token", c.Token}, {"admin token", c.AdminToken}} {
		for i, line := range lines {
			if strings.Contains(line, secret.value) {
				t.Errorf("log line %d holds the %s: %s", i+1, secret.name, line)
			}
		}
	}
	t.Logf("secrets: %d log lines at debug level scanned; no salt, callback token or admin token", len(lines))
}
