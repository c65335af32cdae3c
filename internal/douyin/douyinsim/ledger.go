package douyinsim

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// Ledger is where every order's money went, as GET /_sim/ledger shows it.
type Ledger struct {
	Orders []LedgerOrder `json:"orders"`
	// Balances are the apps' withdrawable balances in fen.
	Balances map[string]int64 `json:"balances"`
}

// LedgerOrder is one order in the ledger. Amounts are fen.
type LedgerOrder struct {
	AppID       string     `json:"app_id"`
	OutOrderNo  string     `json:"out_order_no"`
	OrderID     string     `json:"order_id"`
	TotalAmount int64      `json:"total_amount"`
	Status      string     `json:"status"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
	CPSShare    int64      `json:"cps_share"`
	// RefundedAmount sums the refunds that succeeded.
	RefundedAmount int64 `json:"refunded_amount"`
	// SettledAmount sums the settlements that succeeded (receivers included).
	SettledAmount int64              `json:"settled_amount"`
	Refunds       []LedgerRefund     `json:"refunds"`
	Settlements   []LedgerSettlement `json:"settlements"`
}

// LedgerRefund is one accepted refund.
type LedgerRefund struct {
	OutRefundNo string `json:"out_refund_no"`
	RefundNo    string `json:"refund_no"`
	Amount      int64  `json:"amount"`
	Status      string `json:"status"`
	// Executions counts how many times this number moved money; more than 1
	// is a violation.
	Executions int    `json:"executions"`
	AllSettle  bool   `json:"all_settle,omitempty"`
	Msg        string `json:"msg,omitempty"`
}

// LedgerSettlement is one accepted settlement.
type LedgerSettlement struct {
	OutSettleNo string `json:"out_settle_no"`
	SettleNo    string `json:"settle_no"`
	Amount      int64  `json:"amount"`
	Status      string `json:"status"`
	// Executions counts how many times this number moved money; more than 1
	// is a violation.
	Executions int               `json:"executions"`
	Receivers  []douyin.Receiver `json:"receivers,omitempty"`
	Msg        string            `json:"msg,omitempty"`
}

// Ledger returns every order with its refunds and settlements, in the order
// the orders were placed, after finishing whatever fell due.
func (s *Server) Ledger() Ledger {
	now := s.Now()
	s.lock(now)
	defer s.mu.Unlock()
	l := Ledger{Orders: make([]LedgerOrder, 0, len(s.orderList)), Balances: make(map[string]int64, len(s.balance))}
	for app, b := range s.balance {
		l.Balances[app] = b
	}
	for _, o := range s.orderList {
		o.refresh(now)
		lo := LedgerOrder{
			AppID:       o.app,
			OutOrderNo:  o.outOrderNo,
			OrderID:     o.orderID,
			TotalAmount: o.total,
			Status:      o.status,
			CPSShare:    o.cpsShare,
			Refunds:     make([]LedgerRefund, 0, len(o.refunds)),
			Settlements: make([]LedgerSettlement, 0, len(o.settlements)),
		}
		if !o.paidAt.IsZero() {
			t := o.paidAt.UTC()
			lo.PaidAt = &t
		}
		for _, r := range o.refunds {
			if r.status == douyin.StatusSuccess {
				lo.RefundedAmount += r.amount
			}
			lo.Refunds = append(lo.Refunds, LedgerRefund{OutRefundNo: r.outRefundNo, RefundNo: r.refundNo,
				Amount: r.amount, Status: r.status, Executions: r.executions, AllSettle: r.allSettle, Msg: r.msg})
		}
		for _, st := range o.settlements {
			if st.status == douyin.StatusSuccess {
				lo.SettledAmount += st.amount
			}
			lo.Settlements = append(lo.Settlements, LedgerSettlement{OutSettleNo: st.outSettleNo, SettleNo: st.settleNo,
				Amount: st.amount, Status: st.status, Executions: st.executions, Receivers: st.receivers, Msg: st.msg})
		}
		l.Orders = append(l.Orders, lo)
	}
	return l
}

// attemptSuffix matches the "-<digits>" that payd appends to a wish's key
// to number its attempts.
var attemptSuffix = regexp.MustCompile(`^(.+)-[0-9]+$`)

// attemptBase returns the wish a merchant number is an attempt of: the
// number without its last "-<digits>", or the number itself.
func attemptBase(no string) string {
	if m := attemptSuffix.FindStringSubmatch(no); m != nil {
		return m[1]
	}
	return no
}

// Check returns every broken money invariant, never nil (empty when all
// hold), after finishing whatever fell due:
//
//   - no merchant number executed (moved money) more than once;
//   - per order, the refunds that succeeded sum to at most the total, and
//     the refunds taken from frozen money (not all_settle), the settlements
//     that succeeded and, once settled, the CPS share together do too;
//   - no settlement succeeded before the order's settle period or for an
//     order that was not SUCCESS;
//   - no withdrawable balance is negative;
//   - at most one attempt of one wish succeeded: merchant numbers of the
//     form "<base>-<digits>" (payd numbers the attempts of a refund or
//     settlement "<key>-<n>") are attempts of the same wish, per app and
//     kind. A careless client that resends under a new number after an
//     unknown outcome, when the first number did take effect, makes two
//     attempts succeed, and Check reports it.
func (s *Server) Check() []string {
	now := s.Now()
	s.lock(now)
	defer s.mu.Unlock()
	v := []string{}
	type wish struct {
		kind kind
		app  string
		base string
	}
	succeeded := make(map[wish][]string)
	var wishes []wish
	note := func(w wish, no string) {
		if succeeded[w] == nil {
			wishes = append(wishes, w)
		}
		succeeded[w] = append(succeeded[w], no)
	}
	for _, o := range s.orderList {
		o.refresh(now)
		v = append(v, s.checkOrderLocked(o, func(k kind, no string) { note(wish{k, o.app, attemptBase(no)}, no) })...)
	}
	for _, w := range wishes {
		nos := succeeded[w]
		if len(nos) < 2 {
			continue
		}
		what := "refund"
		if w.kind == kindSettle {
			what = "settlement"
		}
		v = append(v, fmt.Sprintf("%s %s of app %s succeeded %d times, under %s", what, w.base, w.app, len(nos), strings.Join(nos, ", ")))
	}
	apps := make([]string, 0, len(s.balance))
	for app := range s.balance {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	for _, app := range apps {
		if b := s.balance[app]; b < 0 {
			v = append(v, fmt.Sprintf("withdrawable balance of app %s is negative: %d", app, b))
		}
	}
	return v
}

// Stats counts what the simulator did, as GET /_sim/stats shows it.
type Stats struct {
	// Requests counts every ecpay call answered, HTTP 500s included.
	Requests int64 `json:"requests"`
	// ByAPI counts the JSON answers by API and err_no.
	ByAPI map[douyin.API]map[int]int64 `json:"calls"`
	// HTTP500s counts injected HTTP 500 answers.
	HTTP500s int64 `json:"http500s"`
	// Hangs counts injected hangs.
	Hangs int64 `json:"hangs"`
	// CallbacksSent counts callback attempts made (retries included).
	CallbacksSent int64 `json:"callbacks_sent"`
	// CallbacksAcked counts attempts answered with err_no 0.
	CallbacksAcked int64 `json:"callbacks_acked"`
	// CallbacksDropped counts callbacks never sent (the drop fault).
	CallbacksDropped int64 `json:"callbacks_dropped"`
	// CallbacksDuplicated counts callbacks sent twice (the duplicate fault).
	CallbacksDuplicated int64 `json:"callbacks_duplicated"`
	// CallbacksDelayed counts callbacks held back (the delay fault).
	CallbacksDelayed int64 `json:"callbacks_delayed"`
	// CallbacksGivenUp counts callbacks abandoned after the whole schedule.
	CallbacksGivenUp int64 `json:"callbacks_given_up"`
	// CallbacksPending counts callbacks queued for a first or later attempt.
	CallbacksPending int64 `json:"callbacks_pending"`
}

func newStats() Stats { return Stats{ByAPI: make(map[douyin.API]map[int]int64)} }

// Calls returns how many ecpay calls were answered, HTTP 500s included.
func (st Stats) Calls() int64 { return st.Requests }

// Busy returns how many calls were answered 1001 (over the rate limit).
func (st Stats) Busy() int64 {
	var n int64
	for _, byErr := range st.ByAPI {
		n += byErr[douyin.ErrNoBusy]
	}
	return n
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.ByAPI = make(map[douyin.API]map[int]int64, len(s.stats.ByAPI))
	for api, m := range s.stats.ByAPI {
		c := make(map[int]int64, len(m))
		for k, n := range m {
			c[k] = n
		}
		out.ByAPI[api] = c
	}
	out.CallbacksPending = int64(len(s.deliveries) + s.inFlight)
	return out
}

// checkOrderLocked returns the violations of one order and notes each of
// its succeeded refunds and settlements by number.
func (s *Server) checkOrderLocked(o *order, note func(k kind, no string)) []string {
	var v []string
	name := o.outOrderNo
	if len(s.apps) > 1 {
		name += " of app " + o.app
	}
	var refunded, fromFrozen, settled int64
	for _, r := range o.refunds {
		if r.executions > 1 {
			v = append(v, fmt.Sprintf("refund %s of order %s executed %d times", r.outRefundNo, name, r.executions))
		}
		if r.status != douyin.StatusSuccess {
			continue
		}
		refunded += r.amount
		if !r.allSettle {
			fromFrozen += r.amount
		}
		note(kindRefund, r.outRefundNo)
	}
	for _, st := range o.settlements {
		if st.executions > 1 {
			v = append(v, fmt.Sprintf("settlement %s of order %s executed %d times", st.outSettleNo, name, st.executions))
		}
		if st.status != douyin.StatusSuccess {
			continue
		}
		settled += st.amount
		note(kindSettle, st.outSettleNo)
		if o.status != douyin.StatusSuccess {
			v = append(v, fmt.Sprintf("settlement %s of order %s succeeded while the order is %s", st.outSettleNo, name, o.status))
		} else if due := o.paidAt.Add(s.apps[o.app].SettlePeriod); st.acceptedAt.Before(due) {
			v = append(v, fmt.Sprintf("settlement %s of order %s succeeded before the settle period (requested %s, due %s)",
				st.outSettleNo, name, st.acceptedAt.UTC().Format(time.RFC3339), due.UTC().Format(time.RFC3339)))
		}
	}
	if refunded > o.total {
		v = append(v, fmt.Sprintf("order %s refunded %d of a total of %d", name, refunded, o.total))
	}
	if settled > 0 && fromFrozen+settled+o.cpsShare > o.total {
		v = append(v, fmt.Sprintf("order %s paid out %d (refunds %d + settlements %d + cps %d) of a total of %d",
			name, fromFrozen+settled+o.cpsShare, fromFrozen, settled, o.cpsShare, o.total))
	}
	return v
}
