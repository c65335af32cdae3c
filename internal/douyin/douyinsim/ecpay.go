package douyinsim

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/douyin"
)

// maxRequestBody bounds a request body.
const maxRequestBody = 1 << 20

// answer is what an endpoint replies: err_no, err_tips and the other
// top-level fields.
type answer struct {
	errNo  int
	tips   string
	fields map[string]any
}

func okAnswer(fields map[string]any) answer { return answer{fields: fields} }

func errAnswer(errNo int, tips string) answer { return answer{errNo: errNo, tips: tips} }

func (a answer) body() []byte {
	m := make(map[string]any, len(a.fields)+2)
	for k, v := range a.fields {
		m[k] = v
	}
	m["err_no"] = a.errNo
	m["err_tips"] = a.tips
	b, _ := json.Marshal(m) // maps of plain values always marshal
	return b
}

// call is one authenticated request.
type call struct {
	api  douyin.API
	app  App
	form *form
	now  time.Time
}

// endpoint handles one API; it returns the answer and the merchant number
// the call was about (for the log).
type endpoint func(s *Server, c *call) (answer, string)

var endpoints = map[douyin.API]endpoint{
	douyin.APICreateOrder:    (*Server).createOrder,
	douyin.APIQueryOrder:     (*Server).queryOrder,
	douyin.APICreateRefund:   (*Server).createRefund,
	douyin.APIQueryRefund:    (*Server).queryRefund,
	douyin.APISettle:         (*Server).settle,
	douyin.APIQuerySettle:    (*Server).querySettle,
	douyin.APIUnsettleAmount: (*Server).unsettleAmount,
}

// injected are the request faults rolled for one call.
type injected struct {
	err1000Before, http500Before bool
	err1000After, http500After   bool
	hang                         time.Duration
}

func (f injected) String() string {
	switch {
	case f.err1000Before:
		return "err1000_no_effect"
	case f.http500Before:
		return "http500"
	case f.err1000After:
		return "err1000_after_effect"
	case f.http500After:
		return "http500_after_effect"
	case f.hang > 0:
		return "hang_after_effect"
	}
	return ""
}

func (s *Server) rollFaults() injected {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	var in injected
	in.err1000Before = s.rollLocked(f.Err1000NoEffect)
	in.http500Before = !in.err1000Before && s.rollLocked(f.HTTP500)
	if in.err1000Before || in.http500Before {
		return in
	}
	in.err1000After = s.rollLocked(f.Err1000AfterEffect)
	in.http500After = !in.err1000After && s.rollLocked(f.HTTP500AfterEffect)
	if s.rollLocked(f.HangAfterEffect) {
		in.hang = f.hang()
	}
	return in
}

// serveAPI answers one ecpay v1 call: authenticate, rate-limit, inject
// faults, act.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	api := douyin.API(r.PathValue("api"))
	ep, ok := endpoints[api]
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		s.reply(w, api, "", "", errAnswer(douyin.ErrNoBadParam, "read request body failed"), "")
		return
	}
	f, err := parseForm(body)
	if err != nil {
		s.reply(w, api, "", "", errAnswer(douyin.ErrNoBadParam, "request body is not a JSON object"), "")
		return
	}
	appID := f.params["app_id"]
	app, ok := s.apps[appID]
	if !ok {
		s.reply(w, api, appID, "", errAnswer(douyin.ErrNoBadAppID, "app_id invalid"), "")
		return
	}
	want := douyin.Sign(f.params, app.Salt)
	if subtle.ConstantTimeCompare([]byte(f.params["sign"]), []byte(want)) != 1 {
		s.reply(w, api, appID, "", errAnswer(douyin.ErrNoBadSignature, "sign check failed"), "")
		return
	}
	if !s.allow(appID, api) {
		s.reply(w, api, appID, "", errAnswer(douyin.ErrNoBusy, "busy"), "")
		return
	}
	in := s.rollFaults()
	switch {
	case in.err1000Before:
		s.reply(w, api, appID, "", errAnswer(douyin.ErrNoInternal, "internal error"), in.String())
		return
	case in.http500Before:
		s.reply500(w, api, appID, "", in.String())
		return
	}
	ans, no := ep(s, &call{api: api, app: app, form: f, now: s.Now()})
	if in.hang > 0 {
		s.mu.Lock()
		s.stats.Hangs++
		s.mu.Unlock()
		s.sleep(r.Context(), in.hang)
	}
	switch {
	case in.err1000After:
		s.reply(w, api, appID, no, errAnswer(douyin.ErrNoInternal, "internal error"), in.String())
	case in.http500After:
		s.reply500(w, api, appID, no, in.String())
	default:
		s.reply(w, api, appID, no, ans, in.String())
	}
}

