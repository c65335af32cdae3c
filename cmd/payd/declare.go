package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/declfile"
)

func newDeclareCmd(g *globals) *cobra.Command {
	var file, app string
	cmd := &cobra.Command{
		Use:   "declare -f FILE",
		Short: "Declare many orders, refunds and settlements at once from YAML or CSV",
		Long: `declare records every row of FILE (YAML, or CSV when the name ends in .csv; at most
64 MiB, CSV read row by row) in one transaction: orders to import, refunds and settlements.
Applying the same file twice changes nothing. If any row is bad, the error names its line and
nothing from the file is written.

YAML (one document):
  orders:      [{out_order_no: o1, total_amount: 1000, app_id: tt1}]
  refunds:     [{order: o1, key: o1-r1, amount: 200, reason: "size"}]
  settlements: [{order: o1, at: 2026-12-01, receivers: [{merchant_uid: m1, amount: 100}]}]
CSV (header required; unused columns may be empty or left out; a UTF-8 BOM is fine):
  kind,app_id,order,total_amount,key,amount,reason,at,receivers,desc
  refund,,o1,,o1-r1,200,size,,,
  settlement,,o1,,,,,2026-12-01,m1:100;m2:50,`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-f FILE: required")
			}
			src, err := declfile.Open(file)
			if err != nil {
				return err
			}
			defer src.Close()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			defApp := app
			if defApp != "" || daemon.DefaultAppID(cfg) != "" {
				if defApp, err = appFlag(cfg, app); err != nil {
					return err
				}
			}
			clk := clock.Real{}
			st, err := g.openExisting(cmd.Context(), cfg, clk)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := src.Apply(cmd.Context(), st, defApp, clk.Now())
			if err != nil {
				return fmt.Errorf("%w (nothing from %s was written)", err, file)
			}
			fmt.Fprintf(g.stdout, "%s: %s: %d new or changed, %d unchanged\n", file, src.Counts(), res.Changed, res.Unchanged)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML or CSV file of declarations (at most 64 MiB)")
	cmd.Flags().StringVar(&app, "app", "", "app_id for rows that name none (default: the only configured app)")
	return cmd
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
