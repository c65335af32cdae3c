package douyin

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func encodeCallback(t *testing.T, typ CallbackType, msg any, token string) []byte {
	t.Helper()
	b, err := EncodeCallback(typ, msg, token, "1652675265", "9999")
	if err != nil {
		t.Fatalf("EncodeCallback: %v", err)
	}
	return b
}

// rawCallback writes an envelope by hand, with the timestamp as JSON text
// (quoted or not), signed with token over timestampValue.
func rawCallback(token, timestampJSON, timestampValue, nonce, typ, msg string) []byte {
	sig := CallbackSignature(token, timestampValue, nonce, msg)
	m, _ := json.Marshal(msg)
	return fmt.Appendf(nil, `{"timestamp":%s,"nonce":%q,"msg":%s,"type":%q,"msg_signature":%q}`,
		timestampJSON, nonce, m, typ, sig)
}

func TestVerifyCallback_Types(t *testing.T) {
	payment := PaymentMsg{AppID: testApp, CPOrderNo: "ord-1", CPExtra: "x", Way: "10", ChannelNo: "ch",
		PaymentOrderNo: "pay-1", TotalAmount: 10_000_000_000, Status: StatusSuccess, SellerUID: "s1",
		Extra: "e", ItemID: "i", PaidAt: 1714523400, OrderID: "N1"}
	refund := RefundMsg{AppID: testApp, CPRefundNo: "ord-1-r-1", Status: StatusSuccess, RefundAmount: 1_000_000,
		IsAllSettled: true, RefundedAt: 1714523500, Message: "ok", OrderID: "N1", RefundNo: "R1"}
	settle := SettleMsg{AppID: testApp, CPSettleNo: "ord-1-s-1", OutOrderNo: "ord-1", Status: StatusSuccess,
		Rake: 100, Commission: 5, SettleDetail: "d", SettledAt: 1714523600, OrderID: "N1", SettleAmount: 9999, SettleNo: "S1"}
	finish := SettleMsg{AppID: testApp, OutOrderNo: "ord-2", Status: StatusSuccess, SettleAmount: 500}

	cases := []struct {
		typ     CallbackType
		msg     any
		subject string
		check   func(*Callback) bool
	}{
		{CallbackPayment, payment, "ord-1", func(cb *Callback) bool { return reflect.DeepEqual(*cb.Payment, payment) }},
		{CallbackRefund, refund, "ord-1-r-1", func(cb *Callback) bool { return reflect.DeepEqual(*cb.Refund, refund) }},
		{CallbackSettle, settle, "ord-1-s-1", func(cb *Callback) bool { return reflect.DeepEqual(*cb.Settle, settle) }},
		{CallbackSettleFinish, finish, "", func(cb *Callback) bool { return reflect.DeepEqual(*cb.Settle, finish) }},
	}
	for _, tc := range cases {
		t.Run(string(tc.typ), func(t *testing.T) {
			body := encodeCallback(t, tc.typ, tc.msg, testToken)
			cb, err := VerifyCallback(body, testToken)
			if err != nil {
				t.Fatalf("VerifyCallback: %v", err)
			}
			if cb.Type != tc.typ || cb.AppID != testApp || cb.SubjectNo != tc.subject ||
				cb.Timestamp != "1652675265" || cb.Nonce != "9999" {
				t.Errorf("callback %+v, want type %s app %s subject %q", cb, tc.typ, testApp, tc.subject)
			}
			if !tc.check(cb) {
				t.Errorf("msg decoded as %+v %+v %+v, want %+v", cb.Payment, cb.Refund, cb.Settle, tc.msg)
			}
			set := 0
			for _, p := range []bool{cb.Payment != nil, cb.Refund != nil, cb.Settle != nil} {
				if p {
					set++
				}
			}
			if set != 1 {
				t.Errorf("%d of Payment, Refund, Settle set, want 1", set)
			}
			wantMsg, _ := json.Marshal(tc.msg)
			if cb.Msg != string(wantMsg) {
				t.Errorf("Msg = %s, want it exactly as sent: %s", cb.Msg, wantMsg)
			}
			if cb.Signature != CallbackSignature(testToken, "1652675265", "9999", cb.Msg) {
				t.Errorf("Signature = %s, not the one sent", cb.Signature)
			}
			parsed, err := ParseCallback(body)
			if err != nil || !reflect.DeepEqual(parsed, cb) {
				t.Errorf("ParseCallback = %+v, %v; want what VerifyCallback returned", parsed, err)
			}
		})
	}
}

