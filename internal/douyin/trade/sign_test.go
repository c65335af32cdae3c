package trade

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"sync"
	"testing"
)

// vectors is testdata/douyin-trade-vectors.json.
type vectors struct {
	Keys map[string]struct {
		PKCS1  string `json:"private_key_pkcs1_pem"`
		PKCS8  string `json:"private_key_pkcs8_pem"`
		Public string `json:"public_key_pem"`
	} `json:"keys"`
	Request []struct {
		ID, Key                string
		AppID                  string `json:"app_id"`
		KeyVersion             string `json:"key_version"`
		Method, URI, Timestamp string
		Nonce                  string `json:"nonce_str"`
		BodyB64                string `json:"body_b64"`
		StringToSignB64        string `json:"string_to_sign_b64"`
		Signature              string
		Header                 map[string]string `json:"byte_authorization"`
	} `json:"request_signature"`
	Callback []struct {
		ID, Key   string
		Headers   map[string]string
		BodyB64   string `json:"body_b64"`
		StringB64 string `json:"string_to_verify_b64"`
		Signature string
		Decoded   json.RawMessage
		MustFail  []struct {
			Why, Timestamp string
			Nonce          string `json:"nonce_str"`
			BodyB64        string `json:"body_b64"`
			Signature      string
		} `json:"must_fail"`
	} `json:"callback_signature"`
}

var (
	vecOnce sync.Once
	vec     vectors
	vecErr  error
)

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	vecOnce.Do(func() {
		b, err := os.ReadFile("testdata/douyin-trade-vectors.json")
		if err != nil {
			vecErr = err
			return
		}
		vecErr = json.Unmarshal(b, &vec)
	})
	if vecErr != nil {
		t.Fatalf("vectors: %v", vecErr)
	}
	return &vec
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64: %v", err)
	}
	return b
}

