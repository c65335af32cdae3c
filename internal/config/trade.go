package config

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/trade"
)

// Trade configures the general trade system's client, shared by every app
// with api: trade.
type Trade struct {
	// BaseURL is the scheme and host of the trade API and of its
	// client_token endpoint; default https://open.douyin.com. The special
	// value "sandbox" means https://open-sandbox.douyin.com; a simulator's
	// URL (payd sandbox) works too. Read it through URL.
	BaseURL string `yaml:"base_url"`
	// Limits are per-app rates in calls per second, keyed by endpoint name
	// (order_query, query_cps, refund_create, refund_query,
	// refund_audit_callback, settle_create, settle_query). Douyin documents
	// none: default 30 each; keys given replace only those defaults.
	Limits map[string]float64 `yaml:"limits"`
}

// EntrySchema is the order_entry_schema sent with a trade refund: the
// mini-program page of the order.
type EntrySchema struct {
	// Path is the page, without a leading / or a query; at most 512 bytes.
	Path string `yaml:"path"`
	// Params is a JSON object template, at most 512 bytes once filled;
	// {out_order_no} is replaced by the order's number. Default
	// {"out_order_no":"{out_order_no}"}.
	Params string `yaml:"params"`
}

// The settle rules and settlers of a trade app.
const (
	RulePayment    = "payment"
	RuleFulfilment = "fulfilment"
	SettledByPayd  = "payd"
	SettledByDy    = "douyin"
)

// maxSettleDays bounds settle_days: a year.
const maxSettleDays = 365

// URL returns the trade base URL to call, with "sandbox" resolved.
func (t Trade) URL() string {
	if t.BaseURL == SandboxName {
		return trade.SandboxURL
	}
	return t.BaseURL
}

// tradeAPIs are the endpoint names Trade.Limits accepts, with their
// limiter buckets.
var tradeAPIs = map[string]douyin.API{
	string(trade.APIOrderQuery):   douyin.APITradeOrderQuery,
	string(trade.APIQueryCPS):     douyin.APITradeQueryCPS,
	string(trade.APIRefundCreate): douyin.APITradeRefundCreate,
	string(trade.APIRefundQuery):  douyin.APITradeRefundQuery,
	string(trade.APIRefundAudit):  douyin.APITradeRefundAudit,
	string(trade.APISettleCreate): douyin.APITradeSettleCreate,
	string(trade.APISettleQuery):  douyin.APITradeSettleQuery,
}

