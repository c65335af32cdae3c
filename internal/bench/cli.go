package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/douyin"
)

// cli is where the bench commands write.
type cli struct{ stdout, stderr io.Writer }

// NewCommand returns `payd bench` and its scenarios, writing results to
// stdout and progress to stderr.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &cli{stdout: stdout, stderr: stderr}
	var runs int
	cmd := &cobra.Command{
		Use:   "bench <scenario>",
		Short: "Measure payd against the simulator on loopback (see BENCHMARKS.md)",
		Long: `bench runs one performance scenario against the built-in simulator on loopback, in a fresh
temporary directory, several times, and prints every run and the median:

  budget   settle N due orders with the simulator's limit at L calls/s: share of the limit used
  mix      the same with N refunds and N order queries besides, each API on its own budget
           (both: --api trade runs them on a trade app against the trade simulator)
  script   payd against the one-order-at-a-time script, with latency added to every answer
  hint     from a verified callback arriving to the order's confirmed state committed: p50, p99
  scale    claim pass, no-op reconcile pass, payd plan and payd serve's memory at several table sizes
  intake   verified, stored and acknowledged callbacks per second, load from a second process
  apps     N apps with K due settlements each on one payd serve, the simulator in a second
           process: use of the combined budget, calls/s, payd's CPU per call, RSS, 1001s

  sidebyside --old BIN --new BIN <scenario> [flags]
           the same scenario on two built binaries, alternately, in one run: a table of ratios
           (--serve: this binary runs the scenario with --serve BIN, for apps)

It needs no config file.`,
	}
	var cpuProfile string
	var stopProfile func()
	cmd.PersistentFlags().IntVar(&runs, "runs", 3, "how many times to run the scenario (the median is reported)")
	cmd.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the runs to this file")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpuprofile: %w", err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	cmd.PersistentPostRun = func(*cobra.Command, []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	cmd.AddCommand(newBenchBudgetCmd(g, &runs, false), newBenchBudgetCmd(g, &runs, true), newBenchScriptCmd(g, &runs), newBenchHintCmd(g, &runs),
		newBenchIntakeCmd(g, &runs), newBenchLoadgenCmd(g), newBenchScaleCmd(g), newBenchSideBySideCmd(g),
		newBenchAppsCmd(g, &runs), newBenchAppsSimCmd(g))
	return cmd
}

// benchDir makes a temporary directory for one run.
func benchDir() (string, func(), error) {
	dir, err := os.MkdirTemp("", "payd-bench-")
	if err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

func benchHeader(w io.Writer, scenario string) {
	fmt.Fprintf(w, "payd bench %s: %s, %s/%s, %d CPUs\n", scenario, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}

func newBenchBudgetCmd(g *cli, runs *int, mix bool) *cobra.Command {
	var o BudgetOptions
	name := "budget"
	short := "Settle N due orders at the simulator's limit L: share of the limit used, 1001s"
	if mix {
		name = "mix"
		short = "Settlements, refunds and order queries together, each on its own budget"
	}
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Mix = mix
			w := g.stdout
			benchHeader(w, name)
			var uses []float64
			for i := 0; i < *runs; i++ {
				dir, done, err := benchDir()
				if err != nil {
					return err
				}
				o.Dir = dir
				r, err := Budget(cmd.Context(), o)
				done()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "run %d: api=%s N=%d blocked=%t L=%.0f/s per API: wall %s, ideal %s, use %.3f of the limit, %ds %d, calls %v\n",
					i+1, r.API, r.N, o.Blocked, r.Limit, r.Wall.Round(time.Millisecond), r.Ideal.Round(time.Millisecond), r.Use, r.BusyErrNo, r.Busy, callsText(r.Calls))
				uses = append(uses, r.Use)
			}
			fmt.Fprintf(w, "median use of the limit: %.3f (%d runs)\n", Median(uses), len(uses))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.N, "n", 3000, "due settlements (mix: and as many refunds and order queries)")
	cmd.Flags().Float64Var(&o.Limit, "limit", 300, "calls per second per API at the simulator and in payd")
	cmd.Flags().IntVar(&o.Workers, "workers", 32, "reconcile workers")
	if mix {
		cmd.Flags().BoolVar(&o.Blocked, "blocked", false, "make every settlement due before every refund and query")
	}
	cmd.Flags().DurationVar(&o.Latency, "latency", 0, "latency added to every simulator answer")
	cmd.Flags().StringVar(&o.Synchronous, "synchronous", "FULL", "SQLite PRAGMA synchronous")
	cmd.Flags().StringVar(&o.API, "api", APIEcpay, "the app's API: ecpay (1001 counted) or trade (the trade simulator, 12001 counted)")
	return cmd
}

