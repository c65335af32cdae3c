package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func newConfigCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration, secrets masked",
		Long: `config prints the configuration payd would run with: the file named by --config,
$PAYD_CONFIG or ./config.yaml, with ${ENV} expanded, over the defaults. Salts, tokens, the
admin token, endpoint secrets and database passwords are masked; a secret that is not set
stays empty, so the printout shows what is missing.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			out, err := yaml.Marshal(cfg.Redacted())
			if err != nil {
				return fmt.Errorf("config: %w", err)
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
}