func (s *Server) reply(w http.ResponseWriter, api douyin.API, app, no string, a answer, fault string) {
	s.mu.Lock()
	s.stats.Requests++
	byErr := s.stats.ByAPI[api]
	if byErr == nil {
		byErr = make(map[int]int64)
		s.stats.ByAPI[api] = byErr
	}
	byErr[a.errNo]++
	s.mu.Unlock()
	s.logCall(api, app, no, a.errNo, fault)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(a.body()) // the client may be gone
}

func (s *Server) reply500(w http.ResponseWriter, api douyin.API, app, no, fault string) {
	s.mu.Lock()
	s.stats.Requests++
	s.stats.HTTP500s++
	s.mu.Unlock()
	s.logCall(api, app, no, -1, fault)
	http.Error(w, "internal server error", http.StatusInternalServerError)
}

func (s *Server) logCall(api douyin.API, app, no string, errNo int, fault string) {
	if !s.log.Logger.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	fields := logrus.Fields{"api": string(api), "app": app, "no": no, "err_no": errNo}
	if fault != "" {
		fields["fault"] = fault
	}
	s.log.WithFields(fields).Debug("ecpay call")
}

// rejectLocked stores a definite error as the first answer for a number, so
// every later request with it fails too. s.mu must be held.
func (s *Server) rejectLocked(k kind, key numKey, tips string) answer {
	s.failed[failKey{k, key}] = tips
	return errAnswer(douyin.ErrNoBadParam, tips)
}

// alreadyFailed is the answer to a number whose first request failed.
func alreadyFailed(field, tips string) answer {
	t := field + " already failed"
	if tips != "" {
		t += ": " + tips
	}
	return errAnswer(douyin.ErrNoBadParam, t)
}

func (s *Server) createOrder(c *call) (answer, string) {
	f := c.form
	no := f.no("out_order_no")
	if f.err != nil {
		return errAnswer(douyin.ErrNoBadParam, f.err.Error()), no
	}
	total := f.integer("total_amount", true, 1, maxTotalAmount)
	f.str("subject", true, 128, 0)
	f.str("body", true, 128, 0)
	valid := f.integer("valid_time", true, 300, 172800)
	cpExtra := f.str("cp_extra", false, 2048, 0)
	notify := f.notifyURL()
	f.integer("disable_msg", false, 0, 1)
	f.str("msg_page", false, 512, 0)
	f.str("limit_pay_way", false, 64, 0)

	key := numKey{c.app.AppID, no}
	s.lock(c.now)
	defer s.mu.Unlock()
	if o := s.orders[key]; o != nil {
		return orderCreated(o), no
	}
	if tips, ok := s.failed[failKey{kindOrder, key}]; ok {
		return alreadyFailed("out_order_no", tips), no
	}
	if f.err != nil {
		return s.rejectLocked(kindOrder, key, f.err.Error()), no
	}
	o := &order{
		app:        c.app.AppID,
		outOrderNo: no,
		total:      total,
		status:     douyin.StatusProcessing,
		createdAt:  c.now,
		validUntil: c.now.Add(time.Duration(valid) * time.Second),
		cpExtra:    cpExtra,
		notifyURL:  notify,
	}
	o.orderID = s.nextIDLocked("N")
	o.token = s.tokenLocked()
	s.addOrderLocked(o)
	return orderCreated(o), no
}

