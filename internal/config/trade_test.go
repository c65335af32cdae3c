package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testPEMs writes a fresh RSA key pair (SPKI public, PKCS#8 private) into
// dir and returns the files and the public PEM.
func testPEMs(t *testing.T, dir string) (pubFile, privFile, pubPEM string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	pubPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	pubFile, privFile = filepath.Join(dir, "platform.pem"), filepath.Join(dir, "app.pem")
	if err := os.WriteFile(pubFile, []byte(pubPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pubFile, privFile, pubPEM
}

const tradeDoc = `
douyin:
  trade:
    base_url: sandbox
    limits: {refund_create: 20}
  apps:
    - app_id: tt-ecpay
      salt: s
      token: t
    - app_id: tt-trade
      api: trade
      client_secret: ${SECRET}
      platform_public_key_file: PUB
      private_key_file: PRIV
      key_version: "2"
      settle_rule: fulfilment
      settle_days: 3
      settled_by: douyin
      order_entry_schema: {path: pages/order, params: '{"no":"{out_order_no}"}'}
`

func TestConfig_TradeApp(t *testing.T) {
	pubFile, privFile, pubPEM := testPEMs(t, t.TempDir())
	doc := strings.NewReplacer("PUB", pubFile, "PRIV", privFile).Replace(tradeDoc)
	c := mustParse(t, doc, map[string]string{"SECRET": "cs-1"})
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Douyin.Trade.URL() != "https://open-sandbox.douyin.com" || c.Douyin.Trade.Limits["refund_create"] != 20 || c.Douyin.Trade.Limits["settle_query"] != 30 {
		t.Fatalf("trade section: %+v", c.Douyin.Trade)
	}
	e, a := c.Douyin.Apps[0], c.Douyin.Apps[1]
	if e.IsTrade() || e.SettleRule != RulePayment || e.SettleDays != 7 || e.KeyVersion != "1" {
		t.Fatalf("ecpay app defaults: %+v", e)
	}
	if !a.IsTrade() || a.ClientSecret != "cs-1" || a.KeyVersion != "2" || a.SettleRule != RuleFulfilment || a.SettleDays != 3 || a.SettledBy != SettledByDy {
		t.Fatalf("trade app: %#v %s %s", a, a.SettleRule, a.SettledBy)
	}
	if got := a.OrderEntrySchema.EntryParams(`o"1`); got != `{"no":"o\"1"}` {
		t.Fatalf("params: %s", got)
	}
	pub, priv, err := a.TradeKeys()
	if err != nil || pub == nil || priv == nil || pub.N.Cmp(priv.N) != 0 {
		t.Fatalf("keys: %v", err)
	}
	// The public key from the environment instead of a file.
	doc = strings.NewReplacer("platform_public_key_file: PUB", "platform_public_key: ${PUBPEM}", "PRIV", privFile).Replace(tradeDoc)
	c = mustParse(t, doc, map[string]string{"SECRET": "cs-1", "PUBPEM": pubPEM})
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate with the key from the environment: %v", err)
	}
	if r := c.Redacted(); r.Douyin.Apps[1].ClientSecret != Mask || r.Douyin.Apps[1].PlatformPublicKey != Mask {
		t.Fatalf("redacted: %#v", r.Douyin.Apps[1].ClientSecret)
	}
}

func TestConfig_TradeAppErrors(t *testing.T) {
	dir := t.TempDir()
	pubFile, privFile, _ := testPEMs(t, dir)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	const ap = "douyin.apps[1]."
	tests := []struct {
		name     string
		old, new string
		env      map[string]string
		want     []string
	}{
		{"api", "api: trade", "api: wechat", nil, []string{ap + `api: "wechat" is not an API payd speaks: use "ecpay" or "trade" (or leave it out for "ecpay")`}},
		{"secret unset", "", "", map[string]string{}, []string{ap + "client_secret: required (the config reads it from SECRET: set it in the environment)"}},
		{"secret in the file", "${SECRET}", "cs-in-yaml", nil, []string{ap + "client_secret: must not be written in the config file: write it as ${NAME} and set NAME in the environment"}},
		{"no public key", "platform_public_key_file: PUB", "", nil, []string{ap + "platform_public_key_file: required for api: trade (or platform_public_key from the environment)"}},
		{"public key in the file", "platform_public_key_file: PUB", "platform_public_key: inline", nil, []string{ap + "platform_public_key: must not be written in the config file: write it as ${NAME} and set NAME in the environment, or name a PEM file with " + ap + "platform_public_key_file"}},
		{"missing file", "PUB", "/nonexistent/platform.pem", nil, []string{ap + "platform_public_key_file: open /nonexistent/platform.pem: no such file or directory"}},
		{"not a key", "PRIV", garbage, nil, []string{ap + "private_key_file: douyin trade: private key: no PEM block (want the PEM of an RSA private key, PKCS#1 or PKCS#8)"}},
		{"public as private", "PRIV", "PUB", nil, []string{ap + `private_key_file: douyin trade: private key: PEM block "PUBLIC KEY", want RSA PRIVATE KEY or PRIVATE KEY (want the PEM of an RSA private key, PKCS#1 or PKCS#8)`}},
		{"rule", "settle_rule: fulfilment", "settle_rule: redeem", nil, []string{ap + `settle_rule: "redeem": want payment or fulfilment`}},
		{"days", "settle_days: 3", "settle_days: 400", nil, []string{ap + "settle_days: 400: want 0..365"}},
		{"settled by", "settled_by: douyin", "settled_by: me", nil, []string{ap + `settled_by: "me": want payd or douyin`}},
		{"key version", `key_version: "2"`, `key_version: ""`, nil, []string{ap + `key_version: "": want the console's key version, such as "1"`}},
		{"entry path", "path: pages/order", "path: /pages/order", nil, []string{ap + `order_entry_schema.path: "/pages/order": want a page path without a leading / or a query, such as pages/order/detail`}},
		{"entry params", `'{"no":"{out_order_no}"}'`, "'[1'", nil, []string{ap + "order_entry_schema.params: not a JSON object once {out_order_no} is filled: unexpected end of JSON input"}},
		{"trade limits", "refund_create: 20", "refund: 20", nil, []string{"douyin.trade.limits.refund: unknown trade API; want one of order_query, query_cps, refund_audit_callback, refund_create, refund_query, settle_create, settle_query"}},
		{"trade base url", "base_url: sandbox", "base_url: open.douyin.com", nil, []string{"douyin.trade.base_url: want an http:// or https:// URL with a host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tradeDoc
			if tt.old != "" {
				doc = strings.Replace(doc, tt.old, tt.new, 1)
			}
			doc = strings.NewReplacer("PUB", pubFile, "PRIV", privFile).Replace(doc)
			env := tt.env
			if env == nil {
				env = map[string]string{"SECRET": "cs-1"}
			}
			c := mustParse(t, doc, env)
			if got := lines(c.Validate()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
