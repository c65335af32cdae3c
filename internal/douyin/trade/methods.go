package trade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrBadRequest wraps every request the client refuses to send; the text
// names the field.
var ErrBadRequest = errors.New("douyin trade: bad request")

func badRequest(api API, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadRequest, api, fmt.Sprintf(format, args...))
}

// exactlyOne checks that exactly one of the named values is set.
func exactlyOne(api API, fields ...[2]string) error {
	n := 0
	names := ""
	for _, f := range fields {
		if f[1] != "" {
			n++
		}
		if names != "" {
			names += ", "
		}
		names += f[0]
	}
	if n != 1 {
		return badRequest(api, "exactly one of %s: got %d", names, n)
	}
	return nil
}

// QueryOrder reads an order by Douyin's order_id or payd's out_order_no.
func (c *Client) QueryOrder(ctx context.Context, req OrderQueryRequest) (*Order, error) {
	if err := exactlyOne(APIOrderQuery, [2]string{"order_id", req.OrderID}, [2]string{"out_order_no", req.OutOrderNo}); err != nil {
		return nil, err
	}
	data, err := c.call(ctx, req.AppID, APIOrderQuery, req)
	if err != nil {
		return nil, err
	}
	var o Order
	if err := decodeData(APIOrderQuery, data, &o); err != nil {
		return nil, err
	}
	o.Raw = data
	return &o, nil
}

// QueryCPS reads an order's CPS commission; no CPS is an empty list (an
// answer 20004 is turned into one too).
func (c *Client) QueryCPS(ctx context.Context, req QueryCPSRequest) (*CPS, error) {
	if err := exactlyOne(APIQueryCPS, [2]string{"order_id", req.OrderID}, [2]string{"out_order_no", req.OutOrderNo}); err != nil {
		return nil, err
	}
	data, err := c.call(ctx, req.AppID, APIQueryCPS, req)
	if ErrNo(err) == ErrNoCPSNone {
		return &CPS{OrderID: Str(req.OrderID), OutOrderNo: Str(req.OutOrderNo)}, nil
	}
	if err != nil {
		return nil, err
	}
	var v CPS
	if err := decodeData(APIQueryCPS, data, &v); err != nil {
		return nil, err
	}
	v.Raw = data
	return &v, nil
}

// CreateRefund asks for a refund; success means accepted, not done.
func (c *Client) CreateRefund(ctx context.Context, req RefundCreateRequest) (*RefundCreated, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	data, err := c.call(ctx, req.AppID, APIRefundCreate, req)
	if err != nil {
		return nil, err
	}
	var v RefundCreated
	if err := decodeData(APIRefundCreate, data, &v); err != nil {
		return nil, err
	}
	v.Raw = data
	return &v, nil
}

func (r RefundCreateRequest) validate() error {
	const api = APIRefundCreate
	switch {
	case r.OrderID == "":
		return badRequest(api, "order_id: required")
	case r.OutRefundNo == "" || len(r.OutRefundNo) > 64:
		return badRequest(api, "out_refund_no: required, at most 64 bytes")
	case r.RefundTotalAmount <= 0:
		return badRequest(api, "refund_total_amount: must be positive")
	case len(r.RefundReason) < 1 || len(r.RefundReason) > 10:
		return badRequest(api, "refund_reason: 1 to 10 entries")
	case r.RefundAll && len(r.ItemOrderDetail) > 0:
		return badRequest(api, "item_order_detail: not with refund_all")
	case !r.RefundAll && (len(r.ItemOrderDetail) < 1 || len(r.ItemOrderDetail) > 99):
		return badRequest(api, "item_order_detail: 1 to 99 entries unless refund_all")
	}
	var sum int64
	for i, it := range r.ItemOrderDetail {
		if it.ItemOrderID == "" || it.RefundAmount <= 0 {
			return badRequest(api, "item_order_detail[%d]: item_order_id and a positive refund_amount required", i)
		}
		sum += it.RefundAmount
	}
	if !r.RefundAll && sum != r.RefundTotalAmount {
		return badRequest(api, "item_order_detail: sums to %d, refund_total_amount is %d", sum, r.RefundTotalAmount)
	}
	for i, rr := range r.RefundReason {
		if utf8.RuneCountInString(rr.Text) >= 50 {
			return badRequest(api, "refund_reason[%d].text: under 50 characters", i)
		}
	}
	return nil
}

