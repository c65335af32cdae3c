package douyin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payd/payd/internal/provider"
)

// Provider adapts a Client to the reconciler's seam: ecpay's requests,
// statuses and err_no numbers become payd's terms. It is the only place
// where they are translated.
type Provider struct {
	c *Client
}

// NewProvider returns c as a provider.Provider (and provider.Budget).
func NewProvider(c *Client) *Provider { return &Provider{c: c} }

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Budget   = (*Provider)(nil)
)

// Delay tells how long call would wait for its rate-limit token now.
func (p *Provider) Delay(appID string, call provider.Call) time.Duration {
	return p.c.Delay(appID, API(call))
}

// Rate is call's current rate for appID, in calls per second.
func (p *Provider) Rate(appID string, call provider.Call) float64 {
	return p.c.Rate(appID, API(call))
}

// QueryOrder sends query_order.
func (p *Provider) QueryOrder(ctx context.Context, o provider.OrderRef) (*provider.OrderInfo, error) {
	resp, err := p.c.QueryOrder(ctx, QueryOrderRequest{AppID: o.AppID, OutOrderNo: o.OutOrderNo})
	if err != nil {
		return nil, answerError(provider.CallQueryOrder, err)
	}
	info, err := orderInfo(resp)
	if err != nil {
		// A garbled answer is no observation: look again later.
		return nil, &provider.Error{Class: provider.Unknown, ErrNo: -1, Tips: "answer not understood: " + err.Error(), Err: err}
	}
	return info, nil
}

// orderInfo reads query_order's answer.
func orderInfo(resp *QueryOrderResponse) (*provider.OrderInfo, error) {
	pi := resp.PaymentInfo
	status := provider.OrderStatus(pi.OrderStatus)
	switch status {
	case provider.OrderSuccess, provider.OrderProcessing, provider.OrderFail, provider.OrderTimeout:
	default:
		return nil, fmt.Errorf("unknown order_status %q", pi.OrderStatus)
	}
	paidAt, havePaid, err := pi.PaidAt()
	if err != nil {
		return nil, err
	}
	share, known, err := resp.CPSShare()
	if err != nil {
		return nil, err
	}
	info := &provider.OrderInfo{Status: status, DouyinOrderID: resp.OrderID, TotalAmount: pi.TotalFee, CPSShare: share, CPSKnown: known}
	if havePaid {
		info.PaidAt = &paidAt
	}
	return info, nil
}

// CreateRefund sends create_refund; a refund of an order already settled
// goes with all_settle=1.
func (p *Provider) CreateRefund(ctx context.Context, req provider.RefundRequest) (*provider.RefundInfo, error) {
	resp, err := p.c.CreateRefund(ctx, CreateRefundRequest{
		AppID: req.Order.AppID, OutOrderNo: req.Order.OutOrderNo, OutRefundNo: req.OutRefundNo,
		Reason: req.Reason, RefundAmount: req.Amount, AllSettle: req.AfterSettlement, NotifyURL: req.NotifyURL,
	})
	if err != nil {
		return nil, answerError(provider.CallCreateRefund, err)
	}
	return &provider.RefundInfo{Status: provider.StatusProcessing, DouyinRefundID: resp.RefundNo, Amount: req.Amount}, nil
}

// QueryRefund sends query_refund by out_refund_no.
func (p *Provider) QueryRefund(ctx context.Context, o provider.OrderRef, ref provider.ItemRef) (*provider.RefundInfo, error) {
	info, err := p.c.QueryRefund(ctx, QueryRefundRequest{AppID: o.AppID, OutRefundNo: ref.No})
	if err != nil {
		return nil, answerError(provider.CallQueryRefund, err)
	}
	return &provider.RefundInfo{Status: itemStatus(info.RefundStatus), DouyinRefundID: info.RefundNo, Amount: info.RefundAmount, Message: info.Msg}, nil
}

// CreateSettle sends settle with the receivers as settle_params.
func (p *Provider) CreateSettle(ctx context.Context, req provider.SettleRequest) (*provider.SettleInfo, error) {
	sr := SettleRequest{
		AppID: req.Order.AppID, OutSettleNo: req.OutSettleNo, OutOrderNo: req.Order.OutOrderNo,
		SettleDesc: req.Desc, NotifyURL: req.NotifyURL,
	}
	for _, rc := range req.Receivers {
		sr.SettleParams = append(sr.SettleParams, Receiver{MerchantUID: rc.MerchantUID, Amount: rc.Amount})
	}
	resp, err := p.c.Settle(ctx, sr)
	if err != nil {
		return nil, answerError(provider.CallCreateSettle, err)
	}
	return &provider.SettleInfo{Status: provider.StatusProcessing, DouyinSettleID: resp.SettleNo}, nil
}

// QuerySettle sends query_settle by out_settle_no.
func (p *Provider) QuerySettle(ctx context.Context, o provider.OrderRef, ref provider.ItemRef) (*provider.SettleInfo, error) {
	info, err := p.c.QuerySettle(ctx, QuerySettleRequest{AppID: o.AppID, OutSettleNo: ref.No})
	if err != nil {
		return nil, answerError(provider.CallQuerySettle, err)
	}
	return &provider.SettleInfo{Status: itemStatus(info.SettleStatus), DouyinSettleID: info.SettleNo, Amount: info.SettleAmount, Message: info.Msg}, nil
}

func itemStatus(s string) provider.ItemStatus {
	switch s {
	case StatusSuccess:
		return provider.StatusSuccess
	case StatusFail:
		return provider.StatusFail
	}
	return provider.StatusProcessing
}

// answerError turns a call's failure into payd's terms: the class of
// Classify, and for a definite answer the reason the reconciler acts on.
// ecpay's only reason is "not found": 2000 for an order or settlement
// number, 3101 for a refund number.
func answerError(call provider.Call, err error) error {
	pe := &provider.Error{ErrNo: ErrNo(err), Tips: tipsOf(err), Err: err}
	switch Classify(err) {
	case ClassRetryable:
		pe.Class = provider.Retryable
	case ClassUnknown:
		pe.Class = provider.Unknown
	case ClassConfig:
		pe.Class = provider.Configuration
	default:
		pe.Class = provider.Refused
		if notFound(call, pe.ErrNo) {
			pe.Reason = provider.NotFound
		}
	}
	return pe
}

func notFound(call provider.Call, errNo int) bool {
	switch call {
	case provider.CallQueryRefund:
		return errNo == ErrNoRefundNotFound
	case provider.CallQueryOrder, provider.CallQuerySettle:
		return errNo == ErrNoOrderNotFound
	}
	return false
}

// tipsOf is Douyin's err_tips, or the error's text when there was none.
func tipsOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.ErrTips
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
