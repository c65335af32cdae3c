package declfile

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Columns are the columns a CSV declare file may have; kind is required.
var Columns = []string{"kind", "app_id", "order", "total_amount", "key", "amount", "reason", "at", "receivers", "desc", "item"}

// csvRow reads the named columns of one record.
type csvRow struct {
	col map[string]int
	rec []string
}

func (c csvRow) get(name string) string {
	if i, ok := c.col[name]; ok && i < len(c.rec) {
		return strings.TrimSpace(c.rec[i])
	}
	return ""
}

func (c csvRow) num(name string) (int64, error) {
	s := c.get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a whole number of fen", name, s)
	}
	return n, nil
}

// streamCSV reads a CSV declare file record by record (the reader reuses
// its record buffer), passing each row to fn.
func streamCSV(name string, r io.Reader, fn func(Row) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, ErrTooLarge) {
			return readErr(name, err)
		}
		return fmt.Errorf("%s:1: header: %v", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(Columns, h) {
			return lineError(name, 1, "unknown column %q (want %s)", h, strings.Join(Columns, ", "))
		}
		col[h] = i
	}
	if _, ok := col["kind"]; !ok {
		return lineError(name, 1, "missing column \"kind\"")
	}
	width := len(header)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) > width {
			return lineError(name, line, "%d fields, header has %d", len(rec), width)
		}
		row, err := csvDecl(name, line, csvRow{col: col, rec: rec})
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// csvDecl turns one CSV record into a row.
func csvDecl(name string, line int, c csvRow) (Row, error) {
	switch kind := c.get("kind"); kind {
	case "order":
		total, err := c.num("total_amount")
		if err != nil {
			return Row{}, lineError(name, line, "order: %v", err)
		}
		return Row{Order: &Order{Line: line, AppID: c.get("app_id"), OutOrderNo: c.get("order"), TotalAmount: total}}, nil
	case "refund":
		amount, err := c.num("amount")
		if err != nil {
			return Row{}, lineError(name, line, "refund: %v", err)
		}
		return Row{Refund: &Refund{Line: line, AppID: c.get("app_id"), Order: c.get("order"), Key: c.get("key"), Amount: amount, Reason: c.get("reason")}}, nil
	case "settlement":
		s := &Settlement{Line: line, AppID: c.get("app_id"), Order: c.get("order"), At: c.get("at"), Desc: c.get("desc"), Item: c.get("item")}
		if rs := c.get("receivers"); rs != "" {
			for _, part := range strings.Split(rs, ";") {
				rc, err := ParseReceiver(part)
				if err != nil {
					return Row{}, lineError(name, line, "settlement: receiver %q: %v", part, err)
				}
				s.Receivers = append(s.Receivers, rc)
			}
		}
		return Row{Settlement: s}, nil
	case "fulfil":
		return Row{Fulfilment: &Fulfilment{Line: line, AppID: c.get("app_id"), Order: c.get("order"), Item: c.get("item"), At: c.get("at")}}, nil
	default:
		return Row{}, lineError(name, line, "kind %q: want order, refund, settlement or fulfil", kind)
	}
}
