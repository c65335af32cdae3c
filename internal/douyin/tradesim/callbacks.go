package tradesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

// delivery is one callback on its way, retried on the wall clock.
type delivery struct {
	URL     string
	Type    trade.CallbackType
	Body    []byte
	Headers trade.Headers
	Attempt int
	Next    time.Time
	Done    bool
}

// Delivered counts callbacks acknowledged and given up, for tests.
type Delivered struct {
	Acked, GivenUp, Pending int
}

// Deliveries reports the callbacks' progress.
func (s *Server) Deliveries() Delivered {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d Delivered
	for _, x := range s.outbox {
		switch {
		case !x.Done:
			d.Pending++
		case x.Attempt > len(s.cfg.RetrySchedule):
			d.GivenUp++
		default:
			d.Acked++
		}
	}
	return d
}

// enqueueLocked signs msg as a version 3.0 callback and queues it (maybe
// dropped, duplicated or delayed by the faults).
func (s *Server) enqueueLocked(url string, typ trade.CallbackType, msg any) {
	if url == "" || s.rollLocked(s.faults.CallbackDrop) {
		return
	}
	now := s.nowLocked()
	body, h, err := trade.EncodeCallback(s.cfg.PlatformKey, typ, msg, strconv.FormatInt(now.Unix(), 10), s.nextIDLocked("n"))
	if err != nil {
		panic(fmt.Sprintf("tradesim: encode callback: %v", err))
	}
	n := 1
	if s.rollLocked(s.faults.CallbackDuplicate) {
		n = 2
	}
	next := time.Now()
	if s.rollLocked(s.faults.CallbackDelay) {
		max := s.cfg.CallbackDelayMax
		next = next.Add(max/2 + time.Duration(s.rng.Float64()*float64(max/2)))
	}
	for i := 0; i < n; i++ {
		s.outbox = append(s.outbox, &delivery{URL: url, Type: typ, Body: body, Headers: h, Next: next})
	}
}

func (s *Server) notifyURL(appID, own string) string {
	if own != "" {
		return own
	}
	if a := s.apps[appID]; a != nil {
		return a.NotifyURL
	}
	return ""
}

func (s *Server) refundCallbackLocked(r *refund) {
	o := s.orders[r.OrderID]
	msg := map[string]any{"app_id": r.AppID, "status": r.Status, "order_id": r.OrderID, "refund_id": r.ID, "out_refund_no": r.OutRefundNo,
		"refund_total_amount": r.Amount, "is_all_settled": o != nil && len(o.Settles) > 0, "message": r.Message,
		"event_time": s.nowLocked().UnixMilli(), "cp_extra": r.CPExtra, "refund_type": r.Source,
		"refund_item_detail": map[string]any{"item_order_quantity": len(r.Items), "item_order_detail": r.Items}}
	s.enqueueLocked(s.notifyURL(r.AppID, r.NotifyURL), trade.CallbackRefund, msg)
}

func (s *Server) settleCallbackLocked(st *settle) {
	msg := map[string]any{"app_id": st.AppID, "status": st.Status, "order_id": st.OrderID, "out_settle_no": st.OutSettleNo, "settle_id": st.ID,
		"settle_amount": st.Amount, "rake": st.Rake, "commission": st.Commission, "item_order_id": st.ItemOrderID, "is_auto_settle": st.Auto,
		"event_time": s.nowLocked().UnixMilli(), "cp_extra": st.CPExtra}
	s.enqueueLocked(s.notifyURL(st.AppID, st.NotifyURL), trade.CallbackSettle, msg)
}

func (s *Server) paymentCallbackLocked(o *order) {
	msg := map[string]any{"app_id": o.AppID, "out_order_no": o.OutOrderNo, "order_id": o.OrderID, "status": "SUCCESS",
		"total_amount": o.Total, "discount_amount": o.Discount, "pay_channel": o.Channel, "event_time": o.PaidAt.UnixMilli()}
	s.enqueueLocked(s.notifyURL(o.AppID, ""), trade.CallbackPayment, msg)
}

// sendDue posts every callback whose time has come; an answer other than
// HTTP 200 {"err_no":0} is retried after the next RetrySchedule wait.
func (s *Server) sendDue() {
	s.mu.Lock()
	var due []*delivery
	now := time.Now()
	for _, d := range s.outbox {
		if !d.Done && !now.Before(d.Next) {
			due = append(due, d)
		}
	}
	s.mu.Unlock()
	for _, d := range due {
		ok := s.post(d.URL, d.Body, d.Headers) == nil
		s.mu.Lock()
		d.Attempt++
		if ok || d.Attempt > len(s.cfg.RetrySchedule) {
			d.Done = true
		} else {
			d.Next = time.Now().Add(s.cfg.RetrySchedule[d.Attempt-1])
		}
		s.mu.Unlock()
	}
}

// post sends one signed callback and returns the decoded answer's error.
func (s *Server) post(url string, body []byte, h trade.Headers) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(trade.HeaderTimestamp, h.Timestamp)
	req.Header.Set(trade.HeaderNonce, h.Nonce)
	req.Header.Set(trade.HeaderSignature, h.Signature)
	req.Header.Set("Byte-Logid", fmt.Sprintf("SIM%d", time.Now().UnixNano()))
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var ans struct {
		ErrNo *int `json:"err_no"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &ans) != nil || ans.ErrNo == nil || *ans.ErrNo != 0 {
		return fmt.Errorf("callback refused: http %d %s", resp.StatusCode, raw)
	}
	return nil
}
