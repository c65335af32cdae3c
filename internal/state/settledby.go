package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// SettleSource says who makes a settlement.
type SettleSource string

// The sources of settlements.
const (
	// SettleByPayd: payd sends settle_create (the default, "").
	SettleByPayd SettleSource = ""
	// SettleByDouyin: Douyin settles the order itself (auto-settlement);
	// payd never sends settle_create for the row, it finds Douyin's
	// settlement by the order (settle_query by order_id) and reports it.
	SettleByDouyin SettleSource = "douyin"
)

// EventSettlementAdopted: payd found a settlement it did not make
// (Douyin's auto-settlement) and now reports it; its result follows as
// settlement.succeeded.
const EventSettlementAdopted EventType = "settlement.adopted"

// AppSetting is what payd learned of an app at Douyin and keeps: today,
// that Douyin settles the app itself (a settle_create answered 23117).
type AppSetting struct {
	AppID string `gorm:"primaryKey;size:64"`
	// SettledByDouyinAt is when Douyin first said it settles the app
	// itself; nil while it has not. From then on payd only observes the
	// app's settlements.
	SettledByDouyinAt *time.Time
	// Reason is Douyin's words then (err_no and tips).
	Reason    string `gorm:"size:200"`
	UpdatedAt time.Time
}

// markSettledByDouyin records, in tx, that Douyin settles appID itself;
// the first time wins.
func markSettledByDouyin(tx *gorm.DB, appID, reason string, now time.Time) error {
	if len(reason) > 200 {
		reason = reason[:200]
	}
	res := tx.Model(&AppSetting{}).Where("app_id = ? AND settled_by_douyin_at IS NULL", appID).
		Updates(map[string]any{"settled_by_douyin_at": now, "reason": reason, "updated_at": now})
	if res.Error != nil {
		return fmt.Errorf("mark app %s settled by Douyin: %w", appID, res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	var n int64
	if err := tx.Model(&AppSetting{}).Where("app_id = ?", appID).Count(&n).Error; err != nil || n > 0 {
		return err
	}
	if err := tx.Create(&AppSetting{AppID: appID, SettledByDouyinAt: &now, Reason: reason, UpdatedAt: now}).Error; err != nil {
		return fmt.Errorf("mark app %s settled by Douyin: %w", appID, err)
	}
	return nil
}

// AppsSettledByDouyin returns the apps Douyin said it settles itself.
func (s *Store) AppsSettledByDouyin(ctx context.Context) ([]AppSetting, error) {
	var out []AppSetting
	if err := s.session(ctx).Where("settled_by_douyin_at IS NOT NULL").Order("app_id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read apps settled by Douyin: %w", err)
	}
	return out, nil
}

// settledByDouyin reports whether appID is marked settled by Douyin.
func settledByDouyin(tx *gorm.DB, appID string) (bool, error) {
	var n int64
	if err := tx.Model(&AppSetting{}).Where("app_id = ? AND settled_by_douyin_at IS NOT NULL", appID).Count(&n).Error; err != nil {
		return false, fmt.Errorf("read app %s: %w", appID, err)
	}
	return n > 0, nil
}

// ForeignSettlement is a settlement Douyin made that payd adopts (from a
// settle callback).
type ForeignSettlement struct {
	AppID string
	// DouyinOrderID is Douyin's order_id (settle callbacks name no
	// out_order_no): the order must be known by it.
	DouyinOrderID string
	ItemOrderID   string
	// SettleID is Douyin's settle_id; OutSettleNo the callback's
	// out_settle_no (the settle_id again for auto-settlements).
	SettleID, OutSettleNo string
}

// AdoptSettlement records a settlement payd did not make, named by a
// verified settle callback, so that the reconciler observes it: a new
// row (processing, source douyin, Douyin's settle_id) with a
// settlement.adopted event, or a pending row of payd's turned into one. A
// settlement of payd's own (its number, or one already in flight or done)
// is left alone: the callback only hints it. adopted reports a change. An
// order payd does not know by DouyinOrderID is left alone too (ErrNotFound
// is not returned: the callback's hint still stands).
func (s *Store) AdoptSettlement(ctx context.Context, f ForeignSettlement, now time.Time) (adopted bool, err error) {
	now = utc(now)
	if f.AppID == "" || f.DouyinOrderID == "" || f.SettleID == "" {
		return false, fmt.Errorf("adopt settlement: %w", invalidf("app_id, order_id and settle_id are required"))
	}
	err = s.write(ctx, func(tx *gorm.DB) error {
		var o Order
		switch err := first(tx.Where("app_id = ? AND order_id = ?", f.AppID, f.DouyinOrderID), &o); {
		case errors.Is(err, ErrNotFound):
			return errNoop
		case err != nil:
			return fmt.Errorf("read order: %w", err)
		}
		var st Settlement
		q := tx.Where("order_id = ? AND item_order_id = ? AND phase <> ?", o.ID, f.ItemOrderID, PhaseCancelled)
		switch err := first(q, &st); {
		case errors.Is(err, ErrNotFound):
			return s.insertAdopted(tx, &o, f, now)
		case err != nil:
			return fmt.Errorf("read settlement: %w", err)
		}
		if st.Phase != PhasePending || st.Source == SettleByDouyin || ownSettleNo(&st, &o, f.OutSettleNo) {
			return errNoop // payd's own (any attempt's number), or already known: the hint resolves it
		}
		res := tx.Model(&Settlement{}).Where("id = ? AND version = ? AND phase = ?", st.ID, st.Version, PhasePending).Updates(map[string]any{
			"phase": PhaseProcessing, "source": SettleByDouyin, "settle_no": f.SettleID, "next_action_at": now,
			"checks": 0, "version": st.Version + 1, "updated_at": now,
		})
		if err := changed(res); err != nil {
			return fmt.Errorf("adopt into settlement %s: %w", st.OutSettleNo, err)
		}
		st.Phase, st.Source, st.SettleNo = PhaseProcessing, SettleByDouyin, f.SettleID
		return s.adoptedEvent(tx, &o, &st, now)
	})
	if errors.Is(err, errNoop) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("adopt settlement %s: %w", f.SettleID, err)
	}
	return true, nil
}