func orderCreated(o *order) answer {
	return okAnswer(map[string]any{"data": douyin.CreateOrderResponse{OrderID: o.orderID, OrderToken: o.token}})
}

func (s *Server) queryOrder(c *call) (answer, string) {
	f := c.form
	no := f.no("out_order_no")
	if f.err != nil {
		return errAnswer(douyin.ErrNoBadParam, f.err.Error()), no
	}
	s.lock(c.now)
	defer s.mu.Unlock()
	o := s.orders[numKey{c.app.AppID, no}]
	if o == nil {
		return errAnswer(douyin.ErrNoOrderNotFound, "order not found"), no
	}
	o.refresh(c.now)
	info := douyin.PaymentInfo{
		TotalFee:    o.total,
		OrderStatus: o.status,
		CPExtra:     o.cpExtra,
		SellerUID:   "seller-" + o.app,
	}
	if o.status == douyin.StatusSuccess {
		info.PayTime = douyin.FormatPayTime(o.paidAt)
		info.Way = "1"
		info.ChannelNo = "ch" + o.orderID
		info.ChannelGatewayNo = "gw" + o.orderID
	}
	resp := douyin.QueryOrderResponse{OutOrderNo: o.outOrderNo, OrderID: o.orderID, PaymentInfo: info}
	if o.cpsKnown(c.now) {
		resp.CPSInfo = `{"share_amount":"` + strconv.FormatInt(o.cpsShare, 10) + `"}`
	}
	return okAnswer(map[string]any{
		"out_order_no": resp.OutOrderNo,
		"order_id":     resp.OrderID,
		"payment_info": resp.PaymentInfo,
		"cps_info":     resp.CPSInfo,
	}), no
}

func (s *Server) createRefund(c *call) (answer, string) {
	f := c.form
	no := f.no("out_refund_no")
	if f.err != nil {
		return errAnswer(douyin.ErrNoBadParam, f.err.Error()), no
	}
	orderNo := f.no("out_order_no")
	f.str("reason", true, 0, 100)
	amount := f.integer("refund_amount", true, 1, math.MaxInt64)
	cpExtra := f.str("cp_extra", false, 2048, 0)
	notify := f.notifyURL()
	f.integer("disable_msg", false, 0, 1)
	f.str("msg_page", false, 512, 0)
	allSettle := f.integer("all_settle", false, 0, 1) == 1

	key := numKey{c.app.AppID, no}
	s.lock(c.now)
	defer s.mu.Unlock()
	if r := s.refunds[key]; r != nil {
		if r.status == douyin.StatusFail {
			return alreadyFailed("out_refund_no", r.msg), no
		}
		return okAnswer(map[string]any{"refund_no": r.refundNo}), no
	}
	if tips, ok := s.failed[failKey{kindRefund, key}]; ok {
		return alreadyFailed("out_refund_no", tips), no
	}
	if f.err != nil {
		return s.rejectLocked(kindRefund, key, f.err.Error()), no
	}
	o := s.orders[numKey{c.app.AppID, orderNo}]
	if o == nil {
		return s.rejectLocked(kindRefund, key, "out_order_no not found"), no
	}
	o.refresh(c.now)
	settled := o.settlementIn(douyin.StatusSuccess) != nil
	switch {
	case o.status != douyin.StatusSuccess:
		return s.rejectLocked(kindRefund, key, "order status "+o.status+": only SUCCESS orders can be refunded"), no
	case c.now.After(o.paidAt.Add(refundWindow)):
		return s.rejectLocked(kindRefund, key, "refund period of one year has passed"), no
	case len(o.refunds) >= maxRefundsPerOrder:
		return s.rejectLocked(kindRefund, key, "at most 50 refunds per order"), no
	case o.settlementIn(douyin.StatusProcessing) != nil:
		return s.rejectLocked(kindRefund, key, "order settlement in progress"), no
	case settled && !allSettle:
		return s.rejectLocked(kindRefund, key, "order settled, all_settle required"), no
	case !settled && allSettle:
		return s.rejectLocked(kindRefund, key, "order not settled, all_settle not allowed"), no
	case amount > o.refundable():
		return s.rejectLocked(kindRefund, key, "refund_amount "+strconv.FormatInt(amount, 10)+
			" exceeds the refundable "+strconv.FormatInt(o.refundable(), 10)), no
	}
	r := &refund{
		order:       o,
		outRefundNo: no,
		amount:      amount,
		cpExtra:     cpExtra,
		notifyURL:   notify,
		allSettle:   allSettle,
		channelFail: s.rollLocked(s.faults.RefundChannelFail),
		status:      douyin.StatusProcessing,
		acceptedAt:  c.now,
	}
	r.refundNo = s.nextIDLocked("R")
	o.refunds = append(o.refunds, r)
	s.refunds[key] = r
	s.scheduleLocked(c.now, r, nil)
	return okAnswer(map[string]any{"refund_no": r.refundNo}), no
}

