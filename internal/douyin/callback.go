package douyin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxCallbackBody is the largest callback body, in bytes, that ParseCallback
// and VerifyCallback accept. A server should read at most MaxCallbackBody+1
// bytes and pass them on, so that a larger body is refused before parsing.
const MaxCallbackBody = 64 << 10

// Callback errors. Each error ParseCallback or VerifyCallback returns wraps
// exactly one of them.
var (
	// ErrBadSignature: msg_signature was not made with the app's token (or
	// there is no token to check it with).
	ErrBadSignature = errors.New("douyin callback: bad msg_signature")
	// ErrCallbackTooLarge: the body is over MaxCallbackBody bytes.
	ErrCallbackTooLarge = errors.New("douyin callback: body too large")
	// ErrMalformedCallback: the envelope or its msg is not the JSON Douyin
	// sends, or a field every callback needs is missing.
	ErrMalformedCallback = errors.New("douyin callback: malformed")
	// ErrUnknownCallbackType: the type is none of the CallbackType constants.
	ErrUnknownCallbackType = errors.New("douyin callback: unknown type")
)

// CallbackType is the type field of a callback envelope.
type CallbackType string

// The callback types payd understands.
const (
	// CallbackPayment: an order was paid (Douyin only sends successes).
	CallbackPayment CallbackType = "payment"
	// CallbackRefund: a refund reached a result.
	CallbackRefund CallbackType = "refund"
	// CallbackSettle: a settlement the merchant asked for reached a result.
	CallbackSettle CallbackType = "settle"
	// CallbackSettleFinish: the platform settled an order by itself (about
	// 150 days after payment); it may carry no cp_settle_no.
	CallbackSettleFinish CallbackType = "settle_finish"
)

// Callback is a parsed callback: the envelope as received and its msg decoded
// by type. Exactly one of Payment, Refund and Settle is set.
type Callback struct {
	Type      CallbackType
	Timestamp string // as received; a JSON number is kept as its decimal text
	Nonce     string
	Msg       string // the raw msg string exactly as received
	Signature string // msg_signature
	AppID     string // from msg: appid or app_id
	// SubjectNo is the merchant number the callback is about: cp_orderno for
	// a payment, cp_refundno for a refund, cp_settle_no for a settlement. A
	// settle_finish may have none; its Settle.OutOrderNo names the order.
	SubjectNo string
	Payment   *PaymentMsg
	Refund    *RefundMsg
	Settle    *SettleMsg
}

// PaymentMsg is the msg of a payment callback.
type PaymentMsg struct {
	AppID          string     `json:"appid"`
	CPOrderNo      string     `json:"cp_orderno"` // out_order_no
	CPExtra        string     `json:"cp_extra"`
	Way            FlexString `json:"way"` // 1 WeChat, 2 Alipay, 10 Douyin Pay; string or number
	ChannelNo      string     `json:"channel_no"`
	PaymentOrderNo string     `json:"payment_order_no"`
	TotalAmount    int64      `json:"total_amount"` // fen
	Status         string     `json:"status"`
	SellerUID      string     `json:"seller_uid"`
	Extra          string     `json:"extra"`
	ItemID         string     `json:"item_id"`
	PaidAt         FlexInt    `json:"paid_at"` // unix seconds
	OrderID        string     `json:"order_id"`
}

// RefundMsg is the msg of a refund callback.
type RefundMsg struct {
	AppID        string  `json:"appid"`
	CPRefundNo   string  `json:"cp_refundno"` // out_refund_no
	CPExtra      string  `json:"cp_extra"`
	Status       string  `json:"status"` // PROCESSING, SUCCESS or FAIL
	RefundAmount int64   `json:"refund_amount"`
	IsAllSettled bool    `json:"is_all_settled"`
	RefundedAt   FlexInt `json:"refunded_at"` // unix seconds
	Message      string  `json:"message"`
	OrderID      string  `json:"order_id"`
	RefundNo     string  `json:"refund_no"`
}

// SettleMsg is the msg of a settle or settle_finish callback. Douyin names
// the app app_id here (some payloads appid); both are read.
type SettleMsg struct {
	AppID        string  `json:"app_id"`
	CPSettleNo   string  `json:"cp_settle_no"` // out_settle_no
	OutOrderNo   string  `json:"out_order_no"`
	CPExtra      string  `json:"cp_extra"`
	Status       string  `json:"status"`     // PROCESSING, SUCCESS or FAIL
	Rake         int64   `json:"rake"`       // fen
	Commission   int64   `json:"commission"` // fen
	SettleDetail string  `json:"settle_detail"`
	SettledAt    FlexInt `json:"settled_at"` // unix seconds
	Message      string  `json:"message"`
	OrderID      string  `json:"order_id"`
	SettleAmount int64   `json:"settle_amount"` // fen
	SettleNo     string  `json:"settle_no"`
}

// callbackEnvelope is the outer JSON of a callback.
type callbackEnvelope struct {
	Timestamp    FlexString `json:"timestamp"`
	Nonce        FlexString `json:"nonce"`
	Msg          string     `json:"msg"`
	Type         string     `json:"type"`
	MsgSignature string     `json:"msg_signature"`
}

// ParseCallback parses and checks the envelope and msg without verifying the
// signature (to learn AppID, to pick the token). Nothing it returns may be
// trusted before VerifyCallback has accepted the same body.
func ParseCallback(body []byte) (*Callback, error) {
	cb, err := parseEnvelope(body)
	if err != nil {
		return nil, err
	}
	if err := decodeMsg(cb); err != nil {
		return nil, err
	}
	return cb, nil
}

