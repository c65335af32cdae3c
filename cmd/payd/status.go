package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/reconcile"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var app string
	cmd := &cobra.Command{
		Use:   "status [ORDER] [--json]",
		Short: "Counts by phase (in all and per app) and parked items, or one order's full history",
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
			sum, err := st.SummaryByApp(cmd.Context())
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
			api.WriteSummary(g.stdout, api.FromSummary(sum))
			if len(parked) == 0 {
				fmt.Fprintln(g.stdout, "\nNo parked items.")
				return nil
			}
			fmt.Fprintln(g.stdout, "\nPARKED (need a person; fix the cause, then retry):")
			printParked(g.stdout, parked)
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

func ts(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
