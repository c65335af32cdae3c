package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/sandbox"
)

func newSandboxCmd(g *globals) *cobra.Command {
	var (
		listen, appID, salt, token, notify, tradeKey string
		settlePeriod, delay                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sandbox [--listen 127.0.0.1:PORT]",
		Short: "Run the built-in Douyin simulators (ecpay and the trade system)",
		Long: `sandbox serves a Douyin ecpay v1 simulator: the six endpoints with signatures, idempotency,
settle periods, asynchronous results, signed callbacks, rate limits and fault injection, and a
control API under /_sim/ (orders, clock, faults, ledger, check, stats). It serves every app of
douyin.apps, each with its own salt and token; --app-id, --salt and --token override the first
app (or define one when the config has no ecpay app), the other flags the sandbox section.
The apps with api: trade are served by a trade-system simulator on the same listener: the
trade_basic endpoints, /oauth/client_token/ and a control API under /_sim/trade/.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			sb := cfg.Sandbox
			flags := cmd.Flags()
			if flags.Changed("listen") {
				sb.Listen = listen
			}
			if flags.Changed("settle-period") {
				sb.SettlePeriod = config.D(settlePeriod)
			}
			if flags.Changed("processing-delay") {
				sb.ProcessingDelay = config.D(delay)
			}
			if flags.Changed("notify-url") {
				sb.NotifyURL = notify
			}
			if err := faultFlags(cmd, &sb.Faults); err != nil {
				return err
			}
			apps := config.SimulatorApps(cfg.Douyin.Apps)
			tr := sandbox.Trade{Apps: config.TradeSimulatorApps(cfg.Douyin.Apps, sb.NotifyURL), KeyFile: tradeKey}
			if len(apps) == 0 && (len(tr.Apps) == 0 || flags.Changed("app-id") || flags.Changed("salt") || flags.Changed("token")) {
				apps = []douyinsim.App{{}}
			}
			if flags.Changed("app-id") {
				apps[0].AppID = appID
			}
			if flags.Changed("salt") {
				apps[0].Salt = salt
			}
			if flags.Changed("token") {
				apps[0].Token = token
			}
			return sandbox.Serve(cmd.Context(), g.stdout, sb, apps, tr, daemon.NewLogger(cfg.Log, g.stderr).WithField("component", "sandbox"))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "", "address to listen on (default sandbox.listen)")
	fl.StringVar(&appID, "app-id", "", "app_id of the first app (default: first of douyin.apps)")
	fl.StringVar(&salt, "salt", "", "SALT the first app's requests are signed with")
	fl.StringVar(&token, "token", "", "Token the first app's callbacks are signed with")
	fl.DurationVar(&settlePeriod, "settle-period", 0, "settle period after payment (default sandbox.settle_period)")
	fl.DurationVar(&delay, "processing-delay", 0, "how long refunds and settlements stay PROCESSING")
	fl.StringVar(&notify, "notify-url", "", "where callbacks are sent")
	fl.StringVar(&tradeKey, "trade-key", "", "PEM file of the platform key the trade simulator signs callbacks with; created when missing, its public half in FILE.pub (default: a key of this run only)")
	var f douyinsim.Faults
	for _, p := range f.Probabilities() {
		fl.Float64(flagName(p.Key), 0, "probability of fault "+p.Key+" (0..1)")
	}
	for _, d := range f.Durations() {
		fl.Duration(flagName(d.Key), 0, "fault duration "+d.Key)
	}
	return cmd
}

// flagName is the flag of a fault key: http500_after_effect is
// --http500-after-effect.
func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// faultFlags overrides f with the fault flags given on the command line.
func faultFlags(cmd *cobra.Command, f *douyinsim.Faults) error {
	flags := cmd.Flags()
	for _, p := range f.Probabilities() {
		name := flagName(p.Key)
		if !flags.Changed(name) {
			continue
		}
		v, err := flags.GetFloat64(name)
		if err != nil {
			return err
		}
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("--%s %v: want a probability between 0 and 1", name, v)
		}
		*p.P = v
	}
	for _, d := range f.Durations() {
		name := flagName(d.Key)
		if !flags.Changed(name) {
			continue
		}
		v, err := flags.GetDuration(name)
		if err != nil {
			return err
		}
		if v < 0 {
			return fmt.Errorf("--%s %s: must not be negative", name, v)
		}
		*d.D = v
	}
	return nil
}
