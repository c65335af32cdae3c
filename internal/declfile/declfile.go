// Package declfile reads payd's declare files: YAML, or CSV when the name
// ends in .csv, holding orders to import, refunds and settlements. It
// checks each row's shape (the store checks the rest when the rows are
// applied), reads at most MaxSize bytes, and streams CSV row by row so a
// file of millions of rows is never held whole in memory.
package declfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/state"
)

// MaxSize is the most a declare file may hold: 64 MiB. Split a larger one.
const MaxSize = 64 << 20

// Order is an order to import.
type Order struct {
	Line        int    `yaml:"-"`
	AppID       string `yaml:"app_id"`
	OutOrderNo  string `yaml:"out_order_no"`
	TotalAmount int64  `yaml:"total_amount"`
}

// Refund is a refund wish.
type Refund struct {
	Line   int    `yaml:"-"`
	AppID  string `yaml:"app_id"`
	Order  string `yaml:"order"`
	Key    string `yaml:"key"`
	Amount int64  `yaml:"amount"`
	Reason string `yaml:"reason"`
}

// Settlement is a settlement wish.
type Settlement struct {
	Line      int        `yaml:"-"`
	AppID     string     `yaml:"app_id"`
	Order     string     `yaml:"order"`
	At        string     `yaml:"at"`
	Receivers []Receiver `yaml:"receivers"`
	Desc      string     `yaml:"desc"`
	// Item settles one item order (Douyin's item_order_id); empty for the
	// whole order.
	Item string `yaml:"item"`
	// Due is At parsed (UTC); nil when At is empty.
	Due *time.Time `yaml:"-"`
}

// Fulfilment records that an order, or one item order of it, was
// fulfilled (the fulfilment settle rule).
type Fulfilment struct {
	Line  int    `yaml:"-"`
	AppID string `yaml:"app_id"`
	Order string `yaml:"order"`
	// Item is Douyin's item_order_id; empty for the whole order.
	Item string `yaml:"item"`
	// At is when it was fulfilled (RFC 3339 or YYYY-MM-DD); empty for now.
	At string `yaml:"at"`
	// When is At parsed (UTC); nil when At is empty.
	When *time.Time `yaml:"-"`
}

// Receiver is one settle_params receiver.
type Receiver struct {
	MerchantUID string `yaml:"merchant_uid"`
	Amount      int64  `yaml:"amount"`
}

// StateReceivers converts the settlement's receivers for the store; nil
// when there are none.
func (s Settlement) StateReceivers() []state.Receiver {
	if len(s.Receivers) == 0 {
		return nil
	}
	out := make([]state.Receiver, len(s.Receivers))
	for i, r := range s.Receivers {
		out[i] = state.Receiver{MerchantUID: r.MerchantUID, Amount: r.Amount}
	}
	return out
}

// Row is one declaration: exactly one of its fields is set.
type Row struct {
	Order      *Order
	Refund     *Refund
	Settlement *Settlement
	Fulfilment *Fulfilment
}

// File is a whole parsed declare file.
type File struct {
	Name        string
	Orders      []Order
	Refunds     []Refund
	Settlements []Settlement
	Fulfilments []Fulfilment
}

// IsCSV reports whether a file of that name is read as CSV.
func IsCSV(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".csv") }

// lineError names the file and line of a bad row.
func lineError(name string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
}

// ErrTooLarge is returned for a file of more than MaxSize bytes.
var ErrTooLarge = errors.New("larger than 64 MiB, the most a declare file may hold: split it into several files")

// limited reads at most MaxSize bytes of r and then fails with
// ErrTooLarge, so that /dev/zero or a runaway file is refused, not read
// until memory runs out.
type limited struct {
	r    io.Reader
	left int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, ErrTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// open wraps r with the size limit and drops a UTF-8 byte order mark, as
// Excel writes at the start of a CSV file.
func open(r io.Reader) *bufio.Reader {
	br := bufio.NewReaderSize(&limited{r: r, left: MaxSize}, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\ufeff")) {
		_, _ = br.Discard(3)
	}
	return br
}

// readErr names the file of a read error.
func readErr(name string, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%s: %w", name, ErrTooLarge)
	}
	return fmt.Errorf("%s: %v", name, err)
}

// Parse reads a whole declare file; name decides the format and appears
// in every error. A file without any declaration is an error.
func Parse(name string, r io.Reader) (*File, error) {
	f := &File{Name: name}
	err := Stream(name, r, func(row Row) error {
		switch {
		case row.Order != nil:
			f.Orders = append(f.Orders, *row.Order)
		case row.Refund != nil:
			f.Refunds = append(f.Refunds, *row.Refund)
		case row.Settlement != nil:
			f.Settlements = append(f.Settlements, *row.Settlement)
		case row.Fulfilment != nil:
			f.Fulfilments = append(f.Fulfilments, *row.Fulfilment)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Stream reads a declare file and calls fn for each row, in file order
// for CSV (read row by row) and section by section for YAML (orders,
// refunds, settlements, as written). It stops at the first bad row or
// error of fn. A file without any declaration is an error.
func Stream(name string, r io.Reader, fn func(Row) error) error {
	n := 0
	count := func(row Row) error {
		n++
		if s := row.Settlement; s != nil && s.At != "" {
			t, err := api.ParseTime(s.At)
			if err != nil {
				return lineError(name, s.Line, "settlement of %s: at %q: %v", s.Order, s.At, err)
			}
			s.Due = &t
		}
		if f := row.Fulfilment; f != nil {
			t, err := api.ParseFlagTime("at", f.At)
			if err != nil {
				return lineError(name, f.Line, "fulfilment of %s: %v", f.Order, err)
			}
			f.When = t
		}
		return fn(row)
	}
	var err error
	if IsCSV(name) {
		err = streamCSV(name, open(r), count)
	} else {
		err = streamYAML(name, open(r), count)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: no declarations found", name)
	}
	return nil
}

// ParseReceiver parses a receiver written MERCHANT_UID:FEN.
func ParseReceiver(s string) (Receiver, error) {
	uid, fen, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(uid) == "" {
		return Receiver{}, fmt.Errorf("want MERCHANT_UID:FEN")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(fen), 10, 64)
	if err != nil || n <= 0 {
		return Receiver{}, fmt.Errorf("amount %q: want a positive whole number of fen", fen)
	}
	return Receiver{MerchantUID: strings.TrimSpace(uid), Amount: n}, nil
}
