package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var app string
	cmd := &cobra.Command{
		Use:   "status [ORDER] [--json]",
		Short: "Counts by phase and parked items, or one order's full history",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if len(args) == 1 {
				h, err := st.History(cmd.Context(), app, args[0])
				if err != nil {
					return fmt.Errorf("status %s: %w", args[0], err)
				}
				if asJSON {
					return writeJSON(g.stdout, api.FromHistory(h, reconcile.Plan(h.OrderView, clock.Real{}.Now(), daemon.Policy(cfg))))
				}
				api.WriteHistory(g.stdout, h)
				return nil
			}
			sum, err := st.Summary(cmd.Context())
			if err != nil {
				return err
			}
			parked, err := st.ParkedItems(cmd.Context(), 50)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, api.Status{Summary: api.FromSummary(sum), Parked: api.FromParked(parked)})
			}
			printSummary(g.stdout, sum, parked)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().StringVar(&app, "app", "", "app_id of ORDER when several apps share an out_order_no")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func printSummary(w io.Writer, s *state.Summary, parked []state.ParkedItem) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDERS\tSTATUS\tCOUNT")
	for _, k := range sortedKeys(s.Orders) {
		fmt.Fprintf(tw, "\t%s\t%d\n", k, s.Orders[k])
	}
	fmt.Fprintln(tw, "REFUNDS\tPHASE\tCOUNT\tFEN")
	for _, p := range state.ListedPhases() {
		if n := s.Refunds[p]; n > 0 {
			fmt.Fprintf(tw, "\t%s\t%d\t%d\n", p, n, s.RefundAmount[p])
		}
	}
	fmt.Fprintln(tw, "SETTLEMENTS\tPHASE\tCOUNT")
	for _, p := range state.ListedPhases() {
		if n := s.Settlements[p]; n > 0 {
			fmt.Fprintf(tw, "\t%s\t%d\n", p, n)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "settled: %d fen; events written: %d\n", s.SettledAmount, s.Events)
	if len(parked) == 0 {
		fmt.Fprintln(w, "\nNo parked items.")
		return
	}
	fmt.Fprintln(w, "\nPARKED (need a person; fix the cause, then retry):")
	printParked(w, parked)
}

func ts(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
