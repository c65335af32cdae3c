package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// errNoop ends a transaction that found nothing to do: it rolls back (so a
// repeated declaration leaves no trace) and the caller returns success.
var errNoop = errors.New("no-op")

// refundKeyRE is the rule for refund idempotency keys: RefundNo(key, n)
// must stay a valid merchant number of at most 64 characters.
var refundKeyRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,60}$`)

// RefundWish is a declaration: refund Amount of an order, once, whatever
// happens, identified by the caller's idempotency Key.
type RefundWish struct {
	// AppID may be empty when the order is known and its number unique.
	AppID      string
	OutOrderNo string
	// Key is 1..60 of [0-9A-Za-z_-]; declaring it again is a no-op.
	Key string
	// Amount is in fen, > 0.
	Amount int64
	// Reason is sent to Douyin; at most 100 characters.
	Reason string
}

// RefundNo is the out_refund_no of a refund's attempt: key-attempt.
func RefundNo(key string, attempt int) string {
	return key + "-" + strconv.Itoa(attempt)
}

// SettleNo is the out_settle_no of a settlement's attempt: "st", the first
// 16 hex digits of sha256(appID + "/" + outOrderNo), "-", the attempt. It
// is deterministic and at most 64 characters whatever the order's number.
func SettleNo(appID, outOrderNo string, attempt int) string {
	sum := sha256.Sum256([]byte(appID + "/" + outOrderNo))
	return "st" + hex.EncodeToString(sum[:])[:16] + "-" + strconv.Itoa(attempt)
}

// ItemSettleNo is the out_settle_no of an attempt of the settlement of one
// item order: as SettleNo over appID/outOrderNo/itemOrderID.
func ItemSettleNo(appID, outOrderNo, itemOrderID string, attempt int) string {
	return SettleNo(appID, outOrderNo+"/"+itemOrderID, attempt)
}

// NumberOf is the out_settle_no of the settlement's attempt: SettleNo for
// a whole-order settlement, ItemSettleNo for one of an item order.
func (st *Settlement) NumberOf(appID, outOrderNo string, attempt int) string {
	if st.ItemOrderID == "" {
		return SettleNo(appID, outOrderNo, attempt)
	}
	return ItemSettleNo(appID, outOrderNo, st.ItemOrderID, attempt)
}

func (w RefundWish) validate() error {
	if !refundKeyRE.MatchString(w.Key) {
		return invalidf("key: %q is not 1..60 of [0-9A-Za-z_-]", w.Key)
	}
	if err := validateOrderRef(w.AppID, w.OutOrderNo, false); err != nil {
		return err
	}
	if w.Amount <= 0 {
		return invalidf("amount: %d is not positive", w.Amount)
	}
	if n := utf8.RuneCountInString(w.Reason); n > 100 {
		return invalidf("reason: %d characters, at most 100", n)
	}
	return nil
}

// DeclareRefund records a refund wish, in one transaction, and hints its
// order. The same key with the same order, amount and reason returns the
// recorded refund with created=false and changes nothing; with anything
// different it is ErrKeyReused. An order payd does not know is recorded
// UNKNOWN (AppID required) for the reconciler to query. ErrInvalid when the
// order is FAIL, TIMEOUT or NOT_FOUND at Douyin, or when its total is known
// and Amount exceeds what remains after its other non-failed refunds (the
// reconciler checks again once an unknown order's total is learnt). A new
// refund is pending, attempt 1, due now.
func (s *Store) DeclareRefund(ctx context.Context, w RefundWish, now time.Time) (*Refund, bool, error) {
	now = utc(now)
	if err := w.validate(); err != nil {
		return nil, false, fmt.Errorf("declare %s: %w", w.name(), err)
	}
	var r Refund
	err := s.write(ctx, func(tx *gorm.DB) error {
		o, _, err := s.findOrCreateOrder(tx, OrderInput{AppID: w.AppID, OutOrderNo: w.OutOrderNo}, now)
		if err != nil {
			return err
		}
		if err := hint(tx, o.ID, now); err != nil {
			return err
		}
		switch err := first(tx.Where("idem_key = ?", w.Key), &r); {
		case err == nil:
			if r.OrderID == o.ID && r.Amount == w.Amount && r.Reason == w.Reason {
				return errNoop
			}
			return keyReused(tx, &r)
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("read refund: %w", err)
		}
		if err := checkOrderOpen(o, "refund"); err != nil {
			return err
		}
		sent, err := sentRefunds(tx, o.ID)
		if err != nil {
			return err
		}
		if why := RefundLimit(*o, sent, now); why != "" {
			return invalidf("%s (nothing declared)", why)
		}
		if o.TotalAmount > 0 {
			left, err := refundable(tx, o)
			if err != nil {
				return err
			}
			if w.Amount > left {
				return invalidf("%s", ExceedsRemaining(w.Amount, o.OutOrderNo, left, o.TotalAmount))
			}
		}
		r = Refund{
			OrderID: o.ID, Key: w.Key, Amount: w.Amount, Reason: w.Reason,
			Phase: PhasePending, Attempt: 1, OutRefundNo: RefundNo(w.Key, 1),
			NextActionAt: &now, Version: 1,
		}
		if err := tx.Create(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return fmt.Errorf("declared concurrently, declare it again: %w", ErrConflict)
			}
			return fmt.Errorf("insert refund: %w", err)
		}
		return nil
	})
	switch {
	case errors.Is(err, errNoop):
		return &r, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("declare %s: %w", w.name(), err)
	}
	return &r, true, nil
}

// name names the refund in errors: by its key when the caller gave one,
// by its order and amount when the key was derived (DefaultRefundKey),
// since the user never saw that key.
func (w RefundWish) name() string {
	if w.Key == DefaultRefundKey(w.AppID, w.OutOrderNo, w.Amount, w.Reason) {
		return fmt.Sprintf("refund of %d fen of order %s", w.Amount, w.OutOrderNo)
	}
	return "refund " + w.Key
}

// keyReused says what the key was first declared with.
func keyReused(tx *gorm.DB, r *Refund) error {
	var no string
	if err := tx.Model(&Order{}).Where("id = ?", r.OrderID).Pluck("out_order_no", &no).Error; err != nil {
		return fmt.Errorf("read order: %w", err)
	}
	return fmt.Errorf("%w: key %s was declared for order %s, amount %d, reason %q", ErrKeyReused, r.Key, no, r.Amount, r.Reason)
}

// checkOrderOpen refuses a wish on an order that Douyin closed.
func checkOrderOpen(o *Order, what string) error {
	switch o.Status {
	case OrderFail, OrderTimeout, OrderNotFound:
		return invalidf("order %s is %s at Douyin: nothing to %s", o.OutOrderNo, o.Status, what)
	case OrderUnknown, OrderProcessing, OrderSuccess:
	}
	return nil
}

// refundable returns the order's total less its refunds that are neither
// failed nor cancelled.
func refundable(tx *gorm.DB, o *Order) (int64, error) {
	var taken int64
	err := tx.Model(&Refund{}).Where("order_id = ? AND phase NOT IN ?", o.ID, []Phase{PhaseParked, PhaseCancelled}).
		Select("COALESCE(SUM(amount), 0)").Scan(&taken).Error
	if err != nil {
		return 0, fmt.Errorf("sum refunds: %w", err)
	}
	return o.TotalAmount - taken, nil
}

// SettlementWish is a declaration: settle an order, sharing parts of it with
// third-party receivers.
type SettlementWish struct {
	// AppID may be empty when the order is known and its number unique.
	AppID      string
	OutOrderNo string
	// DueAt is the earliest time to settle; nil means the order's SettleAfter.
	DueAt *time.Time
	// Receivers are the third-party receivers (settle_params): at most 4.
	Receivers []Receiver
	// Desc is settle_desc; at most 80 characters, "" for the app's default.
	Desc string
	// Auto marks a settlement made by policy rather than by the merchant.
	Auto bool
	// ItemOrderID settles one item order (Douyin's item_order_id); "" the
	// whole order. An order has one whole-order settlement or settlements
	// of item orders, never both.
	ItemOrderID string
}

// ValidateReceivers checks settle_params: at most 4 receivers, each with a
// merchant_uid (no two alike) and a positive amount, together at most 30% of
// total when total is known (> 0).
func ValidateReceivers(rs []Receiver, total int64) error {
	if len(rs) > 4 {
		return invalidf("receivers: %d given, at most 4", len(rs))
	}
	seen := map[string]bool{}
	var sum int64
	for i, rc := range rs {
		switch {
		case rc.MerchantUID == "":
			return invalidf("receivers[%d].merchant_uid: required", i)
		case seen[rc.MerchantUID]:
			return invalidf("receivers[%d].merchant_uid: %s appears twice", i, rc.MerchantUID)
		case rc.Amount <= 0:
			return invalidf("receivers[%d].amount: %d is not positive", i, rc.Amount)
		}
		seen[rc.MerchantUID] = true
		sum += rc.Amount
	}
	if total > 0 && OverReceiverCap(sum, total) {
		return invalidf("receivers: %d fen together, more than 30%% of the order's %d fen", sum, total)
	}
	return nil
}

// ExceedsRemaining says that a refund of amount fen is more than what
// remains of the order (left of total fen; a negative left reads as 0).
func ExceedsRemaining(amount int64, outOrderNo string, left, total int64) string {
	return fmt.Sprintf("refund %d exceeds what remains of order %s: %d of %d fen", amount, outOrderNo, max(left, 0), total)
}

// OverReceiverCap reports whether receivers taking share fen of an order
// of total fen exceed Douyin's cap: 30% of the order.
func OverReceiverCap(share, total int64) bool { return share*10 > total*3 }

// ReceiverList decodes Receivers.
func (st *Settlement) ReceiverList() ([]Receiver, error) {
	if st.Receivers == "" {
		return nil, nil
	}
	var rs []Receiver
	if err := json.Unmarshal([]byte(st.Receivers), &rs); err != nil {
		return nil, fmt.Errorf("decode receivers of settlement %s: %w", st.OutSettleNo, err)
	}
	return rs, nil
}

func encodeReceivers(rs []Receiver) string {
	if len(rs) == 0 {
		return ""
	}
	b, _ := json.Marshal(rs) // a slice of plain structs always encodes
	return string(b)
}

func (w SettlementWish) validate() error {
	if err := validateOrderRef(w.AppID, w.OutOrderNo, false); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(w.Desc); n > 80 {
		return invalidf("desc: %d characters, at most 80", n)
	}
	if err := ValidItemOrderID(w.ItemOrderID); err != nil {
		return err
	}
	return ValidateReceivers(w.Receivers, 0)
}

// DeclareSettlement records or changes the settlement wish of an order, in
// one transaction, hints the order and clears its AutoSettleAt. Receivers
// are validated (ValidateReceivers, against the total when it is known; the
// reconciler checks again once it is learnt). An order payd does not know is
// recorded UNKNOWN; one that is FAIL, TIMEOUT or NOT_FOUND is ErrInvalid. With
// no settlement yet one is created (pending, attempt 1, created=true). A
// pending one takes the new DueAt, Receivers and Desc (a no-op when they are
// the same). One that is no longer pending cannot change: the same wish is
// a no-op, a different one ErrInvalid.
func (s *Store) DeclareSettlement(ctx context.Context, w SettlementWish, now time.Time) (*Settlement, bool, error) {
	st, ch, err := s.DeclareSettlementChange(ctx, w, now)
	return st, ch == Created, err
}

// Change is what a declaration did to its row.
type Change string

// The changes a declaration makes.
const (
	// Created: there was no row; one was made.
	Created Change = "created"
	// Changed: the pending row took the new wish.
	Changed Change = "changed"
	// Unchanged: the row already stood as declared.
	Unchanged Change = "unchanged"
)

// DeclareSettlementChange is DeclareSettlement telling apart a changed
// settlement from an unchanged one.
func (s *Store) DeclareSettlementChange(ctx context.Context, w SettlementWish, now time.Time) (*Settlement, Change, error) {
	now = utc(now)
	w.DueAt = utcPtr(w.DueAt)
	if err := w.validate(); err != nil {
		return nil, Unchanged, fmt.Errorf("declare settlement of order %s: %w", w.OutOrderNo, err)
	}
	receivers := encodeReceivers(w.Receivers)
	var st Settlement
	created := false
	err := s.write(ctx, func(tx *gorm.DB) error {
		o, _, err := s.findOrCreateOrder(tx, OrderInput{AppID: w.AppID, OutOrderNo: w.OutOrderNo}, now)
		if err != nil {
			return err
		}
		if err := hint(tx, o.ID, now); err != nil {
			return err
		}
		found := true
		switch err := first(tx.Where("order_id = ? AND item_order_id = ?", o.ID, w.ItemOrderID), &st); {
		case errors.Is(err, ErrNotFound):
			found = false
		case err != nil:
			return fmt.Errorf("read settlement: %w", err)
		}
		same := found && sameTime(st.DueAt, w.DueAt) && st.Receivers == receivers && st.Desc == w.Desc
		if same {
			return errNoop
		}
		if found && st.Phase != PhasePending {
			return invalidf("settlement of order %s %s: it cannot change", o.OutOrderNo, phaseWords(st.Phase))
		}
		if err := checkOrderOpen(o, "settle"); err != nil {
			return err
		}
		if err := ValidateReceivers(w.Receivers, o.TotalAmount); err != nil {
			return err
		}
		if !found {
			if err := checkSettleKind(tx, o, w.ItemOrderID); err != nil {
				return err
			}
		}
		if err := s.clearAutoSettle(tx, o); err != nil {
			return err
		}
		if !found {
			st = Settlement{
				OrderID: o.ID, ItemOrderID: w.ItemOrderID, DueAt: w.DueAt, Receivers: receivers, Desc: w.Desc, Auto: w.Auto,
				Phase: PhasePending, Attempt: 1, NextActionAt: &now, Version: 1,
			}
			st.OutSettleNo = st.NumberOf(o.AppID, o.OutOrderNo, 1)
			if err := tx.Create(&st).Error; err != nil {
				return fmt.Errorf("insert settlement: %w", err)
			}
			created = true
			return nil
		}
		updated := s.now()
		res := tx.Model(&Settlement{}).Where("id = ? AND version = ? AND phase = ?", st.ID, st.Version, PhasePending).
			Updates(map[string]any{
				"due_at": w.DueAt, "receivers": receivers, "settle_desc": w.Desc, "auto": w.Auto,
				"next_action_at": now, "version": st.Version + 1, "updated_at": updated,
			})
		if err := changed(res); err != nil {
			return fmt.Errorf("update settlement: %w", err)
		}
		st.DueAt, st.Receivers, st.Desc, st.Auto = w.DueAt, receivers, w.Desc, w.Auto
		st.NextActionAt, st.Version, st.UpdatedAt = &now, st.Version+1, updated
		return nil
	})
	switch {
	case errors.Is(err, errNoop):
		return &st, Unchanged, nil
	case err != nil:
		return nil, Unchanged, fmt.Errorf("declare settlement of order %s: %w", w.OutOrderNo, err)
	case created:
		return &st, Created, nil
	}
	return &st, Changed, nil
}

// checkSettleKind refuses a new settlement of the other kind than the
// order's settlements not cancelled: an order is settled whole or item by
// item (Douyin refuses mixing them: 23118), and an item order has been
// settled once its order was. The caller has hinted the order (an update
// of its row) first, so two declarations of one order serialise here on
// PostgreSQL too.
func checkSettleKind(tx *gorm.DB, o *Order, itemOrderID string) error {
	if err := checkItemOf(o, itemOrderID); err != nil {
		return err
	}
	q := tx.Model(&Settlement{}).Where("order_id = ? AND phase <> ?", o.ID, PhaseCancelled)
	if itemOrderID == "" {
		q = q.Where("item_order_id <> ''")
	} else {
		q = q.Where("item_order_id = ''")
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return fmt.Errorf("read settlements: %w", err)
	}
	switch {
	case n == 0:
		return nil
	case itemOrderID == "":
		return invalidf("item_order_id: order %s is settled item by item (%d item settlements): declare the settlement of each item order, or cancel those first", o.OutOrderNo, n)
	}
	return invalidf("item_order_id: order %s has a whole-order settlement: an order is settled whole or item by item, never both (cancel it first: payd cancel settlement %s)", o.OutOrderNo, o.OutOrderNo)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// clearAutoSettle clears the order's AutoSettleAt once it has a settlement
// row. It bumps the version, so a worker holding the order's old copy
// cannot write the old value back.
func (s *Store) clearAutoSettle(tx *gorm.DB, o *Order) error {
	if o.AutoSettleAt == nil {
		return nil
	}
	res := tx.Model(&Order{}).Where("id = ? AND version = ?", o.ID, o.Version).
		Updates(map[string]any{"auto_settle_at": nil, "version": o.Version + 1, "updated_at": s.now()})
	if err := changed(res); err != nil {
		return fmt.Errorf("clear auto_settle_at: %w", err)
	}
	o.AutoSettleAt = nil
	o.Version++
	return nil
}

// createDueChunk bounds the orders CreateDueSettlements handles per
// transaction, so the SQLite write lock is never held for long.
const createDueChunk = 500

// CreateDueSettlements is settle_batch: for orders of appIDs whose
// AutoSettleAt has passed, oldest first and at most limit, it creates an
// Auto settlement (DueAt nil: the order's SettleAfter), clears AutoSettleAt
// and hints the order. An order that has a settlement already only has its
// AutoSettleAt cleared. Its cost grows with what is due (the
// ix_orders_app_autosettle index), not with the table.
func (s *Store) CreateDueSettlements(ctx context.Context, now time.Time, appIDs []string, limit int, desc string) (int, error) {
	return s.createDue(ctx, now, appIDs, limit, desc, SettleByPayd)
}

// ObserveDueSettlements is CreateDueSettlements for apps Douyin settles
// itself: each settlement it creates is SettleByDouyin, processing — the
// reconciler looks for Douyin's settlement of the order (settle_query by
// order_id) and reports it, and never sends settle_create.
func (s *Store) ObserveDueSettlements(ctx context.Context, now time.Time, appIDs []string, limit int) (int, error) {
	return s.createDue(ctx, now, appIDs, limit, "", SettleByDouyin)
}

func (s *Store) createDue(ctx context.Context, now time.Time, appIDs []string, limit int, desc string, src SettleSource) (int, error) {
	now = utc(now)
	if n := utf8.RuneCountInString(desc); n > 80 {
		return 0, fmt.Errorf("create due settlements: %w", invalidf("desc: %d characters, at most 80", n))
	}
	created := 0
	for done := 0; done < limit && len(appIDs) > 0; {
		var batch []Order
		n := 0
		err := s.write(ctx, func(tx *gorm.DB) error {
			err := tx.Where("app_id IN ? AND auto_settle_at <= ?", appIDs, now).
				Order("auto_settle_at, id").Limit(min(createDueChunk, limit-done)).Find(&batch).Error
			if err != nil {
				return fmt.Errorf("find due orders: %w", err)
			}
			for i := range batch {
				made, err := s.createAutoSettlement(tx, &batch[i], now, desc, src)
				if err != nil {
					return fmt.Errorf("order %s: %w", batch[i].OutOrderNo, err)
				}
				if made {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return created, fmt.Errorf("create due settlements: %w", err)
		}
		created += n
		done += len(batch)
		if len(batch) < createDueChunk {
			break
		}
	}
	return created, nil
}

func (s *Store) createAutoSettlement(tx *gorm.DB, o *Order, now time.Time, desc string, src SettleSource) (bool, error) {
	var n int64
	if err := tx.Model(&Settlement{}).Where("order_id = ?", o.ID).Count(&n).Error; err != nil {
		return false, fmt.Errorf("read settlement: %w", err)
	}
	if err := s.clearAutoSettle(tx, o); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	st := Settlement{
		OrderID: o.ID, Desc: desc, Auto: true, Phase: PhasePending, Attempt: 1, Source: src,
		OutSettleNo: SettleNo(o.AppID, o.OutOrderNo, 1), NextActionAt: &now, Version: 1,
	}
	if src == SettleByDouyin {
		st.Phase = PhaseProcessing // observed: never sent
	}
	if err := tx.Create(&st).Error; err != nil {
		return false, fmt.Errorf("insert settlement: %w", err)
	}
	return true, hint(tx, o.ID, now)
}
