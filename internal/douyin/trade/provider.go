package trade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/provider"
)

// AdapterOptions configure an Adapter.
type AdapterOptions struct {
	// EntryPath is the mini-program page of an order sent as
	// order_entry_schema.path with refunds; not sent when empty.
	EntryPath string
	// EntryParams returns order_entry_schema.params for an order; nil
	// sends {"out_order_no": …}.
	EntryParams func(outOrderNo string) string
}

// Adapter is the provider.Provider and provider.Budget of the trade system.
type Adapter struct {
	c    *Client
	opts AdapterOptions
}

var (
	_ provider.Provider = (*Adapter)(nil)
	_ provider.Budget   = (*Adapter)(nil)
	_ provider.Auditor  = (*Adapter)(nil)
)

// NewAdapter returns the adapter over c.
func NewAdapter(c *Client, opts AdapterOptions) *Adapter { return &Adapter{c: c, opts: opts} }

func callAPI(call provider.Call) API {
	switch call {
	case provider.CallQueryOrder:
		return APIOrderQuery
	case provider.CallCreateRefund:
		return APIRefundCreate
	case provider.CallQueryRefund:
		return APIRefundQuery
	case provider.CallCreateSettle:
		return APISettleCreate
	case provider.CallAuditRefund:
		return APIRefundAudit
	}
	return APISettleQuery
}

// Delay is how long call of appID would wait for its rate-limit token.
func (a *Adapter) Delay(appID string, call provider.Call) time.Duration {
	return a.c.limiter.Delay(appID, callAPI(call).Limit())
}

// Rate is the rate in force for call of appID, in calls per second.
func (a *Adapter) Rate(appID string, call provider.Call) float64 {
	return a.c.limiter.Rate(appID, callAPI(call).Limit())
}

// QueryOrder reads the order by Douyin's id when known, else by payd's
// number, and its CPS commission once paid.
func (a *Adapter) QueryOrder(ctx context.Context, o provider.OrderRef) (*provider.OrderInfo, error) {
	ord, err := a.c.QueryOrder(ctx, orderQuery(o))
	if err != nil {
		return nil, providerError(APIOrderQuery, err)
	}
	info := &provider.OrderInfo{Status: orderStatus(string(ord.PayStatus)), DouyinOrderID: string(ord.OrderID),
		TotalAmount: ord.Paid(), PayChannel: int(ord.PayChannel)}
	if ord.PayTime > 0 && info.Status == provider.OrderSuccess {
		at := Millis(ord.PayTime)
		info.PaidAt = &at
	}
	for _, it := range ord.ItemOrderList {
		info.Items = append(info.Items, provider.ItemOrder{ID: string(it.ItemOrderID), SKUID: string(it.SKUID), Amount: int64(it.ItemOrderAmount)})
	}
	if info.Status == provider.OrderSuccess {
		// Without an answer the share stays unknown (CPSKnown false) and
		// the reconciler asks again.
		if cps, err := a.c.QueryCPS(ctx, QueryCPSRequest{AppID: o.AppID, OrderID: string(ord.OrderID)}); err == nil {
			info.CPSShare, info.CPSKnown = int64(cps.TotalCommissionAmount), true
		}
	}
	return info, nil
}

func orderQuery(o provider.OrderRef) OrderQueryRequest {
	if o.DouyinOrderID != "" {
		return OrderQueryRequest{AppID: o.AppID, OrderID: o.DouyinOrderID}
	}
	return OrderQueryRequest{AppID: o.AppID, OutOrderNo: o.OutOrderNo}
}

func orderStatus(s string) provider.OrderStatus {
	switch s {
	case PaySuccess:
		return provider.OrderSuccess
	case PayTimeout:
		return provider.OrderTimeout
	case PayFail:
		return provider.OrderFail
	}
	return provider.OrderProcessing
}

