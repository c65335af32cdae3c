package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

func newApplyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "apply",
		Short: "Run one reconcile pass now; exit 2 when it parked something, 130 when interrupted",
		Long: `apply claims every due order and takes its next steps against Douyin, under the
rate limits, exactly as the daemon's reconcile job does (it is safe to run beside serve:
orders are leased). It shows a progress bar on a terminal and one line per action otherwise.
It exits 0 when the pass is done, 1 when an action failed with an error, 2 when it parked an
item (listed, with the command that fixes it) and 130 when interrupted (what is still due is
counted; run apply again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			clk := clock.Real{}
			log := daemon.NewLogger(cfg.Log, g.stderr)
			st, err := g.openExisting(ctx, cfg, clk)
			if err != nil {
				return err
			}
			defer st.Close()
			client, err := daemon.NewClient(cfg, "", nil)
			if err != nil {
				return fmt.Errorf("douyin client: %w", err)
			}
			due, err := st.DueOrders(ctx, clk.Now(), 1<<30)
			if err != nil {
				return err
			}
			before, err := parkedSet(ctx, st)
			if err != nil {
				return err
			}
			// A payd serve on the same database shares the budgets with
			// this pass while it runs.
			members, err := daemon.JoinReplicas(ctx, st, client, clk, log, nil)
			if err != nil {
				return fmt.Errorf("join the replicas: %w", err)
			}
			beat, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
			beating := make(chan struct{})
			go func() { defer close(beating); members.Run(beat) }()
			defer func() { stopBeat(); <-beating }()
			p := api.NewProgress(g.stdout, len(due))
			rec := daemon.NewReconciler(cfg, st, client, clk, log, nil, p.Action)
			stats, err := rec.RunOnce(ctx)
			p.Done()
			return applySummary(context.WithoutCancel(ctx), g.stdout, st, clk.Now(), stats, p, before, err, ctx.Err() != nil)
		},
	}
}

// parkedSet is the numbers of the items parked now.
func parkedSet(ctx context.Context, st *state.Store) (map[string]bool, error) {
	items, err := st.ParkedItems(ctx, 1<<20)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(items))
	for _, it := range items {
		set[it.Kind+" "+it.Number] = true
	}
	return set, nil
}

// applySummary prints how the pass ended and returns its exit: 130 when
// interrupted (that wins), 1 when an action failed, 2 when the pass
// parked an item, nil when it is done.
func applySummary(ctx context.Context, w io.Writer, st *state.Store, now time.Time, stats reconcile.PassStats, p *api.Progress, before map[string]bool, runErr error, interrupted bool) error {
	if interrupted {
		left, err := st.DueOrders(ctx, now, 1<<30)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Apply interrupted after %s and %s: %s still due. Run payd apply again (or let payd serve carry on).\n",
			plural(stats.Orders, "order"), plural(total(stats.Actions), "action"), plural(len(left), "order"))
		return &exitError{Code: exitInterrupted}
	}
	items, err := st.ParkedItems(ctx, 1<<20)
	if err != nil {
		return err
	}
	var parked []state.ParkedItem
	for _, it := range items {
		if !before[it.Kind+" "+it.Number] {
			parked = append(parked, it)
		}
	}
	errs := p.Failures()
	fmt.Fprintf(w, "Apply complete: %s, %s, %s, %d parked in %s.\n", plural(stats.Orders, "order"), plural(total(stats.Actions), "action"),
		plural(len(errs), "error"), len(parked), passDuration(stats.Duration))
	for _, e := range errs {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	if len(parked) > 0 {
		fmt.Fprintf(w, "Parked by this pass, waiting for you (%d):\n", len(parked))
		printParked(w, parked)
	}
	switch {
	case runErr != nil:
		return runErr
	case len(errs) > 0:
		return &exitError{Code: exitFailed, Err: fmt.Errorf("apply: %s failed", plural(len(errs), "action"))}
	case len(parked) > 0:
		return &exitError{Code: exitNeedsYou}
	}
	return nil
}

func total(m map[reconcile.Kind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// passDuration prints a pass's duration: milliseconds under a minute,
// like 6d23h above.
func passDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Millisecond).String()
	}
	return api.HumanDuration(d)
}
