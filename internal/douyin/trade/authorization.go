package trade

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
)

// Authorization is the content of a Byte-Authorization header.
type Authorization struct {
	AppID      string
	NonceStr   string
	Timestamp  string // Unix seconds
	KeyVersion string
	Signature  string // base64
}

// String renders the header value fully quoted, the official form payd
// sends.
func (a Authorization) String() string {
	return fmt.Sprintf(`%s appid="%s",nonce_str="%s",timestamp="%s",key_version="%s",signature="%s"`,
		AuthScheme, a.AppID, a.NonceStr, a.Timestamp, a.KeyVersion, a.Signature)
}

// SignOrderData builds the Byte-Authorization of tt.requestOrder's order
// data: POST, "/requestOrder" and the exact data text.
func SignOrderData(key *rsa.PrivateKey, appID, keyVersion, timestamp, nonce string, data []byte) (Authorization, error) {
	sig, err := SignAuthorization(key, "POST", "/requestOrder", timestamp, nonce, data)
	if err != nil {
		return Authorization{}, err
	}
	return Authorization{AppID: appID, NonceStr: nonce, Timestamp: timestamp, KeyVersion: keyVersion, Signature: sig}, nil
}

// ErrBadAuthorization wraps every header ParseAuthorization refuses.
var ErrBadAuthorization = errors.New("douyin trade: bad Byte-Authorization")

// ParseAuthorization reads a Byte-Authorization header in any of the three
// forms seen: every value quoted, none quoted, or all quoted but a bare
// key_version. Every field is required, once.
func ParseAuthorization(h string) (Authorization, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), AuthScheme+" ")
	if !ok {
		return Authorization{}, fmt.Errorf("%w: want scheme %s", ErrBadAuthorization, AuthScheme)
	}
	var a Authorization
	fields := map[string]*string{"appid": &a.AppID, "nonce_str": &a.NonceStr, "timestamp": &a.Timestamp, "key_version": &a.KeyVersion, "signature": &a.Signature}
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Authorization{}, fmt.Errorf("%w: %q: want key=value", ErrBadAuthorization, part)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		} else if strings.Contains(v, `"`) {
			return Authorization{}, fmt.Errorf("%w: %s: unbalanced quotes", ErrBadAuthorization, k)
		}
		dst, known := fields[k]
		if !known {
			return Authorization{}, fmt.Errorf("%w: unknown field %q", ErrBadAuthorization, k)
		}
		if seen[k] {
			return Authorization{}, fmt.Errorf("%w: %s twice", ErrBadAuthorization, k)
		}
		seen[k] = true
		*dst = v
	}
	for _, k := range []string{"appid", "nonce_str", "timestamp", "key_version", "signature"} {
		if *fields[k] == "" {
			return Authorization{}, fmt.Errorf("%w: %s: required", ErrBadAuthorization, k)
		}
	}
	return a, nil
}
