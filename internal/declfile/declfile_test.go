package declfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestParse_limitsAndEncodings(t *testing.T) {
	tests := []struct {
		name, file string
		r          io.Reader
		want       string // error; "" for success
	}{
		{"endless YAML is refused, not read until memory runs out", "zero", zeros{}, "zero: " + ErrTooLarge.Error()},
		{"endless CSV is refused", "zero.csv", zeros{}, "zero.csv: " + ErrTooLarge.Error()},
		{"a file just over the limit", "big.yaml", io.MultiReader(strings.NewReader("orders: []\n#"), bytes.NewReader(make([]byte, MaxSize))), "big.yaml: " + ErrTooLarge.Error()},
		{"a second YAML document is refused", "w.yaml", strings.NewReader("orders: [{out_order_no: o1}]\n---\nrefunds: [{order: o1, amount: 1}]\n"),
			"w.yaml:2: a second YAML document (after ---): a declare file holds one; merge them or declare each file on its own"},
		{"a UTF-8 BOM in CSV (Excel) is accepted", "w.csv", strings.NewReader("\ufeffkind,order,amount,reason\nrefund,o1,5,x\n"), ""},
		{"a UTF-8 BOM in YAML is accepted", "w.yaml", strings.NewReader("\ufefforders: [{out_order_no: o1}]\n"), ""},
		{"one document ended by ... is fine", "w.yaml", strings.NewReader("orders: [{out_order_no: o1}]\n...\n"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file, tc.r)
			if tc.want == "" {
				if err != nil || len(f.Orders)+len(f.Refunds) != 1 {
					t.Fatalf("Parse: %v, %+v", err, f)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error:\n got  %v\n want %s", err, tc.want)
			}
		})
	}
	t.Run("/dev/zero", func(t *testing.T) {
		z, err := os.Open("/dev/zero")
		if err != nil {
			t.Fatalf("open /dev/zero: %v", err)
		}
		defer z.Close()
		if _, err := Parse("zero", z); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Parse(/dev/zero): %v, want ErrTooLarge", err)
		}
	})
}

// zeros is an endless stream of NUL bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// csvLines generates a CSV declare file of n refund rows without holding
// it: about 20 bytes a row.
type csvLines struct {
	n, i int
	buf  bytes.Buffer
}

func (c *csvLines) Read(p []byte) (int, error) {
	for c.buf.Len() < len(p) && c.i <= c.n {
		if c.i == 0 {
			c.buf.WriteString("kind,order,amount,key\n")
		} else {
			fmt.Fprintf(&c.buf, "refund,o%d,5,k%d\n", c.i, c.i)
		}
		c.i++
	}
	if c.buf.Len() == 0 {
		return 0, io.EOF
	}
	return c.buf.Read(p)
}

// TestStream_csvIsNotHeldInMemory streams a 1,000,000-row CSV (about 20
// MB) and samples the heap along the way: it must stay far below the
// file's size, which holding the file (or its records) would exceed.
func TestStream_csvIsNotHeldInMemory(t *testing.T) {
	const rows = 1_000_000
	runtime.GC()
	var peak uint64
	var ms runtime.MemStats
	n := 0
	err := Stream("big.csv", &csvLines{n: rows}, func(r Row) error {
		n++
		if n%50_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil || n != rows {
		t.Fatalf("Stream: %v after %d rows", err, n)
	}
	t.Logf("%d rows streamed, heap peak %.1f MiB", n, float64(peak)/(1<<20))
	if peak > 16<<20 {
		t.Fatalf("heap peaked at %.1f MiB while streaming a 20 MB CSV: rows are being held", float64(peak)/(1<<20))
	}
}

func BenchmarkStream_csv1M(b *testing.B) {
	for b.Loop() {
		if err := Stream("big.csv", &csvLines{n: 1_000_000}, func(Row) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