// CreateRefund asks for a refund. It needs Douyin's order id and item
// orders: the order is queried when either is missing; without req.Items
// the first refund of an order for its whole amount is refund_all, any
// other is spread over the items by what is left of each.
func (a *Adapter) CreateRefund(ctx context.Context, req provider.RefundRequest) (*provider.RefundInfo, error) {
	r := RefundCreateRequest{AppID: req.Order.AppID, OrderID: req.Order.DouyinOrderID, OutRefundNo: req.OutRefundNo,
		RefundTotalAmount: req.Amount, RefundReason: []RefundReason{refundReason(req.Reason)}, NotifyURL: req.NotifyURL}
	for _, it := range req.Items {
		r.ItemOrderDetail = append(r.ItemOrderDetail, ItemAmount{ItemOrderID: it.ItemOrderID, RefundAmount: it.Amount})
	}
	if r.OrderID == "" || len(r.ItemOrderDetail) == 0 {
		if err := a.fillRefund(ctx, req, &r); err != nil {
			return nil, err
		}
	}
	if a.opts.EntryPath != "" {
		params, _ := json.Marshal(map[string]string{"out_order_no": req.Order.OutOrderNo})
		if a.opts.EntryParams != nil {
			params = []byte(a.opts.EntryParams(req.Order.OutOrderNo))
		}
		r.OrderEntrySchema = &EntrySchema{Path: a.opts.EntryPath, Params: string(params)}
	}
	created, err := a.c.CreateRefund(ctx, r)
	if err != nil {
		return nil, providerError(APIRefundCreate, err)
	}
	return &provider.RefundInfo{Status: provider.StatusProcessing, DouyinRefundID: string(created.RefundID), Amount: req.Amount}, nil
}

// Douyin's refund reason codes.
var reasonCodes = map[string]int{"101": 101, "102": 102, "103": 103, "999": 999}

// refundReason is refund_reason for a declared reason: "CODE:text" with
// CODE one of 101 (不想要了), 102 (商家服务原因), 103 (商品质量问题) or 999
// (其他) sends that code; any other text is code 999 with the text.
func refundReason(s string) RefundReason {
	if code, text, ok := strings.Cut(s, ":"); ok {
		if c, known := reasonCodes[strings.TrimSpace(code)]; known {
			return RefundReason{Code: c, Text: reasonText(strings.TrimSpace(text))}
		}
	}
	return RefundReason{Code: 999, Text: reasonText(s)}
}

func reasonText(s string) string {
	if s == "" {
		return "其他"
	}
	if utf8.RuneCountInString(s) >= 50 {
		s = string([]rune(s)[:49])
	}
	return s
}

// fillRefund learns the order id and, without items, how to spread the
// refund.
func (a *Adapter) fillRefund(ctx context.Context, req provider.RefundRequest, r *RefundCreateRequest) error {
	ord, err := a.c.QueryOrder(ctx, orderQuery(req.Order))
	if err != nil {
		return providerError(APIOrderQuery, err)
	}
	r.OrderID = string(ord.OrderID)
	if len(r.ItemOrderDetail) > 0 {
		return nil
	}
	list, err := a.c.QueryRefund(ctx, RefundQueryRequest{AppID: req.Order.AppID, OrderID: r.OrderID})
	if err != nil && Classify(err) != douyin.ClassPermanent {
		return providerError(APIRefundQuery, err)
	}
	refunded := map[string]int64{}
	active := false
	if list != nil {
		for _, rf := range list.RefundList {
			if rf.RefundStatus == RefundFail || (rf.MerchantAuditDetail != nil && rf.MerchantAuditDetail.AuditStatus == AuditDeny) {
				continue
			}
			active = true
			for _, it := range rf.ItemOrderDetail {
				refunded[string(it.ItemOrderID)] += int64(it.RefundAmount)
			}
		}
	}
	if !active && req.Amount == ord.Paid() {
		r.RefundAll = true
		return nil
	}
	left := req.Amount
	for _, it := range ord.ItemOrderList {
		rest := int64(it.ItemOrderAmount) - refunded[string(it.ItemOrderID)]
		if take := min(rest, left); take > 0 {
			r.ItemOrderDetail = append(r.ItemOrderDetail, ItemAmount{ItemOrderID: string(it.ItemOrderID), RefundAmount: take})
			left -= take
		}
	}
	if left > 0 {
		return &provider.Error{Class: provider.Refused, Reason: provider.NothingLeft, ErrNo: -1,
			Err: fmt.Errorf("refund %s: %d fen more than is left on the items of order %s", req.OutRefundNo, left, r.OrderID)}
	}
	return nil
}