func (s *Server) queryRefund(c *call) (answer, string) {
	f := c.form
	no := f.no("out_refund_no")
	if f.err != nil {
		return errAnswer(douyin.ErrNoBadParam, f.err.Error()), no
	}
	s.lock(c.now)
	defer s.mu.Unlock()
	r := s.refunds[numKey{c.app.AppID, no}]
	if r == nil {
		return errAnswer(douyin.ErrNoRefundNotFound, "refund not found"), no
	}
	info := douyin.RefundInfo{
		RefundNo:     r.refundNo,
		RefundAmount: r.amount,
		RefundStatus: r.status,
		IsAllSettled: r.allSettle,
		CPExtra:      r.cpExtra,
		Msg:          r.msg,
	}
	if r.status == douyin.StatusSuccess {
		info.RefundedAt = douyin.FlexInt(r.finishedAt.Unix())
	}
	return okAnswer(map[string]any{"refundInfo": info}), no
}

func (s *Server) settle(c *call) (answer, string) {
	f := c.form
	no := f.no("out_settle_no")
	if f.err != nil {
		return errAnswer(douyin.ErrNoBadParam, f.err.Error()), no
	}
	orderNo := f.no("out_order_no")
	f.str("settle_desc", true, 0, 80)
	receivers, err := parseReceivers(f.str("settle_params", false, 0, 0))
	if err != nil {
		f.fail("%v", err)
	}
	cpExtra := f.str("cp_extra", false, 2048, 0)
	notify := f.notifyURL()
	f.integer("finish", false, 0, 1)

	key := numKey{c.app.AppID, no}
	s.lock(c.now)
	defer s.mu.Unlock()
	if st := s.settlements[key]; st != nil {
		if st.status == douyin.StatusFail {
			return alreadyFailed("out_settle_no", st.msg), no
		}
		return okAnswer(map[string]any{"settle_no": st.settleNo}), no
	}
	if tips, ok := s.failed[failKey{kindSettle, key}]; ok {
		return alreadyFailed("out_settle_no", tips), no
	}
	if f.err != nil {
		return s.rejectLocked(kindSettle, key, f.err.Error()), no
	}
	o := s.orders[numKey{c.app.AppID, orderNo}]
	if o == nil {
		return s.rejectLocked(kindSettle, key, "out_order_no not found"), no
	}
	o.refresh(c.now)
	st := &settlement{
		order:       o,
		outSettleNo: no,
		receivers:   receivers,
		commission:  o.cpsShare,
		cpExtra:     cpExtra,
		notifyURL:   notify,
		status:      douyin.StatusProcessing,
		acceptedAt:  c.now,
	}
	switch {
	case len(o.settlements) >= maxSettlesPerOrder:
		return s.rejectLocked(kindSettle, key, "at most 50 settle requests per order"), no
	case o.settlementIn(douyin.StatusProcessing) != nil:
		return s.rejectLocked(kindSettle, key, "previous settlement of the order not finished"), no
	case o.settlementIn(douyin.StatusSuccess) != nil:
		return s.rejectLocked(kindSettle, key, "order already settled"), no
	case st.receiversTotal()*10 > o.total*3:
		return s.rejectLocked(kindSettle, key, "settle_params: receivers take more than 30% of the order"), no
	}
	s.judgeSettlementLocked(st, c.now)
	st.settleNo = s.nextIDLocked("S")
	o.settlements = append(o.settlements, st)
	s.settlements[key] = st
	s.scheduleLocked(c.now, nil, st)
	return okAnswer(map[string]any{"settle_no": st.settleNo}), no
}

