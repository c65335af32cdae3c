package tradesim

import (
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

// Refund caps per order by pay channel (others: 50, like WeChat).
const (
	MaxRefundsWeChat = 50
	MaxRefundsAlipay = 300
	// RefundWindow: no refund once the order is a year old.
	RefundWindow = 365 * 24 * time.Hour
)

type item struct {
	ID, SKU     string
	Amount      int64
	FulfilledAt time.Time // zero until marked through the control API
}

type order struct {
	AppID, OrderID, OutOrderNo string
	PayStatus                  string
	Channel                    int
	Total, Discount            int64
	Commission                 int64 // CPS; > 0 makes it a CPS order
	PaidAt                     time.Time
	Items                      []*item
	Refunds                    []*refund
	Settles                    []*settle
}

func (o *order) paid() int64 { return o.Total - o.Discount }

func (o *order) item(id string) *item {
	for _, it := range o.Items {
		if it.ID == id {
			return it
		}
	}
	return nil
}

// refundedItem is what refunds that did not fail took from an item.
func (o *order) refundedItem(id string) int64 {
	var n int64
	for _, r := range o.Refunds {
		if r.Status == trade.RefundFail {
			continue
		}
		for _, it := range r.Items {
			if it.ItemOrderID == id {
				n += it.RefundAmount
			}
		}
	}
	return n
}

// refunded is what refunds that did not fail took from the order.
func (o *order) refunded() int64 {
	var n int64
	for _, r := range o.Refunds {
		if r.Status != trade.RefundFail {
			n += r.Amount
		}
	}
	return n
}

func (o *order) refundCap() int {
	if o.Channel == trade.ChannelAlipay {
		return MaxRefundsAlipay
	}
	return MaxRefundsWeChat
}

// fulfilledAt is when the order (every item fulfilled or fully refunded)
// became final; zero while not.
func (o *order) fulfilledAt() time.Time {
	var last time.Time
	for _, it := range o.Items {
		switch {
		case !it.FulfilledAt.IsZero():
			last = maxTime(last, it.FulfilledAt)
		case o.refundedItem(it.ID) >= it.Amount:
		default:
			return time.Time{}
		}
	}
	return last
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// dueAt is when a settlement of the order (or of item, when not nil) may
// start under the app's rule; zero when it is not due at any known time.
func (o *order) dueAt(a *App, it *item) time.Time {
	days, rule := a.SettleDays, a.Rule
	if o.Commission > 0 {
		days, rule = CPSSettleDays, RuleFulfilment
	}
	from := o.PaidAt
	if rule == RuleFulfilment {
		if it != nil {
			from = it.FulfilledAt
		} else {
			from = o.fulfilledAt()
		}
	}
	if from.IsZero() {
		return time.Time{}
	}
	return from.Add(time.Duration(days) * 24 * time.Hour)
}

type refund struct {
	ID, OutRefundNo, OrderID, AppID string
	Amount                          int64
	Items                           []trade.ItemAmount
	Status                          string
	Source                          int // 1 user, 2 developer, …
	NeedAudit                       bool
	AuditStatus                     string
	AuditDeadline                   time.Time
	CreatedAt, StartedAt, DoneAt    time.Time
	Message, NotifyURL, CPExtra     string
	Executions                      int
	// AuditCalls counts the refund_audit_callback requests that named
	// the refund, accepted or not; AuditRepeats those that came after a
	// decision had been taken (a decision sent again without checking).
	AuditCalls, AuditRepeats int
}

type settle struct {
	ID, OutSettleNo, OrderID, AppID, ItemOrderID string
	Amount, Rake, Commission                     int64
	Receivers                                    []trade.SettleReceiver
	Status                                       string
	Auto                                         bool
	CreatedAt, DoneAt                            time.Time
	NotifyURL, CPExtra                           string
	Executions                                   int
}

// progressLocked moves everything due at now: audits past their deadline
// are approved, refunds and settlements finish, auto-settle apps settle.
func (s *Server) progressLocked(now time.Time) {
	for id, r := range s.active {
		if r.Status != trade.RefundProcessing {
			delete(s.active, id)
			continue
		}
		if r.NeedAudit && r.AuditStatus == trade.AuditToAudit {
			if now.Before(r.AuditDeadline) {
				continue
			}
			r.AuditStatus, r.StartedAt = trade.AuditOvertime, r.AuditDeadline
		}
		if now.Sub(r.StartedAt) >= s.cfg.ProcessingDelay {
			s.finishRefundLocked(r, now)
			delete(s.active, id)
		}
	}
	for id, st := range s.settling {
		if st.Status != trade.SettleProcessing {
			delete(s.settling, id)
			continue
		}
		if now.Sub(st.CreatedAt) >= s.cfg.ProcessingDelay {
			st.Status, st.DoneAt = trade.SettleSuccess, now
			st.Executions++
			s.settleCallbackLocked(st)
			delete(s.settling, id)
		}
	}
	if !s.autoApps {
		return
	}
	for _, o := range s.orders {
		if a := s.apps[o.AppID]; a != nil && a.AutoSettle {
			s.autoSettleLocked(a, o, now)
		}
	}
}

func (s *Server) finishRefundLocked(r *refund, now time.Time) {
	r.DoneAt = now
	if s.rollLocked(s.faults.RefundChannelFail) {
		r.Status, r.Message = trade.RefundFail, "channel failure"
	} else {
		r.Status = trade.RefundSuccess
		r.Executions++
	}
	s.refundCallbackLocked(r)
}

// autoSettleLocked settles a due order of an auto-settle app, as Douyin
// does: out_settle_no = settle_id, is_auto_settle in the callback.
func (s *Server) autoSettleLocked(a *App, o *order, now time.Time) {
	if o.PayStatus != trade.PaySuccess || len(o.Settles) > 0 {
		return
	}
	due := o.dueAt(a, nil)
	if due.IsZero() || now.Before(due) {
		return
	}
	amount := o.paid() - o.refunded() - o.Commission
	if amount <= 0 {
		return
	}
	id := s.nextIDLocked("ots")
	st := &settle{ID: id, OutSettleNo: id, OrderID: o.OrderID, AppID: o.AppID, Amount: amount, Commission: o.Commission,
		Status: trade.SettleProcessing, Auto: true, CreatedAt: now}
	o.Settles = append(o.Settles, st)
	s.addSettleLocked(st)
}

// addRefundLocked stores a refund of its order, and indexes it.
func (s *Server) addRefundLocked(r *refund) {
	s.refunds[r.ID], s.refundNos[r.AppID+"\x00"+r.OutRefundNo] = r, r
	if r.Status == trade.RefundProcessing {
		s.active[r.ID] = r
	}
}

// addSettleLocked stores a settlement of its order, and indexes it.
func (s *Server) addSettleLocked(st *settle) {
	s.settles[st.ID], s.settleNos[st.AppID+"\x00"+st.OutSettleNo] = st, st
	if st.Status == trade.SettleProcessing {
		s.settling[st.ID] = st
	}
}
