package state

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// merchantNoRE is Douyin's rule for merchant numbers (out_order_no,
// out_refund_no, out_settle_no).
var merchantNoRE = regexp.MustCompile(`^[0-9A-Za-z_\-*]{1,64}$`)

// validateOrderRef checks an (app_id, out_order_no) pair; appID may be
// empty when appRequired is false (the number alone then names the order).
func validateOrderRef(appID, outOrderNo string, appRequired bool) error {
	if !merchantNoRE.MatchString(outOrderNo) {
		return invalidf("out_order_no: %q is not 1..64 of [0-9A-Za-z_-*]", outOrderNo)
	}
	if appRequired && appID == "" {
		return invalidf("app_id: required")
	}
	if len(appID) > 64 {
		return invalidf("app_id: longer than 64 bytes")
	}
	return nil
}

// validStatus reports whether s is one of the OrderStatus constants.
func validStatus(s OrderStatus) bool {
	switch s {
	case OrderUnknown, OrderProcessing, OrderSuccess, OrderFail, OrderTimeout, OrderNotFound:
		return true
	}
	return false
}

// OrderInput is what is known of an order when it is imported or created
// through payd.
type OrderInput struct {
	AppID      string
	OutOrderNo string
	// TotalAmount is the order's amount in fen; 0 when unknown.
	TotalAmount int64
	// Status is the status as far as the caller knows; "" means UNKNOWN.
	Status OrderStatus
	// PaidAt is when the buyer paid, if known.
	PaidAt *time.Time
	// OrderID is Douyin's order_id, if known.
	OrderID string
}

// UpsertOrder records an order. A new order is due at once (NextActionAt =
// now) whatever its status: the reconciler queries one it does not know
// the state of, and computes SettleAfter and AutoSettleAt (which need the
// app's settle period) for one already paid. For an existing order, facts
// that agree are a no-op; facts it lacked (the amount, a status while it is
// UNKNOWN, PaidAt, OrderID) are filled in and the order is hinted; a
// different known TotalAmount is ErrInvalid. A status other than the
// recorded one is ignored once the order has been observed: Douyin's
// answers, not imports, decide it.
func (s *Store) UpsertOrder(ctx context.Context, in OrderInput, now time.Time) (*Order, bool, error) {
	now = utc(now)
	if in.Status == "" {
		in.Status = OrderUnknown
	}
	if err := in.validate(); err != nil {
		return nil, false, fmt.Errorf("record order %s: %w", in.OutOrderNo, err)
	}
	var o *Order
	var created bool
	err := s.write(ctx, func(tx *gorm.DB) error {
		var err error
		o, created, err = s.findOrCreateOrder(tx, in, now)
		if err != nil || created {
			return err
		}
		return s.mergeOrder(tx, o, in, now)
	})
	if err != nil {
		return nil, false, fmt.Errorf("record order %s: %w", in.OutOrderNo, err)
	}
	return o, created, nil
}

func (in OrderInput) validate() error {
	if err := validateOrderRef(in.AppID, in.OutOrderNo, true); err != nil {
		return err
	}
	if in.TotalAmount < 0 {
		return invalidf("total_amount: %d is negative", in.TotalAmount)
	}
	if !validStatus(in.Status) {
		return invalidf("status: %q is not a known order status", in.Status)
	}
	if len(in.OrderID) > 64 {
		return invalidf("order_id: longer than 64 bytes")
	}
	return nil
}