// TestVerifyCallback_RealShapes feeds bodies as Douyin's captures show them:
// timestamp as a string or a number, way as a string or a number, times as
// strings, appid or app_id.
func TestVerifyCallback_RealShapes(t *testing.T) {
	const paymentMsg = `{"appid":"tt84cdf2701bf7f8ed","cp_orderno":"1623235247","cp_extra":"","way":"1","channel_no":"",` +
		`"channel_gateway_no":"12106090149746618265","payment_order_no":"4346300973202106091611552039","out_channel_order_no":"",` +
		`"total_amount":1,"status":"SUCCESS","seller_uid":"69664700453838051970"}`
	cases := []struct {
		name      string
		body      []byte
		appID     string
		subject   string
		timestamp string
		check     func(*Callback) error
	}{
		{"payment, timestamp string, way string",
			rawCallback(testToken, `"1623235256"`, "1623235256", "2281", "payment", paymentMsg),
			"tt84cdf2701bf7f8ed", "1623235247", "1623235256",
			func(cb *Callback) error {
				if cb.Payment.Way != "1" || cb.Payment.TotalAmount != 1 || cb.Payment.Status != StatusSuccess {
					return fmt.Errorf("payment %+v", cb.Payment)
				}
				return nil
			}},
		{"refund, timestamp number",
			rawCallback(testToken, `1602507471`, "1602507471", "797", "refund",
				`{"appid":"tt84cdf2701bf7f8ed","cp_refundno":"t343413r","cp_extra":"","status":"SUCCESS","refund_amount":1}`),
			"tt84cdf2701bf7f8ed", "t343413r", "1602507471",
			func(cb *Callback) error {
				if cb.Refund.RefundAmount != 1 || cb.Refund.Status != StatusSuccess {
					return fmt.Errorf("refund %+v", cb.Refund)
				}
				return nil
			}},
		{"payment, way number, paid_at string, app_id",
			rawCallback(testToken, `"1700000000"`, "1700000000", "n", "payment",
				`{"app_id":"tt2","cp_orderno":"o9","way":10,"paid_at":"1700000001","total_amount":2376}`),
			"tt2", "o9", "1700000000",
			func(cb *Callback) error {
				if cb.Payment.Way != "10" || cb.Payment.PaidAt != 1700000001 || cb.Payment.AppID != "tt2" {
					return fmt.Errorf("payment %+v", cb.Payment)
				}
				return nil
			}},
		{"settle with appid, settled_at string",
			rawCallback(testToken, `"1700000000"`, "1700000000", "n", "settle",
				`{"appid":"tt3","cp_settle_no":"s9","out_order_no":"o9","status":"SUCCESS","settled_at":"1700000002","settle_amount":100,"rake":1,"commission":0}`),
			"tt3", "s9", "1700000000",
			func(cb *Callback) error {
				if cb.Settle.SettledAt != 1700000002 || cb.Settle.AppID != "tt3" || cb.Settle.SettleAmount != 100 {
					return fmt.Errorf("settle %+v", cb.Settle)
				}
				return nil
			}},
		{"refund with app_id and appid agreeing",
			rawCallback(testToken, `"1"`, "1", "n", "refund", `{"appid":"tt4","app_id":"tt4","cp_refundno":"r9","refunded_at":1700000003}`),
			"tt4", "r9", "1",
			func(cb *Callback) error {
				if cb.Refund.RefundedAt != 1700000003 {
					return fmt.Errorf("refund %+v", cb.Refund)
				}
				return nil
			}},
		{"settle_finish without cp_settle_no",
			rawCallback(testToken, `"1"`, "1", "n", "settle_finish", `{"app_id":"tt5","out_order_no":"o5","status":"SUCCESS"}`),
			"tt5", "", "1",
			func(cb *Callback) error {
				if cb.Settle.OutOrderNo != "o5" {
					return fmt.Errorf("settle %+v", cb.Settle)
				}
				return nil
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cb, err := VerifyCallback(tc.body, testToken)
			if err != nil {
				t.Fatalf("VerifyCallback(%s): %v", tc.body, err)
			}
			if cb.AppID != tc.appID || cb.SubjectNo != tc.subject || cb.Timestamp != tc.timestamp {
				t.Errorf("app %q subject %q timestamp %q; want %q %q %q", cb.AppID, cb.SubjectNo, cb.Timestamp,
					tc.appID, tc.subject, tc.timestamp)
			}
			if err := tc.check(cb); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestVerifyCallback_Rejects(t *testing.T) {
	good := encodeCallback(t, CallbackRefund, RefundMsg{AppID: testApp, CPRefundNo: "r1", Status: StatusSuccess}, testToken)
	var env map[string]any
	if err := json.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	// with returns good with one envelope field replaced (or removed when v is nil).
	with := func(key string, v any) []byte {
		m := map[string]any{}
		for k, x := range env {
			m[k] = x
		}
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	sig := env["msg_signature"].(string)
	resign := func(typ, msg string) []byte {
		return rawCallback(testToken, `"1652675265"`, "1652675265", "9999", typ, msg)
	}
	cases := []struct {
		name  string
		body  []byte
		token string
		want  error
	}{
		{"wrong token", good, testToken + "x", ErrBadSignature},
		{"the SALT instead of the token", good, testSalt, ErrBadSignature},
		{"empty token", good, "", ErrBadSignature},
		{"tampered msg", with("msg", strings.Replace(env["msg"].(string), "r1", "r2", 1)), testToken, ErrBadSignature},
		{"tampered timestamp", with("timestamp", "1652675266"), testToken, ErrBadSignature},
		{"tampered nonce", with("nonce", "9998"), testToken, ErrBadSignature},
		{"signature in upper case", with("msg_signature", strings.ToUpper(sig)), testToken, ErrBadSignature},
		{"signature truncated", with("msg_signature", sig[:39]), testToken, ErrBadSignature},
		{"type changed after signing", with("type", "unknown_kind"), testToken, ErrUnknownCallbackType},
		{"no signature", with("msg_signature", nil), testToken, ErrMalformedCallback},
		{"no timestamp", with("timestamp", nil), testToken, ErrMalformedCallback},
		{"no nonce", with("nonce", nil), testToken, ErrMalformedCallback},
		{"no msg", with("msg", nil), testToken, ErrMalformedCallback},
		{"no type", with("type", nil), testToken, ErrMalformedCallback},
		{"timestamp an object", with("timestamp", map[string]any{"a": 1}), testToken, ErrMalformedCallback},
		{"msg an object, not a string", with("msg", map[string]any{"appid": testApp}), testToken, ErrMalformedCallback},
		{"not JSON", []byte(`<xml>payment</xml>`), testToken, ErrMalformedCallback},
		{"JSON array", []byte(`[1,2]`), testToken, ErrMalformedCallback},
		{"JSON null", []byte(`null`), testToken, ErrMalformedCallback},
		{"empty body", nil, testToken, ErrMalformedCallback},
		{"trailing garbage", append(append([]byte(nil), good...), "x"...), testToken, ErrMalformedCallback},
		{"signed, msg not JSON", resign("refund", "80850852x"), testToken, ErrMalformedCallback},
		{"signed, msg JSON null", resign("refund", "null"), testToken, ErrMalformedCallback},
		{"signed, msg without app id", resign("refund", `{"cp_refundno":"r1"}`), testToken, ErrMalformedCallback},
		{"signed, appid and app_id differ", resign("refund", `{"appid":"a","app_id":"b","cp_refundno":"r1"}`), testToken, ErrMalformedCallback},
		{"signed, payment without cp_orderno", resign("payment", `{"appid":"a"}`), testToken, ErrMalformedCallback},
		{"signed, settle without cp_settle_no", resign("settle", `{"app_id":"a","out_order_no":"o"}`), testToken, ErrMalformedCallback},
		{"signed, settle_finish naming nothing", resign("settle_finish", `{"app_id":"a"}`), testToken, ErrMalformedCallback},
		{"signed, amount as text", resign("refund", `{"appid":"a","cp_refundno":"r1","refund_amount":"12"}`), testToken, ErrMalformedCallback},
		{"signed, unknown type", resign("withdraw", `{"appid":"a"}`), testToken, ErrUnknownCallbackType},
		{"unknown type, bad signature", rawCallback("other", `"1"`, "1", "n", "withdraw", `{}`), testToken, ErrBadSignature},
		{"too large", make([]byte, MaxCallbackBody+1), testToken, ErrCallbackTooLarge},
	}
	sentinels := []error{ErrBadSignature, ErrCallbackTooLarge, ErrMalformedCallback, ErrUnknownCallbackType}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cb, err := VerifyCallback(tc.body, tc.token)
			if cb != nil || !errors.Is(err, tc.want) {
				t.Fatalf("VerifyCallback = %+v, %v; want nil, %v", cb, err, tc.want)
			}
			for _, s := range sentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("err %v also matches %v", err, s)
				}
			}
			msg := err.Error()
			if strings.Contains(msg, testToken) || strings.Contains(msg, testSalt) {
				t.Errorf("error leaks a secret: %s", msg)
			}
			// The expected signature would let anyone forge this very body.
			if tc.token != "" && strings.Contains(msg, CallbackSignature(tc.token, "1652675265", "9999", fmt.Sprint(env["msg"]))) {
				t.Errorf("error carries the expected signature: %s", msg)
			}
		})
	}
}

