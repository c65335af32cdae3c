package douyin

import (
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSign checks that Sign never panics, does not depend on the order in
// which the map was built or is walked, ignores the excluded keys, and that a
// request's fields sign the same before sending and after a receiver decodes
// the body.
func FuzzSign(f *testing.F) {
	f.Add("out_order_no", "o-1", "subject", `"quoted"`, "body", "强烈推荐", int64(10_000_000_000), "salt")
	f.Add("a", " null ", "b", "", "c", "0", int64(0), "")
	f.Add("settle_params", `[{"merchant_uid":"m","amount":60}]`, "x", `""`, "y", "\u3000y\u3000", int64(-1), "s")
	f.Add("k", "\xff", "k2", "\"", "k3", "a\"b\"", int64(1_000_000), "\x00")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, amount int64, salt string) {
		keys := []string{k1, k2, k3}
		vals := []string{v1, v2, v3}
		forward := map[string]string{}
		for i := range keys {
			forward[keys[i]] = vals[i]
		}
		backward := map[string]string{}
		for i := len(keys) - 1; i >= 0; i-- {
			backward[keys[i]] = forward[keys[i]]
		}
		want := Sign(forward, salt)
		if len(want) != 32 {
			t.Fatalf("Sign = %q, want 32 hex digits", want)
		}
		for range 3 {
			if got := Sign(forward, salt); got != want {
				t.Fatalf("Sign changed between calls: %s, %s", got, want)
			}
		}
		if got := Sign(backward, salt); got != want {
			t.Fatalf("Sign depends on insertion order: %s, %s", got, want)
		}
		withExcluded := maps.Clone(forward)
		for _, k := range []string{"app_id", "thirdparty_id", "sign", "other_settle_params"} {
			if _, ok := forward[k]; !ok {
				withExcluded[k] = v1 + "x"
			}
		}
		if got := Sign(withExcluded, salt); got != want {
			t.Fatalf("excluded keys changed the signature: %s, %s", got, want)
		}

		// What is signed is what is sent, for any request the client sends.
		fields := CreateRefundRequest{OutOrderNo: v1, OutRefundNo: v2, Reason: v3, RefundAmount: amount, CPExtra: k1}.Fields()
		fields = append(fields, SettleRequest{OutSettleNo: k2, OutOrderNo: k3, SettleDesc: v1,
			SettleParams: []Receiver{{MerchantUID: v2, Amount: amount}}}.Fields()...)
		seen := map[string]bool{} // keys are unique in a body
		var uniq []Field
		for _, f := range fields {
			if !utf8.ValidString(f.Value) {
				return // the client refuses such values before signing
			}
			if !seen[f.Key] {
				seen[f.Key] = true
				uniq = append(uniq, f)
			}
		}
		sign := Sign(Params(uniq), salt)
		body := EncodeBody(uniq, sign)
		if !json.Valid(body) {
			t.Fatalf("EncodeBody wrote invalid JSON: %s", body)
		}
		got, err := BodyParams(body)
		if err != nil {
			t.Fatalf("BodyParams(%s): %v", body, err)
		}
		if got["sign"] != sign || Sign(got, salt) != sign {
			t.Fatalf("receiver computes %s, sender signed %s, body %s", Sign(got, salt), sign, body)
		}
		if digits := `"refund_amount":` + strconv.FormatInt(amount, 10) + `,`; !strings.Contains(string(body), digits) {
			t.Fatalf("body %s lacks %s", body, digits)
		}
	})
}

// FuzzVerifyCallback checks that callback verification never panics and
// never accepts a body whose signature was not made with the token over the
// fields it carries, and that a body signed with one token is refused with
// another.
func FuzzVerifyCallback(f *testing.F) {
	const token = "fuzz-token-7f3a"
	seed := func(typ CallbackType, msg any) {
		b, err := EncodeCallback(typ, msg, token, "1652675265", "9999")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "1652675265", "9999", string(typ), "", "o1")
	}
	seed(CallbackPayment, PaymentMsg{AppID: "tt1", CPOrderNo: "o1", Way: "1", TotalAmount: 1})
	seed(CallbackRefund, RefundMsg{AppID: "tt1", CPRefundNo: "r1", RefundedAt: 1})
	seed(CallbackSettle, SettleMsg{AppID: "tt1", CPSettleNo: "s1"})
	seed(CallbackSettleFinish, `{"app_id":"tt1","out_order_no":"o1"}`)
	f.Add([]byte(`{"timestamp":1602507471,"nonce":"797","msg":"{}","type":"refund","msg_signature":"x"}`), "1", "", "refund", "tt1", "")
	f.Add([]byte(`{"timestamp":{},"msg":1}`), "", "n", "withdraw", "", "")
	f.Add([]byte(`null`), "ts", "n", "payment", "tt\xff", "o")
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce, typ, appID, no string) {
		// Any body: no panic; accepted only with the signature made with
		// the token over exactly what it carries.
		cb, err := VerifyCallback(body, token)
		if err == nil {
			if cb.Signature != CallbackSignature(token, cb.Timestamp, cb.Nonce, cb.Msg) {
				t.Fatalf("accepted %q with a signature not made with the token", body)
			}
			if _, err := VerifyCallback(body, token+"x"); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("accepted %q with another token: %v", body, err)
			}
			if parsed, err := ParseCallback(body); err != nil || parsed.AppID != cb.AppID || parsed.SubjectNo != cb.SubjectNo {
				t.Fatalf("ParseCallback disagrees with VerifyCallback on %q: %+v, %v", body, parsed, err)
			}
		} else if cb != nil {
			t.Fatalf("error %v with a non-nil callback", err)
		} else if strings.Contains(err.Error(), token) {
			t.Fatalf("error leaks the token: %v", err)
		}
		if _, err := ParseCallback(body); err != nil && strings.Contains(err.Error(), token) {
			t.Fatalf("ParseCallback error leaks the token: %v", err)
		}

		// A body made with another token is never accepted; the one made with
		// the token is accepted when its fields are complete.
		msg, err := json.Marshal(map[string]string{"appid": appID, "cp_orderno": no, "cp_refundno": no, "cp_settle_no": no})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := EncodeCallback(CallbackType(typ), json.RawMessage(msg), token, ts, nonce)
		if err != nil {
			return // invalid UTF-8 in ts or nonce
		}
		for _, other := range []string{token + "x", "x" + token, token[:len(token)-1], ""} {
			if cb, err := VerifyCallback(signed, other); err == nil {
				t.Fatalf("body signed with %q accepted with %q: %+v", token, other, cb)
			}
		}
		if _, err := VerifyCallback(signed, token); err != nil && errors.Is(err, ErrBadSignature) {
			t.Fatalf("body signed with the token refused as badly signed: %v (%s)", err, signed)
		}
	})
}
