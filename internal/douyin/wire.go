package douyin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// API names an ecpay v1 endpoint; it is the last element of the path under
// /api/apps/ecpay/v1/.
type API string

// The ecpay v1 endpoints payd calls.
const (
	APICreateOrder    API = "create_order"
	APIQueryOrder     API = "query_order"
	APICreateRefund   API = "create_refund"
	APIQueryRefund    API = "query_refund"
	APISettle         API = "settle"
	APIQuerySettle    API = "query_settle"
	APIUnsettleAmount API = "unsettle_amount"
)

// APIs lists every endpoint, in a stable order.
var APIs = []API{APICreateOrder, APIQueryOrder, APICreateRefund, APIQueryRefund, APISettle, APIQuerySettle, APIUnsettleAmount}

// PathPrefix is the path under which every ecpay v1 endpoint lives.
const PathPrefix = "/api/apps/ecpay/v1/"

// Path returns the URL path of the endpoint.
func (a API) Path() string { return PathPrefix + string(a) }

// Known err_no values.
const (
	ErrNoSuccess        = 0
	ErrNoInternal       = 1000 // outcome unknown: query, then resend the same number
	ErrNoBusy           = 1001 // rate limited: Douyin did not act
	ErrNoOrderNotFound  = 2000
	ErrNoBadSignature   = 2008
	ErrNoBadParam       = 2010
	ErrNoBadAppID       = 2042
	ErrNoBadThirdparty  = 2047
	ErrNoNoAuthority    = 2048
	ErrNoRefundNotFound = 3101
)

// Order, refund and settlement statuses as Douyin reports them.
const (
	StatusSuccess    = "SUCCESS"
	StatusProcessing = "PROCESSING"
	StatusFail       = "FAIL"
	StatusTimeout    = "TIMEOUT"
)

// ChinaTime is UTC+8, the zone of Douyin's "yyyy-MM-dd HH:mm:ss" timestamps.
var ChinaTime = time.FixedZone("CST", 8*3600)

// PayTimeLayout is the layout of payment_info.pay_time.
const PayTimeLayout = "2006-01-02 15:04:05"

// Field is one body field of a request: its key and the exact string that is
// both signed and sent. Number fields are sent as JSON numbers (their Value is
// plain decimal digits), the others as JSON strings.
type Field struct {
	Key    string
	Value  string
	Number bool
}

// fieldList builds the fields of a request, leaving out optional zero values.
//
// String values are trimmed of leading and trailing white space and control
// characters before they are signed and sent. The signature rules trim values
// too, but the public demos disagree on what counts as a space (Go trims
// Unicode white space such as U+3000, Java only characters up to U+0020);
// a value that has nothing to trim reads the same under both.
type fieldList []Field

func (f *fieldList) str(key, v string) {
	*f = append(*f, Field{Key: key, Value: trimValue(v)})
}

func (f *fieldList) optStr(key, v string) {
	if v = trimValue(v); v != "" {
		f.str(key, v)
	}
}

// trimValue drops what any reading of the signature rules would trim.
func trimValue(v string) string {
	return strings.TrimFunc(v, func(r rune) bool { return r <= ' ' || unicode.IsSpace(r) })
}

func (f *fieldList) num(key string, v int64) {
	*f = append(*f, Field{Key: key, Value: strconv.FormatInt(v, 10), Number: true})
}

func (f *fieldList) optNum(key string, v int64) {
	if v != 0 {
		f.num(key, v)
	}
}

// Params returns the fields as the map that Sign takes.
func Params(fields []Field) map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		m[f.Key] = f.Value
	}
	return m
}

// EncodeBody writes fields and the signature as the JSON body that is sent.
// Number fields are written as bare digits, so what is signed is what is sent.
func EncodeBody(fields []Field, sign string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for _, f := range fields {
		b.Write(jsonString(f.Key))
		b.WriteByte(':')
		if f.Number {
			b.WriteString(f.Value)
		} else {
			b.Write(jsonString(f.Value))
		}
		b.WriteByte(',')
	}
	b.WriteString(`"sign":`)
	b.Write(jsonString(sign))
	b.WriteByte('}')
	return b.Bytes()
}

func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimRight(b.Bytes(), "\n")
}

// BodyParams turns a received JSON request body into the string values that
// were signed: a JSON string is unquoted, a number or nested value is kept as
// its JSON text. It is what a receiver (the simulator) verifies a sign with.
func BodyParams(body []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode request body: %w", err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		t := bytes.TrimSpace(v)
		if len(t) > 0 && t[0] == '"' {
			var s string
			if err := json.Unmarshal(t, &s); err != nil {
				return nil, fmt.Errorf("decode field %s: %w", k, err)
			}
			out[k] = s
			continue
		}
		out[k] = string(t)
	}
	return out, nil
}