func TestParseCallback_DoesNotVerify(t *testing.T) {
	body := encodeCallback(t, CallbackPayment, PaymentMsg{AppID: "tt9", CPOrderNo: "o9"}, "someone-elses-token")
	cb, err := ParseCallback(body)
	if err != nil {
		t.Fatalf("ParseCallback: %v", err)
	}
	if cb.AppID != "tt9" || cb.SubjectNo != "o9" {
		t.Errorf("ParseCallback = %+v, want app tt9, subject o9", cb)
	}
	if _, err := VerifyCallback(body, testToken); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyCallback with another token: %v, want ErrBadSignature", err)
	}
	if _, err := ParseCallback(make([]byte, MaxCallbackBody+1)); !errors.Is(err, ErrCallbackTooLarge) {
		t.Errorf("ParseCallback of an oversized body: %v, want ErrCallbackTooLarge", err)
	}
}

// TestVerifyCallback_SizeLimit builds a valid body of exactly MaxCallbackBody
// bytes (accepted) and one byte more (refused before parsing).
func TestVerifyCallback_SizeLimit(t *testing.T) {
	build := func(extra int) []byte {
		msg := RefundMsg{AppID: testApp, CPRefundNo: "r1", CPExtra: strings.Repeat("a", extra)}
		return encodeCallback(t, CallbackRefund, msg, testToken)
	}
	base := len(build(0))
	exact := build(MaxCallbackBody - base)
	if len(exact) != MaxCallbackBody {
		t.Fatalf("built %d bytes, want %d", len(exact), MaxCallbackBody)
	}
	if _, err := VerifyCallback(exact, testToken); err != nil {
		t.Errorf("body of exactly MaxCallbackBody: %v", err)
	}
	over := build(MaxCallbackBody - base + 1)
	if _, err := VerifyCallback(over, testToken); !errors.Is(err, ErrCallbackTooLarge) {
		t.Errorf("body of MaxCallbackBody+1: %v, want ErrCallbackTooLarge", err)
	}
}

