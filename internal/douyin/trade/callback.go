package trade

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/payd/payd/internal/douyin"
)

// MaxCallbackBody is the largest callback body, in bytes, that Verify
// accepts; a server reads at most MaxCallbackBody+1 bytes and passes them on.
const MaxCallbackBody = 64 << 10

// The callback headers that enter the signature.
const (
	HeaderTimestamp = "Byte-Timestamp"
	HeaderNonce     = "Byte-Nonce-Str"
	HeaderSignature = "Byte-Signature"
)

// Callback errors: each error Verify returns wraps exactly one of them, or
// ErrBadSignature, or one of package douyin's callback errors for a legacy
// body.
var (
	ErrCallbackTooLarge    = errors.New("douyin trade callback: body too large")
	ErrMalformedCallback   = errors.New("douyin trade callback: malformed")
	ErrUnknownCallbackType = errors.New("douyin trade callback: unknown type")
	// ErrUnroutable: the body has neither version 2.0/3.0 nor msg_signature.
	ErrUnroutable = errors.New("douyin trade callback: neither version 2.0/3.0 nor msg_signature")
	// ErrNoKey: no public key (or legacy token) is configured for the app.
	ErrNoKey = errors.New("douyin trade callback: no key for the app")
)

// CallbackType is the type of a trade callback.
type CallbackType string

// The trade callback types.
const (
	CallbackPayment         CallbackType = "payment"
	CallbackRefund          CallbackType = "refund"
	CallbackSettle          CallbackType = "settle"
	CallbackPreCreateRefund CallbackType = "pre_create_refund"
)

// PaymentMsg is a payment callback's msg.
type PaymentMsg struct {
	AppID          Str `json:"app_id"`
	OutOrderNo     Str `json:"out_order_no"`
	OrderID        Str `json:"order_id"`
	Status         Str `json:"status"` // SUCCESS or CANCEL
	TotalAmount    Int `json:"total_amount"`
	DiscountAmount Int `json:"discount_amount"`
	PayChannel     Int `json:"pay_channel"`
	ChannelPayID   Str `json:"channel_pay_id"`
	UserBillPayID  Str `json:"user_bill_pay_id"`
	MerchantUID    Str `json:"merchant_uid"`
	Message        Str `json:"message"` // USER_CANCEL or TIME_OUT on CANCEL
	EventTime      Int `json:"event_time"`
	CPExtra        Str `json:"cp_extra"`
	Currency       Str `json:"currency"`
}

// RefundItemDetail is the item split of a refund in callbacks.
type RefundItemDetail struct {
	ItemOrderQuantity Int          `json:"item_order_quantity"`
	ItemOrderDetail   []ItemRefund `json:"item_order_detail"`
}

// RefundMsg is a refund callback's msg.
type RefundMsg struct {
	AppID             Str              `json:"app_id"`
	Status            Str              `json:"status"` // SUCCESS or FAIL
	OrderID           Str              `json:"order_id"`
	RefundID          Str              `json:"refund_id"`
	OutRefundNo       Str              `json:"out_refund_no"` // may be empty
	RefundTotalAmount Int              `json:"refund_total_amount"`
	IsAllSettled      bool             `json:"is_all_settled"`
	RefundItemDetail  RefundItemDetail `json:"refund_item_detail"`
	Message           Str              `json:"message"`
	EventTime         Int              `json:"event_time"`
	CPExtra           Str              `json:"cp_extra"`
	Currency          Str              `json:"currency"`
	RefundType        Int              `json:"refund_type"`
}

// SettleMsg is a settle callback's msg.
type SettleMsg struct {
	AppID        Str  `json:"app_id"`
	Status       Str  `json:"status"`
	OrderID      Str  `json:"order_id"`
	OutSettleNo  Str  `json:"out_settle_no"` // the settle_id for auto-settlements
	SettleID     Str  `json:"settle_id"`
	SettleAmount Int  `json:"settle_amount"`
	Rake         Int  `json:"rake"`
	Commission   Int  `json:"commission"`
	SettleDetail Str  `json:"settle_detail"`
	ItemOrderID  Str  `json:"item_order_id"`
	IsAutoSettle bool `json:"is_auto_settle"`
	Message      Str  `json:"message"`
	EventTime    Int  `json:"event_time"`
	CPExtra      Str  `json:"cp_extra"`
}