// findOrCreateOrder returns the order (in.AppID, in.OutOrderNo), recording
// it from in, due at once, if it is new. Concurrent creators (PostgreSQL)
// end up with the same row.
func (s *Store) findOrCreateOrder(tx *gorm.DB, in OrderInput, now time.Time) (*Order, bool, error) {
	if o, err := findOrder(tx, in.AppID, in.OutOrderNo); !errors.Is(err, ErrNotFound) {
		return o, false, err
	}
	if in.AppID == "" {
		return nil, false, invalidf("order %s is not known to payd: app_id is required to record it", in.OutOrderNo)
	}
	if in.Status == "" {
		in.Status = OrderUnknown
	}
	o := &Order{
		AppID: in.AppID, OutOrderNo: in.OutOrderNo, DouyinOrderID: in.OrderID,
		TotalAmount: in.TotalAmount, Status: in.Status, PaidAt: in.PaidAt,
		NextActionAt: &now, Version: 1,
	}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(o)
	if res.Error != nil {
		return nil, false, fmt.Errorf("insert order: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		s.noteApp(o.AppID)
		return o, true, nil
	}
	o, err := findOrder(tx, in.AppID, in.OutOrderNo)
	return o, false, err
}

// mergeOrder fills in what o lacked from in (see UpsertOrder).
func (s *Store) mergeOrder(tx *gorm.DB, o *Order, in OrderInput, now time.Time) error {
	changes := map[string]any{}
	if in.TotalAmount > 0 && in.TotalAmount != o.TotalAmount {
		if o.TotalAmount != 0 {
			return invalidf("order %s: total_amount %d differs from recorded %d", o.OutOrderNo, in.TotalAmount, o.TotalAmount)
		}
		o.TotalAmount = in.TotalAmount
		changes["total_amount"] = o.TotalAmount
	}
	if o.Status == OrderUnknown && in.Status != OrderUnknown {
		o.Status = in.Status
		changes["status"] = o.Status
	}
	if o.PaidAt == nil && in.PaidAt != nil {
		o.PaidAt = utcPtr(in.PaidAt)
		changes["paid_at"] = o.PaidAt
	}
	if o.DouyinOrderID == "" && in.OrderID != "" {
		o.DouyinOrderID = in.OrderID
		changes["order_id"] = o.DouyinOrderID
	}
	if len(changes) == 0 {
		return nil
	}
	changes["version"] = o.Version + 1
	changes["updated_at"] = s.now()
	res := tx.Model(&Order{}).Where("id = ? AND version = ?", o.ID, o.Version).Updates(changes)
	if err := changed(res); err != nil {
		return fmt.Errorf("update order: %w", err)
	}
	o.Version++
	o.UpdatedAt = changes["updated_at"].(time.Time)
	if err := hint(tx, o.ID, now); err != nil {
		return err
	}
	o.HintSeq++
	return nil
}

// findOrder returns the order (appID, outOrderNo); with appID "" the number
// alone, when only one app has it. ErrNotFound when there is none.
func findOrder(tx *gorm.DB, appID, outOrderNo string) (*Order, error) {
	q := tx.Where("out_order_no = ?", outOrderNo)
	if appID != "" {
		q = q.Where("app_id = ?", appID)
	}
	var found []Order
	if err := q.Limit(2).Find(&found).Error; err != nil {
		return nil, fmt.Errorf("find order: %w", err)
	}
	switch len(found) {
	case 0:
		return nil, ErrNotFound
	case 1:
		return &found[0], nil
	}
	return nil, invalidf("order %s exists in more than one app: app_id is required", outOrderNo)
}

// GetOrder returns the order (appID, outOrderNo). With appID "" the number
// alone names it, when only one app has it (ErrInvalid otherwise).
func (s *Store) GetOrder(ctx context.Context, appID, outOrderNo string) (*Order, error) {
	o, err := findOrder(s.session(ctx), appID, outOrderNo)
	if err != nil {
		return nil, fmt.Errorf("get order %s: %w", outOrderNo, err)
	}
	return o, nil
}

// OrderView is everything about one order that the reconciler plans from.
type OrderView struct {
	Order Order
	// Refunds are the order's refunds in the order they were declared.
	Refunds []Refund
	// Settlement is the order's whole-order settlement; nil when there is
	// none.
	Settlement *Settlement
	// ItemSettlements are the settlements of single item orders, in id
	// order (never beside a Settlement that is not cancelled).
	ItemSettlements []Settlement
	// Fulfilments are the order's declared fulfilments (whole or by item
	// order), oldest first.
	Fulfilments []Fulfilment
	// AppSettledByDouyin is set once Douyin said it settles the order's
	// app itself (23117): payd then only observes its settlements.
	AppSettledByDouyin bool
}

func (v *OrderView) addSettlement(st *Settlement) {
	st.order = orderIdentity{id: v.Order.ID, appID: v.Order.AppID, outOrderNo: v.Order.OutOrderNo}
	if st.ItemOrderID == "" {
		v.Settlement = st
		return
	}
	v.ItemSettlements = append(v.ItemSettlements, *st)
}

// Settlements returns the order's settlements: the whole-order one, if
// any, then those of item orders.
func (v *OrderView) Settlements() []*Settlement {
	var out []*Settlement
	if v.Settlement != nil {
		out = append(out, v.Settlement)
	}
	for i := range v.ItemSettlements {
		out = append(out, &v.ItemSettlements[i])
	}
	return out
}

// Remaining returns what is left of the order's total after its refunds
// that are neither failed nor cancelled, leaving out the refund with id
// except (0 leaves out none). It is
// meaningful only once TotalAmount is known.
func (v *OrderView) Remaining(except int64) int64 {
	left := v.Order.TotalAmount
	for _, r := range v.Refunds {
		if r.ID != except && r.Phase != PhaseParked && r.Phase != PhaseCancelled {
			left -= r.Amount
		}
	}
	return left
}

// LoadOrder returns the order with its refunds and settlement, read from
// one snapshot.
func (s *Store) LoadOrder(ctx context.Context, id int64) (*OrderView, error) {
	var v *OrderView
	err := s.read(ctx, func(tx *gorm.DB) error {
		var err error
		v, err = loadView(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load order %d: %w", id, err)
	}
	return v, nil
}

// LoadOrders returns the orders of ids with their refunds, settlements and
// fulfilments, read from one snapshot in a few queries per viewChunk ids
// (not a handful per order, as LoadOrder each would); ids that do not exist
// are left out.
func (s *Store) LoadOrders(ctx context.Context, ids []int64) (map[int64]*OrderView, error) {
	views := make(map[int64]*OrderView, len(ids))
	err := s.read(ctx, func(tx *gorm.DB) error {
		for start := 0; start < len(ids); start += viewChunk {
			part, err := loadViews(tx, ids[start:min(start+viewChunk, len(ids))])
			if err != nil {
				return err
			}
			maps.Copy(views, part)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %d orders: %w", len(ids), err)
	}
	return views, nil
}

// viewChunk bounds the ids of one IN list (SQLite's bound parameters).
const viewChunk = 500

func loadView(tx *gorm.DB, id int64) (*OrderView, error) {
	v := &OrderView{}
	if err := first(tx.Where("id = ?", id), &v.Order); err != nil {
		return nil, err
	}
	if err := tx.Where("order_id = ?", id).Order("id").Find(&v.Refunds).Error; err != nil {
		return nil, fmt.Errorf("read refunds: %w", err)
	}
	var sts []Settlement
	if err := tx.Where("order_id = ?", id).Order("id").Find(&sts).Error; err != nil {
		return nil, fmt.Errorf("read settlements: %w", err)
	}
	for i := range sts {
		v.addSettlement(&sts[i])
	}
	if err := tx.Where("order_id = ?", id).Order("id").Find(&v.Fulfilments).Error; err != nil {
		return nil, fmt.Errorf("read fulfilments: %w", err)
	}
	var err error
	if v.AppSettledByDouyin, err = settledByDouyin(tx, v.Order.AppID); err != nil {
		return nil, err
	}
	return v, nil
}

// loadViews reads many orders with their refunds and settlements in three
// queries, keyed by order id; ids that do not exist are left out.
func loadViews(tx *gorm.DB, ids []int64) (map[int64]*OrderView, error) {
	byID, set := inIDs(tx, "id", ids)
	byOrder := inSet(tx, "order_id") // the same set, by order
	var orders []Order
	if err := findRows(tx.Where(byID, set), &orders); err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	var refunds []Refund
	if err := findRows(tx.Where(byOrder, set).Order("id"), &refunds); err != nil {
		return nil, fmt.Errorf("read refunds: %w", err)
	}
	var settlements []Settlement
	if err := findRows(tx.Where(byOrder, set).Order("id"), &settlements); err != nil {
		return nil, fmt.Errorf("read settlements: %w", err)
	}
	views := make(map[int64]*OrderView, len(orders))
	for _, o := range orders {
		views[o.ID] = &OrderView{Order: o}
	}
	for _, r := range refunds {
		if v := views[r.OrderID]; v != nil {
			v.Refunds = append(v.Refunds, r)
		}
	}
	for i := range settlements {
		if v := views[settlements[i].OrderID]; v != nil {
			v.addSettlement(&settlements[i])
		}
	}
	var fulfilments []Fulfilment
	if err := tx.Where(byOrder, set).Order("id").Find(&fulfilments).Error; err != nil {
		return nil, fmt.Errorf("read fulfilments: %w", err)
	}
	for _, f := range fulfilments {
		if v := views[f.OrderID]; v != nil {
			v.Fulfilments = append(v.Fulfilments, f)
		}
	}
	var flagged []string
	if err := tx.Model(&AppSetting{}).Where("settled_by_douyin_at IS NOT NULL").Pluck("app_id", &flagged).Error; err != nil {
		return nil, fmt.Errorf("read apps settled by Douyin: %w", err)
	}
	for _, id := range flagged {
		for _, v := range views {
			v.AppSettledByDouyin = v.AppSettledByDouyin || v.Order.AppID == id
		}
	}
	return views, nil
}

// first loads the first row q finds into dest; ErrNotFound when none.
func first(q *gorm.DB, dest any) error {
	res := q.Limit(1).Find(dest)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// Hint asks for the order to be looked at now: HintSeq+1, and when no
// worker holds it, NextActionAt = min(NextActionAt, now). A worker holding
// it sees HintSeq moved when it releases the order and makes it due at
// once. Hint does not change Version, so it never makes a worker's update
// conflict.
func (s *Store) Hint(ctx context.Context, orderID int64, now time.Time) error {
	err := s.write(ctx, func(tx *gorm.DB) error { return hint(tx, orderID, utc(now)) })
	if err != nil {
		return fmt.Errorf("hint order %d: %w", orderID, err)
	}
	return nil
}

// hint is Hint inside a transaction. On PostgreSQL its UPDATE also locks
// the order's row until the transaction ends, which serialises declarations
// of one order (the remaining-amount check relies on that).
func hint(tx *gorm.DB, orderID int64, now time.Time) error {
	res := tx.Exec("UPDATE orders SET hint_seq = hint_seq + 1 WHERE id = ?", orderID)
	if res.Error != nil {
		return fmt.Errorf("hint: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("order %d: %w", orderID, ErrNotFound)
	}
	res = tx.Exec(`UPDATE orders SET next_action_at = ? WHERE id = ?
		AND (lease_until IS NULL OR lease_until <= ?)
		AND (next_action_at IS NULL OR next_action_at > ?)`, now, orderID, now, now)
	if res.Error != nil {
		return fmt.Errorf("hint: %w", res.Error)
	}
	return nil
}

// UpdateOrder saves o's mutable columns (what Douyin said of it and the
// reconciler's bookkeeping: OrderID, TotalAmount, Status, PaidAt, CPSShare,
// CPSKnown, SettleAfter, ItemOrders, CheckAt, CheckedAt, AutoSettleAt, NextActionAt,
// Checks) and inserts events, in one transaction, conditional on o.Version;
// on success o.Version is the new version. HintSeq and the lease are left
// alone: they belong to Hint, ClaimDue and Release. ErrConflict when the
// order changed since it was read, ErrNotFound when it does not exist.
func (s *Store) UpdateOrder(ctx context.Context, o *Order, events ...NewEvent) error {
	if !validStatus(o.Status) {
		return fmt.Errorf("update order %s: %w", o.OutOrderNo, invalidf("status: %q is not a known order status", o.Status))
	}
	if o.TotalAmount < 0 {
		return fmt.Errorf("update order %s: %w", o.OutOrderNo, invalidf("total_amount: %d is negative", o.TotalAmount))
	}
	_ = o.BeforeSave(nil)
	updated := s.now()
	err := s.write(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Order{}).Where("id = ? AND version = ?", o.ID, o.Version).Updates(map[string]any{
			"order_id": o.DouyinOrderID, "total_amount": o.TotalAmount, "status": o.Status, "paid_at": o.PaidAt,
			"cps_share": o.CPSShare, "cps_known": o.CPSKnown, "settle_after": o.SettleAfter, "item_orders": o.ItemOrders, "api": o.API, "pay_channel": o.PayChannel,
			"check_at": o.CheckAt, "checked_at": o.CheckedAt, "auto_settle_at": o.AutoSettleAt,
			"next_action_at": o.NextActionAt, "checks": o.Checks,
			"version": o.Version + 1, "updated_at": updated,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return missingOr(tx, &Order{}, o.ID, ErrConflict)
		}
		return s.insertEvents(tx, events, o.AppID, o.OutOrderNo)
	})
	if err != nil {
		return fmt.Errorf("update order %s: %w", o.OutOrderNo, err)
	}
	o.Version++
	o.UpdatedAt = updated
	return nil
}
