package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/payd/payd/internal/state"
)

const (
	appID      = "tt-server-test"
	salt       = "server-salt-0123456789"
	token      = "server-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// wakes counts Wake calls.
type wakes struct{ n atomic.Int64 }

func (w *wakes) Wake() { w.n.Add(1) }

// fingerprint is every row payd keeps, as text: equal fingerprints mean an
// unchanged database.
func fingerprint(t *testing.T, st *state.Store) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"orders", "refunds", "settlements", "attempts", "callbacks", "events"} {
		rows, err := st.DB().Table(table).Order("id").Rows()
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		b.WriteString(table + ":\n")
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					vals[i] = string(bs)
				}
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

// count returns the rows of table.
func count(t *testing.T, st *state.Store, table string) int64 {
	t.Helper()
	var n int64
	if err := st.DB().Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// do sends a request to h's server and returns status and body.
func do(t *testing.T, c *http.Client, method, url, bearer, contentType string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
