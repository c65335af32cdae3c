// Package provider is the seam between payd's reconciler and the Douyin APIs
// it speaks (ecpay v1, the general trade system). The reconciler consumes
// Provider; each API has one adapter that implements it. Both import this
// package and nothing of each other: answers are in payd's own terms —
// statuses, amounts, Douyin's ids, an outcome class and, for a refusal, the
// reason the reconciler acts on — never an API's err_no table.
package provider

import (
	"context"
	"time"
)

// Provider is what the reconciler asks of a Douyin API. Every method returns
// either a result (err nil: Douyin answered and the answer was understood)
// or an error that Outcome classifies; adapters return *Error for every
// answer of Douyin's that is not a success.
type Provider interface {
	// QueryOrder learns an order's status, amounts, pay time, CPS share and
	// Douyin's ids.
	QueryOrder(ctx context.Context, o OrderRef) (*OrderInfo, error)
	// CreateRefund asks Douyin to refund; success means accepted, not done.
	CreateRefund(ctx context.Context, req RefundRequest) (*RefundInfo, error)
	// QueryRefund reads one refund by payd's number or Douyin's id.
	QueryRefund(ctx context.Context, o OrderRef, ref ItemRef) (*RefundInfo, error)
	// CreateSettle asks Douyin to settle; success means accepted, not done.
	CreateSettle(ctx context.Context, req SettleRequest) (*SettleInfo, error)
	// QuerySettle reads one settlement by payd's number or Douyin's id.
	QuerySettle(ctx context.Context, o OrderRef, ref ItemRef) (*SettleInfo, error)
}

// Call names one kind of Douyin call: the unit of a rate budget and of the
// attempt log's api column.
type Call string

// The calls the reconciler makes. Their names are ecpay's historical ones,
// kept as the attempt log's and the metrics' labels for every API.
const (
	CallQueryOrder   Call = "query_order"
	CallCreateRefund Call = "create_refund"
	CallQueryRefund  Call = "query_refund"
	CallCreateSettle Call = "settle"
	CallQuerySettle  Call = "query_settle"
)

// Budget tells how long a call would wait for its rate-limit token now. An
// adapter whose client has rate limits implements it; without it the
// reconciler never parks an order for its budget.
type Budget interface {
	Delay(appID string, call Call) time.Duration
	Rate(appID string, call Call) float64
}

// OrderRef names an order in every form an API may need: the app, payd's
// (the merchant's) out_order_no and, once learned, Douyin's order id.
type OrderRef struct {
	AppID         string
	OutOrderNo    string
	DouyinOrderID string
	// API is the API to call for this order: "" (or the app's own) routes
	// to the app's adapter; APIEcpay on an app moved to the trade system
	// routes to its legacy ecpay adapter, for the items sent before the
	// move (Router.Legacy).
	API string
	// Migrated is set for an order created under ecpay and now served by
	// the trade system: settle_query reads it by order_id (facts file).
	Migrated bool
}

// The APIs an order may have been created under.
const (
	APIEcpay = "ecpay"
	APITrade = "trade"
)

// ItemRef names a refund or settlement: payd's number (out_refund_no,
// out_settle_no) and, when known, Douyin's id; an adapter queries by the
// one its API prefers.
type ItemRef struct {
	No       string
	DouyinID string
	// ByOrder asks for a settlement payd did not make (Douyin's
	// auto-settlement): found by the order (and ItemOrderID, "" for the
	// whole order) while DouyinID is not known; No is not Douyin's.
	ByOrder     bool
	ItemOrderID string
}

// OrderStatus is an order's payment status in payd's terms.
type OrderStatus string

// The statuses QueryOrder reports.
const (
	OrderProcessing OrderStatus = "PROCESSING" // not paid yet
	OrderSuccess    OrderStatus = "SUCCESS"    // paid
	OrderFail       OrderStatus = "FAIL"       // payment failed: final
	OrderTimeout    OrderStatus = "TIMEOUT"    // never paid in time: final
)

// ItemOrder is one item order of an order (trade system; ecpay has none).
type ItemOrder struct {
	ID     string // Douyin's item_order_id
	SKUID  string
	Amount int64 // fen
}

// OrderInfo is what QueryOrder learned.
type OrderInfo struct {
	Status        OrderStatus
	DouyinOrderID string
	// TotalAmount is what the buyer paid (fen); 0 when not said.
	TotalAmount int64
	// PaidAt is set once the order is paid and Douyin said when.
	PaidAt *time.Time
	// CPSShare is the CPS commission (fen), valid when CPSKnown.
	CPSShare int64
	CPSKnown bool
	// PayChannel is Douyin's pay_channel (1 WeChat, 2 Alipay, …); 0 unknown.
	PayChannel int
	Items      []ItemOrder
}

// ItemAmount is an amount of one item order.
type ItemAmount struct {
	ItemOrderID string
	Amount      int64
}

// RefundRequest is one refund attempt.
type RefundRequest struct {
	Order       OrderRef
	OutRefundNo string
	Amount      int64
	Reason      string
	// AfterSettlement is set when the order's money was already settled to
	// the merchant (ecpay: all_settle=1).
	AfterSettlement bool
	// Items spreads the refund over item orders, when the API needs it.
	Items     []ItemAmount
	NotifyURL string
}

// ItemStatus is where Douyin says a refund or settlement stands.
type ItemStatus string

// The statuses QueryRefund and QuerySettle report.
const (
	StatusProcessing ItemStatus = "PROCESSING" // any status not final
	StatusSuccess    ItemStatus = "SUCCESS"
	StatusFail       ItemStatus = "FAIL"
)

// RefundInfo is what Douyin says of a refund.
type RefundInfo struct {
	Status         ItemStatus
	DouyinRefundID string
	Amount         int64
	Message        string // why it failed, when it did
	// Audit is the merchant audit of a refund a user started (trade
	// system); zero when it needs none.
	Audit Audit
}

// Receiver is one third-party receiver of a settlement.
type Receiver struct {
	MerchantUID string
	Amount      int64
}

// SettleRequest is one settlement attempt.
type SettleRequest struct {
	Order       OrderRef
	OutSettleNo string
	// Amount is what payd expects to settle (fen), for APIs that ask.
	Amount      int64
	Desc        string
	Receivers   []Receiver
	ItemOrderID string
	NotifyURL   string
}

// SettleInfo is what Douyin says of a settlement.
type SettleInfo struct {
	Status         ItemStatus
	DouyinSettleID string
	Amount         int64 // settled (fen), when said
	Message        string
}
