package douyinsim

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/douyin"
)

// RetrySchedule is Douyin's callback retry schedule: the waits after the
// first attempt and after each retry that was not acknowledged. After the
// last one the callback is given up. Config.CallbackScale multiplies it.
var RetrySchedule = []time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
	3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// retryWait is how long to wait after the attempt-th failed attempt (1
// based); ok is false when the callback is given up.
func retryWait(attempt int, scale float64) (wait time.Duration, ok bool) {
	if attempt < 1 || attempt > len(RetrySchedule) {
		return 0, false
	}
	return time.Duration(float64(RetrySchedule[attempt-1]) * scale), true
}

func (s *Server) notifyPaymentLocked(o *order, now time.Time) {
	s.enqueueCallbackLocked(douyin.CallbackPayment, o.app, o.outOrderNo, o.notifyURL, now, douyin.PaymentMsg{
		AppID:          o.app,
		CPOrderNo:      o.outOrderNo,
		CPExtra:        o.cpExtra,
		Way:            "1",
		ChannelNo:      "ch" + o.orderID,
		PaymentOrderNo: "P" + o.orderID,
		TotalAmount:    o.total,
		Status:         douyin.StatusSuccess,
		SellerUID:      "seller-" + o.app,
		PaidAt:         douyin.FlexInt(o.paidAt.Unix()),
		OrderID:        o.orderID,
	})
}

func (s *Server) notifyRefundLocked(r *refund, now time.Time) {
	msg := douyin.RefundMsg{
		AppID:        r.order.app,
		CPRefundNo:   r.outRefundNo,
		CPExtra:      r.cpExtra,
		Status:       r.status,
		RefundAmount: r.amount,
		IsAllSettled: r.allSettle,
		Message:      r.msg,
		OrderID:      r.order.orderID,
		RefundNo:     r.refundNo,
	}
	if r.status == douyin.StatusSuccess {
		msg.RefundedAt = douyin.FlexInt(r.finishedAt.Unix())
	}
	s.enqueueCallbackLocked(douyin.CallbackRefund, r.order.app, r.outRefundNo, r.notifyURL, now, msg)
}

func (s *Server) notifySettleLocked(st *settlement, now time.Time) {
	msg := douyin.SettleMsg{
		AppID:        st.order.app,
		CPSettleNo:   st.outSettleNo,
		CPExtra:      st.cpExtra,
		Status:       st.status,
		Commission:   st.commission,
		SettleDetail: st.detail(),
		Message:      st.msg,
		OrderID:      st.order.orderID,
		SettleAmount: st.amount,
		SettleNo:     st.settleNo,
		OutOrderNo:   st.order.outOrderNo,
	}
	if st.status == douyin.StatusSuccess {
		msg.SettledAt = douyin.FlexInt(st.finishedAt.Unix())
	}
	s.enqueueCallbackLocked(douyin.CallbackSettle, st.order.app, st.outSettleNo, st.notifyURL, now, msg)
}

// delivery is one callback on its way, retried until acknowledged.
type delivery struct {
	typ     douyin.CallbackType
	app     string
	no      string // the merchant number it is about, for logs
	url     string
	body    []byte
	attempt int       // attempts made so far
	next    time.Time // wall time of the next attempt
	seq     int64
}

// deliveryHeap orders deliveries by their next attempt.
type deliveryHeap []*delivery

func (h deliveryHeap) Len() int { return len(h) }
func (h deliveryHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].seq < h[j].seq
}
func (h deliveryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deliveryHeap) Push(x any)   { *h = append(*h, x.(*delivery)) }
func (h *deliveryHeap) Pop() any {
	old := *h
	n := len(old)
	d := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return d
}

