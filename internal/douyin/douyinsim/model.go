package douyinsim

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// Limits of the real service the simulator enforces.
const (
	maxRefundsPerOrder = 50
	maxSettlesPerOrder = 50
	maxReceivers       = 4
	refundWindow       = 365 * 24 * time.Hour
)

// kind separates the three merchant-number spaces.
type kind int

const (
	kindOrder kind = iota
	kindRefund
	kindSettle
)

// numKey is a merchant number in its app: Douyin de-duplicates per app.
type numKey struct {
	app string
	no  string
}

// failKey is a merchant number whose first request got a definite error.
type failKey struct {
	kind kind
	numKey
}

// order is one Douyin order.
type order struct {
	app        string
	outOrderNo string
	orderID    string
	token      string
	total      int64
	status     string
	createdAt  time.Time
	validUntil time.Time // zero: never times out
	paidAt     time.Time
	cpsShare   int64
	cpsDelay   time.Duration
	cpExtra    string
	notifyURL  string

	refunds     []*refund
	settlements []*settlement
}

// refresh times out an unpaid order whose valid_time has passed.
func (o *order) refresh(now time.Time) {
	if o.status == douyin.StatusProcessing && !o.validUntil.IsZero() && !now.Before(o.validUntil) {
		o.status = douyin.StatusTimeout
	}
}

// refundable is what may still be refunded: the total less every refund
// that has not failed.
func (o *order) refundable() int64 {
	left := o.total
	for _, r := range o.refunds {
		if r.status != douyin.StatusFail {
			left -= r.amount
		}
	}
	return left
}

// settlementIn returns the order's settlement in status, if any.
func (o *order) settlementIn(status string) *settlement {
	for _, st := range o.settlements {
		if st.status == status {
			return st
		}
	}
	return nil
}

// cpsKnown reports whether query_order shows cps_info yet.
func (o *order) cpsKnown(now time.Time) bool {
	return o.status == douyin.StatusSuccess && o.cpsShare > 0 && !now.Before(o.paidAt.Add(o.cpsDelay))
}

// refund is one accepted create_refund.
type refund struct {
	order       *order
	outRefundNo string
	refundNo    string
	amount      int64
	cpExtra     string
	notifyURL   string
	allSettle   bool
	channelFail bool // decided at acceptance by the RefundChannelFail fault
	status      string
	acceptedAt  time.Time
	finishedAt  time.Time
	msg         string
	executions  int
}

// settlement is one accepted settle.
type settlement struct {
	order       *order
	outSettleNo string
	settleNo    string
	amount      int64 // everything settled: the merchant's share and the receivers'
	receivers   []douyin.Receiver
	commission  int64
	cpExtra     string
	notifyURL   string
	failMsg     string // the reason it will FAIL, decided at acceptance
	status      string
	acceptedAt  time.Time
	finishedAt  time.Time
	msg         string
	executions  int
}

// receiversTotal sums the third-party receivers' shares.
func (st *settlement) receiversTotal() int64 {
	var sum int64
	for _, r := range st.receivers {
		sum += r.Amount
	}
	return sum
}

// detail renders settle_detail: who got what.
func (st *settlement) detail() string {
	parts := make([]douyin.Receiver, 0, len(st.receivers)+1)
	parts = append(parts, douyin.Receiver{MerchantUID: "merchant", Amount: st.amount - st.receiversTotal()})
	parts = append(parts, st.receivers...)
	b, _ := json.Marshal(parts) // plain structs always marshal
	return string(b)
}

// job is a refund or settlement waiting for its PROCESSING delay to pass.
type job struct {
	due time.Time
	seq int64
	r   *refund
	st  *settlement
}

// jobHeap orders jobs by due time, then by acceptance.
type jobHeap []*job

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h jobHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)   { *h = append(*h, x.(*job)) }
func (h *jobHeap) Pop() any {
	old := *h
	n := len(old)
	j := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return j
}

// processDueLocked finishes every refund and settlement whose processing
// delay has passed by now, in the order they fell due. s.mu must be held.
func (s *Server) processDueLocked(now time.Time) {
	for len(s.jobs) > 0 && !s.jobs[0].due.After(now) {
		j := heap.Pop(&s.jobs).(*job)
		if j.r != nil {
			s.finishRefundLocked(j.r, j.due)
		} else {
			s.finishSettlementLocked(j.st, j.due)
		}
	}
}

