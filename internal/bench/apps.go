package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/payd/payd/internal/state"
)

// AppsOptions configure Apps: many mini-programs served by one payd serve.
type AppsOptions struct {
	// Dir holds the database, the config and the processes' logs; required.
	Dir string
	// Apps is how many apps payd serves; PerApp how many due settlements
	// each has; Limit each app's calls per second per API, at the
	// simulator and in payd's config.
	Apps, PerApp int
	Limit        float64
	// Serve is the payd binary whose serve is measured; Self runs the
	// simulator (a second process, so that its CPU is not payd's).
	Serve, Self string
	// Processing is how long the simulator holds a settlement PROCESSING.
	Processing time.Duration
	// Timeout bounds the wait for every settlement to be confirmed.
	Timeout time.Duration
	// Profile, when set, is where payd serve writes a CPU profile (pprof)
	// of its run (the first replica's).
	Profile string
	// Replicas is how many payd serve share the work (default 1); more
	// than one needs Postgres.
	Replicas int
	// Postgres, when set, is a PostgreSQL database URL: the run's database
	// is a fresh schema of it, dropped at the end unless Keep.
	Postgres string
	Keep     bool
}

// AppsResult is what one Apps run measured, from payd's own database and
// its process.
type AppsResult struct {
	Settles int64 // settle calls answered 0
	Calls   int64 // every Douyin call payd made
	Busy    int64 // calls answered 1001 (payd's attempts and the simulator's count)
	// Stream is from the first settle call to the last; Wall from the
	// first settle call to the last settlement confirmed.
	Stream, Wall time.Duration
	// StreamUse and Use are Settles ÷ (Apps × Limit) ÷ Stream and ÷ Wall.
	StreamUse, Use float64
	// ConfirmP50 and ConfirmMax are from a settlement's settle call to its
	// confirmation (succeeded) in payd's database.
	ConfirmP50, ConfirmMax time.Duration
	// CPUPerCall is payd serve's CPU (user+system, callbacks included)
	// over the run divided by Calls.
	CPUPerCall time.Duration
	// RSS is payd serve's peak resident memory, in MB.
	RSS       float64
	Confirmed int64
	// ErrorLines and Conflicts count the replicas' log lines at error
	// level and those naming a conflict or a deadlock.
	ErrorLines, Conflicts int
	// Kept is the PostgreSQL schema kept for a look afterwards (Keep; ""
	// on SQLite).
	Kept string
}

