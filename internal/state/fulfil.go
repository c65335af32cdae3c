package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Fulfilment records that the merchant fulfilled (核销) an order — ItemOrderID
// "" — or one item order of it, at FulfilledAt. payd keeps it only to know
// when a fulfilment-rule settlement is due: Douyin learns of fulfilment
// through the merchant's own flow. A row never changes; declaring it again
// is a no-op.
type Fulfilment struct {
	ID          int64     `gorm:"primaryKey"`
	OrderID     int64     `gorm:"not null;uniqueIndex:ux_fulfilments_order_item,priority:1"`
	Order       *Order    `gorm:"belongsTo:true;foreignKey:OrderID;references:ID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT" json:"-"` // never loaded; declares the foreign key (see Refund.Order)
	ItemOrderID string    `gorm:"size:64;not null;default:'';uniqueIndex:ux_fulfilments_order_item,priority:2"`
	FulfilledAt time.Time `gorm:"not null"`
	CreatedAt   time.Time
}

// ItemOrder is one item order of a trade order, as order_query listed it.
type ItemOrder struct {
	ID     string `json:"item_order_id"`
	Amount int64  `json:"amount"` // fen
}

// ItemList decodes the order's item orders; nil while none are known (an
// ecpay order, or a trade order not queried yet).
func (o *Order) ItemList() []ItemOrder {
	if o.ItemOrders == "" {
		return nil
	}
	var items []ItemOrder
	if json.Unmarshal([]byte(o.ItemOrders), &items) != nil {
		return nil
	}
	return items
}

// SetItems stores items as the order's item orders ("" for none).
func (o *Order) SetItems(items []ItemOrder) {
	if len(items) == 0 {
		o.ItemOrders = ""
		return
	}
	b, _ := json.Marshal(items) // plain structs always encode
	o.ItemOrders = string(b)
}

// itemIDRE is the shape of Douyin's item_order_id: 1..64 printable ASCII
// characters without spaces (a string, never parsed as a number).
var itemIDRE = regexp.MustCompile(`^[!-~]{1,64}$`)

// ValidItemOrderID checks an item_order_id given by the merchant; "" (the
// whole order) is valid.
func ValidItemOrderID(id string) error {
	if id != "" && !itemIDRE.MatchString(id) {
		return invalidf("item_order_id: %q is not 1..64 printable characters without spaces (Douyin's item_order_id)", id)
	}
	return nil
}

// checkItemOf refuses an item order that the order's known item orders do
// not list; while none are known (not queried yet) any id passes and
// Douyin judges it.
func checkItemOf(o *Order, id string) error {
	items := o.ItemList()
	if id == "" || len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	for i, it := range items {
		if it.ID == id {
			return nil
		}
		ids[i] = it.ID
	}
	return invalidf("item_order_id: %s is not an item order of order %s (its items: %s)", id, o.OutOrderNo, strings.Join(ids, ", "))
}

// FulfilmentWish is a declaration: the order (or one item order of it) was
// fulfilled at At.
type FulfilmentWish struct {
	// AppID may be empty when the order is known and its number unique.
	AppID      string
	OutOrderNo string
	// ItemOrderID is Douyin's item_order_id; "" for the whole order.
	ItemOrderID string
	// At is when it was fulfilled; nil for now. Never in the future.
	At *time.Time
}

