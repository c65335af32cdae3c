package state

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// TestExec_AsGORMWould runs exec and insertID on both databases: ?
// placeholders bind (numbered on PostgreSQL), the rows changed are
// counted, and a unique or foreign-key violation comes back as GORM's
// error, as through GORM with TranslateError.
func TestExec_AsGORMWould(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		o := e.order(t, "x1", 100)
		db := e.session(context.Background())
		n, err := exec(db, "UPDATE orders SET checks = ? WHERE id = ? AND total_amount = ?", 7, o.ID, int64(100))
		must(t, err)
		if n != 1 || e.getOrder(t, o.ID).Checks != 7 {
			t.Fatalf("%d rows changed, checks %d: want 1 and 7", n, e.getOrder(t, o.ID).Checks)
		}
		if n, err = exec(db, "UPDATE orders SET checks = ? WHERE id IN "+inPlaceholders(0), 8); err != nil || n != 0 {
			t.Fatalf("an empty IN list: %d rows, %v; want none", n, err)
		}
		_, err = exec(db, "UPDATE orders SET out_order_no = ? WHERE id = ?", o.OutOrderNo, e.order(t, "x2", 100).ID)
		if !errors.Is(err, gorm.ErrDuplicatedKey) {
			t.Fatalf("a duplicate number: %v, want gorm.ErrDuplicatedKey", err)
		}
		_, err = insertID(db, insertAttempt, o.ID+1000, "order", nil, "query_order", "x1", 0, "", "ok", 1, e.now())
		if !errors.Is(err, gorm.ErrForeignKeyViolated) {
			t.Fatalf("an attempt of no order: %v, want gorm.ErrForeignKeyViolated", err)
		}
	})
}

// TestInsertID_TheRowsOwnID: insertID returns the id of the row it
// inserted, inside a transaction too, although each attempt's counter
// triggers insert rows of their own (counter_deltas) after it.
func TestInsertID_TheRowsOwnID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		o := e.order(t, "x1", 100)
		ctx := context.Background()
		var ids []int64
		must(t, e.InTx(ctx, func(tx *Store) error {
			for i := range 3 {
				id, err := insertID(tx.session(ctx), insertAttempt, o.ID, "order", nil, "query_order", fmt.Sprintf("n%d", i), 1001, "", "ok", 1, e.now())
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return nil
		}))
		for i, id := range ids {
			var got Attempt
			must(t, e.DB().First(&got, id).Error)
			if want := fmt.Sprintf("n%d", i); got.MerchantNo != want || got.OrderID != o.ID {
				t.Fatalf("insert %d returned id %d, the row of %q (order %d); want %q of order %d", i, id, got.MerchantNo, got.OrderID, want, o.ID)
			}
		}
		if ids[0] == ids[1] || ids[1] == ids[2] {
			t.Fatalf("ids %v: one row's id returned twice", ids)
		}
		var deltas int64
		must(t, e.DB().Model(&counterDelta{}).Count(&deltas).Error)
		if deltas == 0 {
			t.Fatal("no counter delta written: the triggers this test is about did not fire")
		}
	})
}

func TestBindVars(t *testing.T) {
	pg := &gorm.DB{Config: &gorm.Config{Dialector: nameOnly("postgres")}}
	lite := &gorm.DB{Config: &gorm.Config{Dialector: nameOnly("sqlite")}}
	for _, c := range []struct {
		db       *gorm.DB
		in, want string
	}{
		{pg, "UPDATE t SET a = ? WHERE id = ? AND b IN (?, ?)", "UPDATE t SET a = $1 WHERE id = $2 AND b IN ($3, $4)"},
		{pg, "RELEASE SAVEPOINT payd_sp", "RELEASE SAVEPOINT payd_sp"},
		{lite, "UPDATE t SET a = ? WHERE id = ?", "UPDATE t SET a = ? WHERE id = ?"},
	} {
		if got := bindVars(c.db, c.in); got != c.want {
			t.Errorf("bindVars(%s, %q) = %q, want %q", c.db.Dialector.Name(), c.in, got, c.want)
		}
	}
	if got := inPlaceholders(3); got != "(?, ?, ?)" {
		t.Errorf("inPlaceholders(3) = %q", got)
	}
}

// nameOnly is a dialector that only has a name (for bindVars).
type nameOnly string

func (n nameOnly) Name() string                                 { return string(n) }
func (nameOnly) Initialize(*gorm.DB) error                      { return nil }
func (nameOnly) Migrator(*gorm.DB) gorm.Migrator                { return nil }
func (nameOnly) DataTypeOf(*schema.Field) string                { return "" }
func (nameOnly) DefaultValueOf(*schema.Field) clause.Expression { return nil }
func (nameOnly) BindVarTo(clause.Writer, *gorm.Statement, any)  {}
func (nameOnly) QuoteTo(clause.Writer, string)                  {}
func (nameOnly) Explain(sql string, _ ...any) string            { return sql }
