package tradesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

// ControlPrefix is the path of every control route.
const ControlPrefix = "/_sim/trade/"

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+trade.TokenPath, s.handleClientToken)
	for api, h := range map[trade.API]handler{
		trade.APIOrderQuery: s.orderQuery, trade.APIQueryCPS: s.queryCPS,
		trade.APIRefundCreate: s.refundCreate, trade.APIRefundQuery: s.refundQuery, trade.APIRefundAudit: s.refundAudit,
		trade.APISettleCreate: s.settleCreate, trade.APISettleQuery: s.settleQuery,
	} {
		mux.HandleFunc(api.Path(), s.serveTrade(api, h))
	}
	mux.HandleFunc("POST "+ControlPrefix+"orders", s.handleOrders)
	mux.HandleFunc("POST "+ControlPrefix+"fulfil", s.handleFulfil)
	mux.HandleFunc("POST "+ControlPrefix+"user_refund", s.handleUserRefund)
	mux.HandleFunc("POST "+ControlPrefix+"clock", s.handleClock)
	mux.HandleFunc("GET "+ControlPrefix+"clock", s.handleClock)
	mux.HandleFunc("POST "+ControlPrefix+"faults", s.handleFaults)
	mux.HandleFunc("GET "+ControlPrefix+"ledger", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Ledger()) })
	mux.HandleFunc("GET "+ControlPrefix+"check", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"violations": s.Check()})
	})
	return mux
}

func controlErr(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
}

func decodeControl(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}

// SeedItem is one item order of a SeedOrder.
type SeedItem struct {
	ItemOrderID string `json:"item_order_id"` // generated when empty
	SKUID       string `json:"sku_id"`
	Amount      int64  `json:"amount"`
}

// SeedOrder is an order created through the control API.
type SeedOrder struct {
	AppID      string `json:"app_id"`
	OrderID    string `json:"order_id"` // generated when empty
	OutOrderNo string `json:"out_order_no"`
	// PayStatus is SUCCESS (the default), PROCESS or TIMEOUT.
	PayStatus string `json:"pay_status"`
	// PayChannel is 1 WeChat (the default), 2 Alipay, 10 Douyin Pay.
	PayChannel int   `json:"pay_channel"`
	Discount   int64 `json:"discount_amount"`
	// PaidAgo puts pay_time this far before the simulated now (Go duration).
	PaidAgo       string     `json:"paid_ago"`
	CPSCommission int64      `json:"cps_commission"`
	Items         []SeedItem `json:"items"`
}

// Seed creates orders; paid ones get a payment callback. It returns them
// with their ids.
func (s *Server) Seed(orders ...SeedOrder) ([]SeedOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	out := make([]SeedOrder, 0, len(orders))
	for i, so := range orders {
		o, err := s.seedLocked(so, now)
		if err != nil {
			return nil, fmt.Errorf("orders[%d]: %w", i, err)
		}
		so.OrderID = o.OrderID
		for j, it := range o.Items {
			so.Items[j].ItemOrderID = it.ID
		}
		out = append(out, so)
	}
	return out, nil
}

func (s *Server) seedLocked(so SeedOrder, now time.Time) (*order, error) {
	a := s.apps[so.AppID]
	switch {
	case a == nil:
		return nil, fmt.Errorf("app_id %q: not configured", so.AppID)
	case so.OutOrderNo == "" || s.byOut[so.AppID+"\x00"+so.OutOrderNo] != nil:
		return nil, fmt.Errorf("out_order_no %q: required and new", so.OutOrderNo)
	case len(so.Items) == 0:
		return nil, errors.New("items: at least one")
	}
	o := &order{AppID: a.AppID, OrderID: so.OrderID, OutOrderNo: so.OutOrderNo, PayStatus: so.PayStatus, Channel: so.PayChannel,
		Discount: so.Discount, Commission: so.CPSCommission, PaidAt: now}
	if o.OrderID == "" {
		o.OrderID = s.nextIDLocked("motb")
	}
	if o.PayStatus == "" {
		o.PayStatus = trade.PaySuccess
	}
	if o.Channel == 0 {
		o.Channel = trade.ChannelWeChat
	}
	if so.PaidAgo != "" {
		d, err := time.ParseDuration(so.PaidAgo)
		if err != nil {
			return nil, fmt.Errorf("paid_ago: %w", err)
		}
		o.PaidAt = now.Add(-d)
	}
	for _, si := range so.Items {
		if si.Amount <= 0 {
			return nil, errors.New("items: amounts must be positive")
		}
		id := si.ItemOrderID
		if id == "" {
			id = s.nextIDLocked("motb")
		}
		o.Items = append(o.Items, &item{ID: id, SKU: si.SKUID, Amount: si.Amount})
		o.Total += si.Amount
	}
	s.orders[o.OrderID], s.byOut[a.AppID+"\x00"+o.OutOrderNo] = o, o
	if o.PayStatus == trade.PaySuccess {
		s.paymentCallbackLocked(o)
	}
	return o, nil
}

func (s *Server) handleOrders(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Orders []SeedOrder `json:"orders"`
	}
	if err := decodeControl(r, &req); err != nil {
		controlErr(w, err)
		return
	}
	out, err := s.Seed(req.Orders...)
	if err != nil {
		controlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": out})
}

// Fulfil marks an order's items (or one item) fulfilled at the simulated
// now: what a fulfilment-rule settlement waits for.
func (s *Server) Fulfil(orderID, itemOrderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderID]
	if o == nil {
		return fmt.Errorf("order %q: unknown", orderID)
	}
	now := s.nowLocked()
	for _, it := range o.Items {
		if itemOrderID == "" || it.ID == itemOrderID {
			it.FulfilledAt = now
		}
	}
	return nil
}

func (s *Server) handleFulfil(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OrderID     string `json:"order_id"`
		ItemOrderID string `json:"item_order_id"`
	}
	if err := decodeControl(r, &req); err != nil {
		controlErr(w, err)
		return
	}
	if err := s.Fulfil(req.OrderID, req.ItemOrderID); err != nil {
		controlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			Advance string `json:"advance"`
		}
		if err := decodeControl(r, &req); err != nil {
			controlErr(w, err)
			return
		}
		d, err := time.ParseDuration(req.Advance)
		if err != nil || d < 0 {
			controlErr(w, fmt.Errorf("advance %q: want a positive Go duration", req.Advance))
			return
		}
		s.Advance(d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"now": s.Now().Format(time.RFC3339Nano)})
}

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeControl(r, &f); err != nil {
		controlErr(w, err)
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}
