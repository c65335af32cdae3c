package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/state"
)

func newFulfilCmd(g *globals) *cobra.Command {
	var item, at, app string
	cmd := &cobra.Command{
		Use:   "fulfil ORDER [--item ITEM_ORDER_ID] [--at TIME]",
		Short: "Record that an order (or one item order) was fulfilled, for a fulfilment-rule settlement",
		Long: `Record that ORDER, or its item order --item, was fulfilled (核销) at --at (default now): a fulfilment-rule
settlement (核销 D+N; CPS orders D+3) is due N days after it. payd does not tell Douyin (the merchant's flow does).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := state.FulfilmentWish{OutOrderNo: args[0], ItemOrderID: item}
			var err error
			if w.At, err = api.ParseFlagTime("--at", at); err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if w.AppID, err = appFlag(cfg, app); err != nil {
				return err
			}
			clk := clock.Real{}
			st, err := g.openExisting(cmd.Context(), cfg, clk)
			if err != nil {
				return err
			}
			defer st.Close()
			f, ch, err := st.DeclareFulfilment(cmd.Context(), w, clk.Now())
			if err != nil {
				return fmt.Errorf("fulfil %s: %w", args[0], err)
			}
			fmt.Fprintf(g.stdout, "fulfilment of order %s%s %s (fulfilled at %s)\n", args[0], api.ItemWords(item), ch, f.FulfilledAt.Format("2006-01-02T15:04:05Z"))
			return nil
		},
	}
	cmd.Flags().StringVar(&item, "item", "", "Douyin's item_order_id (default: the whole order)")
	cmd.Flags().StringVar(&at, "at", "", "when it was fulfilled (RFC 3339 or YYYY-MM-DD); default now")
	cmd.Flags().StringVar(&app, "app", "", "app_id (default: the only configured app)")
	return cmd
}
