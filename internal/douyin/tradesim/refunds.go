package tradesim

import (
	"time"
	"unicode/utf8"

	"github.com/payd/payd/internal/douyin/trade"
)

type refundCreate struct {
	OrderID           string               `json:"order_id"`
	OutRefundNo       string               `json:"out_refund_no"`
	RefundTotalAmount int64                `json:"refund_total_amount"`
	ItemOrderDetail   []trade.ItemAmount   `json:"item_order_detail"`
	RefundAll         bool                 `json:"refund_all"`
	RefundReason      []trade.RefundReason `json:"refund_reason"`
	OrderEntrySchema  *trade.EntrySchema   `json:"order_entry_schema"`
	CPExtra           string               `json:"cp_extra"`
	NotifyURL         string               `json:"notify_url"`
	Currency          string               `json:"currency"`
}

// refundCreate accepts a developer refund (no audit), PROCESSING. A number
// already used answers that refund again: it is never executed twice.
func (s *Server) refundCreate(a *App, body []byte, now time.Time) (any, *apiErr) {
	var req refundCreate
	if e := decodeStrict(body, &req, "order_id", "out_refund_no", "refund_total_amount", "refund_reason"); e != nil {
		return nil, e
	}
	if r := s.refundNos[a.AppID+"\x00"+req.OutRefundNo]; r != nil {
		return trade.RefundCreated{RefundID: trade.Str(r.ID)}, nil
	}
	o := s.findOrderLocked(a, req.OrderID, "")
	if o == nil {
		return nil, refuse(trade.ErrNoOrderNotFound, "order not found")
	}
	items, e := s.checkRefundLocked(o, &req, now)
	if e != nil {
		return nil, e
	}
	r := &refund{ID: s.nextIDLocked("motb"), OutRefundNo: req.OutRefundNo, OrderID: o.OrderID, AppID: a.AppID, Amount: req.RefundTotalAmount,
		Items: items, Status: trade.RefundProcessing, Source: 2, CreatedAt: now, StartedAt: now, NotifyURL: req.NotifyURL, CPExtra: req.CPExtra}
	o.Refunds = append(o.Refunds, r)
	s.addRefundLocked(r)
	return trade.RefundCreated{RefundID: trade.Str(r.ID)}, nil
}

// checkRefundLocked applies the refund rules and returns the item split.
func (s *Server) checkRefundLocked(o *order, req *refundCreate, now time.Time) ([]trade.ItemAmount, *apiErr) {
	switch {
	case len(req.OutRefundNo) == 0 || len(req.OutRefundNo) > 64:
		return nil, paramErr("out_refund_no: 1..64 bytes")
	case req.RefundTotalAmount <= 0:
		return nil, paramErr("refund_total_amount: must be positive")
	case len(req.RefundReason) < 1 || len(req.RefundReason) > 10:
		return nil, paramErr("refund_reason: 1..10 entries")
	case o.PayStatus != trade.PaySuccess:
		return nil, refuse(trade.ErrNoOrderState, "order not paid")
	case now.Sub(o.PaidAt) > RefundWindow:
		return nil, refuse(trade.ErrNoOrderState, "order older than one year")
	case len(o.Refunds) >= o.refundCap():
		return nil, refuse(trade.ErrNoOrderState, "at most %d refunds per order", o.refundCap())
	}
	for i, rr := range req.RefundReason {
		if utf8.RuneCountInString(rr.Text) >= 50 {
			return nil, paramErr("refund_reason[%d].text: under 50 characters", i)
		}
	}
	if req.RefundAll {
		switch {
		case len(req.ItemOrderDetail) > 0:
			return nil, paramErr("item_order_detail: not with refund_all")
		case len(o.Refunds) > 0:
			return nil, paramErr("refund_all: the order already has a refund")
		case req.RefundTotalAmount != o.paid():
			return nil, paramErr("refund_total_amount: refund_all must refund the paid %d", o.paid())
		}
		var all []trade.ItemAmount
		for _, it := range o.Items {
			all = append(all, trade.ItemAmount{ItemOrderID: it.ID, RefundAmount: it.Amount})
		}
		return all, nil
	}
	if len(req.ItemOrderDetail) < 1 || len(req.ItemOrderDetail) > 99 {
		return nil, paramErr("item_order_detail: 1..99 entries unless refund_all")
	}
	var sum int64
	for i, d := range req.ItemOrderDetail {
		it := o.item(d.ItemOrderID)
		switch {
		case it == nil:
			return nil, paramErr("item_order_detail[%d].item_order_id: not an item of the order", i)
		case d.RefundAmount <= 0 || d.RefundAmount > it.Amount-o.refundedItem(it.ID):
			return nil, paramErr("item_order_detail[%d].refund_amount: %d left on the item", i, it.Amount-o.refundedItem(it.ID))
		}
		sum += d.RefundAmount
	}
	if sum != req.RefundTotalAmount {
		return nil, paramErr("refund_total_amount: item_order_detail sums to %d", sum)
	}
	return req.ItemOrderDetail, nil
}