func callsText(m map[douyin.API]int64) string {
	s := ""
	apis := []douyin.API{douyin.APISettle, douyin.APICreateRefund, douyin.APIQueryOrder, douyin.APIQuerySettle, douyin.APIQueryRefund}
	for _, api := range append(apis, douyin.TradeAPIs...) {
		if m[api] > 0 {
			s += fmt.Sprintf(" %s=%d", api, m[api])
		}
	}
	return "[" + s + " ]"
}

func newBenchScriptCmd(g *cli, runs *int) *cobra.Command {
	var o ScriptOptions
	cmd := &cobra.Command{
		Use:   "script",
		Short: "payd against the one-order-at-a-time script on the same simulator: speed-up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := g.stdout
			benchHeader(w, "script")
			var ups []float64
			for i := 0; i < *runs; i++ {
				dir, done, err := benchDir()
				if err != nil {
					return err
				}
				o.Dir = dir
				r, err := Script(cmd.Context(), o)
				done()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "run %d: N=%d latency %s limit %.0f/s: payd %s (%d calls, %d 1001s), script %s (%d calls, %d 1001s), speed-up %.1fx\n",
					i+1, r.N, o.Latency, o.Limit, r.PaydWall.Round(time.Millisecond), r.PaydCalls, r.PaydBusy,
					r.ScriptWall.Round(time.Millisecond), r.ScriptCalls, r.ScriptBusy, r.Speedup)
				ups = append(ups, r.Speedup)
			}
			fmt.Fprintf(w, "median speed-up: %.1fx (%d runs)\n", Median(ups), len(ups))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.N, "n", 600, "orders settled by each side")
	cmd.Flags().Float64Var(&o.Limit, "limit", 300, "settle calls per second at the simulator and in payd")
	cmd.Flags().DurationVar(&o.Latency, "latency", 50*time.Millisecond, "latency added to every simulator answer")
	cmd.Flags().IntVar(&o.Workers, "workers", 32, "reconcile workers")
	cmd.Flags().StringVar(&o.Synchronous, "synchronous", "FULL", "SQLite PRAGMA synchronous")
	return cmd
}

