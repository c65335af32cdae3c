package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/state"
)

func newSettleCmd(g *globals) *cobra.Command {
	var (
		at        string
		receivers []string
		desc      string
		app       string
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
			w := state.SettlementWish{OutOrderNo: args[0], Desc: desc}
			if at != "" {
				t, err := parseTime(at)
				if err != nil {
					return fmt.Errorf("--at %q: %w", at, err)
				}
				w.DueAt = &t
			}
			for _, r := range receivers {
				rc, err := parseReceiver(r)
				if err != nil {
					return fmt.Errorf("--receiver %q: %w", r, err)
				}
				w.Receivers = append(w.Receivers, rc)
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if w.AppID, err = appFlag(cfg, app); err != nil {
				return err
			}
			clk := clock.Real{}
			st, err := openStore(cmd.Context(), cfg, clk, newLogger(cfg.Log, g.stderr))
			if err != nil {
				return err
			}
			defer st.Close()
			s, created, err := st.DeclareSettlement(cmd.Context(), w, clk.Now())
			if err != nil {
				return fmt.Errorf("settle %s: %w", args[0], err)
			}
			verb := "declared"
			if !created {
				verb = "updated or unchanged"
			}
			fmt.Fprintf(g.stdout, "settlement of order %s %s (phase %s, number %s)\n", args[0], verb, s.Phase, s.OutSettleNo)
			return nil
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "earliest time to settle (RFC 3339 or YYYY-MM-DD); default: when the settle period has passed")
	cmd.Flags().StringArrayVar(&receivers, "receiver", nil, "third-party receiver as MERCHANT_UID:FEN (repeatable, at most 4)")
	cmd.Flags().StringVar(&desc, "desc", "", "settle_desc (at most 80 characters); default from the app's config")
	cmd.Flags().StringVar(&app, "app", "", "app_id (default: the only configured app)")
	return cmd
}

// parseTime accepts RFC 3339 or a bare date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 (2026-01-02T15:04:05Z) or YYYY-MM-DD")
	}
	return t, nil
}

// parseReceiver parses UID:FEN.
func parseReceiver(s string) (state.Receiver, error) {
	uid, fen, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(uid) == "" {
		return state.Receiver{}, fmt.Errorf("want MERCHANT_UID:FEN")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(fen), 10, 64)
	if err != nil || n <= 0 {
		return state.Receiver{}, fmt.Errorf("amount %q: want a positive whole number of fen", fen)
	}
	return state.Receiver{MerchantUID: strings.TrimSpace(uid), Amount: n}, nil
}
