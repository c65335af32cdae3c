package ordersign_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/douyin/tradesim"
	"github.com/payd/payd/internal/ordersign"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

const orderData = `{"skuList":[{"skuId":"s1","price":1500,"quantity":2,"title":"演出票","imageList":["https://example.com/1.png"],"type":401}],"outOrderNo":"os-1","totalAmount":3000,"payExpireSeconds":600}`

// signConfig is a config with the world's trade app (signing with key)
// beside an ecpay app and a trade app without a private key.
func signConfig(t *testing.T, w *testworld.World, key *rsa.PrivateKey) *config.Config {
	t.Helper()
	spki, _ := x509.MarshalPKIXPublicKey(w.Trade.PublicKey())
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	priv := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	cfg := config.Default()
	cfg.Douyin.Apps = []config.App{
		{AppID: testworld.TradeAppID, API: config.APITrade, PlatformPublicKey: pub, PrivateKey: priv, KeyVersion: "3",
			OrderEntrySchema: config.EntrySchema{Path: "pages/order/detail"}},
		{AppID: testworld.AppID, API: config.APIEcpay},
		{AppID: "tt-nokey", API: config.APITrade, PlatformPublicKey: pub, KeyVersion: "1"},
	}
	return cfg
}

// TestSigner_Sign: payd signs tt.requestOrder's order data with the app's
// key; the trade simulator accepts the signature over the exact text
// returned and creates the order; payd knew the order before the payment
// callback (recorded UNKNOWN, not queried during its pay window), and the
// callback brings it to SUCCESS with its pay channel. Bad requests are
// refused naming the field, with nothing written.
func TestSigner_Sign(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	w := testworld.New(t, testworld.Options{Callbacks: true, Trade: &testworld.TradeOptions{
		Sim: func(c *tradesim.Config) { c.Apps[0].OrderKey = &key.PublicKey },
	}})
	ctx := context.Background()
	s := ordersign.New(signConfig(t, w, key), w.Store)

	signed, err := s.Sign(ctx, api.SignOrderRequest{AppID: testworld.TradeAppID, Data: []byte(orderData)}, w.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	auth, err := trade.ParseAuthorization(signed.ByteAuthorization)
	if err != nil || auth.AppID != testworld.TradeAppID || auth.KeyVersion != "3" || !strings.HasPrefix(signed.ByteAuthorization, `SHA256-RSA2048 appid="`) {
		t.Fatalf("header %q: %v", signed.ByteAuthorization, err)
	}
	if !strings.Contains(signed.Data, `"orderEntrySchema":{"params":"{\"out_order_no\":\"os-1\"}","path":"pages/order/detail"}`) || !strings.Contains(signed.Data, "演出票") {
		t.Fatalf("data: %s", signed.Data)
	}
	o, err := w.Store.GetOrder(ctx, testworld.TradeAppID, "os-1")
	if err != nil || o.Status != state.OrderUnknown || o.TotalAmount != 3000 || o.CheckAt == nil || (o.CheckAt.Sub(w.Clock.Now())-11*time.Minute).Abs() > time.Millisecond {
		t.Fatalf("expected order: %+v %v", o, err)
	}
	w.Pass()
	if h := w.TradeView("os-1"); len(h.Attempts) != 0 {
		t.Fatalf("queried during the pay window: %+v", h.Attempts)
	}

	if _, err := w.Trade.RequestOrder(testworld.TradeAppID, strings.Replace(signed.Data, "3000", "30", 1), signed.ByteAuthorization); err == nil {
		t.Fatal("the simulator took altered order data")
	}
	orderID, err := w.Trade.RequestOrder(testworld.TradeAppID, signed.Data, signed.ByteAuthorization)
	if err != nil {
		t.Fatalf("tt.requestOrder: %v", err)
	}
	w.Advance(time.Minute)
	if err := w.Trade.Pay(orderID, 2); err != nil {
		t.Fatal(err)
	}
	// The payment callback is delivered on the wall clock.
	for i := 0; i < 300 && len(w.TradeView("os-1").Callbacks) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	w.Converge(3, 2*time.Second, func() bool {
		o, _ := w.Store.GetOrder(ctx, testworld.TradeAppID, "os-1")
		return o != nil && o.Status == state.OrderSuccess
	})
	o, _ = w.Store.GetOrder(ctx, testworld.TradeAppID, "os-1")
	if o.DouyinOrderID != orderID || o.PayChannel != 2 || o.PaidAt == nil {
		t.Fatalf("paid order: %+v", o)
	}

	if _, err := s.Sign(ctx, api.SignOrderRequest{AppID: testworld.TradeAppID, Data: []byte(orderData)}, w.Clock.Now()); err != nil {
		t.Fatalf("signing again: %v", err)
	}
	for _, tc := range []struct{ app, data, want string }{
		{testworld.TradeAppID, strings.Replace(orderData, `"totalAmount":3000`, `"totalAmount":2999`, 1), "known with total_amount 3000, not 2999"},
		{testworld.TradeAppID, `{"outOrderNo":"os-2","totalAmount":100}`, "data.skuList: required"},
		{testworld.TradeAppID, `{"skuList":[{}],"totalAmount":100}`, "data.outOrderNo: required"},
		{testworld.TradeAppID, `[1]`, "data: want the JSON object"},
		{testworld.AppID, orderData, "speaks ecpay"},
		{"tt-nokey", orderData, "douyin.apps[2].private_key_file: required to sign order data"},
		{"", orderData, "app_id: required when several apps are configured"},
	} {
		_, err := s.Sign(ctx, api.SignOrderRequest{AppID: tc.app, Data: []byte(tc.data)}, w.Clock.Now())
		if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want %q", tc.app, tc.data, err, tc.want)
		}
	}
	if _, err := w.Store.GetOrder(ctx, testworld.TradeAppID, "os-2"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a refused request recorded an order: %v", err)
	}
	w.TradeCheckClean()
}