// QueryRefund reads one refund by Douyin's id when known, else payd's
// number; none found is NotFound.
func (a *Adapter) QueryRefund(ctx context.Context, o provider.OrderRef, ref provider.ItemRef) (*provider.RefundInfo, error) {
	q := RefundQueryRequest{AppID: o.AppID, OutRefundNo: ref.No}
	if ref.DouyinID != "" {
		q = RefundQueryRequest{AppID: o.AppID, RefundID: ref.DouyinID}
	}
	list, err := a.c.QueryRefund(ctx, q)
	if err != nil {
		return nil, providerError(APIRefundQuery, err)
	}
	for _, rf := range list.RefundList {
		if (ref.DouyinID != "" && string(rf.RefundID) == ref.DouyinID) || (ref.DouyinID == "" && string(rf.OutRefundNo) == ref.No) {
			return refundInfo(rf), nil
		}
	}
	return nil, notFound(APIRefundQuery, fmt.Sprintf("refund %s %s", ref.No, ref.DouyinID))
}

func refundInfo(rf Refund) *provider.RefundInfo {
	info := &provider.RefundInfo{Status: provider.StatusProcessing, DouyinRefundID: string(rf.RefundID), Amount: int64(rf.RefundTotalAmount), Message: string(rf.Message)}
	if d := rf.MerchantAuditDetail; d != nil && d.NeedRefundAudit == 1 {
		info.Audit.Status = provider.AuditStatus(d.AuditStatus)
		if d.RefundAuditDeadline > 0 {
			info.Audit.Deadline = Millis(d.RefundAuditDeadline)
		}
	}
	switch {
	case rf.RefundStatus == RefundSuccess:
		info.Status = provider.StatusSuccess
	case rf.RefundStatus == RefundFail:
		info.Status = provider.StatusFail
	case rf.MerchantAuditDetail != nil && rf.MerchantAuditDetail.AuditStatus == AuditDeny:
		info.Status = provider.StatusFail
		info.Message = string(rf.MerchantAuditDetail.DenyMessage)
	}
	return info
}

// AuditRefund sends the merchant's decision on a refund awaiting audit
// (refund_audit_callback), by Douyin's refund_id.
func (a *Adapter) AuditRefund(ctx context.Context, o provider.OrderRef, ref provider.ItemRef, d provider.AuditDecision) error {
	req := RefundAuditRequest{AppID: o.AppID, RefundID: ref.DouyinID, RefundAuditStatus: AuditAgreeCode}
	if !d.Agree {
		req.RefundAuditStatus, req.DenyMessage = AuditRefuseCode, d.Message
	}
	return providerError(APIRefundAudit, a.c.AuditRefund(ctx, req))
}

// CreateSettle asks for a settlement of the order or one item order.
func (a *Adapter) CreateSettle(ctx context.Context, req provider.SettleRequest) (*provider.SettleInfo, error) {
	desc := req.Desc
	if desc == "" {
		desc = "settle " + req.OutSettleNo
	}
	if utf8.RuneCountInString(desc) > 80 {
		desc = string([]rune(desc)[:80])
	}
	s := SettleCreateRequest{AppID: req.Order.AppID, OutOrderNo: req.Order.OutOrderNo, OutSettleNo: req.OutSettleNo,
		SettleDesc: desc, ItemOrderID: req.ItemOrderID, NotifyURL: req.NotifyURL}
	for _, r := range req.Receivers {
		s.Receivers = append(s.Receivers, SettleReceiver{MerchantUID: r.MerchantUID, Amount: r.Amount})
	}
	created, err := a.c.CreateSettle(ctx, s)
	if err != nil {
		return nil, providerError(APISettleCreate, err)
	}
	return &provider.SettleInfo{Status: provider.StatusProcessing, DouyinSettleID: string(created.SettleID), Amount: req.Amount}, nil
}

