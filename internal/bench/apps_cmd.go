package bench

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
)

func newBenchAppsCmd(g *cli, runs *int) *cobra.Command {
	var o AppsOptions
	var keep bool
	cmd := &cobra.Command{
		Use:   "apps --apps N --per-app K --limit L [--serve BIN] [--replicas R --postgres URL]",
		Short: "Many apps, K due settlements each, on one payd serve (or R replicas): use of the combined budget, CPU per call, RSS",
		Long: `apps runs payd serve (this binary's, or --serve BIN's) with N apps at L calls/s per API, each with K
due settlements, against the simulator in a second process (so that its CPU is not payd's), and waits
until every settlement is confirmed. It prints the settle stream's use of the combined budget (first
to last settle call), the use until the last confirmation, calls/s, payd's CPU per Douyin call
(callbacks included), its peak RSS, the 1001 answers, and the log lines at error level and those
naming a conflict or a deadlock. Each run's directory keeps the processes' logs while it runs.

With --postgres URL the database is a fresh schema of that PostgreSQL database (dropped after the
run unless --keep); --replicas R then runs R payd serve on it, sharing the apps' budgets, app i's
callbacks going to replica i mod R. CPU per call is the replicas' CPU summed, RSS the highest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench apps: %w", err)
			}
			o.Self = self
			if o.Serve == "" {
				o.Serve = self
			}
			w := g.stdout
			benchHeader(w, "apps")
			var uses, streams, cpus, rss, busy, rates, lags, confirmed, errLines, conflicts []float64
			for i := 0; i < *runs; i++ {
				dir, done, err := benchDir()
				if err != nil {
					return err
				}
				o.Dir, o.Keep = dir, keep
				r, err := Apps(cmd.Context(), o)
				if keep {
					where := dir
					if r != nil && r.Kept != "" {
						where += " and PostgreSQL schema " + r.Kept
					}
					fmt.Fprintf(g.stderr, "bench apps: run %d kept in %s\n", i+1, where)
				} else {
					done()
				}
				if err != nil {
					return err
				}
				rate := float64(r.Calls) / r.Wall.Seconds()
				fmt.Fprintf(w, "run %d: apps=%d per-app=%d L=%.0f/s replicas=%d: %d settles, stream %s use %.3f, until confirmed %s use %.3f, %.0f calls/s, confirm p50 %s max %s, payd CPU %s per call, RSS %.1f MB, too-frequent answers (1001) %d, confirmed %d of %d, error lines %d, conflict lines %d\n",
					i+1, o.Apps, o.PerApp, o.Limit, max(o.Replicas, 1), r.Settles, r.Stream.Round(time.Millisecond), r.StreamUse, r.Wall.Round(time.Millisecond), r.Use,
					rate, ms(r.ConfirmP50), ms(r.ConfirmMax), us(r.CPUPerCall), r.RSS, r.Busy, r.Confirmed, o.Apps*o.PerApp, r.ErrorLines, r.Conflicts)
				uses, streams, cpus = append(uses, r.Use), append(streams, r.StreamUse), append(cpus, float64(r.CPUPerCall.Microseconds()))
				rss, busy, rates = append(rss, r.RSS), append(busy, float64(r.Busy)), append(rates, rate)
				lags, confirmed = append(lags, float64(r.ConfirmMax.Microseconds())), append(confirmed, float64(r.Confirmed))
				errLines, conflicts = append(errLines, float64(r.ErrorLines)), append(conflicts, float64(r.Conflicts))
			}
			fmt.Fprintf(w, "median stream use %.3f, use until confirmed %.3f, calls/s %.0f, confirm max %s, payd CPU per call %s, RSS %.1f MB, too-frequent answers %.0f, confirmed %.0f, error lines %.0f, conflict lines %.0f\n",
				Median(streams), Median(uses), Median(rates), ms(time.Duration(Median(lags))*time.Microsecond),
				us(time.Duration(Median(cpus))*time.Microsecond), Median(rss), Median(busy), Median(confirmed), Median(errLines), Median(conflicts))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Apps, "apps", 20, "apps served")
	cmd.Flags().IntVar(&o.PerApp, "per-app", 300, "due settlements per app")
	cmd.Flags().Float64Var(&o.Limit, "limit", 30, "each app's calls per second per API (simulator and payd)")
	cmd.Flags().StringVar(&o.Serve, "serve", "", "the payd binary whose serve is measured (default: this one)")
	cmd.Flags().DurationVar(&o.Processing, "processing", 2*time.Second, "how long the simulator holds a settlement PROCESSING")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep each run's directory (database, config, logs) and print where")
	cmd.Flags().StringVar(&o.Profile, "profile", "", "write payd serve's CPU profile (pprof) to this file (the last run's)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "bound on the wait for every confirmation (default 60s + 5 × the ideal time)")
	cmd.Flags().IntVar(&o.Replicas, "replicas", 1, "payd serve processes sharing the work (more than one needs --postgres)")
	cmd.Flags().StringVar(&o.Postgres, "postgres", "", "a PostgreSQL database URL: run on a fresh schema of it instead of SQLite")
	return cmd
}

func us(d time.Duration) string { return fmt.Sprintf("%dus", d.Microseconds()) }

// newBenchAppsSimCmd is the simulator process of `bench apps`: it serves
// the apps' orders, paid 8 days before --now, calls back the notify_url of
// each request, prints "listening URL", and
// answers "stats" on stdin with "busy N" (its 1001 answers) until stdin
// closes.
func newBenchAppsSimCmd(g *cli) *cobra.Command {
	var apps, perApp int
	var limit float64
	var processing time.Duration
	var nowText string
	cmd := &cobra.Command{
		Use:    "apps-sim",
		Short:  "The simulator process of bench apps",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now, err := time.Parse(time.RFC3339Nano, nowText)
			if err != nil {
				return fmt.Errorf("bench apps-sim: --now: %w", err)
			}
			sim, err := appsSim(apps, perApp, limit, processing, now)
			if err != nil {
				return err
			}
			defer sim.Close()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("bench apps-sim: %w", err)
			}
			srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()
			fmt.Fprintf(g.stdout, "listening http://%s\n", ln.Addr())
			in := bufio.NewScanner(cmd.InOrStdin())
			for in.Scan() {
				if strings.TrimSpace(in.Text()) == "stats" {
					fmt.Fprintf(g.stdout, "busy %d\n", sim.Stats().Busy())
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&apps, "apps", 1, "apps")
	cmd.Flags().IntVar(&perApp, "per-app", 1, "paid orders per app")
	cmd.Flags().Float64Var(&limit, "limit", 30, "calls per second per API and app")
	cmd.Flags().DurationVar(&processing, "processing", 2*time.Second, "PROCESSING time of a settlement")
	cmd.Flags().StringVar(&nowText, "now", "", "the seeding time (RFC 3339)")
	return cmd
}

// appsSim builds the simulator of bench apps with every app's orders.
func appsSim(apps, perApp int, limit float64, processing time.Duration, now time.Time) (*douyinsim.Server, error) {
	cfg := douyinsim.Config{ProcessingDelay: processing, Seed: 1, Limits: map[douyin.API]float64{}}
	for _, api := range douyin.APIs {
		cfg.Limits[api] = limit
	}
	for i := 0; i < apps; i++ {
		cfg.Apps = append(cfg.Apps, douyinsim.App{AppID: appID(i), Salt: salt, Token: token})
	}
	sim, err := douyinsim.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("bench apps-sim: %w", err)
	}
	paid := now.UTC().Truncate(time.Microsecond).Add(-8 * 24 * time.Hour)
	for i := 0; i < apps; i++ {
		seeds := make([]douyinsim.SeedOrder, perApp)
		for j := range seeds {
			seeds[j] = douyinsim.SeedOrder{AppID: appID(i), OutOrderNo: orderNo(fmt.Sprintf("a%04d-", i), j), TotalAmount: Amount, Status: "SUCCESS", PaidAt: paid}
		}
		if err := sim.SeedOrders(seeds); err != nil {
			sim.Close()
			return nil, fmt.Errorf("bench apps-sim: seed: %w", err)
		}
	}
	return sim, nil
}
