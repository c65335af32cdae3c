package reconcile

import (
	"math/rand/v2"
	"time"
)

// AppPolicy is what the reconciler needs to know about one mini-program.
type AppPolicy struct {
	// SettlePeriod is the withdrawal period after payment (T+7: 168h).
	SettlePeriod time.Duration
	// AutoSettle makes settle_batch create a settlement for every paid order
	// once its period has passed.
	AutoSettle bool
	// SettleDesc is sent as settle_desc.
	SettleDesc string
	// NotifyURL, when set, is sent as notify_url with every write.
	NotifyURL string
	// API is the API the app speaks now (provider.APIEcpay or APITrade;
	// "" unsaid): new attempts are sent through it and new orders stamped
	// with it; items in flight finish on the API they were sent under.
	API string
	// Rule is what SettlePeriod counts from: the pay time (RulePayment, or
	// "") or the fulfilment of the order or item order (RuleFulfilment).
	Rule SettleRule
	// SettledByDouyin: Douyin settles the app itself (trade settled_by:
	// douyin). payd never sends settle_create for it: settle_batch makes
	// observed settlements, and a declared one is observed too.
	SettledByDouyin bool
	// CPSFulfilment makes CPS orders (a CPS share > 0) settle
	// CPSSettlePeriod after fulfilment whatever Rule says (trade apps).
	CPSFulfilment bool
	// Audit decides the refunds users start that Douyin asks the merchant
	// to audit (trade system); the zero policy holds them all for a person.
	Audit AuditPolicy
}

// SettleRule is what an app's settle period counts from.
type SettleRule string

// The settle rules.
const (
	// RulePayment: N days after the order was paid (支付 D+N).
	RulePayment SettleRule = "payment"
	// RuleFulfilment: N days after the order, or the item order, was
	// fulfilled (核销 D+N); the merchant declares fulfilment (payd fulfil).
	RuleFulfilment SettleRule = "fulfilment"
)

// CPSSettlePeriod is the fixed fulfilment period of CPS orders of trade
// apps: D+3.
const CPSSettlePeriod = 3 * 24 * time.Hour

// Policy holds the reconciler's tunables.
type Policy struct {
	// Apps by app_id. An order of an app not listed gets DefaultApp.
	Apps map[string]AppPolicy
	// RefundAttempts is how many numbers a refund may use before it is parked.
	RefundAttempts int
	// SettleAttempts is the same for settlements.
	SettleAttempts int
	// Retry is the back-off after a FAIL or a retryable error; the last entry
	// repeats.
	Retry []time.Duration
	// SettleRetry is the back-off after a settlement attempt FAILed; it
	// spans a day by default, as a FAIL is most often a withdrawal period
	// not yet passed.
	SettleRetry []time.Duration
	// Poll is the query schedule while an answer is awaited (order not final,
	// refund or settlement processing, outcome unknown); the last entry repeats.
	Poll []time.Duration
	// Jitter spreads each delay by ±Jitter of itself (0..1).
	Jitter float64
}

// DefaultApp is the policy of apps that Policy.Apps does not list.
var DefaultApp = AppPolicy{SettlePeriod: 7 * 24 * time.Hour, AutoSettle: true, SettleDesc: "payd settlement"}

// DefaultPolicy returns the documented defaults.
func DefaultPolicy() Policy {
	return Policy{
		RefundAttempts: 5,
		SettleAttempts: 5,
		Retry:          []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 12 * time.Hour},
		SettleRetry:    []time.Duration{time.Hour, 3 * time.Hour, 8 * time.Hour, 12 * time.Hour},
		Poll:           []time.Duration{5 * time.Second, 15 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute},
		Jitter:         0.2,
	}
}

// App returns the policy of appID.
func (p Policy) App(appID string) AppPolicy {
	if a, ok := p.Apps[appID]; ok {
		return a
	}
	return DefaultApp
}

// SettleDueAt is when an order paid at paidAt may first be settled.
func SettleDueAt(paidAt time.Time, period time.Duration) time.Time {
	return paidAt.Add(period)
}

// Step returns the n-th delay of a schedule (0-based); the last entry
// repeats, and an empty schedule means no delay.
func Step(schedule []time.Duration, n int) time.Duration {
	if len(schedule) == 0 {
		return 0
	}
	if n < 0 {
		n = 0
	}
	if n >= len(schedule) {
		n = len(schedule) - 1
	}
	return schedule[n]
}

// NextAt returns now plus the n-th delay of schedule, spread by ±jitter of
// itself using u, a uniform number in [0, 1).
func NextAt(now time.Time, schedule []time.Duration, n int, jitter, u float64) time.Time {
	d := Step(schedule, n)
	if jitter > 0 {
		d = time.Duration(float64(d) * (1 + jitter*(2*u-1)))
	}
	return now.Add(d)
}

// randFloat is the source of jitter; tests replace it through Reconciler.
func randFloat() float64 { return rand.Float64() }
