package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/declfile"
	"github.com/payd/payd/internal/state"
)

func newDeclareCmd(g *globals) *cobra.Command {
	var file, app string
	cmd := &cobra.Command{
		Use:   "declare -f FILE",
		Short: "Declare many orders, refunds and settlements at once from YAML or CSV",
		Long: `declare records every row of FILE (YAML, or CSV when the name ends in .csv; at most
64 MiB, CSV read row by row) in one transaction: orders to import, refunds and settlements.
Applying the same file twice changes nothing. If any row is bad, the error names its line and
nothing from the file is written.

YAML (one document):
  orders:      [{out_order_no: o1, total_amount: 1000, app_id: tt1}]
  refunds:     [{order: o1, key: o1-r1, amount: 200, reason: "size"}]
  settlements: [{order: o1, at: 2026-12-01, receivers: [{merchant_uid: m1, amount: 100}]}]
CSV (header required; unused columns may be empty or left out; a UTF-8 BOM is fine):
  kind,app_id,order,total_amount,key,amount,reason,at,receivers,desc
  refund,,o1,,o1-r1,200,size,,,
  settlement,,o1,,,,,2026-12-01,m1:100;m2:50,`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-f FILE: required")
			}
			src, err := openDeclarations(file)
			if err != nil {
				return err
			}
			defer src.Close()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			defApp := app
			if defApp != "" || len(cfg.Douyin.Apps) == 1 {
				if defApp, err = appFlag(cfg, app); err != nil {
					return err
				}
			}
			clk := clock.Real{}
			st, err := g.openExisting(cmd.Context(), cfg, clk)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := src.apply(cmd.Context(), st, defApp, clk.Now())
			if err != nil {
				return fmt.Errorf("%w (nothing from %s was written)", err, file)
			}
			fmt.Fprintf(g.stdout, "%s: %s, %s, %s: %d new or changed, %d unchanged\n", file,
				plural(src.orders, "order"), plural(src.refunds, "refund"), plural(src.settlements, "settlement"), res.changed, res.unchanged)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML or CSV file of declarations (at most 64 MiB)")
	cmd.Flags().StringVar(&app, "app", "", "app_id for rows that name none (default: the only configured app)")
	return cmd
}

// declarations is a checked declare file: a YAML file held parsed, a CSV
// file kept open to be read again row by row.
type declarations struct {
	name                         string
	yaml                         *declfile.File
	csv                          *os.File
	orders, refunds, settlements int
}

// openDeclarations reads path once to check every row's shape and count
// the rows, before anything opens the database.
func openDeclarations(path string) (*declarations, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("declare: %w", err)
	}
	d := &declarations{name: filepath.Base(path)}
	if declfile.IsCSV(d.name) {
		d.csv = f
		err = declfile.Stream(d.name, f, func(r declfile.Row) error { d.count(r); return nil })
	} else {
		defer f.Close()
		d.yaml, err = declfile.Parse(d.name, f)
		if err == nil {
			d.orders, d.refunds, d.settlements = len(d.yaml.Orders), len(d.yaml.Refunds), len(d.yaml.Settlements)
		}
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *declarations) count(r declfile.Row) {
	switch {
	case r.Order != nil:
		d.orders++
	case r.Refund != nil:
		d.refunds++
	default:
		d.settlements++
	}
}

// Close closes the CSV file, if any.
func (d *declarations) Close() {
	if d.csv != nil {
		d.csv.Close()
	}
}

// each passes every row to fn: orders first, then refunds, then
// settlements, so a refund may name an order declared further down. A CSV
// file is read once per kind, never held in memory.
func (d *declarations) each(fn func(declfile.Row) error) error {
	if d.yaml != nil {
		for i := range d.yaml.Orders {
			if err := fn(declfile.Row{Order: &d.yaml.Orders[i]}); err != nil {
				return err
			}
		}
		for i := range d.yaml.Refunds {
			if err := fn(declfile.Row{Refund: &d.yaml.Refunds[i]}); err != nil {
				return err
			}
		}
		for i := range d.yaml.Settlements {
			if err := fn(declfile.Row{Settlement: &d.yaml.Settlements[i]}); err != nil {
				return err
			}
		}
		return nil
	}
	kinds := []func(declfile.Row) bool{
		func(r declfile.Row) bool { return r.Order != nil },
		func(r declfile.Row) bool { return r.Refund != nil },
		func(r declfile.Row) bool { return r.Settlement != nil },
	}
	for _, want := range kinds {
		if _, err := d.csv.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		err := declfile.Stream(d.name, d.csv, func(r declfile.Row) error {
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

type applyResult struct{ changed, unchanged int }

// apply writes every declaration in one transaction.
func (d *declarations) apply(ctx context.Context, st *state.Store, defApp string, now time.Time) (applyResult, error) {
	var res applyResult
	err := st.InTx(ctx, func(tx *state.Store) error {
		return d.each(func(r declfile.Row) error {
			created, err := d.applyRow(ctx, tx, r, defApp, now)
			if err != nil {
				return err
			}
			if created {
				res.changed++
			} else {
				res.unchanged++
			}
			return nil
		})
	})
	return res, err
}

// applyRow declares one row; created reports a new or changed row.
func (d *declarations) applyRow(ctx context.Context, tx *state.Store, r declfile.Row, defApp string, now time.Time) (bool, error) {
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
	}
	s := r.Settlement
	appID, err := appOf(s.Line, s.AppID)
	if err != nil {
		return false, err
	}
	_, created, err := tx.DeclareSettlement(ctx, state.SettlementWish{AppID: appID, OutOrderNo: s.Order, DueAt: s.Due, Receivers: s.StateReceivers(), Desc: s.Desc}, now)
	if err != nil {
		return false, lineError(d.name, s.Line, "settlement of %s: %v", s.Order, err)
	}
	return created, nil
}

// lineError names the file and line of a bad row.
func lineError(name string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
