package reconcile

import "time"

// WaitFor names what a pending settlement waits for.
type WaitFor string

// What a pending settlement can wait for.
const (
	// WaitPayment: the order is not known to be paid yet.
	WaitPayment WaitFor = "payment"
	// WaitRefunds: refunds of the order are still open.
	WaitRefunds WaitFor = "refunds"
	// WaitFulfilment: the app settles on fulfilment (or the order is a CPS
	// order) and the merchant has not declared it (payd fulfil).
	WaitFulfilment WaitFor = "fulfilment"
	// WaitPeriod: the settle period (or the declared --at) has not passed.
	WaitPeriod WaitFor = "period"
)

// Wait is what one pending settlement waits for.
type Wait struct {
	SettlementID int64
	// MerchantNo is the settlement's out_settle_no.
	MerchantNo string
	// ItemOrderID is set for a settlement of one item order.
	ItemOrderID string
	For         WaitFor
	// Until is when the wait ends, when that is known.
	Until  *time.Time
	Reason string
}
