package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/state"
)

func newCancelCmd(g *globals) *cobra.Command {
	var app, reason, item string
	cmd := &cobra.Command{
		Use:   "cancel (refund KEY | settlement ORDER [--item ITEM_ORDER_ID]) [--reason TEXT]",
		Short: "Withdraw a pending or parked refund or settlement",
		Long: `cancel withdraws a wish that has nothing in flight: a refund or settlement that is pending
or parked becomes cancelled, with an event (refund.cancelled, settlement.cancelled) and a line
in payd status ORDER. It is refused, with the reason, while an attempt is at Douyin (money may
move: wait until it has succeeded or parked). A cancelled settlement is never re-created by
settle_batch. An order settled item by item names the item order's settlement with --item.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, id := args[0], args[1]
			if kind != "refund" && kind != "settlement" {
				return fmt.Errorf("cancel %s: want \"refund KEY\" or \"settlement ORDER\"", kind)
			}
			if kind == "refund" && item != "" {
				return fmt.Errorf("--item names the item order of a settlement: cancel refund KEY takes none")
			}
			cfg, st, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			now := clock.Real{}.Now()
			if kind == "refund" {
				r, err := st.CancelRefund(cmd.Context(), id, reason, now)
				if errors.Is(err, state.ErrNotFound) {
					return fmt.Errorf("cancel refund %s: no refund has that key (payd status ORDER lists an order's refunds)", id)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "refund %s: %s (%d fen, attempt %d)\n", r.Key, r.Phase, r.Amount, r.Attempt)
				return nil
			}
			appID := app
			if appID == "" {
				appID = daemon.DefaultAppID(cfg)
			}
			s, err := st.CancelItemSettlement(cmd.Context(), appID, id, item, reason, now)
			if errors.Is(err, state.ErrNotFound) {
				return fmt.Errorf("cancel %s: no such order or no settlement declared for it", settlementWords(id, item))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: %s (number %s)\n", settlementWords(id, item), s.Phase, s.OutSettleNo)
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "app_id of ORDER (default: the only configured app)")
	cmd.Flags().StringVar(&item, "item", "", "settlement ORDER: the item order's settlement (an order settled item by item)")
	cmd.Flags().StringVar(&reason, "reason", "withdrawn by the operator", "why, kept with the item and sent in the event")
	return cmd
}

// settlementWords names a settlement in what cancel and retry print.
func settlementWords(order, item string) string {
	if item == "" {
		return "settlement of order " + order
	}
	return "settlement of item order " + item + " of order " + order
}
