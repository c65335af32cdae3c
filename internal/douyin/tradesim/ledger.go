package tradesim

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

// Ledger is everything the simulator holds, for tests and GET
// /_sim/trade/ledger.
type Ledger struct {
	Orders []LedgerOrder `json:"orders"`
}

// LedgerOrder is one order with its refunds and settlements.
type LedgerOrder struct {
	AppID       string         `json:"app_id"`
	OrderID     string         `json:"order_id"`
	OutOrderNo  string         `json:"out_order_no"`
	PayStatus   string         `json:"pay_status"`
	Paid        int64          `json:"paid"`
	Refunds     []LedgerEntry  `json:"refunds"`
	Settlements []LedgerEntry  `json:"settlements"`
	Items       map[string]int `json:"-"`
}

// LedgerEntry is one refund or settlement; Executions counts how many
// times it moved money (more than 1 is a double execution).
type LedgerEntry struct {
	ID          string    `json:"id"`
	No          string    `json:"no"`
	Status      string    `json:"status"`
	Amount      int64     `json:"amount"`
	ItemOrderID string    `json:"item_order_id,omitempty"`
	AuditStatus string    `json:"audit_status,omitempty"`
	AuditCalls  int       `json:"audit_calls,omitempty"`
	Executions  int       `json:"executions"`
	CreatedAt   time.Time `json:"created_at"`
}

// Ledger returns the simulator's state, orders by order_id.
func (s *Server) Ledger() Ledger {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progressLocked(s.nowLocked())
	var l Ledger
	for _, o := range s.orders {
		lo := LedgerOrder{AppID: o.AppID, OrderID: o.OrderID, OutOrderNo: o.OutOrderNo, PayStatus: o.PayStatus, Paid: o.paid()}
		for _, r := range o.Refunds {
			lo.Refunds = append(lo.Refunds, LedgerEntry{ID: r.ID, No: r.OutRefundNo, Status: r.Status, Amount: r.Amount, AuditStatus: r.AuditStatus, AuditCalls: r.AuditCalls, Executions: r.Executions, CreatedAt: r.CreatedAt})
		}
		for _, st := range o.Settles {
			lo.Settlements = append(lo.Settlements, LedgerEntry{ID: st.ID, No: st.OutSettleNo, Status: st.Status, Amount: st.Amount, ItemOrderID: st.ItemOrderID, Executions: st.Executions, CreatedAt: st.CreatedAt})
		}
		l.Orders = append(l.Orders, lo)
	}
	sort.Slice(l.Orders, func(i, j int) bool { return l.Orders[i].OrderID < l.Orders[j].OrderID })
	return l
}

// attemptRE matches payd's attempt numbers: "<base>-<attempt>".
var attemptRE = regexp.MustCompile(`^(.+)-[0-9]+$`)

// Check returns every broken invariant: a refund or settlement executed
// more than once; an audit decision sent again once taken; more refunded
// than paid, of an order or an item; more settled than paid; two
// successful attempts of one base number.
func (s *Server) Check() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progressLocked(s.nowLocked())
	v := []string{}
	bases := map[string]string{}
	success := func(kind, app, no, id string) {
		m := attemptRE.FindStringSubmatch(no)
		if m == nil {
			return
		}
		k := kind + "\x00" + app + "\x00" + m[1]
		if prev, ok := bases[k]; ok {
			v = append(v, fmt.Sprintf("%s %s and %s: two attempts of %s succeeded", kind, prev, no, m[1]))
			return
		}
		bases[k] = no
	}
	for _, o := range s.sortedOrdersLocked() {
		var refunded, settled int64
		for _, r := range o.Refunds {
			if r.Executions > 1 {
				v = append(v, fmt.Sprintf("refund %s (%s) executed %d times", r.ID, r.OutRefundNo, r.Executions))
			}
			if r.AuditRepeats > 0 {
				v = append(v, fmt.Sprintf("refund %s (%s): audit decision sent again %d times after it was taken", r.ID, r.OutRefundNo, r.AuditRepeats))
			}
			if r.Status == trade.RefundSuccess {
				refunded += r.Amount
				success("refund", o.AppID, r.OutRefundNo, r.ID)
			}
		}
		for _, it := range o.Items {
			if n := o.refundedItem(it.ID); n > it.Amount {
				v = append(v, fmt.Sprintf("item %s of order %s: %d refunded of %d", it.ID, o.OrderID, n, it.Amount))
			}
		}
		for _, st := range o.Settles {
			if st.Executions > 1 {
				v = append(v, fmt.Sprintf("settlement %s (%s) executed %d times", st.ID, st.OutSettleNo, st.Executions))
			}
			if st.Status == trade.SettleSuccess {
				settled += st.Amount
				success("settlement", o.AppID, st.OutSettleNo, st.ID)
			}
		}
		if refunded > o.paid() {
			v = append(v, fmt.Sprintf("order %s: %d refunded of %d paid", o.OrderID, refunded, o.paid()))
		}
		if settled > o.paid() {
			v = append(v, fmt.Sprintf("order %s: %d settled of %d paid", o.OrderID, settled, o.paid()))
		}
	}
	return v
}

func (s *Server) sortedOrdersLocked() []*order {
	out := make([]*order, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OrderID < out[j].OrderID })
	return out
}
