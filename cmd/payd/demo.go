package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/demo"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		o       demo.Options
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "demo [--orders N]",
		Short: "Run the simulator and the daemon together on loopback until every order converges",
		Long: `demo starts the built-in Douyin simulator and payd's daemon in one process on loopback,
with a fresh database in a temporary directory. For every app of douyin.apps it seeds N paid
orders, declares refunds (some fail at the channel first and are retried with new numbers),
moves both clocks past the settle period, lets the settle_batch job and the reconciler settle
every order, declares a few refunds after settlement (all_settle=1), and prints a summary,
per app. It exits 0 only when every order converged, payd's sums agree with Douyin's for every
app and the simulator's ledger check is clean.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			logOut := io.Discard
			if verbose {
				logOut = g.stderr
			}
			o.Out, o.Log = g.stdout, daemon.NewLogger(cfg.Log, logOut)
			o.Start = demoStarter(o.Log)
			report, err := demo.Run(cmd.Context(), cfg, o)
			if report != nil {
				report.Print(g.stdout)
			}
			if errors.Is(err, demo.ErrCheck) {
				return &exitError{Code: 1, Err: err}
			}
			return err
		},
	}
	cmd.Flags().IntVar(&o.Orders, "orders", 200, "how many paid orders to seed per app")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up when not converged by then")
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "seed of the order amounts and refund choices")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log the daemon's and simulator's lines (JSON) to stderr")
	return cmd
}

// demoStarter starts payd's daemon for the demo, logging to log.
func demoStarter(log *logrus.Entry) demo.StartFunc {
	return func(ctx context.Context, cfg *config.Config, env demo.Env) (demo.Daemon, error) {
		d, err := daemon.Start(ctx, cfg, daemon.Options{
			Log: log, Clock: env.Clock, BaseURL: env.BaseURL, CallbackLn: env.CallbackLn, AdminLn: env.AdminLn,
		})
		if err != nil {
			return nil, err
		}
		return d, nil
	}
}