// CreateOrderRequest pre-creates an order; the mini-program then calls
// tt.pay with the returned order_id and order_token.
type CreateOrderRequest struct {
	AppID       string
	OutOrderNo  string
	TotalAmount int64  // fen, 1..10^10
	Subject     string // at most 128 bytes
	Body        string // at most 128 bytes
	ValidTime   int64  // seconds, 300..172800
	CPExtra     string // optional, at most 2048 bytes
	NotifyURL   string // optional, https only
	DisableMsg  int64  // optional, 1 disables the service message
	MsgPage     string // optional
	LimitPayWay string // optional
}

// Fields returns the request's body fields, without app_id and thirdparty_id.
func (r CreateOrderRequest) Fields() []Field {
	var f fieldList
	f.str("out_order_no", r.OutOrderNo)
	f.num("total_amount", r.TotalAmount)
	f.str("subject", r.Subject)
	f.str("body", r.Body)
	f.num("valid_time", r.ValidTime)
	f.optStr("cp_extra", r.CPExtra)
	f.optStr("notify_url", r.NotifyURL)
	f.optNum("disable_msg", r.DisableMsg)
	f.optStr("msg_page", r.MsgPage)
	f.optStr("limit_pay_way", r.LimitPayWay)
	return f
}

// CreateOrderResponse is the data of a successful create_order.
type CreateOrderResponse struct {
	OrderID    string `json:"order_id"`
	OrderToken string `json:"order_token"`
}

// QueryOrderRequest asks for an order's status.
type QueryOrderRequest struct {
	AppID      string
	OutOrderNo string
}

// Fields returns the request's body fields.
func (r QueryOrderRequest) Fields() []Field {
	var f fieldList
	f.str("out_order_no", r.OutOrderNo)
	return f
}

// QueryOrderResponse is the answer of query_order.
type QueryOrderResponse struct {
	OutOrderNo  string      `json:"out_order_no"`
	OrderID     string      `json:"order_id"`
	PaymentInfo PaymentInfo `json:"payment_info"`
	// CPSInfo is a JSON string holding share_amount (fen, as a string); it
	// appears some time after payment, empty until then.
	CPSInfo string `json:"cps_info,omitempty"`
}

