package state

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// RefundSource says who started a refund.
type RefundSource string

// The sources of refunds. A refund payd declared has SourcePayd ("");
// the others were started at Douyin (trade system) and adopted by their
// refund_id: payd never creates them, it tracks them, subtracts them from
// what is left to refund and settle, and never retries one that fails.
const (
	SourcePayd            RefundSource = ""
	SourceUser            RefundSource = "user"             // the buyer (pre_create_refund, refund_source 1)
	SourceExpiry          RefundSource = "expiry"           // Douyin's automatic refund on expiry (3)
	SourceCustomerService RefundSource = "customer_service" // Douyin's customer service (4)
	SourceDouyin          RefundSource = "douyin"           // any other source payd did not ask for
)

// EventRefundRequested: a refund payd did not ask for (a user's, customer
// service's, an expiry's) was adopted; its result follows as the usual
// refund events.
const EventRefundRequested EventType = "refund.requested"

// SourceOf maps Douyin's refund_source to a RefundSource.
func SourceOf(refundSource int) RefundSource {
	switch refundSource {
	case 1:
		return SourceUser
	case 3:
		return SourceExpiry
	case 4:
		return SourceCustomerService
	}
	return SourceDouyin
}

// ForeignRefund is a refund started at Douyin that payd adopts.
type ForeignRefund struct {
	AppID      string
	OutOrderNo string
	// DouyinOrderID is Douyin's order_id, stored on the order when payd
	// does not know it yet.
	DouyinOrderID string
	// RefundID is Douyin's refund_id: what the refund is known by.
	RefundID string
	// OutRefundNo is the refund's number as Douyin reports it, "" when it
	// has none; a number of payd's own refunds means it is not foreign.
	OutRefundNo string
	Amount      int64
	Source      RefundSource
	Reason      string
	// NeedAudit is set when Douyin waits for the merchant's decision
	// (need_refund_audit 1) until AuditDeadline (zero: not said).
	NeedAudit     bool
	AuditDeadline time.Time
}

// UserRefundKey is the refund key payd gives a refund started at Douyin:
// "dy" and 24 hex digits of sha256(app/refund_id). It is deterministic, so
// every retry of one pre_create_refund gets the same out_refund_no
// (RefundNo(key, 1)), even one that races the first.
func UserRefundKey(appID, refundID string) string {
	sum := sha256.Sum256([]byte(appID + "/" + refundID))
	return "dy" + hex.EncodeToString(sum[:12])
}

func (f ForeignRefund) validate() error {
	switch {
	case f.AppID == "" || f.RefundID == "":
		return invalidf("app_id and refund_id are required")
	case len(f.RefundID) > 64:
		return invalidf("refund_id: %d bytes, at most 64", len(f.RefundID))
	case f.OutOrderNo == "" && f.DouyinOrderID == "":
		return invalidf("out_order_no or order_id required")
	case f.OutOrderNo != "" && !merchantNoRE.MatchString(f.OutOrderNo):
		return invalidf("out_order_no %q: want 1..64 of [0-9A-Za-z_-]", f.OutOrderNo)
	case f.Amount <= 0:
		return invalidf("refund_total_amount %d: must be positive", f.Amount)
	}
	return nil
}

