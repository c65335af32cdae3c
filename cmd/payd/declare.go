package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/state"
)

func newDeclareCmd(g *globals) *cobra.Command {
	var file, app string
	cmd := &cobra.Command{
		Use:   "declare -f FILE",
		Short: "Declare many orders, refunds and settlements at once from YAML or CSV",
		Long: `declare records every row of FILE (YAML, or CSV when the name ends in .csv) in one
transaction: orders to import, refunds and settlements. Applying the same file twice changes
nothing. If any row is bad, the error names its line and nothing from the file is written.

YAML:
  orders:      [{out_order_no: o1, total_amount: 1000, app_id: tt1}]
  refunds:     [{order: o1, key: o1-r1, amount: 200, reason: "size"}]
  settlements: [{order: o1, at: 2026-12-01, receivers: [{merchant_uid: m1, amount: 100}]}]
CSV (header required; unused columns may be empty or left out):
  kind,app_id,order,total_amount,key,amount,reason,at,receivers,desc
  refund,,o1,,o1-r1,200,size,,,
  settlement,,o1,,,,,2026-12-01,m1:100;m2:50,`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-f FILE: required")
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("declare: %w", err)
			}
			d, err := parseDeclarations(filepath.Base(file), raw)
			if err != nil {
				return err
			}
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
			st, err := openStore(cmd.Context(), cfg, clk, newLogger(cfg.Log, g.stderr))
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := d.apply(cmd.Context(), st, defApp, clk.Now())
			if err != nil {
				return fmt.Errorf("%w (nothing from %s was written)", err, file)
			}
			fmt.Fprintf(g.stdout, "%s: %d orders, %d refunds, %d settlements: %d new or changed, %d unchanged\n",
				file, len(d.orders), len(d.refunds), len(d.settlements), res.changed, res.unchanged)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML or CSV file of declarations")
	cmd.Flags().StringVar(&app, "app", "", "app_id for rows that name none (default: the only configured app)")
	return cmd
}

type declOrder struct {
	line        int
	AppID       string `yaml:"app_id"`
	OutOrderNo  string `yaml:"out_order_no"`
	TotalAmount int64  `yaml:"total_amount"`
}

type declRefund struct {
	line   int
	AppID  string `yaml:"app_id"`
	Order  string `yaml:"order"`
	Key    string `yaml:"key"`
	Amount int64  `yaml:"amount"`
	Reason string `yaml:"reason"`
}

type declSettlement struct {
	line      int
	AppID     string         `yaml:"app_id"`
	Order     string         `yaml:"order"`
	At        string         `yaml:"at"`
	Receivers []declReceiver `yaml:"receivers"`
	Desc      string         `yaml:"desc"`
	due       *time.Time
}

// declReceiver is one settle_params receiver of a declare file.
type declReceiver struct {
	MerchantUID string `yaml:"merchant_uid"`
	Amount      int64  `yaml:"amount"`
}

// receiverFields are the keys of a YAML receiver.
var receiverFields = []string{"merchant_uid", "amount"}

func (s declSettlement) receivers() []state.Receiver {
	if len(s.Receivers) == 0 {
		return nil
	}
	out := make([]state.Receiver, len(s.Receivers))
	for i, r := range s.Receivers {
		out[i] = state.Receiver{MerchantUID: r.MerchantUID, Amount: r.Amount}
	}
	return out
}

// declarations is a parsed declare file.
type declarations struct {
	name        string
	orders      []declOrder
	refunds     []declRefund
	settlements []declSettlement
}

// lineError names the file and line of a bad row.
func lineError(name string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
}

