// Package douyinsim is a strict simulator of Douyin's ecpay v1 service
// (guaranteed payment), used by tests, `payd sandbox`, `payd demo` and the
// benchmarks. A bug in a client must show up here as an error answer or as a
// violation from Check, never be papered over.
//
// # Endpoints
//
// create_order, query_order, create_refund, query_refund, settle,
// query_settle and unsettle_amount are served under /api/apps/ecpay/v1/.
// Every call is a POST with a JSON body. It is checked in this order:
// app_id unknown → 2042; sign wrong → 2008 (verified with the app's SALT over
// the values douyin.BodyParams recovers from the body); over the app's rate
// for that API → 1001 (never blocks); then the request faults are rolled;
// then the fields are validated (2010 naming the field: missing, wrong JSON
// type, out of range, too long, a merchant number outside 1..64 characters
// of [0-9A-Za-z_-*], a notify_url that is not https or loopback http) and
// the call acts. Every answer is HTTP 200 JSON with err_no and err_tips,
// except the injected HTTP 500s.
//
// Not-found answers: query_order and unsettle_amount of an unknown
// out_order_no answer 2000 ("order not found"); query_refund of an unknown
// out_refund_no answers 3101 ("refund not found"); query_settle of an
// unknown out_settle_no answers 2000 ("settle not found"). A number whose
// first request was rejected was never created: its query is not found.
//
// # Douyin's rules, enforced
//
// Idempotency: Douyin de-duplicates on (app, merchant number), separately
// for orders, refunds and settlements. A repeat returns the first answer
// (same order_id, refund_no or settle_no) and ignores changed parameters.
// When the first request got a definite error (2010), or was accepted and
// later FAILed, every later request with that number answers 2010 "...
// already failed". Answers 1000 without effect, 1001 and HTTP 500 without
// effect are not remembered: for Douyin those requests never happened.
//
// Refunds: only of SUCCESS orders, within a year of payment, at most 50 per
// order, never more than the total less every refund that has not failed.
// While a settlement of the order is PROCESSING a refund is refused. Once
// the order is settled a refund needs all_settle=1 ("order settled,
// all_settle required"); all_settle=1 on an unsettled order is refused too.
// Such a refund is accepted and, when it completes, takes the money from the
// app's withdrawable balance, or FAILs "insufficient withdrawable balance".
//
// Settlements: at most 50 settle requests per order, a later one only after
// the previous one finished and none after one succeeded (2010). Receivers
// (settle_params) are at most 4, each positive, together at most 30% of the
// order (2010). A settle of an order that is not SUCCESS, or before
// paid_at + SettlePeriod, is accepted and FAILs asynchronously with a
// message, as the real service does. The settle amount is the total less
// the refunds that succeeded or are processing, less the CPS share; on
// success the merchant's part (the amount less the receivers') is added to
// the app's withdrawable balance.
//
// Unpaid orders from create_order time out (TIMEOUT) after valid_time.
// cps_info appears in query_order CPSDelay after payment, only for orders
// with a CPS share.
//
// # Time
//
// The simulator has its own clock: wall time since start plus whatever
// Advance (POST /_sim/clock) added, so a test jumps past T+7 without
// sleeping. A refund or settlement stays PROCESSING for ProcessingDelay of
// that clock, then SUCCEEDs or FAILs. Completion is evaluated on every call,
// ledger read and Advance, and by a background loop every 20 ms of wall
// time, which also sends the callbacks. Rate limits and callback retries run
// on the wall clock.
//
// # Callbacks
//
// When an order is paid (seeded SUCCESS or Pay) and when a refund or a
// settlement reaches SUCCESS or FAIL, a signed callback (type payment,
// refund or settle; timestamp a string; msg_signature with the app's Token)
// is posted to the request's notify_url, else Config.NotifyURL. It is
// retried after RetrySchedule × CallbackScale until an attempt is answered
// HTTP 200 with {"err_no":0,...}, and given up after the last wait. Each
// app's callbacks are sent on their own, at most 16 of them at once, as
// Douyin notifies each mini-program apart.
//
// # Faults
//
// Faults are probabilities rolled from a generator seeded with Config.Seed:
// 1000 without effect, 1000 after the effect, HTTP 500 without and after the
// effect, a hang after the effect (Hang long, cut short when the client
// leaves), dropped, duplicated and delayed callbacks, and refunds that FAIL
// at the channel.
//
// # The ledger and its invariants
//
// GET /_sim/ledger shows every order, refund and settlement, with
// executions: how many times a merchant number moved money. GET /_sim/check
// answers {"violations":[...]} (HTTP 200 either way): see Server.Check. Its
// last rule catches a careless client: merchant numbers "<base>-<digits>"
// are attempts of one wish, and at most one attempt per base may succeed.
//
// # Control API
//
//	POST /_sim/orders  one SeedOrder, or {"orders":[...]}
//	POST /_sim/pay     {"out_order_no":"o1"} (app_id optional with one app)
//	POST /_sim/clock   {"advance":"169h"}; GET /_sim/clock reads it
//	POST /_sim/faults  a Faults object, replacing the faults; GET reads them
//	POST /_sim/limits  {"query_order":5}, replacing the rate limits
//	GET  /_sim/ledger, /_sim/check, /_sim/stats
package douyinsim
