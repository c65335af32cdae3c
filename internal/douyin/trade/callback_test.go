package trade

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/payd/payd/internal/douyin"
)

const legacyToken = "ecpay-token"

func testKeys(t testing.TB) Keys {
	pub := vecPublic(t, "platform")
	return Keys{
		PublicKey: func(appID string) *rsa.PublicKey {
			if appID == "tt0123456789abcdef01" {
				return pub
			}
			return nil
		},
		LegacyToken: func(appID string) string {
			if appID == "tt0123456789abcdef01" {
				return legacyToken
			}
			return ""
		},
	}
}

func TestKeys_VerifyVectors(t *testing.T) {
	v := loadVectors(t)
	keys := testKeys(t)
	for _, cb := range v.Callback {
		t.Run(cb.ID, func(t *testing.T) {
			body := b64(t, cb.BodyB64)
			h := Headers{Timestamp: cb.Headers["Byte-Timestamp"], Nonce: cb.Headers["Byte-Nonce-Str"], Signature: cb.Headers["Byte-Signature"]}
			got, err := keys.Verify(body, h)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			var want struct {
				Type string          `json:"type"`
				Msg  json.RawMessage `json:"msg"`
			}
			if err := json.Unmarshal(cb.Decoded, &want); err != nil {
				t.Fatal(err)
			}
			if string(got.Type) != want.Type || got.AppID != "tt0123456789abcdef01" || got.Signature != h.Signature {
				t.Errorf("got %+v", got)
			}
			var msg any
			switch got.Type {
			case CallbackPayment:
				msg = got.Payment
			case CallbackRefund:
				msg = got.Refund
			case CallbackPreCreateRefund:
				msg = got.PreCreateRefund
			}
			wantMsg := reflect.New(reflect.TypeOf(msg).Elem()).Interface()
			if err := json.Unmarshal(want.Msg, wantMsg); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(msg, wantMsg) {
				t.Errorf("msg\n got %+v\nwant %+v", msg, wantMsg)
			}
			for _, mf := range cb.MustFail {
				mh := Headers{Timestamp: mf.Timestamp, Nonce: mf.Nonce, Signature: h.Signature}
				if _, err := keys.Verify(b64(t, mf.BodyB64), mh); !errors.Is(err, ErrBadSignature) {
					t.Errorf("must_fail %q: %v", mf.Why, err)
				}
			}
		})
	}
}

func TestKeys_VerifyTypedMessages(t *testing.T) {
	key := vecPrivate(t, "platform")
	keys := testKeys(t)
	app := "tt0123456789abcdef01"
	cases := []struct {
		typ     CallbackType
		msg     map[string]any
		subject string
	}{
		{CallbackPayment, map[string]any{"app_id": app, "order_id": "motb1", "status": "SUCCESS"}, "motb1"},
		{CallbackRefund, map[string]any{"app_id": app, "refund_id": "r1", "out_refund_no": ""}, "r1"},
		{CallbackSettle, map[string]any{"app_id": app, "settle_id": "ots1", "out_settle_no": "ots1", "is_auto_settle": true}, "ots1"},
		{CallbackPreCreateRefund, map[string]any{"app_id": app, "refund_id": "r2", "order_id": "motb1", "refund_reason": []string{"买错了"}}, "r2"},
	}
	for _, tc := range cases {
		body, h, err := EncodeCallback(key, tc.typ, tc.msg, "1767240001", "n1")
		if err != nil {
			t.Fatal(err)
		}
		cb, err := keys.Verify(body, h)
		if err != nil || cb.SubjectNo != tc.subject || cb.Type != tc.typ {
			t.Errorf("%s: %+v (%v)", tc.typ, cb, err)
		}
	}
	if body, h, _ := EncodeCallback(key, CallbackSettle, map[string]any{"app_id": app, "settle_id": "ots1", "is_auto_settle": true}, "1", "n"); true {
		cb, err := keys.Verify(body, h)
		if err != nil || !cb.Settle.IsAutoSettle {
			t.Errorf("auto settle: %+v %v", cb, err)
		}
	}
}

