package tradesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/payd/payd/internal/douyin/trade"
)

// PreCreateAttempts is how many times a user refund's pre_create_refund is
// posted before the refund is left stuck (the real service keeps retrying).
const PreCreateAttempts = 3

// UserRefund asks for a refund as a user would (source 1; 3, 4, 5 for
// expiry, customer service, booking).
type UserRefund struct {
	AppID     string             `json:"app_id"`
	OrderID   string             `json:"order_id"`
	Amount    int64              `json:"amount"`
	Items     []trade.ItemAmount `json:"items"` // the whole order's items when empty
	NeedAudit bool               `json:"need_audit"`
	Source    int                `json:"source"`
}

// UserRefundResult is what became of it.
type UserRefundResult struct {
	RefundID    string `json:"refund_id"`
	Accepted    bool   `json:"accepted"`
	OutRefundNo string `json:"out_refund_no,omitempty"`
	// Refusal is the app's err_no/err_tips when it refused; Stuck is set
	// when no attempt got a valid answer.
	ErrNo   int    `json:"err_no,omitempty"`
	ErrTips string `json:"err_tips,omitempty"`
	Stuck   bool   `json:"stuck,omitempty"`
}

// StartUserRefund posts pre_create_refund to the app's PreRefundURL and
// creates the refund only on a valid synchronous answer naming
// out_refund_no; each retry carries the same refund_id.
func (s *Server) StartUserRefund(u UserRefund) (UserRefundResult, error) {
	s.mu.Lock()
	r, url, err := s.pendingUserRefundLocked(u)
	var body []byte
	var h trade.Headers
	if err == nil {
		body, h, err = trade.EncodeCallback(s.cfg.PlatformKey, trade.CallbackPreCreateRefund, s.preCreateMsgLocked(r), strconv.FormatInt(s.nowLocked().Unix(), 10), s.nextIDLocked("n"))
	}
	s.mu.Unlock()
	if err != nil {
		return UserRefundResult{}, err
	}
	res := UserRefundResult{RefundID: r.ID, Stuck: true}
	for i := 0; i < PreCreateAttempts && res.Stuck; i++ {
		res = s.askApp(url, body, h, r.ID)
	}
	if !res.Accepted {
		return res, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.OutRefundNo = res.OutRefundNo
	o := s.orders[r.OrderID]
	o.Refunds = append(o.Refunds, r)
	s.addRefundLocked(r)
	return res, nil
}

func (s *Server) pendingUserRefundLocked(u UserRefund) (*refund, string, error) {
	a, o := s.apps[u.AppID], s.orders[u.OrderID]
	switch {
	case a == nil || a.PreRefundURL == "":
		return nil, "", fmt.Errorf("app %q: unknown or without pre_refund_url", u.AppID)
	case o == nil || o.AppID != u.AppID || o.PayStatus != trade.PaySuccess:
		return nil, "", fmt.Errorf("order %q: not a paid order of the app", u.OrderID)
	}
	items := u.Items
	if len(items) == 0 {
		left := u.Amount
		for _, it := range o.Items {
			if take := min(left, it.Amount-o.refundedItem(it.ID)); take > 0 {
				items = append(items, trade.ItemAmount{ItemOrderID: it.ID, RefundAmount: take})
				left -= take
			}
		}
		if left > 0 {
			return nil, "", fmt.Errorf("amount %d: more than is left", u.Amount)
		}
	}
	now := s.nowLocked()
	src := u.Source
	if src == 0 {
		src = 1
	}
	r := &refund{ID: s.nextIDLocked("motb"), OrderID: o.OrderID, AppID: a.AppID, Amount: u.Amount, Items: items, Status: trade.RefundProcessing,
		Source: src, NeedAudit: u.NeedAudit, CreatedAt: now, StartedAt: now}
	if u.NeedAudit {
		r.AuditStatus, r.AuditDeadline = trade.AuditToAudit, now.Add(DefaultAuditWindow)
	}
	return r, a.PreRefundURL, nil
}

func (s *Server) preCreateMsgLocked(r *refund) map[string]any {
	need := 2
	if r.NeedAudit {
		need = 1
	}
	o := s.orders[r.OrderID]
	return map[string]any{"app_id": r.AppID, "open_id": "_000sim-open-id", "refund_id": r.ID, "order_id": r.OrderID, "out_order_no": o.OutOrderNo,
		"refund_total_amount": r.Amount, "need_refund_audit": need, "refund_audit_deadline": r.AuditDeadline.UnixMilli(),
		"create_refund_time": r.CreatedAt.UnixMilli(), "refund_source": r.Source, "refund_reason": []string{"不想要了"},
		"refund_item_detail": map[string]any{"item_order_quantity": len(r.Items), "item_order_detail": r.Items}}
}

// askApp posts one pre_create_refund attempt and reads the synchronous
// answer.
func (s *Server) askApp(url string, body []byte, h trade.Headers, refundID string) UserRefundResult {
	stuck := UserRefundResult{RefundID: refundID, Stuck: true}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return stuck
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(trade.HeaderTimestamp, h.Timestamp)
	req.Header.Set(trade.HeaderNonce, h.Nonce)
	req.Header.Set(trade.HeaderSignature, h.Signature)
	resp, err := s.http.Do(req)
	if err != nil {
		return stuck
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var ans struct {
		ErrNo   *int   `json:"err_no"`
		ErrTips string `json:"err_tips"`
		Data    struct {
			OutRefundNo string `json:"out_refund_no"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &ans) != nil || ans.ErrNo == nil {
		return stuck
	}
	if *ans.ErrNo != 0 {
		return UserRefundResult{RefundID: refundID, ErrNo: *ans.ErrNo, ErrTips: ans.ErrTips}
	}
	if ans.Data.OutRefundNo == "" || len(ans.Data.OutRefundNo) > 64 {
		return stuck
	}
	return UserRefundResult{RefundID: refundID, Accepted: true, OutRefundNo: ans.Data.OutRefundNo}
}

func (s *Server) handleUserRefund(w http.ResponseWriter, r *http.Request) {
	var u UserRefund
	if err := decodeControl(r, &u); err != nil {
		controlErr(w, err)
		return
	}
	res, err := s.StartUserRefund(u)
	if err != nil {
		controlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
