package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/state"
)

func newRefundCmd(g *globals) *cobra.Command {
	var (
		amount int64
		reason string
		key    string
		app    string
	)
	cmd := &cobra.Command{
		Use:   "refund ORDER --amount FEN --reason TEXT [--key KEY]",
		Short: "Declare a refund of an order (idempotent by key; safe while serve runs)",
		Long: `Declare that AMOUNT fen of ORDER (its out_order_no) must be refunded. payd records the
wish and the reconciler drives it to Douyin, retrying failed attempts with new numbers.
Without --key, the key is derived from the order, amount and reason, so repeating the same
command changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("amount") {
				return errors.New("--amount: required (fen)")
			}
			if reason == "" {
				return errors.New("--reason: required")
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			appID, err := appFlag(cfg, app)
			if err != nil {
				return err
			}
			clk := clock.Real{}
			st, err := g.openExisting(cmd.Context(), cfg, clk)
			if err != nil {
				return err
			}
			defer st.Close()
			if key == "" {
				key = state.DefaultRefundKey(appID, args[0], amount, reason)
			}
			r, created, err := st.DeclareRefund(cmd.Context(), state.RefundWish{AppID: appID, OutOrderNo: args[0], Key: key, Amount: amount, Reason: reason}, clk.Now())
			if err != nil {
				return fmt.Errorf("refund %s: %w", args[0], err)
			}
			verb := "declared"
			if !created {
				verb = "already declared, unchanged"
			}
			fmt.Fprintf(g.stdout, "refund %s of order %s: %d fen %s (phase %s, next number %s)\n", r.Key, args[0], r.Amount, verb, r.Phase, r.OutRefundNo)
			return nil
		},
	}
	cmd.Flags().Int64Var(&amount, "amount", 0, "amount to refund, in fen")
	cmd.Flags().StringVar(&reason, "reason", "", "reason shown to the buyer (at most 100 characters)")
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (1-60 of [0-9A-Za-z_-]); derived when empty")
	cmd.Flags().StringVar(&app, "app", "", "app_id (default: the only configured app)")
	return cmd
}
