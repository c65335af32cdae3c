// Package tradesim is a strict simulator of Douyin's general trade system
// (trade_basic), for tests, the sandbox and the demo. A client bug must
// show up as an error answer or as a violation from Check.
//
// # Endpoints
//
// POST /oauth/client_token/ issues client tokens: each lives TokenTTL (2 h)
// on the simulated clock; a new one cuts the previous to 5 more minutes
// and kills any older (only the newest two live); more than TokenLimit
// (500) fetches of an app in 5 minutes answer 10020; a wrong secret 10013,
// an unknown client_key 10003.
//
// The seven trade_basic endpoints are served under
// /api/trade_basic/v1/developer/<name>/ (trailing slash). Each request is
// checked in this order: the access-token header (28001003 unknown or
// killed, 28001008 expired); the rate per app and API (Config.Rate, 30/s,
// wall clock; 12001 above it, nothing done); strict fields (10000 naming
// the field: missing, wrong type, unknown); then the rules. settle_create
// refuses with HTTP 400, everything else with HTTP 200.
//
// # Rules
//
// Refunds: only of paid orders within a year of payment; at most 50 per
// order (300 on Alipay); item amounts within what is left of each item and
// summing to the total; refund_all only while the order has no refund and
// for the paid amount. An out_refund_no already used answers its refund
// again and is never executed twice. An accepted refund stays PROCESSING
// for ProcessingDelay of the simulated clock, then SUCCEEDs or FAILs
// (Faults.RefundChannelFail). An unknown order is 20000, a state that
// forbids the refund 20001.
//
// User refunds (POST /_sim/trade/user_refund, StartUserRefund) post a
// signed pre_create_refund to the app's PreRefundURL and create the refund
// only on a synchronous answer {"err_no":0,"data":{"out_refund_no":…}};
// err_no ≠ 0 refuses it; no valid answer in PreCreateAttempts leaves it
// stuck. With need_audit the refund waits TOAUDIT for
// refund_audit_callback: agree starts it, refuse ends it FAIL (DENY); no
// decision in 72 h of the simulated clock approves it (OVERTIME). Every
// refund_audit_callback naming a refund is counted (AuditCalls in the
// ledger); one after the decision was taken is a violation of Check.
//
// Orders a mini-program creates (RequestOrder) carry tt.requestOrder's
// order data and its Byte-Authorization, verified with the app's OrderKey
// over POST /requestOrder and the exact text (at most an hour old); they
// wait PROCESS until Pay.
//
// Settlements follow the app's rule: payment D+N after pay_time (whole
// orders only: an item_order_id is 23113) or fulfilment D+N after every
// item was fulfilled (POST /_sim/trade/fulfil) or fully refunded; CPS
// orders (a CPS commission) fulfilment D+3 always. Not due: 23107. A used
// out_settle_no: 23111. Nothing left (settled, or all refunded): 23112.
// Whole-order and per-item settlements exclude each other: 23118. Unknown
// order 23101, unpaid 23102, unknown item 23024, another order's item
// 23025. Auto-settle apps answer 23117 and are settled by the simulator
// when due (out_settle_no = settle_id, is_auto_settle in the callback).
// settle_query answers an array, empty when nothing matches.
//
// # Callbacks
//
// Payment (when a paid order is seeded), refund and settle results are
// posted as version 3.0 bodies signed with Config.PlatformKey
// (Byte-Timestamp, Byte-Nonce-Str, Byte-Signature) to the request's
// notify_url, else the app's NotifyURL, and retried after each
// RetrySchedule wait (wall clock) until answered HTTP 200 {"err_no":0}.
// Faults drop, duplicate or delay them.
//
// # Faults
//
// Rolled per accepted write from Config.Seed: 13000 or 23000 after the
// effect, HTTP 502 after the effect, a hang after the effect (Config.Hang,
// cut short when the client leaves).
//
// # Time
//
// The simulated clock is Config.Start plus wall time since New plus
// Advance; progress (audits, refunds, settlements, auto-settlement) is
// evaluated on every call, Advance, ledger read and every 20 ms.
//
// # Control API
//
// Under the prefix /_sim/trade/, apart from the ecpay simulator's /_sim/:
//
//	POST /_sim/trade/orders       {"orders":[SeedOrder…]} → the orders with their ids
//	POST /_sim/trade/fulfil       {"order_id":…, "item_order_id":… (optional)}
//	POST /_sim/trade/user_refund  a UserRefund → a UserRefundResult
//	POST /_sim/trade/clock        {"advance":"72h"}; GET reads the clock
//	POST /_sim/trade/faults       a Faults object, replacing the faults
//	GET  /_sim/trade/ledger       every order, refund and settlement
//	GET  /_sim/trade/check        {"violations":[…]}: see Server.Check
package tradesim
