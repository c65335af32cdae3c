// Package state holds payd's durable memory: the orders it knows, what the
// merchant wants done to them (refunds, settlements), what payd is in the
// middle of doing, the log of every Douyin call, the inbox of verified
// callbacks and the outbox of events for the merchant's backend.
//
// Every transition is a conditional update on the row's current phase and
// version, so a lost race is detected (ErrConflict), never silently
// overwritten. Time always comes from the caller.
package state

import (
	"time"
)

// OrderStatus is an order's status as last observed at Douyin.
type OrderStatus string

const (
	// OrderUnknown: payd has not queried the order yet (declared or imported
	// without a status). The reconciler queries it first.
	OrderUnknown OrderStatus = "UNKNOWN"
	// OrderProcessing: Douyin says the buyer has not finished paying.
	OrderProcessing OrderStatus = "PROCESSING"
	// OrderSuccess: paid. Refunds and settlement may proceed.
	OrderSuccess OrderStatus = "SUCCESS"
	// OrderFail: the payment failed. Terminal.
	OrderFail OrderStatus = "FAIL"
	// OrderTimeout: not paid in time. Terminal.
	OrderTimeout OrderStatus = "TIMEOUT"
	// OrderNotFound: Douyin answered 2000 for this out_order_no. Terminal;
	// the order's wishes are parked with that reason.
	OrderNotFound OrderStatus = "NOT_FOUND"
)

// Final reports whether Douyin will not change this status any more.
func (s OrderStatus) Final() bool {
	switch s {
	case OrderSuccess, OrderFail, OrderTimeout, OrderNotFound:
		return true
	case OrderUnknown, OrderProcessing:
		return false
	}
	return false
}

// Phase is where a refund or settlement stands in payd's state machine.
// Refunds and settlements share it.
type Phase string

const (
	// PhasePending: wanted, nothing in flight. The reconciler moves it to
	// submitting when its preconditions hold and its NextActionAt has passed.
	PhasePending Phase = "pending"
	// PhaseSubmitting: the intent (merchant number of this attempt) is on
	// disk and the write call may be in flight or its outcome unknown. The
	// reconciler resolves it with a query before anything is resent.
	PhaseSubmitting Phase = "submitting"
	// PhaseProcessing: Douyin accepted the write; the reconciler queries until
	// SUCCESS or FAIL.
	PhaseProcessing Phase = "processing"
	// PhaseSucceeded: Douyin reports SUCCESS. Terminal.
	PhaseSucceeded Phase = "succeeded"
	// PhaseParked: the reconciler gave up on it: the last attempt failed, a
	// permanent or configuration error, or the order cannot be paid out
	// (ParkReason says which). Terminal until an operator retries it by hand
	// (payd retry). Stored as "failed" before schema version 4.
	PhaseParked Phase = "parked"
)

// Final reports whether the reconciler will not move the item any more.
func (p Phase) Final() bool {
	switch p {
	case PhaseSucceeded, PhaseParked, PhaseCancelled:
		return true
	case PhasePending, PhaseSubmitting, PhaseProcessing:
		return false
	}
	return false
}

// Phases lists every phase in state-machine order.
var Phases = []Phase{PhasePending, PhaseSubmitting, PhaseProcessing, PhaseSucceeded, PhaseParked}