// parseDeclarations reads YAML, or CSV when name ends in .csv, and checks
// each row's shape (the store checks the rest when applying).
func parseDeclarations(name string, raw []byte) (*declarations, error) {
	var d *declarations
	var err error
	if strings.HasSuffix(strings.ToLower(name), ".csv") {
		d, err = parseCSV(name, raw)
	} else {
		d, err = parseYAML(name, raw)
	}
	if err != nil {
		return nil, err
	}
	for i := range d.settlements {
		s := &d.settlements[i]
		if s.At != "" {
			t, err := parseTime(s.At)
			if err != nil {
				return nil, lineError(name, s.line, "settlement of %s: at %q: %v", s.Order, s.At, err)
			}
			s.due = &t
		}
	}
	if len(d.orders)+len(d.refunds)+len(d.settlements) == 0 {
		return nil, fmt.Errorf("%s: no declarations found", name)
	}
	return d, nil
}

var yamlFields = map[string][]string{
	"orders":      {"app_id", "out_order_no", "total_amount"},
	"refunds":     {"app_id", "order", "key", "amount", "reason"},
	"settlements": {"app_id", "order", "at", "receivers", "desc"},
}

func parseYAML(name string, raw []byte) (*declarations, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	d := &declarations{name: name}
	if len(doc.Content) == 0 {
		return d, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, lineError(name, top.Line, "want a mapping with orders, refunds and settlements")
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		allowed, ok := yamlFields[key.Value]
		if !ok {
			return nil, lineError(name, key.Line, "unknown section %q (want orders, refunds or settlements)", key.Value)
		}
		if val.Kind != yaml.SequenceNode {
			return nil, lineError(name, val.Line, "%s: want a list", key.Value)
		}
		for _, item := range val.Content {
			if item.Kind != yaml.MappingNode {
				return nil, lineError(name, item.Line, "%s: want a mapping per row", key.Value)
			}
			for j := 0; j+1 < len(item.Content); j += 2 {
				f := item.Content[j]
				if !contains(allowed, f.Value) {
					return nil, lineError(name, f.Line, "%s: unknown field %q (want %s)", key.Value, f.Value, strings.Join(allowed, ", "))
				}
				if f.Value == "receivers" {
					if err := checkReceivers(name, item.Content[j+1]); err != nil {
						return nil, err
					}
				}
			}
			var err error
			switch key.Value {
			case "orders":
				o := declOrder{line: item.Line}
				err = item.Decode(&o)
				d.orders = append(d.orders, o)
			case "refunds":
				r := declRefund{line: item.Line}
				err = item.Decode(&r)
				d.refunds = append(d.refunds, r)
			case "settlements":
				s := declSettlement{line: item.Line}
				err = item.Decode(&s)
				d.settlements = append(d.settlements, s)
			}
			if err != nil {
				return nil, lineError(name, item.Line, "%s: %v", key.Value, yamlMsg(err))
			}
		}
	}
	return d, nil
}

// checkReceivers refuses unknown keys in a YAML receivers list, so that a
// misspelt merchant_uid is an error rather than a receiver without one.
func checkReceivers(name string, list *yaml.Node) error {
	if list.Kind != yaml.SequenceNode {
		return nil // Decode reports the type error
	}
	for _, rc := range list.Content {
		if rc.Kind != yaml.MappingNode {
			continue
		}
		for k := 0; k+1 < len(rc.Content); k += 2 {
			if f := rc.Content[k]; !contains(receiverFields, f.Value) {
				return lineError(name, f.Line, "settlements: receivers: unknown field %q (want %s)", f.Value, strings.Join(receiverFields, ", "))
			}
		}
	}
	return nil
}