// AdoptForeignRefund stores a refund started at Douyin, keyed by its
// refund_id, before payd answers for it (pre_create_refund) or acts on it:
// processing, with Douyin's id, so that the reconciler queries it until it
// is final. It is idempotent: a refund_id already stored returns its row
// (created false) and changes nothing. The order is created UNKNOWN when
// payd does not know it. The refund.requested event is written with the
// row. Its amount is not checked against what is left: Douyin accepted it.
func (s *Store) AdoptForeignRefund(ctx context.Context, f ForeignRefund, now time.Time) (*Refund, bool, error) {
	now = utc(now)
	if err := f.validate(); err != nil {
		return nil, false, fmt.Errorf("adopt refund %s: %w", f.RefundID, err)
	}
	key := UserRefundKey(f.AppID, f.RefundID)
	var r Refund
	err := s.write(ctx, func(tx *gorm.DB) error {
		known, err := knownRefund(tx, f, key, &r)
		if err != nil || known {
			return cmp.Or(err, errNoop)
		}
		o, err := s.foreignOrder(tx, f, now)
		if err != nil {
			return err
		}
		if o.DouyinOrderID == "" && f.DouyinOrderID != "" {
			if err := tx.Model(&Order{}).Where("id = ? AND order_id = ''", o.ID).Update("order_id", f.DouyinOrderID).Error; err != nil {
				return fmt.Errorf("record order_id: %w", err)
			}
		}
		reason := f.Reason
		if len(reason) > 100 {
			reason = reason[:100]
		}
		r = Refund{
			OrderID: o.ID, Key: key, Amount: f.Amount, Reason: reason, Source: f.Source,
			Phase: PhaseProcessing, Attempt: 1, OutRefundNo: RefundNo(key, 1), RefundNo: f.RefundID,
			NextActionAt: &now, Version: 1,
		}
		if f.NeedAudit {
			d := now.Add(DefaultAuditWindow)
			if !f.AuditDeadline.IsZero() {
				d = utc(f.AuditDeadline)
			}
			r.AuditPhase, r.AuditDeadline = AuditWaiting, &d
		}
		if err := tx.Create(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return fmt.Errorf("adopted concurrently, try again: %w", ErrConflict)
			}
			return fmt.Errorf("insert refund: %w", err)
		}
		ev := NewEvent{Type: EventRefundRequested, Payload: requestedPayload{
			OutOrderNo: o.OutOrderNo, Key: key, OutRefundNo: r.OutRefundNo, DouyinRefundID: f.RefundID,
			Amount: f.Amount, Source: string(f.Source), Phase: string(r.Phase), Attempt: 1,
		}}
		if err := s.insertEvents(tx, []NewEvent{ev}, o.AppID, o.OutOrderNo); err != nil {
			return err
		}
		return hint(tx, o.ID, now)
	})
	switch {
	case errors.Is(err, errNoop):
		return &r, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("adopt refund %s: %w", f.RefundID, err)
	}
	return &r, true, nil
}

// knownRefund finds the refund f names among payd's rows: by its key (a
// retry), by Douyin's refund_id, or by a number payd sent (its own
// refund, whose refund_id may not be recorded yet). r is the row when one
// was found by key or id.
func knownRefund(tx *gorm.DB, f ForeignRefund, key string, r *Refund) (bool, error) {
	q := tx.Joins("JOIN orders o ON o.id = refunds.order_id").Where("refunds.idem_key = ? OR (o.app_id = ? AND refunds.refund_no = ?)", key, f.AppID, f.RefundID)
	switch err := first(q, r); {
	case err == nil:
		return true, nil
	case !errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("read refund: %w", err)
	}
	if f.OutRefundNo == "" {
		return false, nil
	}
	var n int64
	err := tx.Model(&Attempt{}).Joins("JOIN orders o ON o.id = attempts.order_id").
		Where("o.app_id = ? AND attempts.resource = 'refund' AND attempts.merchant_no = ?", f.AppID, f.OutRefundNo).Count(&n).Error
	if err == nil && n == 0 {
		err = tx.Model(&Refund{}).Joins("JOIN orders o ON o.id = refunds.order_id").
			Where("o.app_id = ? AND refunds.out_refund_no = ?", f.AppID, f.OutRefundNo).Count(&n).Error
	}
	if err != nil {
		return false, fmt.Errorf("look for refund %s: %w", f.OutRefundNo, err)
	}
	return n > 0, nil
}

// foreignOrder finds the order of f by its number (creating it UNKNOWN)
// or, without one, by Douyin's order_id (which must be known).
func (s *Store) foreignOrder(tx *gorm.DB, f ForeignRefund, now time.Time) (*Order, error) {
	if f.OutOrderNo == "" {
		var o Order
		if err := first(tx.Where("app_id = ? AND order_id = ?", f.AppID, f.DouyinOrderID), &o); err != nil {
			return nil, fmt.Errorf("order %s: %w", f.DouyinOrderID, err)
		}
		return &o, nil
	}
	o, _, err := s.findOrCreateOrder(tx, OrderInput{AppID: f.AppID, OutOrderNo: f.OutOrderNo, Status: OrderUnknown}, now)
	return o, err
}

// requestedPayload is refund.requested's data: webhook.RefundData's
// fields and the source.
type requestedPayload struct {
	OutOrderNo     string `json:"out_order_no"`
	Key            string `json:"key"`
	OutRefundNo    string `json:"out_refund_no"`
	DouyinRefundID string `json:"douyin_refund_id"`
	Amount         int64  `json:"amount"`
	Attempt        int    `json:"attempt"`
	Phase          string `json:"phase"`
	Source         string `json:"source"`
}
