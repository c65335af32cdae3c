package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

func newPlanCmd(g *globals) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "plan [--json]",
		Short: "Show what would be done now, what is scheduled and what is parked; exit 2 when something is due or parked",
		Long: `plan reads the desired and observed state of every due order and prints the actions the
reconciler would take now, with their reasons, those scheduled for later, and the parked
items that wait for a person, each with the command that puts it back to work. Nothing is
sent to Douyin. Like terraform plan -detailed-exitcode, it exits 0 when nothing is to be
done, 2 when something is due or parked, and 1 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			clk := clock.Real{}
			rep, err := reconcile.Report(cmd.Context(), st, clk.Now(), daemon.Policy(cfg), limit)
			if err != nil {
				return err
			}
			parked, err := st.ParkedItems(cmd.Context(), limit)
			if err != nil {
				return err
			}
			out := api.FromPlan(rep, parked)
			if asJSON {
				if err := writeJSON(g.stdout, out); err != nil {
					return err
				}
			} else {
				printPlan(g.stdout, out, parked)
			}
			if out.Changes() {
				return &exitError{Code: exitNeedsYou}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many due, scheduled and parked items")
	return cmd
}

// symbols mark actions the way terraform marks changes.
var symbols = map[string]string{
	string(reconcile.KindQueryOrder): "?", string(reconcile.KindQueryRefund): "?", string(reconcile.KindQuerySettle): "?",
	string(reconcile.KindSubmitRefund): "+", string(reconcile.KindSubmitSettle): "+",
	string(reconcile.KindParkRefund): "!", string(reconcile.KindParkSettle): "!", string(reconcile.KindSkipSettle): "~", string(reconcile.KindObserveSettle): "~",
	string(reconcile.KindAuditRefund): "+", string(reconcile.KindAwaitAudit): "~",
}

func printPlan(w io.Writer, rep api.PlanReport, parked []state.ParkedItem) {
	fmt.Fprintf(w, "payd plan at %s\n\n", rep.Now.Format(time.RFC3339))
	if len(rep.Due) == 0 && len(rep.Later) == 0 && len(rep.Parked) == 0 && len(rep.Waiting) == 0 {
		fmt.Fprintln(w, "No changes. Every order is in its desired state.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(rep.Due) > 0 {
		fmt.Fprintf(tw, "Due now (%d):\n", len(rep.Due))
		for _, a := range rep.Due {
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\t%s\n", symbols[a.Action], a.Action, a.Target, amount(a.Amount), a.Reason)
		}
		fmt.Fprintln(tw)
	}
	if len(rep.Later) > 0 {
		fmt.Fprintf(tw, "Scheduled (%d):\n", len(rep.Later))
		for _, a := range rep.Later {
			fmt.Fprintf(tw, "    %s\t%s\t%s\tin %s\t%s\n", a.Action, a.Target, amount(a.Amount), api.HumanDuration(a.At.Sub(rep.Now)), a.Reason)
		}
		fmt.Fprintln(tw)
	}
	for i, wt := range rep.Waiting {
		if i == 0 {
			fmt.Fprintf(tw, "Settlements waiting (%d):\n", len(rep.Waiting))
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", wt.Target, wt.OutOrderNo, wt.WaitsFor, wt.Reason)
	}
	tw.Flush()
	if len(parked) > 0 {
		fmt.Fprintf(w, "Parked, waiting for you (%d):\n", len(parked))
		printParked(w, parked)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Plan: %d to do now, %d scheduled, %d parked.", len(rep.Due), len(rep.Later), len(rep.Parked))
	if rep.Truncated {
		fmt.Fprint(w, " (truncated: raise --limit to see more)")
	}
	fmt.Fprintln(w, "\n(? query  + write to Douyin  ! park  ~ no call needed)")
}

// printParked lists parked items with their reason and the command that
// puts each back to work.
func printParked(w io.Writer, parked []state.ParkedItem) {
	for _, p := range parked {
		what := "refund " + p.Key
		if p.Kind == "settlement" {
			what = "settlement " + p.Number
		}
		if p.Amount > 0 {
			what += fmt.Sprintf(" (%d fen)", p.Amount)
		}
		fmt.Fprintf(w, "  ! %s of order %s: %s\n      then: %s\n", what, p.OutOrderNo, p.Reason, api.FixCommand(p))
	}
}

func amount(fen int64) string {
	if fen == 0 {
		return ""
	}
	return fmt.Sprintf("%d fen", fen)
}
