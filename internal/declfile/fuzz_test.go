package declfile

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParseDeclarations feeds Parse arbitrary YAML and CSV. It must never
// panic, and a file it accepts must hold rows of the shapes the store
// expects: at least one row, every row with a line number, a settlement's
// due time set exactly when "at" is given (and in UTC), CSV values trimmed
// and CSV receivers with a merchant and a positive amount. Parsing is
// deterministic.
func FuzzParseDeclarations(f *testing.F) {
	seeds := []struct {
		csv bool
		raw string
	}{
		{false, "orders: [{out_order_no: o1, total_amount: 1000, app_id: tt1}]\nrefunds: [{order: o1, key: o1-r1, amount: 200, reason: size}]\nsettlements: [{order: o1, at: 2026-12-01, receivers: [{merchant_uid: m1, amount: 100}]}]\n"},
		{false, "refunds:\n  - order: o2\n    amount: 5\nsettlements:\n  - order: o2\n    at: \"2026-01-02T15:04:05+08:00\"\n"},
		{false, "refunds: {order: o1}\n"},
		{false, "- a\n- b\n"},
		{false, "orders: [{bogus: 1}]\n"},
		{false, "orders: [{out_order_no: o1}]\n---\nrefunds: [{order: o1, amount: 1}]\n"},
		{true, "kind,app_id,order,total_amount,key,amount,reason,at,receivers,desc\nrefund,,o1,,o1-r1,200,size,,,\nsettlement,,o1,,,,,2026-12-01,m1:100;m2:50,\n"},
		{true, "\ufeffkind,order,amount\norder,o9,\nrefund, o9 ,12\n"},
		{true, "kind,order,receivers\nsettlement,o1,m1:0\n"},
	}
	for _, s := range seeds {
		f.Add(s.csv, []byte(s.raw))
	}
	f.Fuzz(func(t *testing.T, isCSV bool, raw []byte) {
		name := "wishes.yaml"
		if isCSV {
			name = "wishes.csv"
		}
		d, err := Parse(name, bytes.NewReader(raw))
		if err != nil {
			if d != nil {
				t.Fatalf("error %v with a result", err)
			}
			if !strings.HasPrefix(err.Error(), name) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if d == nil || d.Name != name {
			t.Fatalf("accepted without a result named %s: %+v", name, d)
		}
		if len(d.Orders)+len(d.Refunds)+len(d.Settlements) == 0 {
			t.Fatal("accepted a file with no declarations")
		}
		checkRows(t, d, isCSV)
		again, err := Parse(name, bytes.NewReader(raw))
		if err != nil || !reflect.DeepEqual(d, again) {
			t.Fatalf("second parse differs: %v\n%+v\n%+v", err, d, again)
		}
	})
}

func checkRows(t *testing.T, d *File, isCSV bool) {
	t.Helper()
	trimmed := func(what, s string) {
		if isCSV && s != strings.TrimSpace(s) {
			t.Fatalf("%s %q not trimmed", what, s)
		}
	}
	for _, o := range d.Orders {
		if o.Line < 1 {
			t.Fatalf("order without a line: %+v", o)
		}
		trimmed("out_order_no", o.OutOrderNo)
	}
	for _, r := range d.Refunds {
		if r.Line < 1 {
			t.Fatalf("refund without a line: %+v", r)
		}
		trimmed("order", r.Order)
		trimmed("key", r.Key)
	}
	for _, s := range d.Settlements {
		if s.Line < 1 {
			t.Fatalf("settlement without a line: %+v", s)
		}
		if (s.At == "") != (s.Due == nil) {
			t.Fatalf("settlement at %q parsed to due %v", s.At, s.Due)
		}
		if s.Due != nil && s.Due.Location() != time.UTC {
			t.Fatalf("settlement at %q: due %v not in UTC", s.At, s.Due)
		}
		trimmed("order", s.Order)
		if isCSV {
			for _, rc := range s.Receivers {
				if rc.MerchantUID == "" || rc.MerchantUID != strings.TrimSpace(rc.MerchantUID) || rc.Amount <= 0 {
					t.Fatalf("CSV receiver %+v: want a trimmed merchant and a positive amount", rc)
				}
			}
		}
	}
}
