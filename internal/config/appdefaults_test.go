package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const sharedDoc = `
douyin:
  app_defaults:
    trade:
      platform_public_key_file: PUB
      settle_rule: fulfilment
      settle_days: 3
      client_secret: ${SECRET}
      audit: {default: agree}
    ecpay:
      settle_period: 240h
  apps:
    - {app_id: tt-e1, salt: s, token: t}
    - {app_id: tt-t1, api: trade}
    - {app_id: tt-t2, api: trade, settle_days: 5, client_secret: "${OTHER}"}
`

// TestConfig_AppDefaults: an app takes each field it leaves out from its
// API's app_defaults, its own value wins, the other API's defaults never
// apply, and what no default names keeps DefaultApp's value.
func TestConfig_AppDefaults(t *testing.T) {
	pubFile, _, _ := testPEMs(t, t.TempDir())
	doc := strings.ReplaceAll(sharedDoc, "PUB", pubFile)
	c := mustParse(t, doc, map[string]string{"SECRET": "cs-shared", "OTHER": "cs-2"})
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	e, t1, t2 := c.Douyin.Apps[0], c.Douyin.Apps[1], c.Douyin.Apps[2]
	if e.SettlePeriod != D(240*time.Hour) || e.SettleRule != RulePayment || e.PlatformPublicKeyFile != "" || e.Audit.Set() {
		t.Fatalf("ecpay app: %#v, rule %s", e, e.SettleRule)
	}
	if t1.PlatformPublicKeyFile != pubFile || t1.SettleRule != RuleFulfilment || t1.SettleDays != 3 || t1.ClientSecret != "cs-shared" || !t1.Audit.Set() {
		t.Fatalf("trade app 1: %#v, rule %s", t1, t1.SettleRule)
	}
	if t1.SettlePeriod != D(7*24*time.Hour) || t1.KeyVersion != "1" || !t1.AutoSettle {
		t.Fatalf("trade app 1 lost DefaultApp's values: %#v", t1)
	}
	if t2.SettleDays != 5 || t2.ClientSecret != "cs-2" || t2.SettleRule != RuleFulfilment {
		t.Fatalf("trade app 2: %#v", t2)
	}
	// payd config prints a shared secret masked, as an app's.
	if r := c.Redacted(); r.Douyin.AppDefaults[APITrade].ClientSecret != Mask || c.Douyin.AppDefaults[APITrade].ClientSecret != "cs-shared" {
		t.Fatalf("redacted shared client_secret: %q (the config's own copy: %q)", r.Douyin.AppDefaults[APITrade].ClientSecret, c.Douyin.AppDefaults[APITrade].ClientSecret)
	}
	// A shared secret from the environment is still named by its variable.
	c = mustParse(t, doc, map[string]string{"OTHER": "cs-2"})
	want := []string{"douyin.apps[1].client_secret: required (the config reads it from SECRET: set it in the environment)"}
	if got := lines(c.Validate()); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestConfig_AppDefaultsErrors(t *testing.T) {
	pubFile, _, _ := testPEMs(t, t.TempDir())
	tests := []struct {
		name, old, new string
		want           []string
	}{
		{"unknown API", "    ecpay:\n", "    wechat:\n", []string{`douyin.app_defaults.wechat: unknown API "wechat": the keys are ecpay and trade`}},
		{"app id", "      settle_rule: fulfilment\n", "      settle_rule: fulfilment\n      app_id: tt-x\n", []string{"douyin.app_defaults.trade.app_id: set per app, in douyin.apps; remove it here"}},
		{"api", "      settle_rule: fulfilment\n", "      settle_rule: fulfilment\n      api: ecpay\n", []string{`douyin.app_defaults.trade.api: "ecpay" under trade: the key names the API; remove it here`}},
		{"bad shared value", "settle_days: 3", "settle_days: 400", []string{"douyin.apps[1].settle_days: 400: want 0..365"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.ReplaceAll(strings.Replace(sharedDoc, tt.old, tt.new, 1), "PUB", pubFile)
			c := mustParse(t, doc, map[string]string{"SECRET": "cs-shared", "OTHER": "cs-2"})
			if got := lines(c.Validate()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	// A typo in a shared key is caught where it is written.
	_, err := parse(t, strings.Replace(sharedDoc, "settle_rule:", "setle_rule:", 1), nil)
	if err == nil || !strings.Contains(err.Error(), "douyin.app_defaults.trade.setle_rule") || !strings.Contains(err.Error(), "settle_rule") {
		t.Fatalf("typo: %v", err)
	}
}
