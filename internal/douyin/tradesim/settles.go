package tradesim

import (
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/payd/payd/internal/douyin/trade"
)

type settleCreate struct {
	OutOrderNo   string `json:"out_order_no"`
	OutSettleNo  string `json:"out_settle_no"`
	SettleDesc   string `json:"settle_desc"`
	SettleParams string `json:"settle_params"`
	ItemOrderID  string `json:"item_order_id"`
	Ext          string `json:"ext"`
	NotifyURL    string `json:"notify_url"`
	AppID        string `json:"app_id"`
}

// settle_create refuses with HTTP 400, as documented.
func settleErr(errNo int, format string, args ...any) *apiErr {
	e := refuse(errNo, format, args...)
	e.status = http.StatusBadRequest
	return e
}

// settleCreate applies the settle rules (facts file, settle_create) and
// accepts a settlement PROCESSING.
func (s *Server) settleCreate(a *App, body []byte, now time.Time) (any, *apiErr) {
	var req settleCreate
	if e := decodeStrict(body, &req, "out_order_no", "out_settle_no", "settle_desc"); e != nil {
		e.status = http.StatusBadRequest
		return nil, e
	}
	switch {
	case req.AppID != "" && req.AppID != a.AppID:
		return nil, settleErr(trade.ErrNoParam, "parameter error: app_id: not the token's app")
	case len(req.OutSettleNo) == 0 || len(req.OutSettleNo) > 64:
		return nil, settleErr(trade.ErrNoParam, "parameter error: out_settle_no: 1..64 bytes")
	case req.SettleDesc == "" || utf8.RuneCountInString(req.SettleDesc) > 80:
		return nil, settleErr(trade.ErrNoParam, "parameter error: settle_desc: 1..80 characters")
	}
	o := s.byOut[a.AppID+"\x00"+req.OutOrderNo]
	switch {
	case o == nil:
		return nil, settleErr(trade.ErrNoSettleNoOrder, "order does not exist")
	case o.PayStatus != trade.PaySuccess:
		return nil, settleErr(trade.ErrNoSettleNotPaid, "order not paid")
	case a.AutoSettle:
		return nil, settleErr(trade.ErrNoSettleAuto, "app settles automatically")
	}
	if s.settleNos[a.AppID+"\x00"+req.OutSettleNo] != nil {
		return nil, settleErr(trade.ErrNoSettleNoExists, "out_settle_no exists")
	}
	receivers, e := parseReceivers(req.SettleParams, o.paid())
	if e != nil {
		return nil, e
	}
	amount, e := s.settleAmountLocked(a, o, req.ItemOrderID, now)
	if e != nil {
		return nil, e
	}
	st := &settle{ID: s.nextIDLocked("ots"), OutSettleNo: req.OutSettleNo, OrderID: o.OrderID, AppID: a.AppID, ItemOrderID: req.ItemOrderID,
		Amount: amount, Commission: o.Commission, Receivers: receivers, Status: trade.SettleProcessing, CreatedAt: now, NotifyURL: req.NotifyURL, CPExtra: req.Ext}
	o.Settles = append(o.Settles, st)
	s.addSettleLocked(st)
	return trade.SettleCreated{SettleID: trade.Str(st.ID), WalletSettleID: trade.Str("w" + st.ID)}, nil
}

