package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/reconcile"
)

func newPlanCmd(g *globals) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "plan [--json]",
		Short: "Show what would be done now and what is scheduled next; exit 2 when something is due",
		Long: `plan reads the desired and observed state of every due order and prints the actions the
reconciler would take now, with their reasons, and those scheduled for later. Nothing is
sent to Douyin. Like terraform plan -detailed-exitcode, it exits 0 when nothing is to be
done, 2 when something is, and 1 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			clk := clock.Real{}
			rep, err := reconcile.Report(cmd.Context(), st, clk.Now(), policy(cfg), limit)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printPlan(g.stdout, rep)
			}
			if rep.Changes() {
				return &exitError{Code: 2}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many due and this many scheduled orders")
	return cmd
}

// symbols mark actions the way terraform marks changes.
var symbols = map[reconcile.Kind]string{
	reconcile.KindQueryOrder: "?", reconcile.KindQueryRefund: "?", reconcile.KindQuerySettle: "?",
	reconcile.KindSubmitRefund: "+", reconcile.KindSubmitSettle: "+",
	reconcile.KindParkRefund: "!", reconcile.KindParkSettle: "!", reconcile.KindSkipSettle: "~",
}

func printPlan(w io.Writer, rep *reconcile.PlanReport) {
	fmt.Fprintf(w, "payd plan at %s\n\n", rep.Now.Format(time.RFC3339))
	if len(rep.Due) == 0 && len(rep.Later) == 0 {
		fmt.Fprintln(w, "No changes. Every order is in its desired state.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(rep.Due) > 0 {
		fmt.Fprintf(tw, "Due now (%d):\n", len(rep.Due))
		for _, a := range rep.Due {
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\t%s\n", symbols[a.Kind], a.Kind, a.Target, amount(a.Amount), a.Reason)
		}
		fmt.Fprintln(tw)
	}
	if len(rep.Later) > 0 {
		fmt.Fprintf(tw, "Scheduled (%d):\n", len(rep.Later))
		for _, a := range rep.Later {
			fmt.Fprintf(tw, "    %s\t%s\t%s\tin %s\t%s\n", a.Kind, a.Target, amount(a.Amount), a.At.Sub(rep.Now).Round(time.Second), a.Reason)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "Plan: %d to do now, %d scheduled.", len(rep.Due), len(rep.Later))
	if rep.Truncated {
		fmt.Fprint(w, " (truncated: raise --limit to see more)")
	}
	fmt.Fprintln(w, "\n(? query  + write to Douyin  ! park  ~ no call needed)")
}

func amount(fen int64) string {
	if fen == 0 {
		return ""
	}
	return fmt.Sprintf("%d fen", fen)
}
