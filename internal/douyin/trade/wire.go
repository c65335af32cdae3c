package trade

import (
	"encoding/json"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// Str is a Douyin id or text field: a JSON string, or a number kept as its
// digits (ids are never parsed as numbers).
type Str = douyin.FlexString

// Int is an amount (fen) or a Unix-millisecond time: a JSON number or a
// string of digits.
type Int = douyin.FlexInt

// Millis converts a Unix-millisecond field to a time in UTC; zero for 0.
func Millis(ms Int) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// OrderQueryRequest names an order by exactly one of OrderID (Douyin's) or
// OutOrderNo (payd's).
type OrderQueryRequest struct {
	AppID      string `json:"-"`
	OrderID    string `json:"order_id,omitempty"`
	OutOrderNo string `json:"out_order_no,omitempty"`
}

// Pay statuses of order_query.
const (
	PayProcess = "PROCESS" // not paid yet
	PaySuccess = "SUCCESS"
	PayTimeout = "TIMEOUT" // the user never paid: final
	PayFail    = "FAIL"    // documented as not happening
)

// Pay channels.
const (
	ChannelWeChat    = 1
	ChannelAlipay    = 2
	ChannelDouyinPay = 10
	ChannelDiamond   = 20
)

// ItemOrder is one item order of an order.
type ItemOrder struct {
	ItemOrderID     Str `json:"item_order_id"`
	SKUID           Str `json:"sku_id"`
	ItemOrderAmount Int `json:"item_order_amount"`
}

// Order is order_query's data.
type Order struct {
	OrderID        Str         `json:"order_id"`
	OutOrderNo     Str         `json:"out_order_no"`
	AppID          Str         `json:"app_id"`
	MerchantUID    Str         `json:"merchant_uid"`
	PayStatus      Str         `json:"pay_status"`
	PayTime        Int         `json:"pay_time"` // ms, once paid
	PayChannel     Int         `json:"pay_channel"`
	ChannelPayID   Str         `json:"channel_pay_id"`
	TradeTime      Int         `json:"trade_time"` // ms
	TotalAmount    Int         `json:"total_amount"`
	DiscountAmount Int         `json:"discount_amount"`
	Currency       Str         `json:"currency"`
	ItemOrderList  []ItemOrder `json:"item_order_list"`
	// Raw is the data object exactly as received.
	Raw json.RawMessage `json:"-"`
}

// Paid is what the buyer paid: total − discount.
func (o *Order) Paid() int64 { return int64(o.TotalAmount - o.DiscountAmount) }

// QueryCPSRequest names an order like OrderQueryRequest.
type QueryCPSRequest = OrderQueryRequest

// CPSItem is one commission line; fields beyond the amounts are kept raw.
type CPSItem struct {
	ItemOrderID      Str `json:"item_order_id"`
	CommissionAmount Int `json:"commission_amount"`
	SellAmount       Int `json:"sell_amount"`
	Status           Str `json:"status"`
}

// CPS is query_cps's data. No CPS is an empty list.
type CPS struct {
	OrderID               Str             `json:"order_id"`
	OutOrderNo            Str             `json:"out_order_no"`
	TotalCommissionAmount Int             `json:"total_commission_amount"`
	CPSItemList           []CPSItem       `json:"cps_item_list"`
	Raw                   json.RawMessage `json:"-"`
}

// ItemAmount is a refund amount of one item order.
type ItemAmount struct {
	ItemOrderID  string `json:"item_order_id"`
	RefundAmount int64  `json:"refund_amount"`
}

// RefundReason is one refund_reason entry: 101 不想要了, 102 商家服务原因,
// 103 商品质量问题, 999 其他; text under 50 characters.
type RefundReason struct {
	Code int    `json:"code"`
	Text string `json:"text"`
}

// EntrySchema is the mini-program page of an order (path without leading
// "/", params a JSON text).
type EntrySchema struct {
	Path   string `json:"path"`
	Params string `json:"params"`
}

// RefundCreateRequest is refund_create's body.
type RefundCreateRequest struct {
	AppID             string         `json:"-"`
	OrderID           string         `json:"order_id"`
	OutRefundNo       string         `json:"out_refund_no"`
	RefundTotalAmount int64          `json:"refund_total_amount"`
	ItemOrderDetail   []ItemAmount   `json:"item_order_detail,omitempty"`
	RefundAll         bool           `json:"refund_all,omitempty"`
	RefundReason      []RefundReason `json:"refund_reason"`
	OrderEntrySchema  *EntrySchema   `json:"order_entry_schema,omitempty"`
	CPExtra           string         `json:"cp_extra,omitempty"`
	NotifyURL         string         `json:"notify_url,omitempty"`
	Currency          string         `json:"currency,omitempty"`
}

// RefundCreated is refund_create's data: the refund was accepted.
type RefundCreated struct {
	RefundID            Str             `json:"refund_id"`
	RefundAuditDeadline Int             `json:"refund_audit_deadline"` // ms
	Raw                 json.RawMessage `json:"-"`
}

// RefundQueryRequest names refunds by exactly one of the three.
type RefundQueryRequest struct {
	AppID       string `json:"-"`
	RefundID    string `json:"refund_id,omitempty"`
	OutRefundNo string `json:"out_refund_no,omitempty"`
	OrderID     string `json:"order_id,omitempty"`
}

// Refund statuses; any other value is still in progress.
const (
	RefundProcessing = "PROCESSING"
	RefundSuccess    = "SUCCESS"
	RefundFail       = "FAIL"
)

// Audit statuses of merchant_audit_detail.
const (
	AuditInit     = "INIT"
	AuditToAudit  = "TOAUDIT"
	AuditAgree    = "AGREE"
	AuditDeny     = "DENY"
	AuditOvertime = "OVERTIME" // approved at the deadline
)

// AuditDetail is a refund's merchant audit.
type AuditDetail struct {
	NeedRefundAudit     Int `json:"need_refund_audit"` // 1 audit, 2 none
	AuditStatus         Str `json:"audit_status"`
	RefundAuditDeadline Int `json:"refund_audit_deadline"` // ms
	DenyMessage         Str `json:"deny_message"`
}

// ItemRefund is a refund amount of one item order, as read.
type ItemRefund struct {
	ItemOrderID  Str `json:"item_order_id"`
	RefundAmount Int `json:"refund_amount"`
}

// Refund is one refund_list entry.
type Refund struct {
	RefundID            Str          `json:"refund_id"`
	OutRefundNo         Str          `json:"out_refund_no"` // empty for some user refunds
	OrderID             Str          `json:"order_id"`
	RefundStatus        Str          `json:"refund_status"`
	RefundTotalAmount   Int          `json:"refund_total_amount"`
	ItemOrderDetail     []ItemRefund `json:"item_order_detail"`
	RefundSource        Int          `json:"refund_source"`
	MerchantAuditDetail *AuditDetail `json:"merchant_audit_detail"`
	Message             Str          `json:"message"`
	CreateAt            Int          `json:"create_at"` // ms
	RefundAt            Int          `json:"refund_at"` // ms, when SUCCESS
	Currency            Str          `json:"currency"`
}

// RefundList is refund_query's data.
type RefundList struct {
	RefundList []Refund        `json:"refund_list"`
	Raw        json.RawMessage `json:"-"`
}

// Audit decisions of refund_audit_callback.
const (
	AuditAgreeCode  = 1
	AuditRefuseCode = 2
)

// RefundAuditRequest is payd's decision on a refund awaiting audit.
type RefundAuditRequest struct {
	AppID             string `json:"-"`
	RefundID          string `json:"refund_id"`
	RefundAuditStatus int    `json:"refund_audit_status"`
	DenyMessage       string `json:"deny_message,omitempty"` // required when refusing
}

// SettleReceiver is one other receiver of a settlement.
type SettleReceiver struct {
	MerchantUID string `json:"merchant_uid"`
	Amount      int64  `json:"amount"`
}

// SettleCreateRequest is settle_create's body. SettleParams is sent as the
// JSON text Douyin wants (a string, not an array).
type SettleCreateRequest struct {
	AppID        string           `json:"-"`
	OutOrderNo   string           `json:"out_order_no"`
	OutSettleNo  string           `json:"out_settle_no"`
	SettleDesc   string           `json:"settle_desc"`
	Receivers    []SettleReceiver `json:"-"`
	SettleParams string           `json:"settle_params,omitempty"`
	ItemOrderID  string           `json:"item_order_id,omitempty"`
	Ext          string           `json:"ext,omitempty"`
	NotifyURL    string           `json:"notify_url,omitempty"`
}

// SettleCreated is settle_create's data: accepted, the result comes later.
type SettleCreated struct {
	SettleID       Str             `json:"settle_id"`
	WalletSettleID Str             `json:"wallet_settle_id"`
	Raw            json.RawMessage `json:"-"`
}

// SettleQueryRequest names settlements by exactly one of its fields.
type SettleQueryRequest struct {
	AppID       string `json:"-"`
	SettleID    string `json:"settle_id,omitempty"`
	OrderID     string `json:"order_id,omitempty"`
	OutSettleNo string `json:"out_settle_no,omitempty"`
	OutOrderNo  string `json:"out_order_no,omitempty"`
}

// Settle statuses.
const (
	SettleInit       = "INIT"
	SettleProcessing = "PROCESSING"
	SettleSuccess    = "SUCCESS"
	SettleFail       = "FAIL"
)

// Settle is one settle_query entry. One SDK spells out_settle_id and
// out_order_id: both are read into OutSettleNo and OutOrderNo.
type Settle struct {
	SettleID       Str `json:"settle_id"`
	OutSettleNo    Str `json:"out_settle_no"`
	OrderID        Str `json:"order_id"`
	OutOrderNo     Str `json:"out_order_no"`
	ItemOrderID    Str `json:"item_order_id"`
	SettleStatus   Str `json:"settle_status"`
	SettleAmount   Int `json:"settle_amount"`
	Rake           Int `json:"rake"`
	Commission     Int `json:"commission"`
	PlatformTicket Int `json:"platform_ticket"`
	SettleDetail   Str `json:"settle_detail"`
	SettleAt       Int `json:"settle_at"` // ms
	CPExtra        Str `json:"cp_extra"`
	WalletSettleID Str `json:"wallet_settle_id"`
}

// UnmarshalJSON reads the entry, accepting the alternative spellings.
func (s *Settle) UnmarshalJSON(b []byte) error {
	type plain Settle
	var v struct {
		plain
		OutSettleID Str `json:"out_settle_id"`
		OutOrderID  Str `json:"out_order_id"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Settle(v.plain)
	if s.OutSettleNo == "" {
		s.OutSettleNo = v.OutSettleID
	}
	if s.OutOrderNo == "" {
		s.OutOrderNo = v.OutOrderID
	}
	return nil
}