// QuerySettle reads one settlement by Douyin's id when known, else payd's
// number; none found (an empty list) is NotFound. A settlement payd did
// not make (ref.ByOrder) is read by the order, as the facts file says for
// every order migrated from ecpay too: by order_id (else out_order_no).
func (a *Adapter) QuerySettle(ctx context.Context, o provider.OrderRef, ref provider.ItemRef) (*provider.SettleInfo, error) {
	if ref.ByOrder {
		return a.querySettleByOrder(ctx, o, ref)
	}
	q := SettleQueryRequest{AppID: o.AppID, OutSettleNo: ref.No}
	switch {
	case ref.DouyinID != "":
		q = SettleQueryRequest{AppID: o.AppID, SettleID: ref.DouyinID}
	case o.Migrated && o.DouyinOrderID != "":
		q = SettleQueryRequest{AppID: o.AppID, OrderID: o.DouyinOrderID} // orders migrated from ecpay: by order_id
	}
	list, _, err := a.c.QuerySettle(ctx, q)
	if err != nil {
		return nil, providerError(APISettleQuery, err)
	}
	for _, st := range list {
		if (ref.DouyinID != "" && string(st.SettleID) == ref.DouyinID) || (ref.DouyinID == "" && string(st.OutSettleNo) == ref.No) {
			return settleInfo(st), nil
		}
	}
	return nil, notFound(APISettleQuery, fmt.Sprintf("settlement %s %s", ref.No, ref.DouyinID))
}

// querySettleByOrder finds Douyin's settlement of the order (or of
// ref.ItemOrderID): the one ref.DouyinID names when known, else the best
// of the order's — SUCCESS before one in progress before FAIL.
func (a *Adapter) querySettleByOrder(ctx context.Context, o provider.OrderRef, ref provider.ItemRef) (*provider.SettleInfo, error) {
	q := SettleQueryRequest{AppID: o.AppID, OrderID: o.DouyinOrderID}
	if q.OrderID == "" {
		q.OutOrderNo = o.OutOrderNo
	}
	list, _, err := a.c.QuerySettle(ctx, q)
	if err != nil {
		return nil, providerError(APISettleQuery, err)
	}
	rank := func(status string) int {
		switch status {
		case SettleSuccess:
			return 3
		case SettleFail:
			return 1
		}
		return 2
	}
	var best *provider.SettleInfo
	bestRank := 0
	for _, st := range list {
		if string(st.ItemOrderID) != ref.ItemOrderID || (ref.DouyinID != "" && string(st.SettleID) != ref.DouyinID) {
			continue
		}
		if r := rank(string(st.SettleStatus)); r > bestRank {
			best, bestRank = settleInfo(st), r
		}
	}
	if best == nil {
		return nil, notFound(APISettleQuery, fmt.Sprintf("settlement of order %s %s", o.OutOrderNo, ref.ItemOrderID))
	}
	return best, nil
}

// settleInfo is a settle_query entry in payd's terms.
func settleInfo(st Settle) *provider.SettleInfo {
	info := &provider.SettleInfo{Status: provider.StatusProcessing, DouyinSettleID: string(st.SettleID), Amount: int64(st.SettleAmount)}
	switch st.SettleStatus {
	case SettleSuccess:
		info.Status = provider.StatusSuccess
	case SettleFail:
		info.Status = provider.StatusFail
	}
	return info
}

func notFound(api API, what string) error {
	return &provider.Error{Class: provider.Refused, Reason: provider.NotFound, ErrNo: 0, Err: fmt.Errorf("douyin trade %s: %s: none", api, what)}
}

// providerError turns a client error into payd's terms (facts file, the
// error tables).
func providerError(api API, err error) error {
	if err == nil {
		return nil
	}
	pe := &provider.Error{ErrNo: ErrNo(err), LogID: LogID(err), Err: err}
	var ae *APIError
	if errors.As(err, &ae) {
		pe.Tips = ae.ErrMsg
	}
	switch Classify(err) {
	case douyin.ClassOK:
		pe.Class = provider.Done
	case douyin.ClassRetryable:
		pe.Class = provider.Retryable
	case douyin.ClassUnknown:
		pe.Class = provider.Unknown
	case douyin.ClassConfig:
		pe.Class = provider.Configuration
	default:
		pe.Class = provider.Refused
		pe.Reason = refusalReason(api, pe.ErrNo)
	}
	return pe
}

func refusalReason(api API, errNo int) provider.Reason {
	switch errNo {
	case ErrNoSettleNoExists:
		return provider.Exists
	case ErrNoSettleNoMoney:
		return provider.NothingLeft
	case ErrNoSettleNotDone:
		return provider.NotYet
	case ErrNoSettleAuto:
		return provider.SettledByProvider
	case ErrNoOrderNotFound:
		return provider.NotFound
	case -1, ErrNoParam, ErrNoParse:
		return ""
	}
	// Any other definite answer to a read means "not found (yet)".
	if !api.Write() {
		return provider.NotFound
	}
	return ""
}
