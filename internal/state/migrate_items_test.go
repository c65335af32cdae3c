package state

import (
	"context"
	"testing"
)

// TestMigrate_ItemSettlements takes a database back to the schema before
// step 9 — no fulfilments, no orders.item_orders, settlements unique by
// order_id alone, with rows in it — and migrates it: every row is kept,
// as a whole-order settlement, and an order may then have one settlement
// per item order but still only one whole-order settlement.
func TestMigrate_ItemSettlements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		db := e.DB()
		e.order(t, "m1", 1000)
		e.order(t, "m2", 2000)
		s1, _, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "m1", Receivers: []Receiver{{MerchantUID: "u1", Amount: 100}}}, t0)
		must(t, err)
		s2, _, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "m2", Desc: "old"}, t0)
		must(t, err)
		must(t, db.Exec("UPDATE settlements SET phase = ?, settle_no = 'ots-1', amount = 2000 WHERE id = ?", PhaseSucceeded, s2.ID).Error)
		e.beforeCounters(t)
		for _, q := range []string{
			"DROP TABLE fulfilments",
			"ALTER TABLE orders DROP COLUMN item_orders",
			"DROP INDEX ux_settlements_order_item",
			"ALTER TABLE settlements DROP COLUMN item_order_id",
			"CREATE UNIQUE INDEX idx_settlements_order_id ON settlements (order_id)",
			"DELETE FROM schema_versions WHERE version >= 9",
		} {
			must(t, db.Exec(q).Error)
		}
		// A second process migrates, as a new binary would, and this test
		// goes on with it: the first one's PostgreSQL statement cache was
		// prepared against the old columns.
		ns := e.reopen(t)
		must(t, ns.Migrate(ctx))
		e.Store, db = ns, ns.DB()
		if v, err := e.AppliedVersion(ctx); err != nil || v != SchemaVersion {
			t.Fatalf("version %d %v, want %d", v, err, SchemaVersion)
		}
		var sts []Settlement
		must(t, db.Order("id").Find(&sts).Error)
		if len(sts) != 2 || sts[0].ID != s1.ID || sts[0].Receivers != s1.Receivers || sts[0].OutSettleNo != s1.OutSettleNo || sts[0].ItemOrderID != "" ||
			sts[1].Phase != PhaseSucceeded || sts[1].SettleNo != "ots-1" || sts[1].Amount != 2000 || sts[1].Desc != "old" || sts[1].ItemOrderID != "" {
			t.Fatalf("rows after the migration: %+v", sts)
		}
		if db.Migrator().HasIndex(&Settlement{}, "idx_settlements_order_id") {
			t.Fatal("the unique index on order_id alone is still there")
		}
		// One whole-order settlement per order still.
		if err := db.Exec("INSERT INTO settlements (order_id, item_order_id, phase, attempt, out_settle_no, version) VALUES (?, '', 'pending', 1, 'dup', 1)", s1.OrderID).Error; err == nil {
			t.Fatal("a second whole-order settlement of one order was stored")
		}
		// One per item order of an order: two items of m3.
		e.order(t, "m3", 3000)
		for _, item := range []string{"i1", "i2"} {
			if _, ch, err := e.DeclareSettlementChange(ctx, SettlementWish{AppID: "app1", OutOrderNo: "m3", ItemOrderID: item}, t0); err != nil || ch != Created {
				t.Fatalf("item %s: %s %v", item, ch, err)
			}
		}
		v, err := e.LoadOrder(ctx, sts[0].OrderID+2)
		must(t, err)
		if v.Settlement != nil || len(v.ItemSettlements) != 2 || v.ItemSettlements[0].OutSettleNo == v.ItemSettlements[1].OutSettleNo {
			t.Fatalf("view of m3: %+v %+v", v.Settlement, v.ItemSettlements)
		}
		// Never both for one order, either way round.
		_, _, err = e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "m3"}, t0)
		wantErr(t, err, ErrInvalid, "declare settlement of order m3: item_order_id: order m3 is settled item by item (2 item settlements): declare the settlement of each item order, or cancel those first")
		_, _, err = e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "m1", ItemOrderID: "i1"}, t0)
		wantErr(t, err, ErrInvalid, "declare settlement of order m1: item_order_id: order m1 has a whole-order settlement: an order is settled whole or item by item, never both (cancel it first: payd cancel settlement m1)")
	})
}

// TestMigrate_OrderAPI: step 12 backfills orders.api — trade for the apps
// that have a shared client token (only trade apps fetch one), ecpay for
// the others — and leaves items "" (their order's API).
func TestMigrate_OrderAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.order(t, "e1", 1000)
		_, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "tt-trade", OutOrderNo: "t1", TotalAmount: 500, Status: OrderSuccess}, t0)
		must(t, err)
		must(t, e.DB().Create(&ClientToken{AppID: "tt-trade"}).Error)
		r := e.refund(t, "e1", "k-e1", 100)
		must(t, e.DB().Exec("DELETE FROM schema_versions WHERE version >= 12").Error)
		must(t, e.Migrate(ctx))
		for no, want := range map[string]string{"e1": "ecpay", "t1": "trade"} {
			var o Order
			must(t, e.DB().Where("out_order_no = ?", no).First(&o).Error)
			if o.API != want {
				t.Errorf("order %s: api %q, want %q", no, o.API, want)
			}
		}
		if got := e.getRefund(t, r.ID); got.API != "" {
			t.Errorf("refund api %q, want \"\" (its order's)", got.API)
		}
	})
}