func TestKeys_VerifyLegacy(t *testing.T) {
	msg := `{"appid":"tt0123456789abcdef01","cp_orderno":"po-1","status":"SUCCESS","total_amount":1990}`
	body, err := douyin.EncodeCallback(douyin.CallbackPayment, msg, legacyToken, "1767240001", "n1")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := testKeys(t).Verify(body, Headers{})
	if err != nil || cb.Legacy == nil || cb.Legacy.Payment.CPOrderNo != "po-1" || cb.SubjectNo != "po-1" {
		t.Fatalf("legacy: %+v (%v)", cb, err)
	}
	bad, _ := douyin.EncodeCallback(douyin.CallbackPayment, msg, "other-token", "1767240001", "n1")
	if _, err := testKeys(t).Verify(bad, Headers{}); !errors.Is(err, douyin.ErrBadSignature) {
		t.Errorf("legacy with the wrong token: %v", err)
	}
}

func TestKeys_VerifyRefuses(t *testing.T) {
	key := vecPrivate(t, "platform")
	app := "tt0123456789abcdef01"
	signed := func(typ CallbackType, msg any) ([]byte, Headers) {
		b, h, err := EncodeCallback(key, typ, msg, "1", "n")
		if err != nil {
			t.Fatal(err)
		}
		return b, h
	}
	good, gh := signed(CallbackPayment, map[string]any{"app_id": app, "order_id": "o"})
	unknown, uh := signed("bill", map[string]any{"app_id": app})
	noSubject, nh := signed(CallbackRefund, map[string]any{"app_id": app})
	otherApp, oh := signed(CallbackPayment, map[string]any{"app_id": "tt-other", "order_id": "o"})
	big := []byte(`{"version":"3.0","msg":"` + strings.Repeat("a", MaxCallbackBody) + `"}`)
	cases := []struct {
		name string
		body []byte
		h    Headers
		want error
	}{
		{"too large", big, gh, ErrCallbackTooLarge},
		{"not json", []byte("<html>"), gh, ErrMalformedCallback},
		{"no version nor msg_signature", []byte(`{"type":"payment","msg":"{}"}`), gh, ErrUnroutable},
		{"version 4.0", []byte(`{"version":"4.0","type":"payment","msg":"{}"}`), gh, ErrUnroutable},
		{"no signature header", good, Headers{Timestamp: "1", Nonce: "n"}, ErrBadSignature},
		{"wrong nonce", good, Headers{Timestamp: "1", Nonce: "m", Signature: gh.Signature}, ErrBadSignature},
		{"signature not base64", good, Headers{Timestamp: "1", Nonce: "n", Signature: "!!"}, ErrBadSignature},
		{"unknown type", unknown, uh, ErrUnknownCallbackType},
		{"no refund_id", noSubject, nh, ErrMalformedCallback},
		{"no key for app", otherApp, oh, ErrNoKey},
		{"msg not json", []byte(`{"version":"3.0","type":"payment","msg":"x"}`), gh, ErrMalformedCallback},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if cb, err := testKeys(t).Verify(tc.body, tc.h); !errors.Is(err, tc.want) || cb != nil {
				t.Errorf("%v, want %v", err, tc.want)
			}
		})
	}
}

func TestPreCreateRefundAnswer(t *testing.T) {
	got := string(PreCreateRefundAnswer("pr-1", EntrySchema{Path: "pages/order", Params: `{"id":"1"}`}))
	want := `{"data":{"order_entry_schema":{"path":"pages/order","params":"{\"id\":\"1\"}"},"out_refund_no":"pr-1"},"err_no":0,"err_tips":"success"}`
	if got != want {
		t.Errorf("got %s", got)
	}
	if got := string(PreCreateRefundRefusal(1, "订单状态不允许退款")); got != `{"err_no":1,"err_tips":"订单状态不允许退款"}` {
		t.Errorf("refusal %s", got)
	}
}