// TradeAPINames are the keys Trade.Limits accepts, sorted.
func TradeAPINames() []string {
	names := make([]string, 0, len(tradeAPIs))
	for k := range tradeAPIs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// DefaultTradeLimits returns the trade limits payd assumes: 30 calls per
// second per app and endpoint.
func DefaultTradeLimits() map[string]float64 {
	m := make(map[string]float64, len(tradeAPIs))
	for k := range tradeAPIs {
		m[k] = 30
	}
	return m
}

// LimiterLimits returns Limits keyed by the limiter's bucket names.
func (t Trade) LimiterLimits() map[douyin.API]float64 {
	out := make(map[douyin.API]float64, len(t.Limits))
	for k, v := range t.Limits {
		if api, ok := tradeAPIs[k]; ok {
			out[api] = v
		}
	}
	return out
}

// IsTrade reports whether the app speaks the general trade system.
func (a App) IsTrade() bool { return a.API == APITrade }

// TradeKeys reads a trade app's platform public key and, when configured,
// its application private key (nil when not), from the file or the
// environment-given PEM.
func (a App) TradeKeys() (*rsa.PublicKey, *rsa.PrivateKey, error) {
	pubPEM, err := pemOf(a.PlatformPublicKeyFile, a.PlatformPublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("platform_public_key_file: %w", err)
	}
	pub, err := trade.ParsePublicKey(pubPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("platform public key: %w", err)
	}
	if a.PrivateKeyFile == "" && a.PrivateKey == "" {
		return pub, nil, nil
	}
	privPEM, err := pemOf(a.PrivateKeyFile, a.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("private_key_file: %w", err)
	}
	priv, err := trade.ParsePrivateKey(privPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("private key: %w", err)
	}
	return pub, priv, nil
}

func pemOf(file, inline string) ([]byte, error) {
	if inline != "" {
		return []byte(inline), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// EntryParams fills the app's order_entry_schema params for an order.
func (s EntrySchema) EntryParams(outOrderNo string) string {
	tmpl := s.Params
	if tmpl == "" {
		tmpl = `{"out_order_no":"{out_order_no}"}`
	}
	quoted, _ := json.Marshal(outOrderNo)
	return strings.ReplaceAll(tmpl, "{out_order_no}", strings.Trim(string(quoted), `"`))
}

// validateTrade checks what a trade app needs; ap is the app's path.
func (p *problems) validateTrade(ap string, a App) {
	if a.ClientKey != "" && strings.TrimSpace(a.ClientKey) != a.ClientKey {
		p.add(ap+".client_key", "has leading or trailing white space")
	}
	p.secret(ap+".client_secret", a.ClientSecret, 0)
	p.fromEnv(ap+".client_secret", a.ClientSecret, "")
	if pem, field := p.keyPair(ap, "platform_public_key", a.PlatformPublicKeyFile, a.PlatformPublicKey, true); pem != nil {
		if _, err := trade.ParsePublicKey(pem); err != nil {
			p.add(field, "%v (want the PEM of an RSA public key, PKCS#1 or SPKI)", err)
		}
	}
	if pem, field := p.keyPair(ap, "private_key", a.PrivateKeyFile, a.PrivateKey, false); pem != nil {
		if _, err := trade.ParsePrivateKey(pem); err != nil {
			p.add(field, "%v (want the PEM of an RSA private key, PKCS#1 or PKCS#8)", err)
		}
	}
	if a.KeyVersion == "" || strings.TrimSpace(a.KeyVersion) != a.KeyVersion {
		p.add(ap+".key_version", "%q: want the console's key version, such as \"1\"", a.KeyVersion)
	}
	p.oneOf(ap+".settle_rule", a.SettleRule, RulePayment, RuleFulfilment)
	p.between(ap+".settle_days", a.SettleDays, 0, maxSettleDays)
	p.oneOf(ap+".settled_by", a.SettledBy, SettledByPayd, SettledByDy)
	p.entrySchema(ap+".order_entry_schema", a.OrderEntrySchema)
	p.auditPolicy(ap+".audit", a.Audit)
}

// fromEnv reports a secret written into the YAML itself: it must come from
// ${NAME} (or, with file != "", from the file).
func (p *problems) fromEnv(path, s, fileField string) {
	if s == "" || len(p.env[path]) > 0 {
		return
	}
	way := "write it as ${NAME} and set NAME in the environment"
	if fileField != "" {
		way += ", or name a PEM file with " + fileField
	}
	p.add(path, "must not be written in the config file: %s", way)
}

// keyPair checks a key given by file or by environment: one of the two
// (required or not), a readable file, an inline PEM only from ${NAME}. It
// returns the PEM and the field it came from, nil when there is none to
// parse.
func (p *problems) keyPair(ap, name, file, inline string, required bool) ([]byte, string) {
	fileField, inlineField := ap+"."+name+"_file", ap+"."+name
	switch {
	case file != "" && inline != "":
		p.add(inlineField, "set %s or %s, not both", name, name+"_file")
	case file == "" && inline == "":
		if required {
			p.add(fileField, "required for api: trade (or %s from the environment)", name)
		}
	case inline != "":
		if len(p.env[inlineField]) == 0 {
			p.fromEnv(inlineField, inline, fileField)
			return nil, ""
		}
		return []byte(inline), inlineField
	default:
		b, err := os.ReadFile(file)
		if err != nil {
			p.add(fileField, "%v", err)
			return nil, ""
		}
		return b, fileField
	}
	return nil, ""
}

func (p *problems) entrySchema(path string, s EntrySchema) {
	if s.Path == "" && s.Params == "" {
		return
	}
	switch {
	case s.Path == "":
		p.add(path+".path", "required when params is set")
	case strings.HasPrefix(s.Path, "/") || strings.Contains(s.Path, "?"):
		p.add(path+".path", "%q: want a page path without a leading / or a query, such as pages/order/detail", s.Path)
	case len(s.Path) > 512:
		p.add(path+".path", "%d bytes: at most 512", len(s.Path))
	}
	params := s.EntryParams("x")
	var obj map[string]any
	if err := json.Unmarshal([]byte(params), &obj); err != nil {
		p.add(path+".params", "not a JSON object once {out_order_no} is filled: %v", err)
	} else if len(params) > 512 {
		p.add(path+".params", "%d bytes: at most 512", len(params))
	}
}