func TestEncodeCallback(t *testing.T) {
	t.Run("raw msg kept byte for byte", func(t *testing.T) {
		raw := `{"appid":"tt1", "cp_orderno":"o1", "note":"<&>"}`
		for _, msg := range []any{raw, []byte(raw), json.RawMessage(raw)} {
			b, err := EncodeCallback(CallbackPayment, msg, testToken, "1", "2")
			if err != nil {
				t.Fatal(err)
			}
			cb, err := VerifyCallback(b, testToken)
			if err != nil {
				t.Fatalf("%T: %v", msg, err)
			}
			if cb.Msg != raw {
				t.Errorf("%T: Msg = %q, want %q", msg, cb.Msg, raw)
			}
		}
	})
	t.Run("refuses invalid UTF-8", func(t *testing.T) {
		if _, err := EncodeCallback(CallbackPayment, "{\"appid\":\"\xff\"}", testToken, "1", "2"); err == nil {
			t.Error("msg with a bad byte: no error")
		}
		if _, err := EncodeCallback(CallbackPayment, "{}", testToken, "1\xff", "2"); err == nil {
			t.Error("timestamp with a bad byte: no error")
		}
	})
	t.Run("unencodable msg", func(t *testing.T) {
		if _, err := EncodeCallback(CallbackPayment, func() {}, testToken, "1", "2"); err == nil {
			t.Error("func msg: no error")
		}
	})
	t.Run("vector", func(t *testing.T) {
		v := loadVectors(t).CallbackSignature[0]
		b, err := EncodeCallback(CallbackPayment, v.Msg, v.Token, v.Timestamp, v.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Sig string `json:"msg_signature"`
		}
		if err := json.Unmarshal(b, &env); err != nil || env.Sig != v.Want {
			t.Errorf("msg_signature = %q (%v), want %s", env.Sig, err, v.Want)
		}
	})
}