// VerifyCallback parses body and checks msg_signature against token; returns
// ErrBadSignature if it does not match. The signature is checked before the
// msg is decoded, so ErrMalformedCallback or ErrUnknownCallbackType about
// the msg means the body itself is authentic.
func VerifyCallback(body []byte, token string) (*Callback, error) {
	cb, err := parseEnvelope(body)
	if err != nil {
		return nil, err
	}
	if err := cb.VerifySignature(token); err != nil {
		return nil, err
	}
	if err := decodeMsg(cb); err != nil {
		return nil, err
	}
	return cb, nil
}

// VerifySignature checks the msg_signature of a callback ParseCallback
// returned against token, as VerifyCallback does, without parsing the body
// again; ErrBadSignature if it does not match.
func (cb *Callback) VerifySignature(token string) error {
	if token == "" {
		return fmt.Errorf("%w: no token to verify with", ErrBadSignature)
	}
	want := CallbackSignature(token, cb.Timestamp, cb.Nonce, cb.Msg)
	if subtle.ConstantTimeCompare([]byte(want), []byte(cb.Signature)) != 1 {
		return ErrBadSignature
	}
	return nil
}

// EncodeCallback builds a signed callback body (used by the simulator and
// tests). msg is sent as is when it is a string, []byte or json.RawMessage,
// and as its JSON otherwise. typ is not checked, so that tests can build
// callbacks of types payd does not know.
func EncodeCallback(typ CallbackType, msg any, token, timestamp, nonce string) ([]byte, error) {
	var text string
	switch m := msg.(type) {
	case string:
		text = m
	case json.RawMessage:
		text = string(m)
	case []byte:
		text = string(m)
	default:
		b, err := json.Marshal(msg)
		if err != nil {
			return nil, fmt.Errorf("encode %s callback msg: %w", typ, err)
		}
		text = string(b)
	}
	for name, v := range map[string]string{"msg": text, "timestamp": timestamp, "nonce": nonce} {
		// JSON would carry U+FFFD instead of a bad byte, and the signature
		// would no longer match what the receiver decodes.
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("encode %s callback: %s is not valid UTF-8", typ, name)
		}
	}
	env := struct {
		Timestamp    string `json:"timestamp"`
		Nonce        string `json:"nonce"`
		Msg          string `json:"msg"`
		Type         string `json:"type"`
		MsgSignature string `json:"msg_signature"`
	}{timestamp, nonce, text, string(typ), CallbackSignature(token, timestamp, nonce, text)}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s callback: %w", typ, err)
	}
	return b, nil
}

// parseEnvelope refuses an oversized body, then decodes the envelope and
// checks that every field a signature covers is there.
func parseEnvelope(body []byte) (*Callback, error) {
	if len(body) > MaxCallbackBody {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrCallbackTooLarge, len(body), MaxCallbackBody)
	}
	var env callbackEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: decode envelope: %v", ErrMalformedCallback, err)
	}
	cb := &Callback{
		Type:      CallbackType(env.Type),
		Timestamp: string(env.Timestamp),
		Nonce:     string(env.Nonce),
		Msg:       env.Msg,
		Signature: env.MsgSignature,
	}
	for _, f := range []struct{ name, v string }{
		{"type", env.Type}, {"timestamp", cb.Timestamp}, {"nonce", cb.Nonce},
		{"msg", cb.Msg}, {"msg_signature", cb.Signature},
	} {
		if f.v == "" {
			return nil, fmt.Errorf("%w: %s: required", ErrMalformedCallback, f.name)
		}
	}
	return cb, nil
}

// decodeMsg decodes cb.Msg by cb.Type and fills AppID and SubjectNo.
func decodeMsg(cb *Callback) error {
	var (
		target any
		appID  *string
	)
	switch cb.Type {
	case CallbackPayment:
		cb.Payment = &PaymentMsg{}
		target, appID = cb.Payment, &cb.Payment.AppID
	case CallbackRefund:
		cb.Refund = &RefundMsg{}
		target, appID = cb.Refund, &cb.Refund.AppID
	case CallbackSettle, CallbackSettleFinish:
		cb.Settle = &SettleMsg{}
		target, appID = cb.Settle, &cb.Settle.AppID
	default:
		return fmt.Errorf("%w: %q", ErrUnknownCallbackType, cb.Type)
	}
	if err := json.Unmarshal([]byte(cb.Msg), target); err != nil {
		return fmt.Errorf("%w: decode %s msg: %v", ErrMalformedCallback, cb.Type, err)
	}
	var ids struct {
		AppID  string `json:"appid"`
		AppID2 string `json:"app_id"`
	}
	if err := json.Unmarshal([]byte(cb.Msg), &ids); err != nil {
		return fmt.Errorf("%w: decode %s msg app id: %v", ErrMalformedCallback, cb.Type, err)
	}
	switch {
	case ids.AppID != "" && ids.AppID2 != "" && ids.AppID != ids.AppID2:
		return fmt.Errorf("%w: %s msg: appid and app_id differ", ErrMalformedCallback, cb.Type)
	case ids.AppID != "":
		*appID = ids.AppID
	case ids.AppID2 != "":
		*appID = ids.AppID2
	default:
		return fmt.Errorf("%w: %s msg: appid: required", ErrMalformedCallback, cb.Type)
	}
	cb.AppID = *appID

	switch cb.Type {
	case CallbackPayment:
		cb.SubjectNo = cb.Payment.CPOrderNo
	case CallbackRefund:
		cb.SubjectNo = cb.Refund.CPRefundNo
	case CallbackSettle, CallbackSettleFinish:
		cb.SubjectNo = cb.Settle.CPSettleNo
	}
	if cb.SubjectNo == "" && (cb.Type != CallbackSettleFinish || cb.Settle.OutOrderNo == "") {
		return fmt.Errorf("%w: %s msg: merchant number: required", ErrMalformedCallback, cb.Type)
	}
	return nil
}