// settleAmountLocked checks that the order (or item) is due and not
// settled, and returns what is left to settle.
func (s *Server) settleAmountLocked(a *App, o *order, itemID string, now time.Time) (int64, *apiErr) {
	var it *item
	if itemID != "" {
		if it = o.item(itemID); it == nil {
			for _, other := range s.orders {
				if other.item(itemID) != nil {
					return 0, settleErr(trade.ErrNoItemNotOfOrder, "item order not of this order")
				}
			}
			return 0, settleErr(trade.ErrNoItemUnknown, "item order unknown")
		}
		if a.Rule == RulePayment && o.Commission == 0 {
			return 0, settleErr(trade.ErrNoSettleNotAllowed, "payment D+N apps settle whole orders only")
		}
	}
	for _, st := range o.Settles {
		if st.Status == trade.SettleFail {
			continue
		}
		switch {
		case it == nil && st.ItemOrderID != "", it != nil && st.ItemOrderID == "":
			return 0, settleErr(trade.ErrNoSettleWholeBar, "whole-order and per-item settlements exclude each other")
		case it == nil || st.ItemOrderID == it.ID:
			return 0, settleErr(trade.ErrNoSettleNoMoney, "nothing left to settle")
		}
	}
	due := o.dueAt(a, it)
	if due.IsZero() || now.Before(due) {
		return 0, settleErr(trade.ErrNoSettleNotDone, "order not finished or not due")
	}
	amount := o.paid() - o.refunded() - o.Commission
	if it != nil {
		amount = it.Amount - o.refundedItem(it.ID)
	}
	if amount <= 0 {
		return 0, settleErr(trade.ErrNoSettleNoMoney, "nothing left to settle")
	}
	return amount, nil
}

// parseReceivers reads settle_params: at most 4 receivers, each positive,
// together at most 30 % of the paid amount.
func parseReceivers(text string, paid int64) ([]trade.SettleReceiver, *apiErr) {
	if text == "" {
		return nil, nil
	}
	var rs []trade.SettleReceiver
	if err := json.Unmarshal([]byte(text), &rs); err != nil || len(text) > 512 {
		return nil, settleErr(trade.ErrNoParam, "parameter error: settle_params: JSON text of at most 512 bytes")
	}
	var sum int64
	for _, r := range rs {
		if r.MerchantUID == "" || r.Amount <= 0 {
			return nil, settleErr(trade.ErrNoParam, "parameter error: settle_params: merchant_uid and a positive amount")
		}
		sum += r.Amount
	}
	if len(rs) > 4 || sum*10 > paid*3 {
		return nil, settleErr(trade.ErrNoParam, "parameter error: settle_params: at most 4 receivers and 30%%")
	}
	return rs, nil
}

type settleQuery struct {
	SettleID    string `json:"settle_id"`
	OrderID     string `json:"order_id"`
	OutSettleNo string `json:"out_settle_no"`
	OutOrderNo  string `json:"out_order_no"`
	AppID       string `json:"app_id"`
}

// settleQuery answers an array; no match is an empty one. With several keys
// the first of settle_id, order_id, out_settle_no, out_order_no is used.
func (s *Server) settleQuery(a *App, body []byte, _ time.Time) (any, *apiErr) {
	var req settleQuery
	if e := decodeStrict(body, &req); e != nil {
		return nil, e
	}
	match := func(st *settle) bool {
		switch {
		case req.SettleID != "":
			return st.ID == req.SettleID
		case req.OrderID != "":
			return st.OrderID == req.OrderID
		case req.OutSettleNo != "":
			return st.OutSettleNo == req.OutSettleNo
		}
		o := s.orders[st.OrderID]
		return o != nil && o.OutOrderNo == req.OutOrderNo
	}
	if req.SettleID == "" && req.OrderID == "" && req.OutSettleNo == "" && req.OutOrderNo == "" {
		return nil, paramErr("one of settle_id, order_id, out_settle_no, out_order_no: required")
	}
	list := []trade.Settle{}
	for _, st := range s.settles {
		if st.AppID == a.AppID && match(st) {
			list = append(list, settleView(st, s.orders[st.OrderID]))
		}
	}
	return list, nil
}

func settleView(st *settle, o *order) trade.Settle {
	v := trade.Settle{SettleID: trade.Str(st.ID), OutSettleNo: trade.Str(st.OutSettleNo), OrderID: trade.Str(st.OrderID), ItemOrderID: trade.Str(st.ItemOrderID),
		SettleStatus: trade.Str(st.Status), SettleAmount: trade.Int(st.Amount), Commission: trade.Int(st.Commission), CPExtra: trade.Str(st.CPExtra),
		WalletSettleID: trade.Str("w" + st.ID)}
	if o != nil {
		v.OutOrderNo = trade.Str(o.OutOrderNo)
	}
	if st.Status == trade.SettleSuccess {
		v.SettleAt = trade.Int(st.DoneAt.UnixMilli())
	}
	return v
}