func yamlMsg(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return err.Error()
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

var csvColumns = []string{"kind", "app_id", "order", "total_amount", "key", "amount", "reason", "at", "receivers", "desc"}

func parseCSV(name string, raw []byte) (*declarations, error) {
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: header: %v", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !contains(csvColumns, h) {
			return nil, lineError(name, 1, "unknown column %q (want %s)", h, strings.Join(csvColumns, ", "))
		}
		col[h] = i
	}
	if _, ok := col["kind"]; !ok {
		return nil, lineError(name, 1, "missing column \"kind\"")
	}
	d := &declarations{name: name}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) > len(header) {
			return nil, lineError(name, line, "%d fields, header has %d", len(rec), len(header))
		}
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		num := func(c string) (int64, error) {
			s := get(c)
			if s == "" {
				return 0, nil
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: want a whole number of fen", c, s)
			}
			return n, nil
		}
		switch kind := get("kind"); kind {
		case "order":
			total, err := num("total_amount")
			if err != nil {
				return nil, lineError(name, line, "order: %v", err)
			}
			d.orders = append(d.orders, declOrder{line: line, AppID: get("app_id"), OutOrderNo: get("order"), TotalAmount: total})
		case "refund":
			amount, err := num("amount")
			if err != nil {
				return nil, lineError(name, line, "refund: %v", err)
			}
			d.refunds = append(d.refunds, declRefund{line: line, AppID: get("app_id"), Order: get("order"), Key: get("key"), Amount: amount, Reason: get("reason")})
		case "settlement":
			s := declSettlement{line: line, AppID: get("app_id"), Order: get("order"), At: get("at"), Desc: get("desc")}
			if rs := get("receivers"); rs != "" {
				for _, part := range strings.Split(rs, ";") {
					rc, err := parseReceiver(part)
					if err != nil {
						return nil, lineError(name, line, "settlement: receiver %q: %v", part, err)
					}
					s.Receivers = append(s.Receivers, declReceiver{MerchantUID: rc.MerchantUID, Amount: rc.Amount})
				}
			}
			d.settlements = append(d.settlements, s)
		default:
			return nil, lineError(name, line, "kind %q: want order, refund or settlement", kind)
		}
	}
	return d, nil
}

type applyResult struct{ changed, unchanged int }

// apply writes every declaration in one transaction.
func (d *declarations) apply(ctx context.Context, st *state.Store, defApp string, now time.Time) (applyResult, error) {
	var res applyResult
	count := func(created bool) {
		if created {
			res.changed++
		} else {
			res.unchanged++
		}
	}
	appOf := func(line int, id string) (string, error) {
		if id != "" {
			return id, nil
		}
		if defApp == "" {
			return "", lineError(d.name, line, "app_id: required when several apps are configured (or pass --app)")
		}
		return defApp, nil
	}
	err := st.InTx(ctx, func(tx *state.Store) error {
		for _, o := range d.orders {
			appID, err := appOf(o.line, o.AppID)
			if err != nil {
				return err
			}
			_, created, err := tx.UpsertOrder(ctx, state.OrderInput{AppID: appID, OutOrderNo: o.OutOrderNo, TotalAmount: o.TotalAmount}, now)
			if err != nil {
				return lineError(d.name, o.line, "order %s: %v", o.OutOrderNo, err)
			}
			count(created)
		}
		for _, r := range d.refunds {
			appID, err := appOf(r.line, r.AppID)
			if err != nil {
				return err
			}
			key := r.Key
			if key == "" {
				key = state.DefaultRefundKey(appID, r.Order, r.Amount, r.Reason)
			}
			_, created, err := tx.DeclareRefund(ctx, state.RefundWish{AppID: appID, OutOrderNo: r.Order, Key: key, Amount: r.Amount, Reason: r.Reason}, now)
			if err != nil {
				return lineError(d.name, r.line, "refund of %s: %v", r.Order, err)
			}
			count(created)
		}
		for _, s := range d.settlements {
			appID, err := appOf(s.line, s.AppID)
			if err != nil {
				return err
			}
			_, created, err := tx.DeclareSettlement(ctx, state.SettlementWish{AppID: appID, OutOrderNo: s.Order, DueAt: s.due, Receivers: s.receivers(), Desc: s.Desc}, now)
			if err != nil {
				return lineError(d.name, s.line, "settlement of %s: %v", s.Order, err)
			}
			count(created)
		}
		return nil
	})
	return res, err
}
