package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// InsertCallback stores a verified callback, de-duplicated by Signature: a
// duplicate returns inserted=false and changes nothing. It resolves the
// callback's subject to an order of cb.AppID (payment: out_order_no;
// refund: out_refund_no of a refund, else the merchant number of an older
// attempt, else Douyin's refund_id (trade); settle and settle_finish:
// out_settle_no, else an older attempt's number, else Douyin's settle_id,
// else an out_order_no), sets cb.OrderID, hints that order and
// makes the subject itself due now (see nudge), in the same transaction. A
// payment callback for an order payd does not know records that order as
// UNKNOWN (merchants create orders outside payd; auto-settle must still
// reach them). Any other subject payd does not know is stored with
// OrderID 0. A callback never changes a state by itself: the hint makes
// the reconciler query Douyin.
func (s *Store) InsertCallback(ctx context.Context, cb *Callback, now time.Time) (bool, error) {
	now = utc(now)
	if cb.Signature == "" || cb.AppID == "" || cb.Type == "" {
		return false, fmt.Errorf("insert callback: %w", invalidf("signature, app_id and type are required"))
	}
	if cb.ReceivedAt.IsZero() {
		cb.ReceivedAt = now
	}
	err := s.write(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Callback{}).Where("signature = ?", cb.Signature).Count(&n).Error; err != nil {
			return fmt.Errorf("look for duplicate: %w", err)
		}
		if n > 0 {
			return errNoop
		}
		sub, err := callbackSubject(tx, cb)
		if err != nil {
			return fmt.Errorf("resolve subject %s: %w", cb.SubjectNo, err)
		}
		if sub.OrderID == 0 && cb.Type == "payment" && merchantNoRE.MatchString(cb.SubjectNo) {
			// A paid order payd has not seen: record it UNKNOWN so the
			// reconciler queries it (and settles it, with auto-settle).
			// The callback only says "look"; the query decides the state.
			o, _, err := s.findOrCreateOrder(tx, OrderInput{AppID: cb.AppID, OutOrderNo: cb.SubjectNo, Status: OrderUnknown}, now)
			if err != nil {
				return fmt.Errorf("record order %s: %w", cb.SubjectNo, err)
			}
			sub = subject{OrderID: o.ID, Table: "orders", ItemID: o.ID}
		}
		cb.OrderID = sub.OrderID
		if err := tx.Create(cb).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) { // a concurrent twin (PostgreSQL)
				return errNoop
			}
			return err
		}
		if sub.OrderID == 0 {
			return nil
		}
		return nudge(tx, sub, now)
	})
	switch {
	case errors.Is(err, errNoop):
		cb.ID = 0
		return false, nil
	case err != nil:
		cb.ID = 0
		return false, fmt.Errorf("insert %s callback %s: %w", cb.Type, cb.SubjectNo, err)
	}
	return true, nil
}

// subject is what a callback or a sweep is about: an order and, when known,
// the refund or settlement (table and id) within it.
type subject struct {
	OrderID int64
	Table   string // "orders", "refunds", "settlements" or "" for the order alone
	ItemID  int64
}

// callbackSubject returns what cb is about; OrderID 0 when payd does not
// know it.
func callbackSubject(tx *gorm.DB, cb *Callback) (subject, error) {
	if cb.SubjectNo == "" {
		return subject{}, nil
	}
	const (
		byOrder   = "SELECT id AS order_id, id AS item_id FROM orders WHERE app_id = ? AND out_order_no = ?"
		byRefund  = "SELECT x.order_id, x.id AS item_id FROM refunds x JOIN orders o ON o.id = x.order_id WHERE o.app_id = ? AND x.out_refund_no = ?"
		bySettle  = "SELECT x.order_id, x.id AS item_id FROM settlements x JOIN orders o ON o.id = x.order_id WHERE o.app_id = ? AND x.out_settle_no = ?"
		byAttempt = "SELECT x.order_id, x.resource_id AS item_id FROM attempts x JOIN orders o ON o.id = x.order_id WHERE o.app_id = ? AND x.merchant_no = ? AND x.resource = ?"
		// Trade callbacks name a refund by Douyin's refund_id, a
		// settlement (auto-settled ones) by settle_id.
		byRefundID = "SELECT x.order_id, x.id AS item_id FROM refunds x JOIN orders o ON o.id = x.order_id WHERE o.app_id = ? AND x.refund_no = ?"
		bySettleID = "SELECT x.order_id, x.id AS item_id FROM settlements x JOIN orders o ON o.id = x.order_id WHERE o.app_id = ? AND x.settle_no = ?"
	)
	type lookup struct {
		table string
		query string
		args  []any
	}
	var lookups []lookup
	switch cb.Type {
	case "payment":
		lookups = []lookup{{"orders", byOrder, nil}}
	case "refund":
		lookups = []lookup{{"refunds", byRefund, nil}, {"refunds", byAttempt, []any{"refund"}}, {"refunds", byRefundID, nil}}
	case "settle", "settle_finish":
		lookups = []lookup{{"settlements", bySettle, nil}, {"settlements", byAttempt, []any{"settlement"}}, {"settlements", bySettleID, nil}, {"", byOrder, nil}}
	}
	for _, l := range lookups {
		// Past GORM (see exec): its Raw and Scan were a quarter of a
		// callback batch's time under `payd bench apps`.
		found := subject{Table: l.table}
		var item sql.NullInt64 // an attempt's resource_id may be NULL
		args := append([]any{cb.AppID, cb.SubjectNo}, l.args...)
		err := queryRow(tx, l.query+" ORDER BY 1 LIMIT 1", args, &found.OrderID, &item)
		switch {
		case err == nil:
			found.ItemID = item.Int64
			return found, nil
		case !errors.Is(err, sql.ErrNoRows):
			return subject{}, err
		}
	}
	return subject{}, nil
}

// nudge hints the subject's order and makes the subject itself due now, so
// that the reconciler's plan, not only its claim, sees the hint: an order's
// CheckAt while its status is not final, a refund's or settlement's
// NextActionAt while it is submitting or processing. Like Hint it does not
// change versions: a worker's copy stays valid, and at worst a worker that
// saves its own, later time in the same instant delays the query to its
// regular schedule.
func nudge(tx *gorm.DB, sub subject, now time.Time) error {
	if err := hint(tx, sub.OrderID, now); err != nil {
		return err
	}
	var q string
	args := []any{now, sub.ItemID, now}
	switch sub.Table {
	case "orders":
		q = "UPDATE orders SET check_at = ? WHERE id = ? AND check_at > ? AND status IN ?"
		args = append(args, []OrderStatus{OrderUnknown, OrderProcessing})
	case "refunds", "settlements":
		q = "UPDATE " + sub.Table + " SET next_action_at = ? WHERE id = ? AND (next_action_at IS NULL OR next_action_at > ?) AND phase IN ?"
		args = append(args, []Phase{PhaseSubmitting, PhaseProcessing})
	default:
		return nil
	}
	if err := tx.Exec(q, args...).Error; err != nil {
		return fmt.Errorf("nudge %s %d: %w", sub.Table, sub.ItemID, err)
	}
	return nil
}
