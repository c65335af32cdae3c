package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The event types payd sends. An order.* event's Data is an OrderData, a
// refund.* event's a RefundData, a settlement.* event's a SettlementData.
const (
	TypeOrderPaid               = "order.paid"
	TypeOrderClosed             = "order.closed"
	TypeRefundSucceeded         = "refund.succeeded"
	TypeRefundAttemptFailed     = "refund.attempt_failed"
	TypeRefundParked            = "refund.parked"
	TypeSettlementSucceeded     = "settlement.succeeded"
	TypeSettlementAttemptFailed = "settlement.attempt_failed"
	TypeSettlementParked        = "settlement.parked"
)

// OrderData is the resource of order.* events. Amounts are in fen.
type OrderData struct {
	OutOrderNo string `json:"out_order_no"`
	// DouyinOrderID is Douyin's order_id, once known.
	DouyinOrderID string     `json:"douyin_order_id,omitempty"`
	AppID         string     `json:"app_id"`
	Status        string     `json:"status"`
	TotalAmount   int64      `json:"total_amount"`
	PaidAt        *time.Time `json:"paid_at,omitempty"`
	CPSShare      int64      `json:"cps_share"`
}

// RefundData is the resource of refund.* events.
type RefundData struct {
	OutOrderNo string `json:"out_order_no"`
	// Key is the refund's idempotency key; attempt n uses OutRefundNo
	// "<key>-<n>".
	Key         string `json:"key"`
	OutRefundNo string `json:"out_refund_no"`
	// DouyinRefundID is Douyin's id of the refund, once accepted.
	DouyinRefundID string `json:"douyin_refund_id,omitempty"`
	Amount         int64  `json:"amount"`
	Attempt        int    `json:"attempt"`
	Phase          string `json:"phase"`
	// AfterSettlement is set when the order was settled before the refund:
	// the money comes from the merchant's settled balance.
	AfterSettlement bool   `json:"after_settlement"`
	ErrNo           int    `json:"err_no,omitempty"`
	ErrTips         string `json:"err_tips,omitempty"`
	ParkReason      string `json:"park_reason,omitempty"`
}

// Receiver is one third-party receiver of a settlement.
type Receiver struct {
	MerchantUID string `json:"merchant_uid"`
	Amount      int64  `json:"amount"`
}

// SettlementData is the resource of settlement.* events.
type SettlementData struct {
	OutOrderNo  string `json:"out_order_no"`
	OutSettleNo string `json:"out_settle_no"`
	// ItemOrderID is set when the settlement is of one item order.
	ItemOrderID string `json:"item_order_id,omitempty"`
	// DouyinSettleID is Douyin's id of the settlement, once accepted.
	DouyinSettleID string     `json:"douyin_settle_id,omitempty"`
	Amount         int64      `json:"amount"`
	Attempt        int        `json:"attempt"`
	Phase          string     `json:"phase"`
	Receivers      []Receiver `json:"receivers,omitempty"`
	ErrNo          int        `json:"err_no,omitempty"`
	ErrTips        string     `json:"err_tips,omitempty"`
	ParkReason     string     `json:"park_reason,omitempty"`
}

// Order decodes the Data of an order.* event.
func (e *Event) Order() (*OrderData, error) {
	var d OrderData
	return &d, e.decode("order.", &d)
}

// Refund decodes the Data of a refund.* event.
func (e *Event) Refund() (*RefundData, error) {
	var d RefundData
	return &d, e.decode("refund.", &d)
}

// Settlement decodes the Data of a settlement.* event.
func (e *Event) Settlement() (*SettlementData, error) {
	var d SettlementData
	return &d, e.decode("settlement.", &d)
}

func (e *Event) decode(prefix string, v any) error {
	if !strings.HasPrefix(e.Type, prefix) {
		return fmt.Errorf("%w: a %s event has no %sdata", ErrMalformed, e.Type, prefix)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("%w: %s data: %v", ErrMalformed, e.Type, err)
	}
	return nil
}