func (o *AppsOptions) check() error {
	switch {
	case o.Dir == "" || o.Serve == "" || o.Self == "":
		return errors.New("bench apps: dir, serve and self are required")
	case o.Apps < 1 || o.Apps > 1000:
		return fmt.Errorf("bench apps: --apps %d: want 1..1000", o.Apps)
	case o.PerApp < 1 || o.PerApp > 10000:
		return fmt.Errorf("bench apps: --per-app %d: want 1..10000", o.PerApp)
	case o.Limit <= 0 || o.Limit > 1000:
		return fmt.Errorf("bench apps: --limit %v: want (0, 1000]", o.Limit)
	case o.Replicas < 0 || o.Replicas > maxReplicas:
		return fmt.Errorf("bench apps: --replicas %d: want 1..%d", o.Replicas, maxReplicas)
	case o.Replicas > 1 && o.Postgres == "":
		return fmt.Errorf("bench apps: --replicas %d needs --postgres URL: replicas share a PostgreSQL database", o.Replicas)
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Processing <= 0 {
		o.Processing = 2 * time.Second
	}
	if o.Timeout <= 0 {
		ideal := time.Duration(float64(o.PerApp) / o.Limit * float64(time.Second))
		o.Timeout = 60*time.Second + 5*ideal
	}
	return nil
}

// appID names the i-th app of the scenario (16 characters, as Douyin's).
func appID(i int) string { return fmt.Sprintf("ttapps%010d", i) }

// Apps seeds Apps × PerApp due settlements (paid past T+7) in a fresh
// database and at a simulator in a second process, starts o.Serve's payd
// serve (Replicas of them, on one PostgreSQL database when more than one)
// with a config of every app at Limit calls/s, and waits until every
// settlement is confirmed (the simulator's settle callback, then
// query_settle) or Timeout passes (Confirmed tells how many were). Figures
// come from payd's attempt log and settlements, from /proc for its
// processes and from their logs.
func Apps(ctx context.Context, o AppsOptions) (*AppsResult, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	db, err := openAppsDB(ctx, o)
	if err != nil {
		return nil, err
	}
	defer db.close(o.Keep)
	now := time.Now().UTC()
	sim, simURL, err := startSim(ctx, o, now)
	if err != nil {
		return nil, err
	}
	defer sim.stop()
	cfgs, err := replicaConfigs(o, db, simURL)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "PAYD_ADMIN_TOKEN=bench-admin-token-0123456789abcdef")
	if err := runLogged(ctx, o.Serve, env, filepath.Join(o.Dir, "migrate.log"), "migrate", "--config", cfgs[0]); err != nil {
		return nil, fmt.Errorf("bench apps: payd migrate: %w", err)
	}
	st, err := db.open(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := seedApps(ctx, st, o, now); err != nil {
		return nil, err
	}
	procs, err := startReplicas(ctx, o, env, cfgs)
	if err != nil {
		return nil, err
	}
	defer stopReplicas(procs)
	confirmed, err := awaitConfirmed(ctx, st, int64(o.Apps*o.PerApp), o.Timeout)
	if err != nil {
		return nil, err
	}
	cpu, hwm, err := replicaUsage(procs)
	if err != nil {
		return nil, err
	}
	r, err := appsFigures(ctx, st, o)
	if err != nil {
		return nil, err
	}
	r.Confirmed, r.RSS = confirmed, hwm
	if r.Calls > 0 {
		r.CPUPerCall = cpu / time.Duration(r.Calls)
	}
	if r.ErrorLines, r.Conflicts, err = logTrouble(procs); err != nil {
		return nil, err
	}
	if busy, err := sim.busy(); err == nil && busy > r.Busy {
		r.Busy = busy
	}
	if o.Keep {
		r.Kept = db.schema
	}
	return r, nil
}

// awaitConfirmed polls the settlements until want have succeeded or d
// passes, and returns how many had.
func awaitConfirmed(ctx context.Context, st *state.Store, want int64, d time.Duration) (int64, error) {
	deadline := time.Now().Add(d)
	var n int64
	for {
		if err := st.DB().WithContext(ctx).Model(&state.Settlement{}).Where("phase = ?", state.PhaseSucceeded).Count(&n).Error; err != nil {
			return 0, fmt.Errorf("bench apps: count settlements: %w", err)
		}
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// appsFigures reads the run's figures from payd's attempt log.
func appsFigures(ctx context.Context, st *state.Store, o AppsOptions) (*AppsResult, error) {
	db := st.DB().WithContext(ctx)
	r := &AppsResult{}
	var settles []struct {
		At   time.Time
		Done *time.Time
	}
	err := db.Raw(`SELECT a.created_at AS at, s.done_at AS done FROM attempts a JOIN settlements s ON s.id = a.resource_id
		WHERE a.resource = 'settlement' AND a.api = 'settle' AND a.err_no = 0 ORDER BY a.created_at`).Scan(&settles).Error
	if err != nil {
		return nil, fmt.Errorf("bench apps: read settle calls: %w", err)
	}
	if err := db.Model(&state.Attempt{}).Count(&r.Calls).Error; err != nil {
		return nil, fmt.Errorf("bench apps: count calls: %w", err)
	}
	if err := db.Model(&state.Attempt{}).Where("err_no = 1001").Count(&r.Busy).Error; err != nil {
		return nil, fmt.Errorf("bench apps: count 1001s: %w", err)
	}
	r.Settles = int64(len(settles))
	if r.Settles == 0 {
		return r, nil
	}
	first, last := settles[0].At, settles[len(settles)-1].At
	var lags []time.Duration
	lastDone := last
	for _, s := range settles {
		if s.Done == nil {
			continue
		}
		lags = append(lags, s.Done.Sub(s.At))
		if s.Done.After(lastDone) {
			lastDone = *s.Done
		}
	}
	r.Stream, r.Wall = last.Sub(first), lastDone.Sub(first)
	budget := float64(o.Apps) * o.Limit
	if r.Stream > 0 {
		r.StreamUse = float64(r.Settles-1) / budget / r.Stream.Seconds()
	}
	if r.Wall > 0 {
		r.Use = float64(r.Settles) / budget / r.Wall.Seconds()
	}
	r.ConfirmP50, r.ConfirmMax = Percentile(lags, 50), Percentile(lags, 100)
	return r, nil
}

// seedApps writes every app's due settlements into payd's database.
func seedApps(ctx context.Context, st *state.Store, o AppsOptions, now time.Time) error {
	for i := 0; i < o.Apps; i++ {
		if err := seedApp(ctx, st, appID(i), fmt.Sprintf("a%04d-", i), o.PerApp, Settle, now, 0, nil); err != nil {
			return fmt.Errorf("bench apps: %w", err)
		}
	}
	return nil
}

// appsConfig is replica k's payd serve config: every app at o.Limit per
// API, app i's notify_url on ports[i mod N], the callback listener on
// ports[k], the rest payd's defaults. The simulator calls back only the
// URL a request names: the seeded orders (paid outside payd) send no
// payment callbacks.
func appsConfig(db *appsDB, simURL string, ports []int, k int, o AppsOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "database:\n  driver: %s\n  dsn: %s\ndouyin:\n  base_url: %s\n  limits:\n", db.driver, strconv.Quote(db.dsn), simURL)
	for _, api := range []string{"create_order", "query_order", "create_refund", "query_refund", "settle", "query_settle", "unsettle_amount"} {
		fmt.Fprintf(&b, "    %s: %g\n", api, o.Limit)
	}
	b.WriteString("  apps:\n")
	for i := 0; i < o.Apps; i++ {
		fmt.Fprintf(&b, "    - app_id: %s\n      salt: %s\n      token: %s\n      notify_url: http://127.0.0.1:%d/douyin/notify\n", appID(i), salt, token, ports[i%len(ports)])
	}
	fmt.Fprintf(&b, "server:\n  callback_listen: 127.0.0.1:%d\n  admin_listen: 127.0.0.1:0\n  admin_token: ${PAYD_ADMIN_TOKEN}\nlog:\n  level: warn\n", ports[k])
	return b.String()
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench apps: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startLogged starts bin with args, its output into the file log; ended
// closes when it has exited.
func startLogged(ctx context.Context, bin string, env []string, log string, args ...string) (*exec.Cmd, <-chan struct{}, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, nil, err
	}
	c := exec.CommandContext(ctx, bin, args...)
	c.Env, c.Stdout, c.Stderr = env, f, f
	if err := c.Start(); err != nil {
		f.Close()
		return nil, nil, err
	}
	ended := make(chan struct{})
	go func() { _ = c.Wait(); f.Close(); close(ended) }()
	return c, ended, nil
}

// stopServe stops payd serve as an operator would (SIGTERM) and waits for
// it to exit, killing it after a minute.
func stopServe(c *exec.Cmd, ended <-chan struct{}) {
	_ = c.Process.Signal(syscall.SIGTERM)
	select {
	case <-ended:
	case <-time.After(time.Minute):
		_ = c.Process.Kill()
		<-ended
	}
}

// runLogged runs bin with args to its end, its output into the file log.
func runLogged(ctx context.Context, bin string, env []string, log string, args ...string) error {
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	defer f.Close()
	c := exec.CommandContext(ctx, bin, args...)
	c.Env, c.Stdout, c.Stderr = env, f, f
	if err := c.Run(); err != nil {
		b, _ := os.ReadFile(log)
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ).
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time process pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench apps: read CPU time: %w", err)
	}
	// The command name may hold spaces: the fields follow the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("bench apps: /proc stat: too few fields")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick, nil
}

// procMemory returns process pid's resident and peak resident memory in MB.
func procMemory(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

// simProc is the simulator's process.
type simProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	ended bool
}

// startSim starts `self bench apps-sim` and reads the URL it serves on.
func startSim(ctx context.Context, o AppsOptions, now time.Time) (*simProc, string, error) {
	c := exec.CommandContext(ctx, o.Self, "bench", "apps-sim", "--apps", strconv.Itoa(o.Apps), "--per-app", strconv.Itoa(o.PerApp),
		"--limit", strconv.FormatFloat(o.Limit, 'g', -1, 64), "--processing", o.Processing.String(),
		"--now", now.Format(time.RFC3339Nano))
	in, err := c.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if f, err := os.Create(filepath.Join(o.Dir, "sim.log")); err == nil {
		c.Stderr = f
	}
	if err := c.Start(); err != nil {
		return nil, "", fmt.Errorf("bench apps: simulator: %w", err)
	}
	p := &simProc{cmd: c, in: in, out: bufio.NewReader(out)}
	line, err := p.out.ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		p.stop()
		return nil, "", fmt.Errorf("bench apps: simulator did not start: %q %v", line, err)
	}
	return p, url, nil
}

// busy asks the simulator for its count of 1001 answers and ends it.
func (p *simProc) busy() (int64, error) {
	if _, err := io.WriteString(p.in, "stats\n"); err != nil {
		return 0, err
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "busy ")
	if !ok {
		return 0, fmt.Errorf("simulator answered %q", line)
	}
	return strconv.ParseInt(v, 10, 64)
}

// stop ends the simulator (closing its stdin) and waits for it.
func (p *simProc) stop() {
	if p.ended {
		return
	}
	p.ended = true
	p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