// QueryRefund lists refunds by refund_id, out_refund_no or order_id.
func (c *Client) QueryRefund(ctx context.Context, req RefundQueryRequest) (*RefundList, error) {
	if err := exactlyOne(APIRefundQuery, [2]string{"refund_id", req.RefundID}, [2]string{"out_refund_no", req.OutRefundNo}, [2]string{"order_id", req.OrderID}); err != nil {
		return nil, err
	}
	data, err := c.call(ctx, req.AppID, APIRefundQuery, req)
	if err != nil {
		return nil, err
	}
	var v RefundList
	if err := decodeData(APIRefundQuery, data, &v); err != nil {
		return nil, err
	}
	v.Raw = data
	return &v, nil
}

// AuditRefund sends payd's decision on a refund awaiting audit.
func (c *Client) AuditRefund(ctx context.Context, req RefundAuditRequest) error {
	switch {
	case req.RefundID == "":
		return badRequest(APIRefundAudit, "refund_id: required")
	case req.RefundAuditStatus != AuditAgreeCode && req.RefundAuditStatus != AuditRefuseCode:
		return badRequest(APIRefundAudit, "refund_audit_status: 1 or 2")
	case req.RefundAuditStatus == AuditRefuseCode && req.DenyMessage == "":
		return badRequest(APIRefundAudit, "deny_message: required when refusing")
	case len(req.DenyMessage) > 512:
		return badRequest(APIRefundAudit, "deny_message: at most 512 bytes")
	}
	_, err := c.call(ctx, req.AppID, APIRefundAudit, req)
	return err
}

// CreateSettle asks for a settlement; success means accepted, not done.
func (c *Client) CreateSettle(ctx context.Context, req SettleCreateRequest) (*SettleCreated, error) {
	const api = APISettleCreate
	switch {
	case req.OutOrderNo == "":
		return nil, badRequest(api, "out_order_no: required")
	case req.OutSettleNo == "" || len(req.OutSettleNo) > 64:
		return nil, badRequest(api, "out_settle_no: required, at most 64 bytes")
	case req.SettleDesc == "" || utf8.RuneCountInString(req.SettleDesc) > 80:
		return nil, badRequest(api, "settle_desc: required, at most 80 characters")
	}
	if len(req.Receivers) > 0 {
		b, err := json.Marshal(req.Receivers)
		if err != nil || len(b) > 512 {
			return nil, badRequest(api, "settle_params: at most 512 bytes of JSON")
		}
		req.SettleParams = string(b)
	}
	data, err := c.call(ctx, req.AppID, api, req)
	if err != nil {
		return nil, err
	}
	var v SettleCreated
	if err := decodeData(api, data, &v); err != nil {
		return nil, err
	}
	v.Raw = data
	return &v, nil
}

// QuerySettle lists settlements; no match is an empty list. When several
// keys are set only the one Douyin would use is sent (settle_id > order_id
// > out_settle_no > out_order_no).
func (c *Client) QuerySettle(ctx context.Context, req SettleQueryRequest) ([]Settle, json.RawMessage, error) {
	var one SettleQueryRequest
	one.AppID = req.AppID
	switch {
	case req.SettleID != "":
		one.SettleID = req.SettleID
	case req.OrderID != "":
		one.OrderID = req.OrderID
	case req.OutSettleNo != "":
		one.OutSettleNo = req.OutSettleNo
	case req.OutOrderNo != "":
		one.OutOrderNo = req.OutOrderNo
	default:
		return nil, nil, badRequest(APISettleQuery, "one of settle_id, order_id, out_settle_no, out_order_no: required")
	}
	data, err := c.call(ctx, req.AppID, APISettleQuery, one)
	if err != nil {
		return nil, nil, err
	}
	var v []Settle
	if err := decodeData(APISettleQuery, data, &v); err != nil {
		return nil, nil, err
	}
	return v, data, nil
}
