// Package api holds the shapes payd shows the outside world: the answers of
// the admin API and of every `--json` output. They are snake_case JSON
// built from state rows by pure functions, so that a change of a table
// never changes a public answer by accident, and internal bookkeeping
// (row versions, leases, hint counters) never leaks out.
package api

import (
	"encoding/json"
	"time"
)

// Order is one Douyin order as payd knows it.
type Order struct {
	AppID      string `json:"app_id"`
	OutOrderNo string `json:"out_order_no"`
	// DouyinOrderID is Douyin's order_id, "" until Douyin answered.
	DouyinOrderID string     `json:"douyin_order_id"`
	TotalAmount   int64      `json:"total_amount"` // fen; 0 while unknown
	Status        string     `json:"status"`
	PaidAt        *time.Time `json:"paid_at"`
	CPSShare      int64      `json:"cps_share"` // fen
	CPSKnown      bool       `json:"cps_known"`
	// PayChannel is Douyin's pay_channel (trade system: 1 WeChat, 2
	// Alipay, 10 Douyin Pay, 20 diamond); omitted while unknown.
	PayChannel   int        `json:"pay_channel,omitempty"`
	SettleAfter  *time.Time `json:"settle_after"`
	NextActionAt *time.Time `json:"next_action_at"`
	CheckedAt    *time.Time `json:"checked_at"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// CreatedOrder answers POST /v1/orders: what the mini-program's tt.pay
// needs.
type CreatedOrder struct {
	OutOrderNo    string `json:"out_order_no"`
	DouyinOrderID string `json:"douyin_order_id"`
	OrderToken    string `json:"order_token"`
}

// Refund is a wish to refund part of an order.
type Refund struct {
	Key         string `json:"key"`
	AppID       string `json:"app_id,omitempty"`
	OutOrderNo  string `json:"out_order_no,omitempty"`
	Amount      int64  `json:"amount"` // fen
	Reason      string `json:"reason"`
	Phase       string `json:"phase"`
	Attempt     int    `json:"attempt"`
	OutRefundNo string `json:"out_refund_no"`
	RefundNo    string `json:"refund_no"` // Douyin's, once accepted
	AllSettle   bool   `json:"all_settle"`
	// Source is who started the refund: "" (payd), or user,
	// customer_service, expiry, douyin (adopted from the trade system).
	Source string `json:"source,omitempty"`
	// Audit is the merchant's audit of a refund a user started, when
	// Douyin asks for one.
	Audit        *RefundAudit `json:"audit,omitempty"`
	NextActionAt *time.Time   `json:"next_action_at"`
	ErrNo        int          `json:"err_no"`
	ErrTips      string       `json:"err_tips"`
	ParkReason   string       `json:"park_reason"`
	DoneAt       *time.Time   `json:"done_at"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
}

// RefundAudit is where a refund's merchant audit stands.
type RefundAudit struct {
	// Phase is waiting, decided, sending, sent, refused or overtime.
	Phase string `json:"phase"`
	// Deadline is when Douyin approves the refund by itself.
	Deadline *time.Time `json:"deadline"`
	// Decision is agree or deny once made; By is policy, operator or
	// douyin (decided in Douyin's console).
	Decision string `json:"decision,omitempty"`
	Message  string `json:"message,omitempty"`
	By       string `json:"by,omitempty"`
}

// AuditRequest is the body of POST /v1/refunds/{key}/audit: a person's
// decision on a refund awaiting audit.
type AuditRequest struct {
	// Decision is agree or deny.
	Decision string `json:"decision"`
	// Message is the reason the buyer reads; required to deny.
	Message string `json:"message"`
}

// SignOrderRequest is the body of POST /v1/orders/sign (and what payd
// order sign reads): a trade app's order data for tt.requestOrder.
type SignOrderRequest struct {
	// AppID is the trade app; default the only configured app.
	AppID string `json:"app_id"`
	// Data is the order data as Douyin documents it for tt.requestOrder
	// (outOrderNo, totalAmount, skuList, payExpireSeconds,
	// orderEntrySchema…); the app's order_entry_schema is added when it
	// has none.
	Data json.RawMessage `json:"data"`
}

