package api

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/payd/payd/internal/reconcile"
)

// Progress reports an apply pass as it goes: a bar on a terminal, one
// line per action otherwise; it keeps the actions that failed.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	total int
	n     atomic.Int64
	seen  map[string]bool // orders acted on
	errs  []string        // actions that failed with an error
}

// Failures names the actions that failed with an error.
func (p *Progress) Failures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// NewProgress reports to w a pass over total orders.
func NewProgress(w io.Writer, total int) *Progress {
	return &Progress{w: w, tty: isTerminal(w), total: total, seen: map[string]bool{}}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Action is the reconciler's observer: it reports one action.
func (p *Progress) Action(r reconcile.ActionResult) {
	n := p.n.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[r.Order] = true
	if r.Err != nil {
		p.errs = append(p.errs, fmt.Sprintf("order %s: %s %s: %v", r.Order, r.Action.Kind, r.Action.MerchantNo, r.Err))
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s %s %s: %s\n", r.Order, r.Action.Kind, r.Action.MerchantNo, r.Outcome)
		return
	}
	const width = 30
	filled := width
	if p.total > len(p.seen) {
		filled = len(p.seen) * width / p.total
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d orders, %d actions  %-40.40s", strings.Repeat("#", filled), strings.Repeat("-", width-filled),
		len(p.seen), p.total, n, string(r.Action.Kind)+" "+r.Action.MerchantNo)
}

// Done ends the report (the bar's line).
func (p *Progress) Done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