// PreCreateRefundMsg is a user refund request awaiting payd's synchronous
// answer.
type PreCreateRefundMsg struct {
	AppID               Str              `json:"app_id"`
	OpenID              Str              `json:"open_id"`
	RefundID            Str              `json:"refund_id"`
	OrderID             Str              `json:"order_id"`
	OutOrderNo          Str              `json:"out_order_no"`
	RefundTotalAmount   Int              `json:"refund_total_amount"`
	NeedRefundAudit     Int              `json:"need_refund_audit"` // 1 audit, 2 none
	RefundAuditDeadline Int              `json:"refund_audit_deadline"`
	CreateRefundTime    Int              `json:"create_refund_time"`
	RefundSource        Int              `json:"refund_source"`
	RefundReason        []string         `json:"refund_reason"`
	RefundDescription   Str              `json:"refund_description"`
	CPExtra             Str              `json:"cp_extra"`
	RefundItemDetail    RefundItemDetail `json:"refund_item_detail"`
	Currency            Str              `json:"currency"`
}

// Callback is a verified callback. Legacy is set for an ecpay-form body
// (orders migrated from ecpay, checked with the SHA1 token); otherwise
// exactly one of the typed messages is.
type Callback struct {
	Version   string
	Type      CallbackType
	Msg       string // the msg text exactly as received
	AppID     string
	Signature string // Byte-Signature, or the legacy msg_signature: the inbox key
	// SubjectNo is what the callback is about: out_order_no (else order_id)
	// for a payment, refund_id for refunds and pre_create_refund, out_settle_no
	// (else settle_id) for a settlement.
	SubjectNo       string
	Legacy          *douyin.Callback
	Payment         *PaymentMsg
	Refund          *RefundMsg
	Settle          *SettleMsg
	PreCreateRefund *PreCreateRefundMsg
}

// Keys finds what verifies an app's callbacks.
type Keys struct {
	// PublicKey is the app's platform public key (console 密钥设置).
	PublicKey func(appID string) *rsa.PublicKey
	// LegacyToken is the app's ecpay callback Token, for migrated orders;
	// nil or "" refuses legacy bodies.
	LegacyToken func(appID string) string
}

// Headers are the signature headers of a callback.
type Headers struct {
	Timestamp, Nonce, Signature string
}

// HeadersFrom reads the signature headers from an HTTP request's header.
func HeadersFrom(h http.Header) Headers {
	return Headers{Timestamp: h.Get(HeaderTimestamp), Nonce: h.Get(HeaderNonce), Signature: h.Get(HeaderSignature)}
}

type outerBody struct {
	Version      string `json:"version"`
	Type         string `json:"type"`
	Msg          string `json:"msg"`
	MsgSignature string `json:"msg_signature,omitempty"`
}

// Verify routes and checks a callback: version 2.0/3.0 is verified with the
// app's platform key over the raw bytes, a body with msg_signature with the
// ecpay token; anything else is ErrUnroutable. Nothing of an unverified body
// is returned.
func (k Keys) Verify(body []byte, h Headers) (*Callback, error) {
	if len(body) > MaxCallbackBody {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrCallbackTooLarge, len(body), MaxCallbackBody)
	}
	var outer outerBody
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, fmt.Errorf("%w: decode body: %v", ErrMalformedCallback, err)
	}
	switch {
	case outer.Version == "2.0" || outer.Version == "3.0":
		return k.verifyRSA(body, outer, h)
	case outer.Version == "" && outer.MsgSignature != "":
		return k.verifyLegacy(body)
	}
	return nil, fmt.Errorf("%w (version %q)", ErrUnroutable, outer.Version)
}

