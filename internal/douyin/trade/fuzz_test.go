package trade

import (
	"encoding/base64"
	"testing"

	"github.com/payd/payd/internal/douyin"
)

// FuzzVerifySignature: VerifySignature never panics, and accepts only the
// platform key's own signature over exactly these bytes.
func FuzzVerifySignature(f *testing.F) {
	v := loadVectors(f)
	for _, cb := range v.Callback {
		body, _ := base64.StdEncoding.DecodeString(cb.BodyB64)
		f.Add(cb.Headers["Byte-Timestamp"], cb.Headers["Byte-Nonce-Str"], body, cb.Signature)
	}
	f.Add("", "", []byte{}, "")
	pub := vecPublic(f, "platform")
	key := vecPrivate(f, "platform")
	f.Fuzz(func(t *testing.T, ts, nonce string, body []byte, sig string) {
		if VerifySignature(pub, ts, nonce, body, sig) != nil {
			return
		}
		want, err := SignCallback(key, ts, nonce, body)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(sig)
		wantRaw, _ := base64.StdEncoding.DecodeString(want)
		if string(raw) != string(wantRaw) {
			t.Fatalf("accepted a signature the key did not make: %q", sig)
		}
	})
}

// FuzzParseCallback: Keys.Verify never panics, and whatever it accepts was
// signed with the platform key (RSA) or the legacy token (SHA1).
func FuzzParseCallback(f *testing.F) {
	v := loadVectors(f)
	for _, cb := range v.Callback {
		body, _ := base64.StdEncoding.DecodeString(cb.BodyB64)
		f.Add(body, cb.Headers["Byte-Timestamp"], cb.Headers["Byte-Nonce-Str"], cb.Signature)
	}
	legacy, _ := douyin.EncodeCallback(douyin.CallbackRefund, `{"appid":"tt0123456789abcdef01","cp_refundno":"r"}`, legacyToken, "1", "n")
	f.Add(legacy, "", "", "")
	f.Add([]byte(`{"version":"3.0","type":"payment","msg":"{\"app_id\":\"tt0123456789abcdef01\",\"order_id\":\"o\"}"}`), "1", "n", "AAAA")
	keys := testKeys(f)
	pub := vecPublic(f, "platform")
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce, sig string) {
		cb, err := keys.Verify(body, Headers{Timestamp: ts, Nonce: nonce, Signature: sig})
		if err != nil {
			if cb != nil {
				t.Fatal("a callback returned with an error")
			}
			return
		}
		if cb.Legacy != nil {
			if _, err := douyin.VerifyCallback(body, legacyToken); err != nil {
				t.Fatalf("accepted a legacy body the token did not sign: %v", err)
			}
			return
		}
		if err := VerifySignature(pub, ts, nonce, body, sig); err != nil {
			t.Fatalf("accepted an unsigned body: %v", err)
		}
	})
}