// UnmarshalJSON implements json.Unmarshaler. cps_info is documented as a
// string holding JSON; an object in its place is kept as its JSON text, so
// CPSShare reads both.
func (r *QueryOrderResponse) UnmarshalJSON(b []byte) error {
	type plain QueryOrderResponse
	var v struct {
		plain
		CPSInfo json.RawMessage `json:"cps_info"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = QueryOrderResponse(v.plain)
	raw := bytes.TrimSpace(v.CPSInfo)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		r.CPSInfo = ""
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &r.CPSInfo); err != nil {
			return fmt.Errorf("decode cps_info: %w", err)
		}
	default:
		r.CPSInfo = string(raw)
	}
	return nil
}

// PaymentInfo is query_order's payment_info.
type PaymentInfo struct {
	TotalFee         int64      `json:"total_fee"`
	OrderStatus      string     `json:"order_status"`
	PayTime          string     `json:"pay_time,omitempty"` // yyyy-MM-dd HH:mm:ss, China time
	Way              FlexString `json:"way,omitempty"`
	ChannelNo        string     `json:"channel_no,omitempty"`
	ChannelGatewayNo string     `json:"channel_gateway_no,omitempty"`
	SellerUID        string     `json:"seller_uid,omitempty"`
	ItemID           string     `json:"item_id,omitempty"`
	CPExtra          string     `json:"cp_extra,omitempty"`
}

// PaidAt parses PayTime (China time) into an instant; ok is false when the
// order carries no pay time.
func (p PaymentInfo) PaidAt() (t time.Time, ok bool, err error) {
	s := strings.TrimSpace(p.PayTime)
	if s == "" {
		return time.Time{}, false, nil
	}
	t, err = time.ParseInLocation(PayTimeLayout, s, ChinaTime)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("parse pay_time %q: %w", s, err)
	}
	return t.UTC(), true, nil
}

// FormatPayTime renders t the way Douyin sends pay_time.
func FormatPayTime(t time.Time) string { return t.In(ChinaTime).Format(PayTimeLayout) }

// CPSShare decodes cps_info. known is false while Douyin has not reported it
// yet (an empty cps_info).
func (r QueryOrderResponse) CPSShare() (amount int64, known bool, err error) {
	s := strings.TrimSpace(r.CPSInfo)
	if s == "" || s == "null" || s == "{}" {
		return 0, false, nil
	}
	var info struct {
		ShareAmount FlexInt `json:"share_amount"`
	}
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		return 0, false, fmt.Errorf("decode cps_info: %w", err)
	}
	return int64(info.ShareAmount), true, nil
}

// CreateRefundRequest starts a refund. Success only means Douyin accepted it.
type CreateRefundRequest struct {
	AppID        string
	OutOrderNo   string
	OutRefundNo  string
	Reason       string // at most 100 characters
	RefundAmount int64  // fen
	CPExtra      string // optional
	NotifyURL    string // optional
	DisableMsg   int64  // optional
	MsgPage      string // optional
	AllSettle    bool   // the order is already settled: take the money from the withdrawable balance
}

// Fields returns the request's body fields.
func (r CreateRefundRequest) Fields() []Field {
	var f fieldList
	f.str("out_order_no", r.OutOrderNo)
	f.str("out_refund_no", r.OutRefundNo)
	f.str("reason", r.Reason)
	f.num("refund_amount", r.RefundAmount)
	f.optStr("cp_extra", r.CPExtra)
	f.optStr("notify_url", r.NotifyURL)
	f.optNum("disable_msg", r.DisableMsg)
	f.optStr("msg_page", r.MsgPage)
	if r.AllSettle {
		f.num("all_settle", 1)
	}
	return f
}

// CreateRefundResponse is the answer of a successful create_refund.
type CreateRefundResponse struct {
	RefundNo string `json:"refund_no"`
}

// QueryRefundRequest asks for a refund's status.
type QueryRefundRequest struct {
	AppID       string
	OutRefundNo string
}

// Fields returns the request's body fields.
func (r QueryRefundRequest) Fields() []Field {
	var f fieldList
	f.str("out_refund_no", r.OutRefundNo)
	return f
}

// RefundInfo is query_refund's refundInfo (camelCase on the wire).
type RefundInfo struct {
	RefundNo     string  `json:"refund_no"`
	RefundAmount int64   `json:"refund_amount"`
	RefundStatus string  `json:"refund_status"` // PROCESSING, SUCCESS or FAIL
	RefundedAt   FlexInt `json:"refunded_at,omitempty"`
	IsAllSettled bool    `json:"is_all_settled"`
	CPExtra      string  `json:"cp_extra,omitempty"`
	Msg          string  `json:"msg,omitempty"`
}

// Receiver is one third-party receiver of a settlement.
type Receiver struct {
	MerchantUID string `json:"merchant_uid"`
	Amount      int64  `json:"amount"` // fen
}

// SettleRequest settles an order after its settle period.
type SettleRequest struct {
	AppID        string
	OutSettleNo  string
	OutOrderNo   string
	SettleDesc   string     // at most 80 characters
	SettleParams []Receiver // optional; at most 4, together at most 30% of the order
	CPExtra      string     // optional
	NotifyURL    string     // optional
}

// Fields returns the request's body fields; settle_params is sent as a string
// holding the JSON array.
func (r SettleRequest) Fields() []Field {
	var f fieldList
	f.str("out_settle_no", r.OutSettleNo)
	f.str("out_order_no", r.OutOrderNo)
	f.str("settle_desc", r.SettleDesc)
	if len(r.SettleParams) > 0 {
		b, _ := json.Marshal(r.SettleParams) // plain structs always marshal
		f.str("settle_params", string(b))
	}
	f.optStr("cp_extra", r.CPExtra)
	f.optStr("notify_url", r.NotifyURL)
	return f
}

// SettleResponse is the answer of a successful settle.
type SettleResponse struct {
	SettleNo string `json:"settle_no"`
}

// QuerySettleRequest asks for a settlement's status.
type QuerySettleRequest struct {
	AppID       string
	OutSettleNo string
}

// Fields returns the request's body fields.
func (r QuerySettleRequest) Fields() []Field {
	var f fieldList
	f.str("out_settle_no", r.OutSettleNo)
	return f
}

// SettleInfo is query_settle's settle_info.
type SettleInfo struct {
	SettleNo     string  `json:"settle_no"`
	SettleAmount int64   `json:"settle_amount"`
	SettleStatus string  `json:"settle_status"` // PROCESSING, SUCCESS or FAIL
	SettledAt    FlexInt `json:"settled_at,omitempty"`
	Rake         int64   `json:"rake"`
	Commission   int64   `json:"commission"`
	SettleDetail string  `json:"settle_detail,omitempty"`
	CPExtra      string  `json:"cp_extra,omitempty"`
	Msg          string  `json:"msg,omitempty"`
}

// UnsettleAmountRequest asks how much of an order can still be settled.
type UnsettleAmountRequest struct {
	AppID      string
	OutOrderNo string
}

// Fields returns the request's body fields.
func (r UnsettleAmountRequest) Fields() []Field {
	var f fieldList
	f.str("out_order_no", r.OutOrderNo)
	return f
}

// UnsettleAmountResponse is the answer of unsettle_amount. Public SDKs read
// it from a "data" object; the client accepts it there or at the top level.
type UnsettleAmountResponse struct {
	OutOrderNo     string `json:"out_order_no,omitempty"`
	UnsettleAmount int64  `json:"unsettle_amount"` // fen
}

// FlexString decodes a JSON string or number into a string (payment_info.way
// arrives as either).
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = FlexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want string or number, got %s", b)
	}
	*s = FlexString(n.String())
	return nil
}

// FlexInt decodes a JSON number or a string of digits into an int64.
type FlexInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*n = 0
			return nil
		}
		b = []byte(s)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("want integer, got %s", b)
	}
	*n = FlexInt(v)
	return nil
}