// enqueueCallbackLocked signs a callback and queues it for the request's
// notify URL, else the configured one, applying the callback faults.
func (s *Server) enqueueCallbackLocked(typ douyin.CallbackType, appID, no, notifyURL string, now time.Time, msg any) {
	target := notifyURL
	if target == "" {
		target = s.cfg.NotifyURL
	}
	if target == "" {
		return
	}
	if s.rollLocked(s.faults.CallbackDrop) {
		s.stats.CallbacksDropped++
		return
	}
	nonce := strconv.FormatUint(s.rng.Uint64(), 36)
	body, err := douyin.EncodeCallback(typ, msg, s.apps[appID].Token, strconv.FormatInt(now.Unix(), 10), nonce)
	if err != nil { // the msg types are plain structs: this cannot happen
		s.log.WithError(err).WithField("no", no).Error("encode callback")
		return
	}
	first := s.wall()
	if s.rollLocked(s.faults.CallbackDelay) {
		dmax := s.faults.callbackDelayMax()
		first = first.Add(dmax/2 + time.Duration(s.rng.Int64N(int64(dmax/2)+1)))
		s.stats.CallbacksDelayed++
	}
	copies := 1
	if s.rollLocked(s.faults.CallbackDuplicate) {
		copies = 2
		s.stats.CallbacksDuplicated++
	}
	for i := range copies {
		s.seq++
		heap.Push(&s.deliveries, &delivery{typ: typ, app: appID, no: no, url: target, body: body,
			next: first.Add(time.Duration(i) * time.Millisecond), seq: s.seq})
	}
}

// dueDeliveriesLocked pops the deliveries due by wall time now, as many of
// each app's as it has free sending slots (maxInFlightCallbacks); the
// others stay queued, in order.
func (s *Server) dueDeliveriesLocked(now time.Time) []*delivery {
	var due, held []*delivery
	for len(s.deliveries) > 0 && !s.deliveries[0].next.After(now) {
		d := heap.Pop(&s.deliveries).(*delivery)
		if s.appInFlight[d.app] >= maxInFlightCallbacks {
			held = append(held, d)
			continue
		}
		due = append(due, d)
		s.inFlight++
		s.appInFlight[d.app]++
	}
	for _, d := range held {
		heap.Push(&s.deliveries, d)
	}
	return due
}

// deliver makes one attempt and reschedules the delivery unless it was
// acknowledged or has used up the retry schedule.
func (s *Server) deliver(d *delivery) {
	defer s.wg.Done()
	acked, why := s.post(d)
	outcome := s.settleDelivery(d, acked)
	if !s.log.Logger.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	entry := s.log.WithFields(logrus.Fields{"callback": string(d.typ), "no": d.no, "attempt": d.attempt})
	switch outcome {
	case "acknowledged":
		entry.Debug("callback acknowledged")
	case "given up":
		entry.WithField("reason", why).Warn("callback given up")
	case "retry":
		entry.WithField("reason", why).Info("callback not acknowledged, will retry")
	}
}

// settleDelivery counts an attempt and queues the next one when the
// callback was not acknowledged and has retries left.
func (s *Server) settleDelivery(d *delivery, acked bool) (outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if s.appInFlight[d.app]--; s.appInFlight[d.app] == 0 {
		delete(s.appInFlight, d.app)
	}
	d.attempt++
	s.stats.CallbacksSent++
	switch wait, ok := retryWait(d.attempt, s.cfg.CallbackScale); {
	case acked:
		s.stats.CallbacksAcked++
		return "acknowledged"
	case s.ctx.Err() != nil:
		return "closing"
	case !ok:
		s.stats.CallbacksGivenUp++
		return "given up"
	default:
		d.next = s.wall().Add(wait)
		heap.Push(&s.deliveries, d)
		return "retry"
	}
}

// post sends one attempt; acked is true for HTTP 200 with err_no 0.
func (s *Server) post(d *delivery) (acked bool, why string) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, "post: " + redactURLError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return false, "read answer: " + err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return false, "http " + strconv.Itoa(resp.StatusCode)
	}
	var ack struct {
		ErrNo *int `json:"err_no"`
	}
	if err := json.Unmarshal(raw, &ack); err != nil || ack.ErrNo == nil {
		return false, "answer is not {\"err_no\":0,...}"
	}
	if *ack.ErrNo != 0 {
		return false, "err_no " + strconv.Itoa(*ack.ErrNo)
	}
	return true, ""
}

// redactURLError drops the URL (which may carry a query secret) from a
// client error.
func redactURLError(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// checkCallbackURL accepts an absolute http or https URL.
func checkCallbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an absolute http or https URL", raw)
	}
	return nil
}

// sleep waits d, or less when ctx or the simulator is done.
func (s *Server) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}