func (s *Server) scheduleLocked(at time.Time, r *refund, st *settlement) {
	s.seq++
	heap.Push(&s.jobs, &job{due: at.Add(s.cfg.ProcessingDelay), seq: s.seq, r: r, st: st})
}

// finishRefundLocked moves a PROCESSING refund to SUCCESS or FAIL at time at.
func (s *Server) finishRefundLocked(r *refund, at time.Time) {
	app := r.order.app
	switch {
	case r.channelFail:
		r.status, r.msg = douyin.StatusFail, "channel failure"
	case r.allSettle && s.balance[app] < r.amount:
		r.status, r.msg = douyin.StatusFail, "insufficient withdrawable balance"
	default:
		if r.allSettle {
			s.balance[app] -= r.amount
		}
		r.status = douyin.StatusSuccess
		r.executions++
	}
	r.finishedAt = at
	s.notifyRefundLocked(r, at)
}

// finishSettlementLocked moves a PROCESSING settlement to SUCCESS or FAIL.
func (s *Server) finishSettlementLocked(st *settlement, at time.Time) {
	if st.failMsg != "" {
		st.status, st.msg = douyin.StatusFail, st.failMsg
	} else {
		st.status = douyin.StatusSuccess
		st.executions++
		s.balance[st.order.app] += st.amount - st.receiversTotal()
	}
	st.finishedAt = at
	s.notifySettleLocked(st, at)
}

// nextID returns a new Douyin-side number with the given prefix.
func (s *Server) nextIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%d", prefix, 7000000000000000000+s.seq)
}

// SeedOrder is an order placed by a buyer before the test starts, as POST
// /_sim/orders takes it.
type SeedOrder struct {
	// AppID may be left out when exactly one app is configured.
	AppID      string `json:"app_id"`
	OutOrderNo string `json:"out_order_no"`
	// TotalAmount is the order's amount in fen.
	TotalAmount int64 `json:"total_amount"`
	// Status is SUCCESS (the default), PROCESSING, FAIL or TIMEOUT.
	Status string `json:"status"`
	// PaidAt is when a SUCCESS order was paid; the simulated now when zero.
	// JSON: RFC 3339.
	PaidAt time.Time `json:"paid_at"`
	// CPSShare is the fen an influencer (CPS) takes at settlement.
	CPSShare int64 `json:"cps_share"`
	// CPSDelay is how long after payment cps_info appears in query_order.
	// JSON: a Go duration string ("10m").
	CPSDelay time.Duration `json:"cps_delay"`
}

