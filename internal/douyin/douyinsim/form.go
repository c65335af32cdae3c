package douyinsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/payd/payd/internal/douyin"
)

// maxTotalAmount is the largest order amount create_order takes, in fen.
const maxTotalAmount = 10_000_000_000

// validNo reports whether s is a merchant number: 1 to 64 characters of
// [0-9A-Za-z_-*].
func validNo(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '-', c == '*':
		default:
			return false
		}
	}
	return true
}

// form reads the fields of a request body, remembering the first problem.
type form struct {
	raw    map[string]json.RawMessage
	params map[string]string // the signed string values, from douyin.BodyParams
	err    error
}

// parseForm decodes body both as raw JSON values (to check types) and as
// the values that were signed.
func parseForm(body []byte) (*form, error) {
	params, err := douyin.BodyParams(body)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode request body: %w", err)
	}
	for k, v := range raw {
		raw[k] = bytes.TrimSpace(v)
	}
	return &form{raw: raw, params: params}, nil
}

func (f *form) fail(format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf(format, args...)
	}
}

// value returns the raw JSON of key; a missing key and null are absent.
func (f *form) value(key string) (json.RawMessage, bool) {
	v, ok := f.raw[key]
	if !ok || len(v) == 0 || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// str reads a string field. A required field must not be blank. maxBytes
// and maxRunes bound its length when positive.
func (f *form) str(key string, required bool, maxBytes, maxRunes int) string {
	v, ok := f.value(key)
	if !ok {
		if required {
			f.fail("%s: required", key)
		}
		return ""
	}
	if v[0] != '"' {
		f.fail("%s: want a string", key)
		return ""
	}
	s := f.params[key]
	switch {
	case required && strings.TrimSpace(s) == "":
		f.fail("%s: required", key)
	case maxBytes > 0 && len(s) > maxBytes:
		f.fail("%s: longer than %d bytes", key, maxBytes)
	case maxRunes > 0 && utf8.RuneCountInString(s) > maxRunes:
		f.fail("%s: longer than %d characters", key, maxRunes)
	}
	return s
}

// integer reads an integer field sent as a JSON number, within [lo, hi].
func (f *form) integer(key string, required bool, lo, hi int64) int64 {
	v, ok := f.value(key)
	if !ok {
		if required {
			f.fail("%s: required", key)
		}
		return 0
	}
	if v[0] == '"' {
		f.fail("%s: want a number, got a string", key)
		return 0
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		f.fail("%s: want an integer, got %s", key, v)
		return 0
	}
	if n < lo || n > hi {
		f.fail("%s: %d not in %d..%d", key, n, lo, hi)
	}
	return n
}

// no reads a required merchant number.
func (f *form) no(key string) string {
	s := f.str(key, true, 0, 0)
	if s != "" && !validNo(s) {
		f.fail("%s: want 1 to 64 characters of [0-9A-Za-z_-*]", key)
	}
	return s
}

// notifyURL reads the optional notify_url: https, or http to a loopback
// host (a concession to local tests; the real service takes https only).
func (f *form) notifyURL() string {
	s := f.str("notify_url", false, 256, 0)
	if s == "" {
		return ""
	}
	if err := checkRequestNotifyURL(s); err != nil {
		f.fail("notify_url: %v", err)
		return ""
	}
	return s
}

func checkRequestNotifyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return errors.New("want an absolute https URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return errors.New("want an https URL")
}

// parseReceivers decodes settle_params: a JSON array of at most 4 receivers,
// each with a merchant_uid and a positive amount.
func parseReceivers(s string) ([]douyin.Receiver, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var items []map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("settle_params: want a JSON array of receivers: %v", err)
	}
	if len(items) == 0 {
		return nil, errors.New("settle_params: empty array")
	}
	if len(items) > maxReceivers {
		return nil, fmt.Errorf("settle_params: %d receivers, at most %d", len(items), maxReceivers)
	}
	out := make([]douyin.Receiver, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		var r douyin.Receiver
		uid, ok := it["merchant_uid"]
		if !ok || json.Unmarshal(uid, &r.MerchantUID) != nil || strings.TrimSpace(r.MerchantUID) == "" {
			return nil, fmt.Errorf("settle_params[%d].merchant_uid: want a non-empty string", i)
		}
		amt, ok := it["amount"]
		if !ok || len(amt) == 0 || amt[0] == '"' {
			return nil, fmt.Errorf("settle_params[%d].amount: want a number", i)
		}
		n, err := strconv.ParseInt(string(amt), 10, 64)
		if err != nil || n <= 0 || n > maxTotalAmount {
			return nil, fmt.Errorf("settle_params[%d].amount: want a positive integer up to %d, got %s", i, int64(maxTotalAmount), amt)
		}
		if seen[r.MerchantUID] {
			return nil, fmt.Errorf("settle_params[%d].merchant_uid: %s repeated", i, r.MerchantUID)
		}
		seen[r.MerchantUID] = true
		r.Amount = n
		out = append(out, r)
	}
	return out, nil
}
