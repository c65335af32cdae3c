package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/declfile"
	"github.com/payd/payd/internal/state"
)

func newSettleCmd(g *globals) *cobra.Command {
	var (
		at        string
		receivers []string
		desc      string
		app       string
		item      string
	)
	cmd := &cobra.Command{
		Use:   "settle ORDER [--at TIME] [--receiver UID:FEN]...",
		Short: "Declare (or change) the settlement of an order",
		Long: `Declare that ORDER must be settled: not before its T+N settle period has passed, nor before
--at (RFC 3339 or YYYY-MM-DD, UTC), sharing the given amounts with third-party receivers
(at most 4, together at most 30% of the order). A pending settlement can be changed by
declaring it again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := state.SettlementWish{OutOrderNo: args[0], Desc: desc, ItemOrderID: item}
			var err error
			if w.DueAt, err = api.ParseFlagTime("--at", at); err != nil {
				return err
			}
			for _, r := range receivers {
				rc, err := declfile.ParseReceiver(r)
				if err != nil {
					return fmt.Errorf("--receiver %q: %w", r, err)
				}
				w.Receivers = append(w.Receivers, state.Receiver{MerchantUID: rc.MerchantUID, Amount: rc.Amount})
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
			s, ch, err := st.DeclareSettlementChange(cmd.Context(), w, clk.Now())
			if err != nil {
				return fmt.Errorf("settle %s: %w", args[0], err)
			}
			fmt.Fprintf(g.stdout, "settlement of order %s %s (phase %s, number %s)\n", args[0]+api.ItemWords(item), ch, s.Phase, s.OutSettleNo)
			return nil
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "earliest time to settle (RFC 3339 or YYYY-MM-DD); default: when the settle period has passed")
	cmd.Flags().StringArrayVar(&receivers, "receiver", nil, "third-party receiver as MERCHANT_UID:FEN (repeatable, at most 4)")
	cmd.Flags().StringVar(&desc, "desc", "", "settle_desc (at most 80 characters); default from the app's config")
	cmd.Flags().StringVar(&app, "app", "", "app_id (default: the only configured app)")
	cmd.Flags().StringVar(&item, "item", "", "settle only this item order (Douyin's item_order_id; fulfilment-rule apps): an order is settled whole or item by item")
	return cmd
}
