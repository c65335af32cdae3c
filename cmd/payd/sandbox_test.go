package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// TestSandbox_ConfigAndFlags: the sandbox takes its settle period,
// processing delay and fault rates from the config file, the app's
// credentials and the notify URL from flags (which win over douyin.apps),
// signs its callbacks with the flag's token, and logs one line per call.
func TestSandbox_ConfigAndFlags(t *testing.T) {
	const (
		appID = "tt-sandbox-flags"
		salt  = "flag-salt-0123456789"
		token = "flag-token-0123456789"
	)
	callbacks := make(chan []byte, 64)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case callbacks <- b:
		default:
		}
		_, _ = io.WriteString(w, `{"err_no":0,"err_tips":"success"}`)
	}))
	defer recv.Close()

	cfg := strings.Replace(baseConfig, "level: warn", "level: debug\n  format: json", 1) + `sandbox:
  settle_period: 1h
  processing_delay: 10ms
  callback_scale: 0
  faults:
    refund_channel_fail: 1
`
	e := newEnv(t, cfg)
	stdout, stderr, cancel, done := e.background("sandbox", "--listen", "127.0.0.1:0",
		"--app-id", appID, "--salt", salt, "--token", token, "--notify-url", recv.URL)
	var url string
	waitFor(t, 10*time.Second, "the sandbox's address", func() bool {
		rest, ok := strings.CutPrefix(stdout.String(), "douyin simulator on ")
		url, _, _ = strings.Cut(rest, " ")
		return ok
	})
	has(t, stdout.String(), "(app "+appID+")")

	ctx := context.Background()
	client := func(app douyin.App) *douyin.Client {
		c, err := douyin.New(douyin.Options{BaseURL: url, Apps: []douyin.App{app}, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := client(douyin.App{AppID: appID, Salt: salt})
	paid := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	if code, body := call(t, "POST", url+"/_sim/orders", "", `{"orders":[
		{"out_order_no":"old","total_amount":1000,"paid_at":"`+paid+`"},
		{"out_order_no":"new","total_amount":1000},
		{"out_order_no":"ref","total_amount":1000}]}`); code != http.StatusOK {
		t.Fatalf("seed orders: %d %s", code, body)
	}
	for _, o := range []string{"old", "new"} {
		if _, err := c.Settle(ctx, douyin.SettleRequest{OutSettleNo: o + "-s-1", OutOrderNo: o, SettleDesc: "sandbox test"}); err != nil {
			t.Fatalf("settle %s: %v", o, err)
		}
	}
	if _, err := c.CreateRefund(ctx, douyin.CreateRefundRequest{OutOrderNo: "ref", OutRefundNo: "ref-r-1", Reason: "sandbox test", RefundAmount: 100}); err != nil {
		t.Fatalf("create_refund: %v", err)
	}
	final := func(status string) bool { return status == douyin.StatusSuccess || status == douyin.StatusFail }
	var old, fresh *douyin.SettleInfo
	var refund *douyin.RefundInfo
	waitFor(t, 10*time.Second, "the settlements and the refund to finish", func() bool {
		var err error
		if old, err = c.QuerySettle(ctx, douyin.QuerySettleRequest{OutSettleNo: "old-s-1"}); err != nil {
			t.Fatal(err)
		}
		if fresh, err = c.QuerySettle(ctx, douyin.QuerySettleRequest{OutSettleNo: "new-s-1"}); err != nil {
			t.Fatal(err)
		}
		if refund, err = c.QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: "ref-r-1"}); err != nil {
			t.Fatal(err)
		}
		return final(old.SettleStatus) && final(fresh.SettleStatus) && final(refund.RefundStatus)
	})
	// settle_period 1h from the file: paid 2 h ago settles, paid now does not.
	if old.SettleStatus != douyin.StatusSuccess || fresh.SettleStatus != douyin.StatusFail || !strings.Contains(fresh.Msg, "settle period") {
		t.Errorf("settle paid 2h ago: %+v; paid now: %+v; want SUCCESS and FAIL for the settle period", old, fresh)
	}
	// refund_channel_fail 1 from the file.
	if refund.RefundStatus != douyin.StatusFail {
		t.Errorf("refund %+v, want FAIL at the channel", refund)
	}
	// The flag's salt, not the config file's, signs requests.
	_, err := client(douyin.App{AppID: appID, Salt: testSalt}).QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: "ref-r-1"})
	var apiErr *douyin.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrNo != douyin.ErrNoBadSignature {
		t.Errorf("request signed with the config file's salt: %v, want 2008", err)
	}
	// Callbacks go to the flag's notify URL, signed with the flag's token.
	select {
	case body := <-callbacks:
		if _, err := douyin.VerifyCallback(body, token); err != nil {
			t.Errorf("callback does not verify with the flag's token: %v", err)
		}
		if _, err := douyin.VerifyCallback(body, testToken); !errors.Is(err, douyin.ErrBadSignature) {
			t.Errorf("callback verified with the config file's token: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback reached the notify URL")
	}

	// One log line per ecpay call, as many as the simulator answered.
	_, body := call(t, "GET", url+"/_sim/stats", "", "")
	var stats struct {
		Requests int `json:"requests"`
	}
	if err := json.Unmarshal([]byte(body), &stats); err != nil || stats.Requests < 7 {
		t.Fatalf("/_sim/stats: %s (%v)", body, err)
	}
	cancel()
	if err := stopped(t, done, 10*time.Second); err != nil {
		t.Fatalf("sandbox after cancel: %v", err)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			t.Errorf("log line is not JSON: %s", sc.Text())
			continue
		}
		if _, ok := entry["api"]; ok {
			lines++
		}
		for _, secret := range []string{salt, token, testSalt, testToken} {
			if strings.Contains(sc.Text(), secret) {
				t.Errorf("log line carries a secret: %s", sc.Text())
			}
		}
	}
	if lines != stats.Requests {
		t.Errorf("%d call log lines, want one per call (%d)", lines, stats.Requests)
	}
}

