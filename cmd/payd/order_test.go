package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/douyin/trade"
)

// TestOrderSign: payd order sign prints the signed order data and its
// Byte-Authorization, verifiable with the app's public key over the exact
// data printed, and records the order; bad data is refused naming the
// field.
func TestOrderSign(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	cfg := strings.Replace(baseConfig, "  apps:\n", "  apps:\n    - app_id: tt-cli-trade\n      api: trade\n      client_secret: ${PAYD_CLIENT_SECRET}\n"+
		"      platform_public_key_file: PUB\n      private_key_file: PRIV\n      key_version: \"2\"\n", 1)
	e := newEnv(t, cfg)
	pub := e.write("platform.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})))
	priv := e.write("app.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})))
	e.write("config.yaml", strings.NewReplacer("PUB", pub, "PRIV", priv).Replace(cfg))
	e.vars["PAYD_CLIENT_SECRET"] = "cli-client-secret"
	data := e.write("order.json", `{"skuList":[{"skuId":"s","price":500,"quantity":1,"title":"t"}],"outOrderNo":"cli-o1","totalAmount":500}`)

	out := e.run("order", "sign", "--app", "tt-cli-trade", "-f", data).ok(t).stdout
	var got api.SignedOrder
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.OutOrderNo != "cli-o1" || got.TotalAmount != 500 {
		t.Fatalf("output: %s %v", out, err)
	}
	a, err := trade.ParseAuthorization(got.ByteAuthorization)
	if err != nil || a.KeyVersion != "2" {
		t.Fatalf("header %q: %v", got.ByteAuthorization, err)
	}
	if err := trade.VerifyAuthorization(&k.PublicKey, "POST", "/requestOrder", a.Timestamp, a.NonceStr, []byte(got.Data), a.Signature); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if n := e.count("orders"); n != 1 {
		t.Fatalf("orders recorded: %d", n)
	}
	e.run("order", "sign", "--app", "tt-cli-trade", `{"skuList":[{}],"outOrderNo":"cli-o2"}`).fails(t, "data.totalAmount: required, positive fen")
	e.run("order", "sign", "--app", testApp, `{}`).fails(t, "app_id: tt-cli-test speaks ecpay, whose orders payd creates itself (POST /v1/orders)")
}