// ownSettleNo reports whether no is the number of one of st's attempts.
func ownSettleNo(st *Settlement, o *Order, no string) bool {
	for n := 1; n <= st.Attempt; n++ {
		if st.NumberOf(o.AppID, o.OutOrderNo, n) == no {
			return true
		}
	}
	return false
}

// insertAdopted stores a new observed settlement of o, unless the order
// is settled the other way (whole vs item by item).
func (s *Store) insertAdopted(tx *gorm.DB, o *Order, f ForeignSettlement, now time.Time) error {
	if err := checkSettleKind(tx, o, f.ItemOrderID); err != nil {
		return errNoop // Douyin's settlement of the other kind: the hint resolves the rows payd has
	}
	st := Settlement{OrderID: o.ID, ItemOrderID: f.ItemOrderID, Auto: true, Source: SettleByDouyin, Phase: PhaseProcessing,
		Attempt: 1, SettleNo: f.SettleID, NextActionAt: &now, Version: 1}
	st.OutSettleNo = st.NumberOf(o.AppID, o.OutOrderNo, 1)
	if err := tx.Create(&st).Error; err != nil {
		return fmt.Errorf("insert settlement: %w", err)
	}
	if err := s.clearAutoSettle(tx, o); err != nil {
		return err
	}
	return s.adoptedEvent(tx, o, &st, now)
}

// adoptedEvent writes settlement.adopted and hints the order.
func (s *Store) adoptedEvent(tx *gorm.DB, o *Order, st *Settlement, now time.Time) error {
	ev := NewEvent{Type: EventSettlementAdopted, Payload: adoptedPayload{
		OutOrderNo: o.OutOrderNo, OutSettleNo: st.OutSettleNo, ItemOrderID: st.ItemOrderID, DouyinSettleID: st.SettleNo,
		Attempt: st.Attempt, Phase: string(st.Phase), Source: string(SettleByDouyin),
	}}
	if err := s.insertEvents(tx, []NewEvent{ev}, o.AppID, o.OutOrderNo); err != nil {
		return err
	}
	return hint(tx, o.ID, now)
}

// adoptedPayload is settlement.adopted's data: webhook.SettlementData's
// fields and the source.
type adoptedPayload struct {
	OutOrderNo     string `json:"out_order_no"`
	OutSettleNo    string `json:"out_settle_no"`
	ItemOrderID    string `json:"item_order_id,omitempty"`
	DouyinSettleID string `json:"douyin_settle_id,omitempty"`
	Amount         int64  `json:"amount"`
	Attempt        int    `json:"attempt"`
	Phase          string `json:"phase"`
	Source         string `json:"source"`
}

// AdoptedEvent is the settlement.adopted event of st of order o, for the
// reconciler when it adopts a settlement from settle_query.
func AdoptedEvent(o *Order, st *Settlement) NewEvent {
	return NewEvent{Type: EventSettlementAdopted, Payload: adoptedPayload{
		OutOrderNo: o.OutOrderNo, OutSettleNo: st.OutSettleNo, ItemOrderID: st.ItemOrderID, DouyinSettleID: st.SettleNo,
		Amount: st.Amount, Attempt: st.Attempt, Phase: string(st.Phase), Source: string(SettleByDouyin),
	}}
}

// MarkSettledByDouyin records that Douyin settles appID itself (a
// settle_create answered 23117, in reason's words); the first time wins.
// From then on settle_batch observes the app's settlements and the
// reconciler sends no settle_create for it.
func (s *Store) MarkSettledByDouyin(ctx context.Context, appID, reason string, now time.Time) error {
	return s.write(ctx, func(tx *gorm.DB) error { return markSettledByDouyin(tx, appID, reason, utc(now)) })
}
