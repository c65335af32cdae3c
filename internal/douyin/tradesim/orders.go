package tradesim

import (
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

func (s *Server) findOrderLocked(a *App, orderID, outOrderNo string) *order {
	var o *order
	if orderID != "" {
		o = s.orders[orderID]
	} else {
		o = s.byOut[a.AppID+"\x00"+outOrderNo]
	}
	if o == nil || o.AppID != a.AppID {
		return nil
	}
	return o
}

type orderRef struct {
	OrderID    string `json:"order_id"`
	OutOrderNo string `json:"out_order_no"`
}

// orderQuery: exactly one of order_id, out_order_no; an unknown order is
// 20000.
func (s *Server) orderQuery(a *App, body []byte, _ time.Time) (any, *apiErr) {
	var req orderRef
	if e := decodeStrict(body, &req); e != nil {
		return nil, e
	}
	if e := exactlyOne([]string{"order_id", "out_order_no"}, req.OrderID, req.OutOrderNo); e != nil {
		return nil, e
	}
	o := s.findOrderLocked(a, req.OrderID, req.OutOrderNo)
	if o == nil {
		return nil, refuse(trade.ErrNoOrderNotFound, "order not found")
	}
	d := trade.Order{OrderID: trade.Str(o.OrderID), OutOrderNo: trade.Str(o.OutOrderNo), AppID: trade.Str(o.AppID), MerchantUID: "71000000000000000001",
		PayStatus: trade.Str(o.PayStatus), TotalAmount: trade.Int(o.Total), DiscountAmount: trade.Int(o.Discount), TradeTime: trade.Int(o.PaidAt.UnixMilli())}
	if o.PayStatus == trade.PaySuccess {
		d.PayTime, d.PayChannel = trade.Int(o.PaidAt.UnixMilli()), trade.Int(o.Channel)
		d.ChannelPayID = trade.Str("CH" + o.OrderID)
	}
	for _, it := range o.Items {
		d.ItemOrderList = append(d.ItemOrderList, trade.ItemOrder{ItemOrderID: trade.Str(it.ID), SKUID: trade.Str(it.SKU), ItemOrderAmount: trade.Int(it.Amount)})
	}
	return d, nil
}

// queryCPS: an order without CPS has an empty list.
func (s *Server) queryCPS(a *App, body []byte, _ time.Time) (any, *apiErr) {
	var req orderRef
	if e := decodeStrict(body, &req); e != nil {
		return nil, e
	}
	if e := exactlyOne([]string{"order_id", "out_order_no"}, req.OrderID, req.OutOrderNo); e != nil {
		return nil, e
	}
	o := s.findOrderLocked(a, req.OrderID, req.OutOrderNo)
	if o == nil {
		return nil, refuse(trade.ErrNoOrderNotFound, "order not found")
	}
	d := trade.CPS{OrderID: trade.Str(o.OrderID), OutOrderNo: trade.Str(o.OutOrderNo), TotalCommissionAmount: trade.Int(o.Commission), CPSItemList: []trade.CPSItem{}}
	if o.Commission > 0 && len(o.Items) > 0 {
		d.CPSItemList = append(d.CPSItemList, trade.CPSItem{ItemOrderID: trade.Str(o.Items[0].ID), CommissionAmount: trade.Int(o.Commission)})
	}
	return d, nil
}