// Order is one Douyin order payd knows of.
type Order struct {
	ID            int64       `gorm:"primaryKey"`
	AppID         string      `gorm:"size:64;not null;uniqueIndex:ux_orders_app_no,priority:1;index:ix_orders_app_autosettle,priority:1"`
	OutOrderNo    string      `gorm:"size:64;not null;uniqueIndex:ux_orders_app_no,priority:2;index"`
	DouyinOrderID string      `gorm:"column:order_id;size:64"` // Douyin's order_id, once known
	TotalAmount   int64       `gorm:"not null"`                // fen; 0 while unknown
	Status        OrderStatus `gorm:"size:16;not null;index"`
	PaidAt        *time.Time  // UTC
	CPSShare      int64       // fen, from cps_info
	CPSKnown      bool        // cps_info has been seen
	// PayChannel is Douyin's pay_channel once order_query said it (trade
	// system: 1 WeChat, 2 Alipay, 10 Douyin Pay, 20 diamond); 0 unknown.
	// It sets the refunds allowed per order (schema version 8).
	PayChannel  int        `gorm:"not null;default:0"`
	SettleAfter *time.Time // PaidAt + the app's settle period
	// API is the API the order was created under (provider.APIEcpay or
	// APITrade), stamped at its first query_order; "" until then (schema
	// 12 backfilled older rows). Items in flight finish on it.
	API string `gorm:"size:8;not null;default:''"`
	// ItemOrders is the JSON array of ItemOrder that order_query listed
	// (trade orders); "" while none are known. Read it through ItemList.
	ItemOrders string `gorm:"type:text"`
	// CheckAt is when query_order is due next (nil: at once while the status
	// is not final). A payment callback sets it to now.
	CheckAt *time.Time
	// CheckedAt is when query_order last answered.
	CheckedAt *time.Time
	// AutoSettleAt is set while the order is paid and has no settlement row:
	// the settle_batch job creates one once it has passed (for apps with
	// auto-settle on). Cleared when a settlement row exists. Indexed with
	// AppID, so CreateDueSettlements reads only what is due.
	AutoSettleAt *time.Time `gorm:"index:ix_orders_app_autosettle,priority:2"`
	// NextActionAt is when the reconciler must look at the order next; nil
	// when nothing is to be done. A claimed order carries its lease expiry
	// here, so a crashed worker's order becomes due again by itself.
	// ix_orders_due (app_id, next_action_at, of the orders that have
	// one) drives the claim (see dueapps.go).
	NextActionAt *time.Time
	LeaseOwner   string `gorm:"size:64"`
	// HintSeq counts hints (declarations, callbacks, sweeps). A worker that
	// releases an order whose HintSeq moved since its claim makes it due at
	// once, so no hint is lost while the order is being worked on.
	HintSeq    int64      `gorm:"not null;default:0"`
	LeaseUntil *time.Time // set while a worker holds the order
	Checks     int        `gorm:"not null;default:0"` // query_order calls made while not final, for back-off
	Version    int64      `gorm:"not null;default:1"`
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Refund is a wish to refund Amount of an order, keyed by the caller's
// idempotency key. Attempt n uses OutRefundNo RefundNo(Key, n).
type Refund struct {
	ID      int64 `gorm:"primaryKey"`
	OrderID int64 `gorm:"not null;index"`
	// Order is never loaded: the field only declares the foreign key
	// refunds.order_id → orders.id. belongsTo is spelled out because
	// Order's own OrderID field would make GORM guess the relation backwards.
	Order *Order `gorm:"belongsTo:true;foreignKey:OrderID;references:ID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT" json:"-"`
	// Key is the caller's idempotency key (1..60 of [0-9A-Za-z_-]); the
	// column is idem_key because KEY is an SQL keyword.
	Key    string `gorm:"column:idem_key;size:60;not null;uniqueIndex"`
	Amount int64  `gorm:"not null"` // fen
	Reason string `gorm:"size:100"`
	// Phase is indexed with UpdatedAt: HintStale and Parked read only the
	// rows of the phases they look for, oldest or newest first.
	Phase       Phase  `gorm:"size:16;not null;index:ix_refunds_phase_updated,priority:1"`
	Attempt     int    `gorm:"not null;default:1"`
	OutRefundNo string `gorm:"size:64;not null;uniqueIndex"`
	RefundNo    string `gorm:"size:64"` // Douyin's refund_no, once accepted
	AllSettle   bool   // sent with all_settle=1 (the order was already settled)
	// API is the API the refund's attempts are sent under ("" before
	// schema 12: the order's).
	API string `gorm:"size:8;not null;default:''"`
	// Source is who started the refund: SourcePayd ("", declared) or one
	// of Douyin's (a user, customer service, an expiry: adopted by
	// RefundNo, never created or retried by payd).
	Source RefundSource `gorm:"size:16;not null;default:''"`
	// AuditPhase says where the merchant's decision on a refund a user
	// started stands, when Douyin asks for one (AuditNone: it does not);
	// AuditDeadline is when Douyin approves the refund by itself. The
	// decision (AuditDecision, AuditMessage, AuditBy) is stored before it
	// is sent (schema version 8).
	AuditPhase    AuditPhase    `gorm:"size:16;not null;default:''"`
	AuditDeadline *time.Time    // UTC
	AuditDecision AuditDecision `gorm:"size:8;not null;default:''"`
	AuditMessage  string        `gorm:"size:512"`
	AuditBy       string        `gorm:"size:16"` // policy, or operator (payd audit, the admin API)
	// NextActionAt is when the reconciler may act on the refund next (back-off
	// after a failure, next query while processing). Work is found through
	// the order's NextActionAt, so this column needs no index.
	NextActionAt *time.Time
	Checks       int `gorm:"not null;default:0"` // queries made in the current attempt
	ErrNo        int // last err_no that decided something, 0 if none
	ErrTips      string
	ParkReason   string // why it is failed, in words
	DoneAt       *time.Time
	Version      int64 `gorm:"not null;default:1"`
	CreatedAt    time.Time
	UpdatedAt    time.Time `gorm:"index:ix_refunds_phase_updated,priority:2"`
	// stored is the row as read or last saved (see refundCols).
	stored storedRefund
}

// Receiver is one third-party receiver of a settlement.
type Receiver struct {
	MerchantUID string `json:"merchant_uid"`
	Amount      int64  `json:"amount"` // fen
}

// Settlement is a wish to settle an order, or one item order of it: an
// order has one whole-order settlement or one per item order, never both.
// Attempt n uses OutSettleNo SettleNo(app, out_order_no, n) (per item:
// ItemSettleNo).
type Settlement struct {
	ID      int64 `gorm:"primaryKey"`
	OrderID int64 `gorm:"not null;uniqueIndex:ux_settlements_order_item,priority:1"`
	// ItemOrderID is Douyin's item_order_id for a settlement of one item
	// order; "" for the whole order. Unique with OrderID (schema version
	// 10; before it, order_id alone was unique).
	ItemOrderID string `gorm:"size:64;not null;default:'';uniqueIndex:ux_settlements_order_item,priority:2"`
	Order       *Order `gorm:"belongsTo:true;foreignKey:OrderID;references:ID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT" json:"-"` // never loaded; declares the foreign key (see Refund.Order)
	// DueAt is the earliest time to settle; nil means the order's SettleAfter.
	DueAt *time.Time
	// Receivers is the JSON array of Receiver (settle_params); "" for none.
	Receivers string `gorm:"type:text"`
	// Desc is settle_desc (≤ 80 runes); the column is settle_desc because
	// DESC is an SQL keyword.
	Desc string `gorm:"column:settle_desc;size:80"`
	Auto bool   // created by settle_batch, not declared
	// API is the API the settlement's attempts are sent under ("" before
	// schema 12: the order's).
	API string `gorm:"size:8;not null;default:''"`
	// Source is who makes the settlement: payd (SettleByPayd, "") or
	// Douyin itself (SettleByDouyin: observed, never sent).
	Source      SettleSource `gorm:"size:16;not null;default:''"`
	Phase       Phase        `gorm:"size:16;not null;index:ix_settlements_phase_updated,priority:1"`
	Attempt     int          `gorm:"not null;default:1"`
	OutSettleNo string       `gorm:"size:64;not null;uniqueIndex"`
	SettleNo    string       `gorm:"size:64"`
	// Amount is what was left to settle when it was submitted (fen).
	Amount       int64
	NextActionAt *time.Time
	Checks       int `gorm:"not null;default:0"`
	ErrNo        int
	ErrTips      string
	ParkReason   string
	DoneAt       *time.Time
	Version      int64 `gorm:"not null;default:1"`
	CreatedAt    time.Time
	UpdatedAt    time.Time `gorm:"index:ix_settlements_phase_updated,priority:2"`
	// stored is the row as read or last saved (see settlementCols).
	stored storedSettlement
	// order is its order's identity, when it was read with the order.
	order orderIdentity
}

// Attempt is one Douyin call, appended and never changed: the audit trail and
// the evidence of exactly-once.
type Attempt struct {
	ID         int64  `gorm:"primaryKey"`
	OrderID    int64  `gorm:"not null;index"`
	Order      *Order `gorm:"belongsTo:true;foreignKey:OrderID;references:ID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT" json:"-"` // never loaded; declares the foreign key (see Refund.Order)
	Resource   string `gorm:"size:16;not null"`                                                                                        // order, refund, settlement
	ResourceID int64
	API        string `gorm:"size:32;not null"`
	MerchantNo string `gorm:"size:64;not null;index"`
	ErrNo      int    // -1 when there was no parsable answer
	ErrTips    string
	Outcome    string `gorm:"size:16;not null"` // ok, retryable, unknown, permanent, config
	LatencyMS  int64
	CreatedAt  time.Time
}

// Callback is a verified Douyin callback, stored raw, de-duplicated by its
// signature.
type Callback struct {
	ID         int64  `gorm:"primaryKey"`
	AppID      string `gorm:"size:64;not null"`
	Type       string `gorm:"size:32;not null"`
	Signature  string `gorm:"size:400;not null;uniqueIndex"`
	SubjectNo  string `gorm:"size:64;not null"` // out_order_no, out_refund_no or out_settle_no
	OrderID    int64  `gorm:"index"`            // 0 when the subject is unknown to payd
	Raw        string `gorm:"type:text;not null"`
	ReceivedAt time.Time
}

// EventType names a change the merchant's backend is told about.
type EventType string

// The events payd emits.
const (
	EventOrderPaid               EventType = "order.paid"
	EventOrderClosed             EventType = "order.closed"
	EventRefundSucceeded         EventType = "refund.succeeded"
	EventRefundAttemptFailed     EventType = "refund.attempt_failed"
	EventRefundParked            EventType = "refund.parked"
	EventSettlementSucceeded     EventType = "settlement.succeeded"
	EventSettlementAttemptFailed EventType = "settlement.attempt_failed"
	EventSettlementParked        EventType = "settlement.parked"
)

// Event is an outbox row, written in the same transaction as the change it
// reports.
type Event struct {
	Seq        int64     `gorm:"primaryKey;autoIncrement"` // delivery order
	ID         string    `gorm:"size:40;not null;uniqueIndex"`
	Type       EventType `gorm:"size:40;not null"`
	AppID      string    `gorm:"size:64;not null"`
	OutOrderNo string    `gorm:"size:64;not null;index"`
	Payload    string    `gorm:"type:text;not null"` // JSON of the resource
	CreatedAt  time.Time
}