func (k Keys) verifyRSA(body []byte, outer outerBody, h Headers) (*Callback, error) {
	if h.Timestamp == "" || h.Nonce == "" || h.Signature == "" {
		return nil, fmt.Errorf("%w: %s, %s and %s: required", ErrBadSignature, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	var ids struct {
		AppID Str `json:"app_id"`
	}
	if err := json.Unmarshal([]byte(outer.Msg), &ids); err != nil || ids.AppID == "" {
		return nil, fmt.Errorf("%w: msg.app_id: required to choose the key", ErrMalformedCallback)
	}
	var pub *rsa.PublicKey
	if k.PublicKey != nil {
		pub = k.PublicKey(string(ids.AppID))
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoKey, ids.AppID)
	}
	if err := VerifySignature(pub, h.Timestamp, h.Nonce, body, h.Signature); err != nil {
		return nil, err
	}
	cb := &Callback{Version: outer.Version, Type: CallbackType(outer.Type), Msg: outer.Msg, AppID: string(ids.AppID), Signature: h.Signature}
	if err := cb.decodeMsg(); err != nil {
		return nil, err
	}
	return cb, nil
}

func (k Keys) verifyLegacy(body []byte) (*Callback, error) {
	unverified, err := douyin.ParseCallback(body)
	if err != nil {
		return nil, err
	}
	token := ""
	if k.LegacyToken != nil {
		token = k.LegacyToken(unverified.AppID)
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no legacy token for %s", ErrNoKey, unverified.AppID)
	}
	lc, err := douyin.VerifyCallback(body, token)
	if err != nil {
		return nil, err
	}
	return &Callback{Type: CallbackType(lc.Type), Msg: lc.Msg, AppID: lc.AppID, Signature: lc.Signature, SubjectNo: lc.SubjectNo, Legacy: lc}, nil
}

// decodeMsg decodes the msg text again by type and checks the fields payd
// needs.
func (cb *Callback) decodeMsg() error {
	var target any
	switch cb.Type {
	case CallbackPayment:
		cb.Payment = &PaymentMsg{}
		target = cb.Payment
	case CallbackRefund:
		cb.Refund = &RefundMsg{}
		target = cb.Refund
	case CallbackSettle:
		cb.Settle = &SettleMsg{}
		target = cb.Settle
	case CallbackPreCreateRefund:
		cb.PreCreateRefund = &PreCreateRefundMsg{}
		target = cb.PreCreateRefund
	default:
		return fmt.Errorf("%w: %q", ErrUnknownCallbackType, cb.Type)
	}
	if err := json.Unmarshal([]byte(cb.Msg), target); err != nil {
		return fmt.Errorf("%w: decode %s msg: %v", ErrMalformedCallback, cb.Type, err)
	}
	var field string
	switch {
	case cb.Payment != nil:
		cb.SubjectNo, field = firstOf(cb.Payment.OutOrderNo, cb.Payment.OrderID), "out_order_no or order_id"
	case cb.Refund != nil:
		cb.SubjectNo, field = string(cb.Refund.RefundID), "refund_id"
	case cb.Settle != nil:
		cb.SubjectNo, field = firstOf(cb.Settle.OutSettleNo, cb.Settle.SettleID), "out_settle_no or settle_id"
	case cb.PreCreateRefund != nil:
		cb.SubjectNo, field = string(cb.PreCreateRefund.RefundID), "refund_id"
		if cb.PreCreateRefund.OrderID == "" {
			return fmt.Errorf("%w: %s msg: order_id: required", ErrMalformedCallback, cb.Type)
		}
	}
	if cb.SubjectNo == "" {
		return fmt.Errorf("%w: %s msg: %s: required", ErrMalformedCallback, cb.Type, field)
	}
	return nil
}

func firstOf(a, b Str) string {
	if a != "" {
		return string(a)
	}
	return string(b)
}

// Ack is the answer that stops Douyin's retries of a callback.
var Ack = []byte(`{"err_no":0,"err_tips":"success"}`)

// PreCreateRefundAnswer is the synchronous answer accepting a user refund
// under payd's number.
func PreCreateRefundAnswer(outRefundNo string, schema EntrySchema) []byte {
	b, _ := json.Marshal(map[string]any{"err_no": 0, "err_tips": "success",
		"data": map[string]any{"out_refund_no": outRefundNo, "order_entry_schema": schema}})
	return b
}

// PreCreateRefundRefusal is the synchronous answer refusing a user refund.
func PreCreateRefundRefusal(errNo int, tips string) []byte {
	b, _ := json.Marshal(map[string]any{"err_no": errNo, "err_tips": tips})
	return b
}

// EncodeCallback builds a version 3.0 body with msg as its text and signs
// it like Douyin (for the simulator and tests).
func EncodeCallback(key *rsa.PrivateKey, typ CallbackType, msg any, timestamp, nonce string) ([]byte, Headers, error) {
	text, err := json.Marshal(msg)
	if err != nil {
		return nil, Headers{}, fmt.Errorf("encode %s msg: %w", typ, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(outerBody{Version: "3.0", Type: string(typ), Msg: string(text)}); err != nil {
		return nil, Headers{}, fmt.Errorf("encode %s callback: %w", typ, err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	sig, err := SignCallback(key, timestamp, nonce, body)
	if err != nil {
		return nil, Headers{}, err
	}
	return body, Headers{Timestamp: timestamp, Nonce: nonce, Signature: sig}, nil
}
