package main

import (
	"context"
	"io"
	"os"

	"github.com/payd/payd/internal/bench"
	"github.com/spf13/cobra"
)

// run executes the command line args; it is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr, os.Getenv)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	logLevel   string // --log-level: overrides log.level
	logFormat  string // --log-format: overrides log.format
	stdout     io.Writer
	stderr     io.Writer
	getenv     func(string) string
}

func newRoot(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:   "payd",
		Short: "Declarative reconciliation of Douyin guaranteed-payment refunds and settlements",
		Long: `payd drives every Douyin guaranteed-payment order to the state the merchant declared:
refunds that go through even when Douyin is busy or a channel fails, settlement after the
T+N withdrawal period, callbacks treated as hints. Desired state lives in a database; cron
jobs reconcile it under Douyin's rate limits.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = "set"
	root.SetVersionTemplate(versionText())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "config file (default $PAYD_CONFIG, else ./config.yaml)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "", "json or text (overrides log.format)")
	root.AddCommand(
		newServeCmd(g),
		newRefundCmd(g),
		newSettleCmd(g), newFulfilCmd(g),
		newDeclareCmd(g),
		newPlanCmd(g),
		newApplyCmd(g),
		newStatusCmd(g),
		newSandboxCmd(g),
		newMigrateCmd(g),
		newDemoCmd(g),
		newAuditCmd(g),
		newOrderCmd(g),
		newEventsCmd(g),
		bench.NewCommand(g.stdout, g.stderr),
		newRetryCmd(g),
		newVersionCmd(g),
		newCancelCmd(g),
		newConfigCmd(g),
	)
	return root
}