func (w FulfilmentWish) validate(now time.Time) error {
	if err := validateOrderRef(w.AppID, w.OutOrderNo, false); err != nil {
		return err
	}
	if err := ValidItemOrderID(w.ItemOrderID); err != nil {
		return err
	}
	if w.At != nil && w.At.After(now) {
		return invalidf("fulfilled_at: %s is in the future (now %s): declare a fulfilment once it happened", w.At.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

// DeclareFulfilment records that an order or an item order of it was
// fulfilled, in one transaction, and hints the order so that its
// settlement's due time is planned again. An order payd does not know is
// recorded UNKNOWN (AppID required); one FAIL, TIMEOUT or NOT_FOUND at
// Douyin is ErrInvalid, as is an item order the order's known items do not
// list. Declaring the same order and item again returns the recorded row
// unchanged (its first time stands).
func (s *Store) DeclareFulfilment(ctx context.Context, w FulfilmentWish, now time.Time) (*Fulfilment, Change, error) {
	now = utc(now)
	w.At = utcPtr(w.At)
	if err := w.validate(now); err != nil {
		return nil, Unchanged, fmt.Errorf("declare fulfilment of order %s: %w", w.OutOrderNo, err)
	}
	at := now
	if w.At != nil {
		at = *w.At
	}
	var f Fulfilment
	err := s.write(ctx, func(tx *gorm.DB) error {
		o, _, err := s.findOrCreateOrder(tx, OrderInput{AppID: w.AppID, OutOrderNo: w.OutOrderNo}, now)
		if err != nil {
			return err
		}
		switch err := first(tx.Where("order_id = ? AND item_order_id = ?", o.ID, w.ItemOrderID), &f); {
		case err == nil:
			return errNoop
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("read fulfilment: %w", err)
		}
		if err := checkOrderOpen(o, "fulfil"); err != nil {
			return err
		}
		if err := checkItemOf(o, w.ItemOrderID); err != nil {
			return err
		}
		f = Fulfilment{OrderID: o.ID, ItemOrderID: w.ItemOrderID, FulfilledAt: at}
		if err := tx.Create(&f).Error; err != nil {
			return fmt.Errorf("insert fulfilment: %w", err)
		}
		return hint(tx, o.ID, now)
	})
	switch {
	case errors.Is(err, errNoop):
		return &f, Unchanged, nil
	case err != nil:
		return nil, Unchanged, fmt.Errorf("declare fulfilment of order %s: %w", w.OutOrderNo, err)
	}
	return &f, Created, nil
}

// FulfilledAt is when the view's order — itemOrderID "" — or that item
// order was fulfilled: an order when it was declared fulfilled as a whole
// or, once its item orders are known, when the last of them was; an item
// order when it or its whole order was. ok is false while not fulfilled.
func (v *OrderView) FulfilledAt(itemOrderID string) (at time.Time, ok bool) {
	byItem := map[string]time.Time{}
	for _, f := range v.Fulfilments {
		byItem[f.ItemOrderID] = f.FulfilledAt
	}
	if t, ok := byItem[""]; ok {
		return t, true
	}
	if itemOrderID != "" {
		t, ok := byItem[itemOrderID]
		return t, ok
	}
	items := v.Order.ItemList()
	if len(items) == 0 {
		return time.Time{}, false
	}
	for _, it := range items {
		t, ok := byItem[it.ID]
		if !ok {
			return time.Time{}, false
		}
		if t.After(at) {
			at = t
		}
	}
	return at, true
}

// IdleSettlementOrders returns the ids of up to limit orders, oldest
// settlement first, that have a pending settlement and nothing scheduled
// (next_action_at NULL): settlements that wait for something only the
// merchant or Douyin can bring — a fulfilment, most often. `payd plan`
// says what each waits for.
func (s *Store) IdleSettlementOrders(ctx context.Context, limit int) ([]int64, error) {
	if limit <= 0 {
		return nil, nil
	}
	// The pending settlements are few and the idle orders many: the query
	// must start from ix_settlements_phase_updated. SQLite's statistics,
	// where every settlement has one phase, made it scan the orders with no
	// next action instead (390 ms at 1,000,000 orders; 4 ms through the
	// index), so on SQLite the index is named.
	from := "settlements s"
	if s.dialect != DriverPostgres {
		from += " INDEXED BY ix_settlements_phase_updated"
	}
	var ids []int64
	err := s.session(ctx).Raw("SELECT DISTINCT s.order_id FROM "+from+" JOIN orders o ON o.id = s.order_id"+
		" WHERE s.phase = ? AND o.next_action_at IS NULL ORDER BY s.order_id LIMIT ?", PhasePending, limit).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("find idle settlements: %w", err)
	}
	return ids, nil
}
