package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/daemon"
)

func newServeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: cron jobs, callback listener, admin API, /metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if err := cfg.ValidateServe(); err != nil {
				return fmt.Errorf("config: %w", err)
			}
			d, err := daemon.Start(cmd.Context(), cfg, daemon.Options{Log: daemon.NewLogger(cfg.Log, g.stderr)})
			if err != nil {
				return err
			}
			<-cmd.Context().Done()
			return d.Stop()
		},
	}
}
