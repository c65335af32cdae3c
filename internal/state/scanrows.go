package state

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// findRows is tx.Find(out) for one of payd's flat models (every column a
// top-level field of a plain or database/sql-scannable type), scanning
// each row straight into its struct's fields. GORM scans through value
// pools and a setter per field; for the thousand orders and settlements a
// claim reads to triage, that reflection was 30 % of a no-op pass's CPU
// (BENCHMARKS.md §4). The columns map to fields by GORM's schema, so the
// model's tags stay the one definition; a column the model does not know
// is dropped, as Find drops it. Of the hooks it runs AfterFind, as Find
// does (the test that compares it with Find checks).
func findRows[T any](tx *gorm.DB, out *[]T) error {
	rows, err := tx.Model(new(T)).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	fields, err := columnFields(tx, reflect.TypeFor[T](), cols)
	if err != nil {
		return err
	}
	dest := make([]any, len(cols))
	var ignored any // a column the model has no field for (see columnFields)
	for rows.Next() {
		var row T
		v := reflect.ValueOf(&row).Elem()
		for i, f := range fields {
			if f < 0 {
				dest[i] = &ignored
				continue
			}
			dest[i] = v.Field(f).Addr().Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if h, ok := any(&row).(afterFinder); ok {
			if err := h.AfterFind(tx); err != nil {
				return err
			}
		}
		*out = append(*out, row)
	}
	return rows.Err()
}

// afterFinder is a model with an AfterFind hook (Settlement, Refund).
type afterFinder interface{ AfterFind(*gorm.DB) error }

// columnPlans caches columnFields by model and column list.
var columnPlans sync.Map // columnPlanKey → []int

type columnPlanKey struct {
	t    reflect.Type
	cols string
}

// columnFields returns, for each column, the index of t's top-level field
// that GORM's schema maps it to, or -1 for a column the model has no field
// for: it is read and dropped, as Find drops it, so that a replica still
// running the last binary goes on while a newer one has added a column.
// A column mapped to a nested field is an error: findRows serves flat
// models only.
func columnFields(tx *gorm.DB, t reflect.Type, cols []string) ([]int, error) {
	key := columnPlanKey{t, strings.Join(cols, ",")}
	if p, ok := columnPlans.Load(key); ok {
		return p.([]int), nil
	}
	stmt := &gorm.Statement{DB: tx}
	if err := stmt.Parse(reflect.New(t).Interface()); err != nil {
		return nil, err
	}
	fields := make([]int, len(cols))
	for i, c := range cols {
		f := stmt.Schema.LookUpField(c)
		switch {
		case f == nil || f.DBName == "":
			fields[i] = -1
		case len(f.StructField.Index) != 1:
			return nil, fmt.Errorf("read %s: column %q is the nested field %s of %s; findRows reads flat models only, use Find", stmt.Schema.Table, c, f.Name, t)
		default:
			fields[i] = f.StructField.Index[0]
		}
	}
	columnPlans.Store(key, fields)
	return fields, nil
}

// firstRow is first for a flat model (see findRows): the row q finds into
// dest, or ErrNotFound. The answer of every call re-reads its item and its
// order's numbers with it.
func firstRow[T any](q *gorm.DB, dest *T) error {
	var rows []T
	if err := findRows(q.Limit(1), &rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		return ErrNotFound
	}
	*dest = rows[0]
	return nil
}
