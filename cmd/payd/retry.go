package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/state"
)

func newRetryCmd(g *globals) *cobra.Command {
	var app, item string
	cmd := &cobra.Command{
		Use:   "retry (refund KEY | settlement ORDER [--item ITEM_ORDER_ID])",
		Short: "Retry a parked refund or settlement with a new attempt number",
		Long: `retry moves a parked refund or settlement back to pending with the next attempt
number, so the reconciler tries again. Fix the cause first (payd status shows it): a refund of an
order that failed or timed out at Douyin cannot be retried; an order Douyin did not know is
queried again first. An order settled item by item names the item order's settlement with --item.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, id := args[0], args[1]
			if kind != "refund" && kind != "settlement" {
				return fmt.Errorf("retry %s: want \"refund KEY\" or \"settlement ORDER\"", kind)
			}
			if kind == "refund" && item != "" {
				return fmt.Errorf("--item names the item order of a settlement: retry refund KEY takes none")
			}
			cfg, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			clk := clock.Real{}
			if kind == "refund" {
				r, err := st.RetryParked(cmd.Context(), id, clk.Now())
				if err != nil {
					if errors.Is(err, state.ErrNotFound) {
						return fmt.Errorf("retry refund %s: no refund has that key", id)
					}
					return err // the store's error names the refund
				}
				fmt.Fprintf(g.stdout, "refund %s: attempt %d pending as %s\n", r.Key, r.Attempt, r.OutRefundNo)
				return nil
			}
			appID := app
			if appID == "" {
				appID = daemon.DefaultAppID(cfg)
			}
			s, err := st.RetryParkedItemSettlement(cmd.Context(), appID, id, item, clk.Now())
			if err != nil {
				if errors.Is(err, state.ErrNotFound) {
					return fmt.Errorf("retry %s: no such order or no settlement declared for it", settlementWords(id, item))
				}
				return err // the store's error names the order
			}
			fmt.Fprintf(g.stdout, "%s: attempt %d pending as %s\n", settlementWords(id, item), s.Attempt, s.OutSettleNo)
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "app_id of ORDER (default: the only configured app)")
	cmd.Flags().StringVar(&item, "item", "", "settlement ORDER: the item order's settlement (an order settled item by item)")
	return cmd
}
