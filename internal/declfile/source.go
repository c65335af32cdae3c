package declfile

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/payd/payd/internal/state"
)

// Source is a checked declare file: a YAML file held parsed, a CSV file
// kept open to be read again row by row. Orders, Refunds, Settlements and
// Fulfilments count its rows.
type Source struct {
	name                                      string
	yaml                                      *File
	csv                                       *os.File
	Orders, Refunds, Settlements, Fulfilments int
}

// Counts says how many rows of each kind the file holds, for people:
// "2 orders, 1 refund, 0 settlements" (fulfilments only when there are some).
func (d *Source) Counts() string {
	plural := func(n int, what string) string {
		if n == 1 {
			return "1 " + what
		}
		return fmt.Sprintf("%d %ss", n, what)
	}
	out := plural(d.Orders, "order") + ", " + plural(d.Refunds, "refund") + ", " + plural(d.Settlements, "settlement")
	if d.Fulfilments > 0 {
		out += ", " + plural(d.Fulfilments, "fulfilment")
	}
	return out
}

// Open reads path once to check every row's shape and count the rows,
// before anything opens the database; the caller closes the Source.
func Open(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("declare: %w", err)
	}
	d := &Source{name: filepath.Base(path)}
	if IsCSV(d.name) {
		d.csv = f
		err = Stream(d.name, f, func(r Row) error { d.count(r); return nil })
	} else {
		defer f.Close()
		d.yaml, err = Parse(d.name, f)
		if err == nil {
			d.Orders, d.Refunds, d.Settlements = len(d.yaml.Orders), len(d.yaml.Refunds), len(d.yaml.Settlements)
			d.Fulfilments = len(d.yaml.Fulfilments)
		}
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Source) count(r Row) {
	switch {
	case r.Order != nil:
		d.Orders++
	case r.Refund != nil:
		d.Refunds++
	case r.Fulfilment != nil:
		d.Fulfilments++
	default:
		d.Settlements++
	}
}

// Close closes the CSV file, if any.
func (d *Source) Close() {
	if d.csv != nil {
		d.csv.Close()
	}
}

// each passes every row to fn: orders first, then refunds, then
// settlements, then fulfilments, so a refund may name an order declared further down. A CSV
// file is read once per kind, never held in memory.
func (d *Source) each(fn func(Row) error) error {
	if d.yaml != nil {
		for i := range d.yaml.Orders {
			if err := fn(Row{Order: &d.yaml.Orders[i]}); err != nil {
				return err
			}
		}
		for i := range d.yaml.Refunds {
			if err := fn(Row{Refund: &d.yaml.Refunds[i]}); err != nil {
				return err
			}
		}
		for i := range d.yaml.Settlements {
			if err := fn(Row{Settlement: &d.yaml.Settlements[i]}); err != nil {
				return err
			}
		}
		for i := range d.yaml.Fulfilments {
			if err := fn(Row{Fulfilment: &d.yaml.Fulfilments[i]}); err != nil {
				return err
			}
		}
		return nil
	}
	kinds := []func(Row) bool{
		func(r Row) bool { return r.Order != nil },
		func(r Row) bool { return r.Refund != nil },
		func(r Row) bool { return r.Settlement != nil },
		func(r Row) bool { return r.Fulfilment != nil },
	}
	for _, want := range kinds {
		if _, err := d.csv.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		err := Stream(d.name, d.csv, func(r Row) error {
			if !want(r) {
				return nil
			}
			return fn(r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Result counts what Apply declared: new or changed rows, and rows that
// were already so.
type Result struct{ Changed, Unchanged int }

// Apply writes every declaration in one transaction, all or nothing, with
// no savepoint per row (state.Store.InOneTx), so a file of any size fits;
// rows that name no app get defApp ("" refuses them).
func (d *Source) Apply(ctx context.Context, st *state.Store, defApp string, now time.Time) (Result, error) {
	var res Result
	err := st.InOneTx(ctx, func(tx *state.Store) error {
		return d.each(func(r Row) error {
			created, err := d.applyRow(ctx, tx, r, defApp, now)
			if err != nil {
				return err
			}
			if created {
				res.Changed++
			} else {
				res.Unchanged++
			}
			return nil
		})
	})
	return res, err
}

// applyRow declares one row; created reports a new or changed row.
func (d *Source) applyRow(ctx context.Context, tx *state.Store, r Row, defApp string, now time.Time) (bool, error) {
	appOf := func(line int, id string) (string, error) {
		if id != "" {
			return id, nil
		}
		if defApp == "" {
			return "", lineError(d.name, line, "app_id: required when several apps are configured (or pass --app)")
		}
		return defApp, nil
	}
	switch {
	case r.Order != nil:
		o := r.Order
		appID, err := appOf(o.Line, o.AppID)
		if err != nil {
			return false, err
		}
		_, created, err := tx.UpsertOrder(ctx, state.OrderInput{AppID: appID, OutOrderNo: o.OutOrderNo, TotalAmount: o.TotalAmount}, now)
		if err != nil {
			return false, lineError(d.name, o.Line, "order %s: %v", o.OutOrderNo, err)
		}
		return created, nil
	case r.Refund != nil:
		rf := r.Refund
		appID, err := appOf(rf.Line, rf.AppID)
		if err != nil {
			return false, err
		}
		key := rf.Key
		if key == "" {
			key = state.DefaultRefundKey(appID, rf.Order, rf.Amount, rf.Reason)
		}
		_, created, err := tx.DeclareRefund(ctx, state.RefundWish{AppID: appID, OutOrderNo: rf.Order, Key: key, Amount: rf.Amount, Reason: rf.Reason}, now)
		if err != nil {
			return false, lineError(d.name, rf.Line, "refund of %s: %v", rf.Order, err)
		}
		return created, nil
	case r.Fulfilment != nil:
		f := r.Fulfilment
		appID, err := appOf(f.Line, f.AppID)
		if err != nil {
			return false, err
		}
		_, ch, err := tx.DeclareFulfilment(ctx, state.FulfilmentWish{AppID: appID, OutOrderNo: f.Order, ItemOrderID: f.Item, At: f.When}, now)
		if err != nil {
			return false, lineError(d.name, f.Line, "fulfilment of %s: %v", f.Order, err)
		}
		return ch == state.Created, nil
	}
	s := r.Settlement
	appID, err := appOf(s.Line, s.AppID)
	if err != nil {
		return false, err
	}
	_, created, err := tx.DeclareSettlement(ctx, state.SettlementWish{AppID: appID, OutOrderNo: s.Order, DueAt: s.Due, Receivers: s.StateReceivers(), Desc: s.Desc, ItemOrderID: s.Item}, now)
	if err != nil {
		return false, lineError(d.name, s.Line, "settlement of %s: %v", s.Order, err)
	}
	return created, nil
}