func newBenchHintCmd(g *cli, runs *int) *cobra.Command {
	var o HintOptions
	cmd := &cobra.Command{
		Use:   "hint",
		Short: "From a verified callback arriving to the confirmed state committed: p50, p99",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := g.stdout
			benchHeader(w, "hint")
			var p50s, p99s []float64
			for i := 0; i < *runs; i++ {
				dir, done, err := benchDir()
				if err != nil {
					return err
				}
				o.Dir = dir
				r, err := Hint(cmd.Context(), o)
				done()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "run %d: %d callbacks (batch inbox %t, synchronous %s): p50 %s, p99 %s, max %s\n",
					i+1, r.Samples, o.Batch, o.Synchronous, ms(r.P50), ms(r.P99), ms(r.Max))
				p50s = append(p50s, r.P50.Seconds())
				p99s = append(p99s, r.P99.Seconds())
			}
			fmt.Fprintf(w, "median p50 %s, median p99 %s (%d runs)\n", ms(secs(Median(p50s))), ms(secs(Median(p99s))), len(p50s))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Samples, "samples", 300, "callbacks measured")
	cmd.Flags().DurationVar(&o.Every, "every", 50*time.Millisecond, "pause between two refunds declared")
	cmd.Flags().BoolVar(&o.Batch, "batch", true, "store callbacks through the group-commit inbox, as payd serve does")
	cmd.Flags().StringVar(&o.Synchronous, "synchronous", "FULL", "SQLite PRAGMA synchronous")
	return cmd
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func newBenchIntakeCmd(g *cli, runs *int) *cobra.Command {
	var o IntakeOptions
	var lo LoadOptions
	cmd := &cobra.Command{
		Use:   "intake",
		Short: "Verified, stored and acknowledged callbacks per second, load from a second process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := g.stdout
			benchHeader(w, "intake")
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench intake: %w", err)
			}
			lo.Orders = o.Orders
			o.Load = func(ctx context.Context, url string) (*LoadResult, error) {
				c := exec.CommandContext(ctx, self, "bench", "loadgen", "--url", url,
					"--n", fmt.Sprint(lo.N), "--concurrency", fmt.Sprint(lo.Concurrency),
					"--duration", lo.Duration.String(), "--orders", fmt.Sprint(lo.Orders))
				c.Stderr = g.stderr
				out, err := c.Output()
				if err != nil {
					return nil, fmt.Errorf("load generator: %w", err)
				}
				return UnmarshalLoad(out)
			}
			var rates []float64
			for i := 0; i < *runs; i++ {
				dir, done, err := benchDir()
				if err != nil {
					return err
				}
				o.Dir = dir
				r, err := Intake(cmd.Context(), o)
				done()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "run %d: batch inbox %t, synchronous %s, %d connections: sent %d, acked %d, failed %d, cut at the deadline %d, stored %d, lost %d in %s: %.0f callbacks/s\n",
					i+1, o.Batch, o.Synchronous, lo.Concurrency, r.Load.Sent, r.Load.Acked, r.Load.Failed, r.Load.Cut, r.Stored, r.Lost,
					r.Load.Elapsed.Round(time.Millisecond), r.PerSecond)
				if r.Load.FirstError != "" {
					fmt.Fprintf(w, "  first failure: %s\n", r.Load.FirstError)
				}
				if r.Lost > 0 {
					return fmt.Errorf("bench intake: %d acknowledged callbacks were not stored", r.Lost)
				}
				rates = append(rates, r.PerSecond)
			}
			fmt.Fprintf(w, "median: %.0f callbacks/s (%d runs)\n", Median(rates), len(rates))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Orders, "orders", 10000, "paid orders payd knows (the callbacks name them)")
	cmd.Flags().BoolVar(&o.Batch, "batch", true, "group commit through the batching inbox, as payd serve does")
	cmd.Flags().StringVar(&o.Synchronous, "synchronous", "FULL", "SQLite PRAGMA synchronous")
	cmd.Flags().IntVar(&lo.N, "n", 50000, "callbacks sent at most")
	cmd.Flags().IntVar(&lo.Concurrency, "concurrency", 64, "connections of the load generator")
	cmd.Flags().DurationVar(&lo.Duration, "duration", 20*time.Second, "the load generator stops after this long")
	return cmd
}

// newBenchLoadgenCmd is the load generator `bench intake` starts as a
// second process; it prints its LoadResult as JSON.
func newBenchLoadgenCmd(g *cli) *cobra.Command {
	var lo LoadOptions
	cmd := &cobra.Command{
		Use:    "loadgen",
		Short:  "Post signed callbacks to a callback endpoint (started by bench intake)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := LoadGen(cmd.Context(), lo)
			if err != nil {
				return err
			}
			b, err := MarshalLoad(r)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(append(b, '\n'))
			return err
		},
	}
	cmd.Flags().StringVar(&lo.URL, "url", "", "callback endpoint on loopback")
	cmd.Flags().IntVar(&lo.N, "n", 50000, "callbacks sent at most")
	cmd.Flags().IntVar(&lo.Concurrency, "concurrency", 64, "connections")
	cmd.Flags().DurationVar(&lo.Duration, "duration", 20*time.Second, "stop after this long")
	cmd.Flags().IntVar(&lo.Orders, "orders", 10000, "orders the callbacks name, round robin")
	return cmd
}