// seedOrderJSON is SeedOrder on the wire.
type seedOrderJSON struct {
	AppID       string     `json:"app_id,omitempty"`
	OutOrderNo  string     `json:"out_order_no"`
	TotalAmount int64      `json:"total_amount"`
	Status      string     `json:"status,omitempty"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
	CPSShare    int64      `json:"cps_share,omitempty"`
	CPSDelay    string     `json:"cps_delay,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (o SeedOrder) MarshalJSON() ([]byte, error) {
	j := seedOrderJSON{AppID: o.AppID, OutOrderNo: o.OutOrderNo, TotalAmount: o.TotalAmount,
		Status: o.Status, CPSShare: o.CPSShare}
	if !o.PaidAt.IsZero() {
		j.PaidAt = &o.PaidAt
	}
	if o.CPSDelay != 0 {
		j.CPSDelay = o.CPSDelay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler. Unknown keys are an error.
func (o *SeedOrder) UnmarshalJSON(b []byte) error {
	var j seedOrderJSON
	if err := strictJSON(b, &j); err != nil {
		return fmt.Errorf("decode order: %w", err)
	}
	d, err := parseDuration("cps_delay", j.CPSDelay)
	if err != nil {
		return err
	}
	*o = SeedOrder{AppID: j.AppID, OutOrderNo: j.OutOrderNo, TotalAmount: j.TotalAmount,
		Status: j.Status, CPSShare: j.CPSShare, CPSDelay: d}
	if j.PaidAt != nil {
		o.PaidAt = *j.PaidAt
	}
	return nil
}

// SeedOrder places an order as if a buyer had created (and, unless its
// status says otherwise, paid) it. A SUCCESS order gets a payment callback.
func (s *Server) SeedOrder(o SeedOrder) error {
	return s.SeedOrders([]SeedOrder{o})
}

// SeedOrders places several orders at once: all of them, or none when one
// is invalid.
func (s *Server) SeedOrders(orders []SeedOrder) error {
	now := s.Now()
	s.lock(now)
	defer s.mu.Unlock()
	batch := make(map[numKey]bool, len(orders))
	for i := range orders {
		o := &orders[i]
		app, err := s.appFor(o.AppID)
		if err != nil {
			return fmt.Errorf("seed order %d (%s): %w", i, o.OutOrderNo, err)
		}
		o.AppID = app.AppID
		if o.Status == "" {
			o.Status = douyin.StatusSuccess
		}
		key := numKey{app.AppID, o.OutOrderNo}
		if err := s.checkSeedLocked(*o, key, batch); err != nil {
			return fmt.Errorf("seed order %d (%s): %w", i, o.OutOrderNo, err)
		}
		batch[key] = true
	}
	for _, in := range orders {
		o := &order{
			app:        in.AppID,
			outOrderNo: in.OutOrderNo,
			total:      in.TotalAmount,
			status:     in.Status,
			createdAt:  now,
			cpsShare:   in.CPSShare,
			cpsDelay:   in.CPSDelay,
		}
		o.orderID = s.nextIDLocked("N")
		o.token = s.tokenLocked()
		if o.status == douyin.StatusSuccess {
			o.paidAt = in.PaidAt
			if o.paidAt.IsZero() {
				o.paidAt = now
			}
		}
		s.addOrderLocked(o)
		if o.status == douyin.StatusSuccess {
			s.notifyPaymentLocked(o, now)
		}
	}
	return nil
}

func (s *Server) checkSeedLocked(o SeedOrder, key numKey, batch map[numKey]bool) error {
	switch {
	case !validNo(o.OutOrderNo):
		return errors.New("out_order_no: want 1 to 64 characters of [0-9A-Za-z_-*]")
	case s.orders[key] != nil || batch[key]:
		return errors.New("out_order_no: already exists")
	case o.TotalAmount < 1 || o.TotalAmount > maxTotalAmount:
		return fmt.Errorf("total_amount: %d not in 1..%d", o.TotalAmount, int64(maxTotalAmount))
	case o.CPSShare < 0 || o.CPSShare > o.TotalAmount:
		return fmt.Errorf("cps_share: %d not in 0..total_amount", o.CPSShare)
	case o.CPSDelay < 0:
		return errors.New("cps_delay: negative")
	}
	switch o.Status {
	case douyin.StatusSuccess:
	case douyin.StatusProcessing, douyin.StatusFail, douyin.StatusTimeout:
		if !o.PaidAt.IsZero() {
			return fmt.Errorf("paid_at: set on a %s order", o.Status)
		}
	default:
		return fmt.Errorf("status: %q is not SUCCESS, PROCESSING, FAIL or TIMEOUT", o.Status)
	}
	return nil
}

func (s *Server) addOrderLocked(o *order) {
	s.orders[numKey{o.app, o.outOrderNo}] = o
	s.orderList = append(s.orderList, o)
}

func (s *Server) tokenLocked() string {
	return fmt.Sprintf("CgwIARDiDRiy%016x", s.rng.Uint64())
}

// Pay completes the buyer's payment of a PROCESSING order (one created by
// create_order or seeded as PROCESSING): it becomes SUCCESS, paid now, and a
// payment callback is sent. appID may be "" when exactly one app is
// configured.
func (s *Server) Pay(appID, outOrderNo string) error {
	now := s.Now()
	s.lock(now)
	defer s.mu.Unlock()
	app, err := s.appFor(appID)
	if err != nil {
		return fmt.Errorf("pay order %s: %w", outOrderNo, err)
	}
	o := s.orders[numKey{app.AppID, outOrderNo}]
	if o == nil {
		return fmt.Errorf("pay order %s: %w", outOrderNo, ErrNotFound)
	}
	o.refresh(now)
	if o.status != douyin.StatusProcessing {
		return fmt.Errorf("pay order %s: status %s, want PROCESSING", outOrderNo, o.status)
	}
	o.status = douyin.StatusSuccess
	o.paidAt = now
	s.notifyPaymentLocked(o, now)
	return nil
}

// ErrNotFound is returned by Pay for an order the simulator does not know.
var ErrNotFound = errors.New("order not found")

// appFor resolves an app id given to the control API; "" means the only app.
func (s *Server) appFor(appID string) (App, error) {
	if appID == "" {
		if len(s.cfg.Apps) == 1 {
			return s.cfg.Apps[0], nil
		}
		return App{}, errors.New("app_id: required when several apps are configured")
	}
	a, ok := s.apps[appID]
	if !ok {
		return App{}, fmt.Errorf("app_id: unknown app %s", appID)
	}
	return a, nil
}