type refundQuery struct {
	RefundID    string `json:"refund_id"`
	OutRefundNo string `json:"out_refund_no"`
	OrderID     string `json:"order_id"`
}

// refundQuery lists refunds; none is an empty list. By order, at most 50.
func (s *Server) refundQuery(a *App, body []byte, _ time.Time) (any, *apiErr) {
	var req refundQuery
	if e := decodeStrict(body, &req); e != nil {
		return nil, e
	}
	if e := exactlyOne([]string{"refund_id", "out_refund_no", "order_id"}, req.RefundID, req.OutRefundNo, req.OrderID); e != nil {
		return nil, e
	}
	list := []trade.Refund{}
	add := func(r *refund) {
		if r != nil && r.AppID == a.AppID && len(list) < 50 {
			list = append(list, refundView(r))
		}
	}
	switch {
	case req.RefundID != "":
		add(s.refunds[req.RefundID])
	case req.OrderID != "":
		if o := s.findOrderLocked(a, req.OrderID, ""); o != nil {
			for _, r := range o.Refunds {
				add(r)
			}
		}
	default:
		for _, r := range s.refunds {
			if r.OutRefundNo == req.OutRefundNo {
				add(r)
			}
		}
	}
	return trade.RefundList{RefundList: list}, nil
}

func refundView(r *refund) trade.Refund {
	v := trade.Refund{RefundID: trade.Str(r.ID), OutRefundNo: trade.Str(r.OutRefundNo), OrderID: trade.Str(r.OrderID), RefundStatus: trade.Str(r.Status),
		RefundTotalAmount: trade.Int(r.Amount), RefundSource: trade.Int(r.Source), Message: trade.Str(r.Message), CreateAt: trade.Int(r.CreatedAt.UnixMilli())}
	for _, it := range r.Items {
		v.ItemOrderDetail = append(v.ItemOrderDetail, trade.ItemRefund{ItemOrderID: trade.Str(it.ItemOrderID), RefundAmount: trade.Int(it.RefundAmount)})
	}
	audit := &trade.AuditDetail{NeedRefundAudit: 2, AuditStatus: trade.AuditInit}
	if r.NeedAudit {
		audit = &trade.AuditDetail{NeedRefundAudit: 1, AuditStatus: trade.Str(r.AuditStatus), RefundAuditDeadline: trade.Int(r.AuditDeadline.UnixMilli())}
	}
	v.MerchantAuditDetail = audit
	if r.Status == trade.RefundSuccess {
		v.RefundAt = trade.Int(r.DoneAt.UnixMilli())
	}
	return v
}

// refundAudit decides a TOAUDIT refund: agree starts it, refuse ends it
// FAIL (DENY).
func (s *Server) refundAudit(a *App, body []byte, now time.Time) (any, *apiErr) {
	var req trade.RefundAuditRequest
	if e := decodeStrict(body, &req, "refund_id", "refund_audit_status"); e != nil {
		return nil, e
	}
	r := s.refunds[req.RefundID]
	if r != nil && r.AppID == a.AppID {
		r.AuditCalls++
		if r.AuditStatus == trade.AuditAgree || r.AuditStatus == trade.AuditDeny {
			r.AuditRepeats++
		}
	}
	switch {
	case r == nil || r.AppID != a.AppID:
		return nil, refuse(trade.ErrNoOrderNotFound, "refund not found")
	case !r.NeedAudit || r.AuditStatus != trade.AuditToAudit:
		return nil, refuse(trade.ErrNoOrderState, "refund is not awaiting audit")
	case req.RefundAuditStatus == trade.AuditAgreeCode:
		r.AuditStatus, r.StartedAt = trade.AuditAgree, now
	case req.RefundAuditStatus == trade.AuditRefuseCode:
		if req.DenyMessage == "" {
			return nil, paramErr("deny_message: required when refusing")
		}
		r.AuditStatus, r.Status, r.Message, r.DoneAt = trade.AuditDeny, trade.RefundFail, req.DenyMessage, now
		s.refundCallbackLocked(r)
	default:
		return nil, paramErr("refund_audit_status: 1 or 2")
	}
	return nil, nil
}