func vecPrivate(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := ParsePrivateKey([]byte(loadVectors(t).Keys[name].PKCS8))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func vecPublic(t testing.TB, name string) *rsa.PublicKey {
	t.Helper()
	k, err := ParsePublicKey([]byte(loadVectors(t).Keys[name].Public))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKeys_AllForms(t *testing.T) {
	v := loadVectors(t)
	for name, k := range v.Keys {
		p1, err1 := ParsePrivateKey([]byte(k.PKCS1))
		p8, err8 := ParsePrivateKey([]byte(k.PKCS8))
		pub, errp := ParsePublicKey([]byte(k.Public))
		if err1 != nil || err8 != nil || errp != nil {
			t.Fatalf("%s: %v %v %v", name, err1, err8, errp)
		}
		if !p1.Equal(p8) || !p1.PublicKey.Equal(pub) {
			t.Errorf("%s: the three forms are not the same key", name)
		}
		pkcs1Pub := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
		if got, err := ParsePublicKey(pkcs1Pub); err != nil || !got.Equal(pub) {
			t.Errorf("%s: PKCS#1 public key: %v", name, err)
		}
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ParsePrivateKey([]byte(bad)); err == nil {
			t.Errorf("private %q: accepted", bad)
		}
		if _, err := ParsePublicKey([]byte(bad)); err == nil {
			t.Errorf("public %q: accepted", bad)
		}
	}
}

func TestSignAuthorization_Vectors(t *testing.T) {
	v := loadVectors(t)
	for _, r := range v.Request {
		t.Run(r.ID, func(t *testing.T) {
			body := b64(t, r.BodyB64)
			if got := requestString(r.Method, r.URI, r.Timestamp, r.Nonce, body); !bytes.Equal(got, b64(t, r.StringToSignB64)) {
				t.Fatalf("string to sign %q", got)
			}
			for _, form := range []string{"PKCS1", "PKCS8"} {
				pemText := v.Keys[r.Key].PKCS1
				if form == "PKCS8" {
					pemText = v.Keys[r.Key].PKCS8
				}
				key, err := ParsePrivateKey([]byte(pemText))
				if err != nil {
					t.Fatal(err)
				}
				sig, err := SignAuthorization(key, r.Method, r.URI, r.Timestamp, r.Nonce, body)
				if err != nil || sig != r.Signature {
					t.Fatalf("%s: signature %q (%v), want %q", form, sig, err, r.Signature)
				}
			}
			pub := vecPublic(t, r.Key)
			if err := VerifyAuthorization(pub, r.Method, r.URI, r.Timestamp, r.Nonce, body, r.Signature); err != nil {
				t.Errorf("verify: %v", err)
			}
			if err := VerifyAuthorization(pub, r.Method, r.URI, r.Timestamp, r.Nonce, append(body, ' '), r.Signature); !errors.Is(err, ErrBadSignature) {
				t.Errorf("verify changed body: %v", err)
			}
			want := Authorization{AppID: r.AppID, NonceStr: r.Nonce, Timestamp: r.Timestamp, KeyVersion: r.KeyVersion, Signature: r.Signature}
			if got := want.String(); got != r.Header["fully_quoted"] {
				t.Errorf("header\n got %s\nwant %s", got, r.Header["fully_quoted"])
			}
			for form, h := range r.Header {
				got, err := ParseAuthorization(h)
				if err != nil || got != want {
					t.Errorf("parse %s: %+v (%v)", form, got, err)
				}
			}
		})
	}
}

func TestSignOrderData_Vector(t *testing.T) {
	r := loadVectors(t).Request[0]
	a, err := SignOrderData(vecPrivate(t, "app"), r.AppID, r.KeyVersion, r.Timestamp, r.Nonce, b64(t, r.BodyB64))
	if err != nil || a.String() != r.Header["fully_quoted"] {
		t.Fatalf("order data header %q (%v)", a.String(), err)
	}
}

func TestParseAuthorization_Refuses(t *testing.T) {
	for _, h := range []string{
		``,
		`RSA appid="a",nonce_str="n",timestamp="1",key_version="1",signature="s"`,
		`SHA256-RSA2048 appid="a",nonce_str="n",timestamp="1",key_version="1"`,
		`SHA256-RSA2048 appid="a",nonce_str="n",timestamp="1",key_version="1",signature="s",appid="b"`,
		`SHA256-RSA2048 appid="a,nonce_str="n",timestamp="1",key_version="1",signature="s"`,
		`SHA256-RSA2048 appid="a",nonce_str="n",timestamp="1",key_version="1",signature="s",extra="x"`,
		`SHA256-RSA2048 appid`,
	} {
		if _, err := ParseAuthorization(h); !errors.Is(err, ErrBadAuthorization) {
			t.Errorf("%q: %v, want ErrBadAuthorization", h, err)
		}
	}
}

func TestVerifySignature_Vectors(t *testing.T) {
	v := loadVectors(t)
	for _, cb := range v.Callback {
		t.Run(cb.ID, func(t *testing.T) {
			pub := vecPublic(t, cb.Key)
			body := b64(t, cb.BodyB64)
			ts, nonce := cb.Headers["Byte-Timestamp"], cb.Headers["Byte-Nonce-Str"]
			if got := callbackString(ts, nonce, body); !bytes.Equal(got, b64(t, cb.StringB64)) {
				t.Fatalf("string to verify %q", got)
			}
			if err := VerifySignature(pub, ts, nonce, body, cb.Headers["Byte-Signature"]); err != nil {
				t.Fatalf("verify: %v", err)
			}
			sig, err := SignCallback(vecPrivate(t, cb.Key), ts, nonce, body)
			if err != nil || sig != cb.Signature {
				t.Errorf("re-sign %q (%v), want %q", sig, err, cb.Signature)
			}
			if err := VerifySignature(vecPublic(t, "app"), ts, nonce, body, cb.Signature); !errors.Is(err, ErrBadSignature) {
				t.Errorf("other key accepted: %v", err)
			}
			for _, mf := range cb.MustFail {
				s := mf.Signature
				if s == "" {
					s = cb.Signature
				}
				if err := VerifySignature(pub, mf.Timestamp, mf.Nonce, b64(t, mf.BodyB64), s); !errors.Is(err, ErrBadSignature) {
					t.Errorf("must_fail %q: %v", mf.Why, err)
				}
			}
			if len(cb.MustFail) == 0 {
				t.Error("no must_fail variants")
			}
		})
	}
}
