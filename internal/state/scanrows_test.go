package state

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"gorm.io/gorm"
)

// fillFields sets every column field of the struct p points to (but ID
// and the relation fields) to a value of its own, derived from its
// position, so that a field findRows scanned into the wrong place, or not
// at all, differs from what Find reads. Fields added to a model later are
// covered without touching the test.
func fillFields(p any, salt int) {
	v := reflect.ValueOf(p).Elem()
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if sf.Name == "ID" || sf.Name == "OrderID" {
			continue
		}
		n := salt*100 + i + 1
		switch {
		case f.Kind() == reflect.String:
			f.SetString("v" + strconv.Itoa(n)) // short: API is 8 characters at most
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(int64(n))
		case f.Kind() == reflect.Bool:
			f.SetBool(n%2 == 1)
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(t0.Add(time.Duration(n) * time.Minute)))
		case f.Type() == reflect.TypeFor[*time.Time]():
			f.Set(reflect.ValueOf(ptr(t0.Add(time.Duration(n) * time.Second))))
		}
	}
}

// TestFindRows_ReadsWhatFindReads: findRows and GORM's Find read the same
// structs from the same rows, for every model loadViews reads with it,
// with every column set and with the pointers nil, on both databases.
func TestFindRows_ReadsWhatFindReads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		db := e.DB()
		var orders [2]Order
		fillFields(&orders[0], 1)
		orders[1] = Order{AppID: "app2", OutOrderNo: "bare", Status: OrderSuccess}
		must(t, db.Create(&orders).Error)
		var refunds []Refund
		var settlements []Settlement
		for i, o := range orders {
			r := Refund{OrderID: o.ID, Key: "bare", OutRefundNo: "bare", Phase: PhasePending}
			s := Settlement{OrderID: o.ID, OutSettleNo: "bare", Phase: PhasePending}
			if i == 0 {
				fillFields(&r, 2)
				fillFields(&s, 3)
				r.OrderID, s.OrderID = o.ID, o.ID
			}
			refunds, settlements = append(refunds, r), append(settlements, s)
		}
		must(t, db.Create(&refunds).Error)
		must(t, db.Create(&settlements).Error)
		same[Order](t, db.Order("id"))
		for _, r := range same[Refund](t, db.Order("id")) {
			if r.stored != r.storedNow() || r.stored.version == 0 {
				t.Errorf("refund %d: stored copy %+v, want its columns as read", r.ID, r.stored)
			}
		}
		for _, st := range same[Settlement](t, db.Order("id")) {
			if st.stored != st.storedNow() || st.stored.version == 0 {
				t.Errorf("settlement %d: stored copy %+v, want its columns as read", st.ID, st.stored)
			}
		}
		byID, set := inIDs(db, "id", []int64{orders[1].ID})
		same[Order](t, db.Where(byID, set))
	})
}

// same fails unless findRows and Find read the same rows of T through q,
// at least one, and returns them: the copies their AfterFind hooks keep
// (Settlement, Refund) included.
func same[T any](t *testing.T, q *gorm.DB) []T {
	t.Helper()
	var fast, slow []T
	must(t, findRows(q.Session(&gorm.Session{}), &fast))
	must(t, q.Session(&gorm.Session{}).Find(&slow).Error)
	if len(slow) == 0 || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T:\nfindRows %+v\nFind     %+v", slow, fast, slow)
	}
	return fast
}

// TestFindRows_DropsAColumnTheModelLacks: a column added by a newer
// binary's schema is read and dropped, as Find drops it, and the fields
// the model has are read as Find reads them.
func TestFindRows_DropsAColumnTheModelLacks(t *testing.T) {
	e := newSQLiteEnv(t)
	must(t, e.DB().Exec("ALTER TABLE orders ADD COLUMN newer_column TEXT").Error)
	e.order(t, "o1", 100)
	must(t, e.DB().Exec("UPDATE orders SET newer_column = 'x'").Error)
	var got []Order
	must(t, findRows(e.DB(), &got))
	if len(got) != 1 || got[0].OutOrderNo != "o1" || got[0].TotalAmount != 100 {
		t.Fatalf("read %+v", got)
	}
	same[Order](t, e.DB())
}
