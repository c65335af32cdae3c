package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/state"
)

func newMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			st, err := daemon.OpenStore(cmd.Context(), cfg, clock.Real{}, daemon.NewLogger(cfg.Log, g.stderr))
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(g.stdout, "database %s (%s) is at schema version %d\n", cfg.Database.DSN, cfg.Database.Driver, state.SchemaVersion)
			return nil
		},
	}
}