// twoApps is baseConfig with a second app: its own salt and token.
const twoApps = baseConfig + `sandbox:
  processing_delay: 10ms
  callback_scale: 0.001
`

// secondApp is the config's second app; its keys differ from the first's.
const (
	secondApp   = "tt-cli-second"
	secondSalt  = "second-salt-0123456789"
	secondToken = "second-token-0123456789"
)

// TestSandbox_EveryApp: the sandbox serves every app of douyin.apps, each
// with its own keys: a request signed with an app's salt is answered, one
// signed with the other app's salt is refused with 2008, and each app's
// callbacks verify with its own token only.
func TestSandbox_EveryApp(t *testing.T) {
	callbacks := make(chan []byte, 64)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case callbacks <- b:
		default:
		}
		_, _ = io.WriteString(w, `{"err_no":0,"err_tips":"success"}`)
	}))
	defer recv.Close()
	cfg := strings.Replace(twoApps, "      token: ${PAYD_TOKEN}\n", "      token: ${PAYD_TOKEN}\n    - app_id: "+secondApp+
		"\n      salt: "+secondSalt+"\n      token: "+secondToken+"\n", 1)
	e := newEnv(t, cfg)
	stdout, _, cancel, done := e.background("sandbox", "--listen", "127.0.0.1:0", "--notify-url", recv.URL)
	defer func() {
		cancel()
		if err := stopped(t, done, 10*time.Second); err != nil {
			t.Errorf("sandbox after cancel: %v", err)
		}
	}()
	var url string
	waitFor(t, 10*time.Second, "the sandbox's address", func() bool {
		rest, ok := strings.CutPrefix(stdout.String(), "douyin simulator on ")
		url, _, _ = strings.Cut(rest, " ")
		return ok
	})
	has(t, stdout.String(), "(apps "+testApp+", "+secondApp+")")

	ctx := context.Background()
	apps := []struct{ id, salt, token, wrongSalt, wrongToken string }{
		{testApp, testSalt, testToken, secondSalt, secondToken},
		{secondApp, secondSalt, secondToken, testSalt, testToken},
	}
	for _, a := range apps {
		if code, body := call(t, "POST", url+"/_sim/orders", "", `{"orders":[{"app_id":"`+a.id+`","out_order_no":"o-1","total_amount":1000}]}`); code != http.StatusOK {
			t.Fatalf("seed an order of %s: %d %s", a.id, code, body)
		}
	}
	for _, a := range apps {
		c := sandboxClient(t, url, douyin.App{AppID: a.id, Salt: a.salt})
		if _, err := c.CreateRefund(ctx, douyin.CreateRefundRequest{OutOrderNo: "o-1", OutRefundNo: "o-1-r-1", Reason: "sandbox test", RefundAmount: 100}); err != nil {
			t.Fatalf("%s: create_refund signed with its salt: %v", a.id, err)
		}
		info, err := c.QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: "o-1-r-1"})
		if err != nil || info.RefundAmount != 100 {
			t.Errorf("%s: query_refund = %+v, %v", a.id, info, err)
		}
		_, err = sandboxClient(t, url, douyin.App{AppID: a.id, Salt: a.wrongSalt}).QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: "o-1-r-1"})
		var apiErr *douyin.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrNo != douyin.ErrNoBadSignature {
			t.Errorf("%s: request signed with the other app's salt: %v, want 2008", a.id, err)
		}
	}
	// One refund callback per app, each signed with its app's token.
	verified := map[string]bool{}
	for len(verified) < len(apps) {
		select {
		case body := <-callbacks:
			for _, a := range apps {
				if cb, err := douyin.VerifyCallback(body, a.token); err == nil {
					verified[a.id] = true
					if _, err := douyin.VerifyCallback(body, a.wrongToken); !errors.Is(err, douyin.ErrBadSignature) {
						t.Errorf("%s: callback %s verifies with the other app's token: %v", a.id, cb.Type, err)
					}
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("callbacks verified for %v only, want both apps", verified)
		}
	}
}

func sandboxClient(t *testing.T, url string, app douyin.App) *douyin.Client {
	t.Helper()
	c, err := douyin.New(douyin.Options{BaseURL: url, Apps: []douyin.App{app}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSandbox_FaultFlags: every fault of the simulator has a flag, named
// after its config key, checked like the config file.
func TestSandbox_FaultFlags(t *testing.T) {
	e := newEnv(t)
	e.run("sandbox", "--http500-after-effect", "1.5").fails(t, "--http500-after-effect 1.5: want a probability between 0 and 1")
	e.run("sandbox", "--callback-delay-max", "-1s").fails(t, "--callback-delay-max -1s: must not be negative")
	r := e.run("sandbox", "--help")
	for _, name := range []string{"err1000-no-effect", "err1000-after-effect", "http500", "http500-after-effect", "hang-after-effect",
		"hang", "callback-drop", "callback-duplicate", "callback-delay", "callback-delay-max", "refund-channel-fail"} {
		has(t, r.stdout, "--"+name+" ")
	}
}
