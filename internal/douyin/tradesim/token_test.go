package tradesim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

type staticToken struct{ tok string }

func (s staticToken) Token(context.Context, string) (string, error) { return s.tok, nil }
func (s staticToken) Refused(_ context.Context, _, tok string) (string, error) {
	return tok, nil
}

// fetchToken asks the simulator directly and returns the token.
func fetchToken(t *testing.T, url, secret string) (string, int) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"grant_type": "client_credential", "client_key": app, "client_secret": secret})
	resp, err := http.Post(url+trade.TokenPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Data struct {
			AccessToken string `json:"access_token"`
			ErrorCode   int    `json:"error_code"`
		} `json:"data"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return ans.Data.AccessToken, ans.Data.ErrorCode
}

// queryWith calls order_query with a fixed token through the real client.
func queryWith(t *testing.T, b *bundle, tok, orderID string) error {
	t.Helper()
	c, err := trade.New(trade.Options{BaseURL: b.url, Tokens: staticToken{tok}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.QueryOrder(context.Background(), trade.OrderQueryRequest{AppID: app, OrderID: orderID})
	return err
}

func TestSim_ClientTokenExpires(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	tok, _ := fetchToken(t, b.url, "s3cret")
	if err := queryWith(t, b, tok, o.OrderID); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	b.sim.Advance(2 * time.Hour)
	wantErrNo(t, queryWith(t, b, tok, o.OrderID), trade.ErrNoTokenExpired)
}

func TestSim_ClientTokenNewestTwoLive(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	a, _ := fetchToken(t, b.url, "s3cret")
	bTok, _ := fetchToken(t, b.url, "s3cret")
	if err := queryWith(t, b, a, o.OrderID); err != nil {
		t.Fatalf("previous token within its 5 minutes: %v", err)
	}
	b.sim.Advance(TokenGrace)
	wantErrNo(t, queryWith(t, b, a, o.OrderID), trade.ErrNoTokenExpired)
	if err := queryWith(t, b, bTok, o.OrderID); err != nil {
		t.Fatalf("newest token: %v", err)
	}
	c, _ := fetchToken(t, b.url, "s3cret")
	_, _ = fetchToken(t, b.url, "s3cret")
	wantErrNo(t, queryWith(t, b, bTok, o.OrderID), trade.ErrNoTokenInvalid)
	if err := queryWith(t, b, c, o.OrderID); err != nil {
		t.Fatalf("second newest: %v", err)
	}
}

func TestSim_ClientTokenLimit10020(t *testing.T) {
	b := setup(t, func(c *Config) { c.TokenLimit = 3 })
	for i := 0; i < 3; i++ {
		if _, code := fetchToken(t, b.url, "s3cret"); code != 0 {
			t.Fatalf("fetch %d: %d", i, code)
		}
	}
	if _, code := fetchToken(t, b.url, "s3cret"); code != trade.TokenErrLimit {
		t.Fatalf("fourth fetch in 5 minutes: %d, want 10020", code)
	}
	b.sim.Advance(TokenWindow)
	if _, code := fetchToken(t, b.url, "s3cret"); code != 0 {
		t.Fatalf("after the window: %d", code)
	}
}

func TestSim_ClientTokenBadSecret10013(t *testing.T) {
	b := setup(t, nil)
	if _, code := fetchToken(t, b.url, "wrong"); code != trade.TokenErrBadSecret {
		t.Fatalf("code %d, want 10013", code)
	}
	tokens, _ := trade.NewTokens(trade.TokensOptions{BaseURL: b.url, Apps: []trade.Credential{{AppID: app, Secret: "wrong"}}, Store: newMemStore()})
	if _, err := tokens.Token(context.Background(), app); !errors.Is(err, trade.ErrConfig) {
		t.Fatalf("%v, want ErrConfig", err)
	}
}

func TestSim_ClientRefreshesRefusedToken(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	ctx := context.Background()
	if _, err := b.client.QueryOrder(ctx, trade.OrderQueryRequest{AppID: app, OrderID: o.OrderID}); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(3 * time.Hour) // the shared token expired at Douyin
	if _, err := b.client.QueryOrder(ctx, trade.OrderQueryRequest{AppID: app, OrderID: o.OrderID}); err != nil {
		t.Fatalf("after expiry: %v, want a refresh and one resend", err)
	}
}

// rawCall posts body to api with a fresh token.
func rawCall(t *testing.T, b *bundle, api trade.API, body string) (int, string) {
	t.Helper()
	tok, _ := fetchToken(t, b.url, "s3cret")
	req, _ := http.NewRequest(http.MethodPost, b.url+api.Path(), strings.NewReader(body))
	req.Header.Set("access-token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		ErrNo  int    `json:"err_no"`
		ErrMsg string `json:"err_msg"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return env.ErrNo, env.ErrMsg
}

func TestSim_StrictFields(t *testing.T) {
	b := setup(t, nil)
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	cases := []struct {
		api        trade.API
		body, name string
	}{
		{trade.APIOrderQuery, `{"order_id":"` + o.OrderID + `","extra":1}`, "extra"},
		{trade.APIOrderQuery, `{"order_id":12}`, "order_id"},
		{trade.APIRefundCreate, `{"order_id":"` + o.OrderID + `","refund_total_amount":1,"refund_reason":[]}`, "out_refund_no"},
		{trade.APIRefundCreate, `{"order_id":"x","out_refund_no":"r","refund_total_amount":"1","refund_reason":[]}`, "refund_total_amount"},
		{trade.APISettleCreate, `{"out_order_no":"po-1","out_settle_no":"s"}`, "settle_desc"},
		{trade.APISettleCreate, `{"out_order_no":"po-1","out_settle_no":"s","settle_desc":"d","settle_params":[]}`, "settle_params"},
	}
	for _, tc := range cases {
		errNo, msg := rawCall(t, b, tc.api, tc.body)
		if errNo != trade.ErrNoParam || !strings.Contains(msg, tc.name) {
			t.Errorf("%s %s: %d %q, want 10000 naming %s", tc.api, tc.body, errNo, msg, tc.name)
		}
	}
}

func TestSim_RateLimit12001(t *testing.T) {
	b := setup(t, func(c *Config) { c.Rate = 2 })
	o := b.seed(t, SeedOrder{OutOrderNo: "po-1", Items: oneItem(100)})
	var limited int
	for i := 0; i < 10; i++ {
		_, err := b.client.QueryOrder(context.Background(), trade.OrderQueryRequest{AppID: app, OrderID: o.OrderID})
		if trade.ErrNo(err) == trade.ErrNoTooFrequent {
			limited++
		}
	}
	if limited < 5 {
		t.Fatalf("%d of 10 calls at once answered 12001 at 2/s, want most", limited)
	}
}