// SignedOrder is what the mini-program passes to tt.requestOrder: data,
// exactly as signed, and its Byte-Authorization header.
type SignedOrder struct {
	AppID             string `json:"app_id"`
	OutOrderNo        string `json:"out_order_no"`
	TotalAmount       int64  `json:"total_amount"`
	Data              string `json:"data"`
	ByteAuthorization string `json:"byte_authorization"`
}

// Receiver is one third-party receiver of a settlement.
type Receiver struct {
	MerchantUID string `json:"merchant_uid"`
	Amount      int64  `json:"amount"` // fen
}

// Settlement is a wish to settle an order.
type Settlement struct {
	AppID        string     `json:"app_id,omitempty"`
	OutOrderNo   string     `json:"out_order_no,omitempty"`
	OutSettleNo  string     `json:"out_settle_no"`
	ItemOrderID  string     `json:"item_order_id,omitempty"` // set for a settlement of one item order
	SettleNo     string     `json:"settle_no"`               // Douyin's, once accepted
	DueAt        *time.Time `json:"due_at"`
	Receivers    []Receiver `json:"receivers"`
	Desc         string     `json:"desc"`
	Auto         bool       `json:"auto"` // created by settle_batch
	Phase        string     `json:"phase"`
	Attempt      int        `json:"attempt"`
	Amount       int64      `json:"amount"` // fen, once submitted
	NextActionAt *time.Time `json:"next_action_at"`
	ErrNo        int        `json:"err_no"`
	ErrTips      string     `json:"err_tips"`
	ParkReason   string     `json:"park_reason"`
	DoneAt       *time.Time `json:"done_at"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Call is one Douyin call made for an order.
type Call struct {
	API        string    `json:"api"`
	Resource   string    `json:"resource"`
	MerchantNo string    `json:"merchant_no"`
	ErrNo      int       `json:"err_no"`
	ErrTips    string    `json:"err_tips"`
	Outcome    string    `json:"outcome"`
	LatencyMS  int64     `json:"latency_ms"`
	At         time.Time `json:"at"`
}

// Callback is a verified Douyin callback about an order (its body is not
// shown).
type Callback struct {
	Type       string    `json:"type"`
	SubjectNo  string    `json:"subject_no"`
	ReceivedAt time.Time `json:"received_at"`
}

// Event is an outbox event, as POSTed to the merchant's endpoints.
type Event struct {
	ID         string          `json:"id"`
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	AppID      string          `json:"app_id"`
	OutOrderNo string          `json:"out_order_no"`
	Data       json.RawMessage `json:"data"`
	CreatedAt  time.Time       `json:"created_at"`
}

// Action is one step the reconciler would take.
type Action struct {
	OutOrderNo string    `json:"out_order_no"`
	AppID      string    `json:"app_id"`
	Action     string    `json:"action"`
	Target     string    `json:"target"` // the merchant number the call uses
	Amount     int64     `json:"amount"` // fen; 0 when none
	At         time.Time `json:"at"`
	Reason     string    `json:"reason"`
}

// OrderDetail is everything payd knows of one order (payd status ORDER,
// GET /v1/orders/{no}).
type OrderDetail struct {
	Order      Order       `json:"order"`
	Refunds    []Refund    `json:"refunds"`
	Settlement *Settlement `json:"settlement"`
	// ItemSettlements are the settlements of single item orders (an order
	// has them or a Settlement, never both).
	ItemSettlements []Settlement `json:"item_settlements"`
	// Fulfilments are the recorded fulfilments, whole or by item order.
	Fulfilments []Fulfilment `json:"fulfilments"`
	Calls       []Call       `json:"calls"`
	Callbacks   []Callback   `json:"callbacks"`
	Events      []Event      `json:"events"`
	Plan        []Action     `json:"plan"`
}

// Parked is a refund or settlement that needs a person.
type Parked struct {
	Kind       string `json:"kind"` // refund or settlement
	AppID      string `json:"app_id"`
	OutOrderNo string `json:"out_order_no"`
	// Key is the refund's key; "" for a settlement.
	Key string `json:"key,omitempty"`
	// ItemOrderID is set for the settlement of one item order.
	ItemOrderID string `json:"item_order_id,omitempty"`
	// Number is the merchant number of the last attempt.
	Number string `json:"number"`
	Amount int64  `json:"amount"` // fen
	Reason string `json:"reason"`
	// Fix is the command that puts it back to work once the cause is fixed.
	Fix string    `json:"fix"`
	At  time.Time `json:"parked_at"`
}

// PlanReport is what would be done now, what is scheduled next and what
// waits for a person.
type PlanReport struct {
	Now    time.Time `json:"now"`
	Due    []Action  `json:"due"`
	Later  []Action  `json:"later"`
	Parked []Parked  `json:"parked"`
	// Waiting says what each pending settlement waits for: payment,
	// refunds, fulfilment or period.
	Waiting []Wait `json:"waiting"`
	// Truncated is set when more was due or scheduled than shown.
	Truncated bool `json:"truncated"`
}

// Fulfilment is a recorded fulfilment of an order or of one item order.
type Fulfilment struct {
	AppID       string    `json:"app_id"`
	OutOrderNo  string    `json:"out_order_no"`
	ItemOrderID string    `json:"item_order_id,omitempty"`
	FulfilledAt time.Time `json:"fulfilled_at"`
}

// Wait is what one pending settlement waits for.
type Wait struct {
	OutOrderNo  string     `json:"out_order_no"`
	AppID       string     `json:"app_id"`
	Target      string     `json:"target"`
	ItemOrderID string     `json:"item_order_id,omitempty"`
	WaitsFor    string     `json:"waits_for"`
	Until       *time.Time `json:"until,omitempty"`
	Reason      string     `json:"reason"`
}

// Count is one row of a summary.
type Count struct {
	Status string `json:"status,omitempty"`
	Phase  string `json:"phase,omitempty"`
	Count  int64  `json:"count"`
	Amount int64  `json:"amount,omitempty"` // fen
}

// Summary counts what payd holds.
type Summary struct {
	Orders        []Count `json:"orders"`
	Refunds       []Count `json:"refunds"`
	Settlements   []Count `json:"settlements"`
	SettledAmount int64   `json:"settled_amount"` // fen
	Events        int64   `json:"events"`
	// Apps are the same counts for each app, by app_id.
	Apps []AppSummary `json:"apps"`
}

// AppSummary is one app's part of a summary.
type AppSummary struct {
	AppID         string  `json:"app_id"`
	Orders        []Count `json:"orders"`
	Refunds       []Count `json:"refunds"`
	Settlements   []Count `json:"settlements"`
	SettledAmount int64   `json:"settled_amount"` // fen
}

// Status is payd status and GET /v1/status.
type Status struct {
	Summary Summary  `json:"summary"`
	Parked  []Parked `json:"parked"`
}

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	Endpoint      string     `json:"endpoint"`
	EventSeq      int64      `json:"event_seq"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	AppID         string     `json:"app_id"`
	OutOrderNo    string     `json:"out_order_no"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastStatus    int        `json:"last_status"`
	LastError     string     `json:"last_error"`
	LatencyMS     int64      `json:"latency_ms"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// Deliveries is GET /v1/events and payd events --json.
type Deliveries struct {
	Deliveries []Delivery `json:"deliveries"`
}

// Replayed answers an event replay.
type Replayed struct {
	Replayed int `json:"replayed"`
}

// Error is the shape of every admin API error.
type Error struct {
	Error string `json:"error"`
}