func newBenchScaleCmd(g *cli) *cobra.Command {
	var sizes []int
	var due, passes int
	var settle time.Duration
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Claim pass, no-op reconcile pass, payd plan and payd serve's memory at several table sizes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := g.stdout
			benchHeader(w, "scale")
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench scale: %w", err)
			}
			for _, n := range sizes {
				dir, done, err := benchDir()
				if err != nil {
					return err
				}
				r, err := Scale(cmd.Context(), ScaleOptions{Dir: dir, Orders: n, Due: due, Passes: passes})
				if err != nil {
					done()
					return err
				}
				cfgPath := dir + "/config.yaml"
				if err := os.WriteFile(cfgPath, []byte(scaleConfig(r.DB)), 0o600); err != nil {
					done()
					return fmt.Errorf("bench scale: %w", err)
				}
				env := append(os.Environ(), "PAYD_ADMIN_TOKEN=bench-admin-token-0123456789abcdef")
				var plans []float64
				for i := 0; i < passes; i++ {
					c := exec.CommandContext(cmd.Context(), self, "plan", "--config", cfgPath)
					c.Env = env
					t := time.Now()
					err := c.Run()
					var ee *exec.ExitError
					if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
						done()
						return fmt.Errorf("bench scale: payd plan: %w", err)
					}
					plans = append(plans, time.Since(t).Seconds())
				}
				rss, hwm, err := serveMemory(cmd.Context(), self, cfgPath, env, settle)
				done()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "orders=%d due=%d (seeded in %s): claim %s, no-op reconcile pass %s, payd plan %s (process, median of %d), payd serve RSS %.1f MB (peak %.1f MB) after %s\n",
					r.Orders, r.Due, r.Seed.Round(time.Millisecond), ms(r.Claim), ms(r.Pass), ms(secs(Median(plans))), passes, rss, hwm, settle)
			}
			return nil
		},
	}
	cmd.Flags().IntSliceVar(&sizes, "orders", []int{10_000, 100_000, 1_000_000}, "table sizes")
	cmd.Flags().IntVar(&due, "due", 1000, "orders due in every pass")
	cmd.Flags().IntVar(&passes, "passes", 5, "timed passes per size (median)")
	cmd.Flags().DurationVar(&settle, "serve-for", 8*time.Second, "how long payd serve runs before its memory is read")
	return cmd
}

// scaleConfig is a config for payd plan and payd serve on db; the Douyin
// URL is never called (nothing is due) and the listeners pick free ports.
func scaleConfig(db string) string {
	return `database:
  driver: sqlite
  dsn: ` + strconv.Quote(db) + `
douyin:
  base_url: http://127.0.0.1:9
  apps:
    - app_id: ` + AppID + `
      salt: bench-salt
      token: bench-token
reconcile:
  schedule: "@every 1s"
server:
  callback_listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  admin_token: ${PAYD_ADMIN_TOKEN}
log:
  level: error
`
}

// serveMemory runs payd serve for d and returns its resident and peak
// resident memory in MB (Linux /proc).
func serveMemory(ctx context.Context, self, cfg string, env []string, d time.Duration) (rss, hwm float64, err error) {
	c := exec.CommandContext(ctx, self, "serve", "--config", cfg)
	c.Env = env
	if err := c.Start(); err != nil {
		return 0, 0, fmt.Errorf("bench scale: payd serve: %w", err)
	}
	defer func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		_ = c.Wait()
	}()
	time.Sleep(d)
	rss, hwm, err = procMemory(c.Process.Pid)
	if err != nil {
		return 0, 0, fmt.Errorf("bench scale: payd serve: %w", err)
	}
	return rss, hwm, nil
}

func newBenchSideBySideCmd(g *cli) *cobra.Command {
	var o SideBySideOptions
	cmd := &cobra.Command{
		Use:   "sidebyside --old BIN --new BIN <scenario> [scenario flags]",
		Short: "Run one scenario on two built payd binaries, alternately, and print new/old ratios",
		Long: `sidebyside runs "BIN bench <scenario> [flags]" on the old binary, then the new one, --rounds
times, and prints each result figure (the medians; scale's every size) of both with the ratio
new/old as a Markdown table. Flags after the scenario go to it: --runs is the scenario's.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Old == "" || o.New == "" {
				return errors.New("bench sidebyside: --old and --new are required")
			}
			o.Args, o.Stderr = args, g.stderr
			if o.Serve {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench sidebyside: %w", err)
				}
				o.Driver = self
			}
			fmt.Fprintf(g.stdout, "payd bench sidebyside: %s, old %s, new %s, %d rounds\n", strings.Join(args, " "), o.Old, o.New, max(o.Rounds, 1))
			cs, err := SideBySide(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("bench sidebyside: %w", err)
			}
			PrintComparisons(g.stdout, cs)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Old, "old", "", "the old payd binary")
	cmd.Flags().StringVar(&o.New, "new", "", "the new payd binary")
	cmd.Flags().IntVar(&o.Rounds, "rounds", 1, "runs of the scenario on each binary, alternately (medians)")
	cmd.Flags().BoolVar(&o.Serve, "serve", false, "run the scenario from this binary with --serve BIN (for scenarios that measure payd serve, such as apps)")
	cmd.Flags().SetInterspersed(false) // flags after the scenario are the scenario's
	return cmd
}
