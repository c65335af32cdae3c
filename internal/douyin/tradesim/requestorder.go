package tradesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

// RequestOrder does what the mini-program's tt.requestOrder does with
// data (the order data text) and its Byte-Authorization: verifies the
// signature with the app's OrderKey over POST /requestOrder and the exact
// text (refusing one older than an hour), then creates the order, not paid
// yet (PROCESS), one item per SKU. It returns Douyin's order_id.
func (s *Server) RequestOrder(appID, data, authorization string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil || a.OrderKey == nil {
		return "", fmt.Errorf("app %q: unknown or without an order key", appID)
	}
	auth, err := trade.ParseAuthorization(authorization)
	if err != nil {
		return "", err
	}
	ts, err := strconv.ParseInt(auth.Timestamp, 10, 64)
	now := s.nowLocked()
	switch {
	case auth.AppID != appID:
		return "", fmt.Errorf("byte-authorization appid %q: not %s", auth.AppID, appID)
	case err != nil || now.Sub(time.Unix(ts, 0)) > time.Hour || time.Unix(ts, 0).Sub(now) > time.Minute:
		return "", fmt.Errorf("byte-authorization timestamp %q: more than an hour old, or in the future", auth.Timestamp)
	}
	if err := trade.VerifyAuthorization(a.OrderKey, "POST", "/requestOrder", auth.Timestamp, auth.NonceStr, []byte(data), auth.Signature); err != nil {
		return "", err
	}
	var d struct {
		OutOrderNo  string `json:"outOrderNo"`
		TotalAmount int64  `json:"totalAmount"`
		SKUList     []struct {
			SKUID    string `json:"skuId"`
			Price    int64  `json:"price"`
			Quantity int64  `json:"quantity"`
		} `json:"skuList"`
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return "", fmt.Errorf("data: %w", err)
	}
	so := SeedOrder{AppID: appID, OutOrderNo: d.OutOrderNo, PayStatus: trade.PayProcess}
	var sum int64
	for _, sku := range d.SKUList {
		so.Items = append(so.Items, SeedItem{SKUID: sku.SKUID, Amount: sku.Price * sku.Quantity})
		sum += sku.Price * sku.Quantity
	}
	if sum != d.TotalAmount || sum <= 0 {
		return "", errors.New("data.totalAmount: not the sum of skuList's price × quantity")
	}
	o, err := s.seedLocked(so, now)
	if err != nil {
		return "", err
	}
	return o.OrderID, nil
}

// Pay makes the buyer pay an order not paid yet, on channel (WeChat when
// 0), at the simulated now, with its payment callback.
func (s *Server) Pay(orderID string, channel int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderID]
	if o == nil || o.PayStatus != trade.PayProcess {
		return fmt.Errorf("order %q: unknown or not awaiting payment", orderID)
	}
	o.PayStatus, o.PaidAt = trade.PaySuccess, s.nowLocked()
	if channel != 0 {
		o.Channel = channel
	}
	s.paymentCallbackLocked(o)
	return nil
}
