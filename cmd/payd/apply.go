package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/reconcile"
)

func newApplyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "apply",
		Short: "Run one reconcile pass now",
		Long: `apply claims every due order and takes its next steps against Douyin, under the
rate limits, exactly as the daemon's reconcile job does (it is safe to run beside serve:
orders are leased). It shows a progress bar on a terminal and one line per action otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			clk := clock.Real{}
			log := newLogger(cfg.Log, g.stderr)
			st, err := g.openExisting(cmd.Context(), cfg, clk)
			if err != nil {
				return err
			}
			defer st.Close()
			client, err := newClient(cfg, "", nil)
			if err != nil {
				return fmt.Errorf("douyin client: %w", err)
			}
			due, err := st.DueOrders(cmd.Context(), clk.Now(), 1<<30)
			if err != nil {
				return err
			}
			// A payd serve on the same database shares the budgets with
			// this pass while it runs.
			members, err := joinReplicas(cmd.Context(), st, client, clk, log, nil)
			if err != nil {
				return fmt.Errorf("join the replicas: %w", err)
			}
			beat, stopBeat := context.WithCancel(context.WithoutCancel(cmd.Context()))
			beating := make(chan struct{})
			go func() { defer close(beating); members.Run(beat) }()
			defer func() { stopBeat(); <-beating }()
			p := newProgress(g.stdout, len(due))
			rec := newReconciler(cfg, st, client, clk, log, nil, p.action)
			stats, err := rec.RunOnce(cmd.Context())
			p.done()
			fmt.Fprintf(g.stdout, "Apply complete: %d orders, %d actions, %d errors in %s.\n", stats.Orders, total(stats.Actions), stats.Errors, stats.Duration.Round(1e6))
			return err
		},
	}
}

func total(m map[reconcile.Kind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// progress reports a pass: a bar on a terminal, plain lines otherwise.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	total int
	n     atomic.Int64
	seen  map[string]bool // orders acted on
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total, seen: map[string]bool{}}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) action(r reconcile.ActionResult) {
	n := p.n.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[r.Order] = true
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

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