// judgeSettlementLocked sets what an accepted settlement of st.order will
// move (what is left after refunds that succeeded or may still succeed, and
// after the CPS share) and, when Douyin will FAIL it, why.
func (s *Server) judgeSettlementLocked(st *settlement, now time.Time) {
	o := st.order
	st.amount = o.total - o.cpsShare
	for _, r := range o.refunds {
		if r.status != douyin.StatusFail {
			st.amount -= r.amount
		}
	}
	switch {
	case o.status != douyin.StatusSuccess:
		st.failMsg = "order status " + o.status + ": only SUCCESS orders can be settled"
	case now.Before(o.paidAt.Add(s.apps[o.app].SettlePeriod)):
		st.failMsg = "settle period not reached: settleable from " + o.paidAt.Add(s.apps[o.app].SettlePeriod).UTC().Format(time.RFC3339)
	case st.amount <= 0:
		st.failMsg = "nothing left to settle"
	case st.receiversTotal() > st.amount:
		st.failMsg = "settle_params: receivers take more than the settleable amount"
	}
	if st.failMsg != "" {
		st.amount = max(st.amount, 0)
	}
}

func (s *Server) querySettle(c *call) (answer, string) {
	f := c.form
	no := f.no("out_settle_no")
	if f.err != nil {
		return errAnswer(douyin.ErrNoBadParam, f.err.Error()), no
	}
	s.lock(c.now)
	defer s.mu.Unlock()
	st := s.settlements[numKey{c.app.AppID, no}]
	if st == nil {
		return errAnswer(douyin.ErrNoOrderNotFound, "settle not found"), no
	}
	info := douyin.SettleInfo{
		SettleNo:     st.settleNo,
		SettleAmount: st.amount,
		SettleStatus: st.status,
		Commission:   st.commission,
		SettleDetail: st.detail(),
		CPExtra:      st.cpExtra,
		Msg:          st.msg,
	}
	if st.status == douyin.StatusSuccess {
		info.SettledAt = douyin.FlexInt(st.finishedAt.Unix())
	}
	return okAnswer(map[string]any{"settle_info": info}), no
}

func (s *Server) unsettleAmount(c *call) (answer, string) {
	f := c.form
	no := f.no("out_order_no")
	if f.err != nil {
		return errAnswer(douyin.ErrNoBadParam, f.err.Error()), no
	}
	s.lock(c.now)
	defer s.mu.Unlock()
	o := s.orders[numKey{c.app.AppID, no}]
	if o == nil {
		return errAnswer(douyin.ErrNoOrderNotFound, "order not found"), no
	}
	o.refresh(c.now)
	var left int64
	if o.status == douyin.StatusSuccess && o.settlementIn(douyin.StatusSuccess) == nil {
		left = max(o.refundable()-o.cpsShare, 0)
	}
	return okAnswer(map[string]any{"unsettle_amount": left}), no
}
