package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/state"
)

// maxReplicas bounds --replicas: the machines this runs on have a few
// cores, which the replicas share with the database and the simulator.
const maxReplicas = 5

// appsDB is the database of one Apps run: a SQLite file in the run's
// directory, or a schema of its own in the PostgreSQL database o.Postgres
// names (dropped when the run ends, unless kept).
type appsDB struct {
	driver, dsn string
	// schema is the PostgreSQL schema ("" on SQLite).
	schema string
	admin  *state.Store
}

// openAppsDB makes the run's database: on PostgreSQL a fresh schema named
// bench_apps_<random>, which payd's DSN selects through search_path.
func openAppsDB(ctx context.Context, o AppsOptions) (*appsDB, error) {
	if o.Postgres == "" {
		return &appsDB{driver: state.DriverSQLite, dsn: filepath.Join(o.Dir, "payd.db")}, nil
	}
	u, err := url.Parse(o.Postgres)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("bench apps: --postgres %q: want a URL such as postgres://user@127.0.0.1:5432/db", config.RedactDSN(o.Postgres))
	}
	admin, err := state.Open(ctx, state.Options{Driver: state.DriverPostgres, DSN: o.Postgres, Logger: quietLog()})
	if err != nil {
		return nil, fmt.Errorf("bench apps: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_apps_" + hex.EncodeToString(b[:])
	if err := admin.DB().WithContext(ctx).Exec("CREATE SCHEMA " + schema).Error; err != nil {
		admin.Close()
		return nil, fmt.Errorf("bench apps: create schema: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return &appsDB{driver: state.DriverPostgres, dsn: u.String(), schema: schema, admin: admin}, nil
}

// open opens payd's store in the run's database.
func (d *appsDB) open(ctx context.Context) (*state.Store, error) {
	st, err := state.Open(ctx, state.Options{Driver: d.driver, DSN: d.dsn, MustExist: true, Logger: quietLog()})
	if err != nil {
		return nil, fmt.Errorf("bench apps: %w", err)
	}
	return st, nil
}

// close drops the PostgreSQL schema, unless keep.
func (d *appsDB) close(keep bool) {
	if d.admin == nil {
		return
	}
	defer d.admin.Close()
	if !keep {
		_ = d.admin.DB().Exec("DROP SCHEMA " + d.schema + " CASCADE").Error
	}
}

// replicaProc is one payd serve of a run.
type replicaProc struct {
	cmd   *exec.Cmd
	ended <-chan struct{}
	log   string
	cpu0  time.Duration
}

// startReplicas starts one payd serve per config, replica k logging to
// serve-k.log (serve.log when there is one); only the first writes the
// CPU profile.
func startReplicas(ctx context.Context, o AppsOptions, env []string, cfgs []string) ([]*replicaProc, error) {
	var procs []*replicaProc
	for k, cfg := range cfgs {
		log := filepath.Join(o.Dir, "serve.log")
		if len(cfgs) > 1 {
			log = filepath.Join(o.Dir, fmt.Sprintf("serve-%d.log", k))
		}
		penv := env
		if k == 0 && o.Profile != "" {
			penv = append(append([]string(nil), env...), daemon.ProfileEnv+"="+o.Profile)
		}
		c, ended, err := startLogged(ctx, o.Serve, penv, log, "serve", "--config", cfg)
		if err != nil {
			stopReplicas(procs)
			return nil, fmt.Errorf("bench apps: payd serve %d: %w", k, err)
		}
		p := &replicaProc{cmd: c, ended: ended, log: log}
		p.cpu0, _ = procCPU(c.Process.Pid)
		procs = append(procs, p)
	}
	return procs, nil
}

// stopReplicas stops every replica (SIGTERM, then a kill after a minute).
func stopReplicas(procs []*replicaProc) {
	for _, p := range procs {
		stopServe(p.cmd, p.ended)
	}
}

// replicaUsage is the CPU the replicas used since they started, summed,
// and the highest peak RSS among them (MB).
func replicaUsage(procs []*replicaProc) (cpu time.Duration, hwm float64, err error) {
	for _, p := range procs {
		c, err := procCPU(p.cmd.Process.Pid)
		if err != nil {
			return 0, 0, err
		}
		_, h, err := procMemory(p.cmd.Process.Pid)
		if err != nil {
			return 0, 0, fmt.Errorf("bench apps: %w", err)
		}
		cpu += c - p.cpu0
		hwm = max(hwm, h)
	}
	return cpu, hwm, nil
}

// conflictLine matches a log line about replicas getting in each other's
// way: a write that found its row changed, a deadlock, a serialization
// failure.
var conflictLine = regexp.MustCompile(`(?i)conflict|deadlock|40P01|40001|could not serialize`)

// logTrouble counts, over the replicas' logs, the lines at error level
// and the lines that name a conflict or a deadlock (any level).
func logTrouble(procs []*replicaProc) (errorLines, conflicts int, err error) {
	for _, p := range procs {
		f, err := os.Open(p.log)
		if err != nil {
			return 0, 0, fmt.Errorf("bench apps: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, `"level":"error"`) || strings.Contains(line, "level=error") {
				errorLines++
			}
			if conflictLine.MatchString(line) {
				conflicts++
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return 0, 0, fmt.Errorf("bench apps: read %s: %w", filepath.Base(p.log), err)
		}
	}
	return errorLines, conflicts, nil
}

// replicaConfigs writes one config per replica (config.yaml, or
// config-k.yaml with several): the same apps and database, each replica
// its own callback port. App i's notify_url is replica i mod N's, so
// callbacks are spread over the replicas.
func replicaConfigs(o AppsOptions, db *appsDB, simURL string) ([]string, error) {
	ports := make([]int, o.Replicas)
	for k := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[k] = p
	}
	cfgs := make([]string, o.Replicas)
	for k := range cfgs {
		name := "config.yaml"
		if o.Replicas > 1 {
			name = "config-" + strconv.Itoa(k) + ".yaml"
		}
		cfgs[k] = filepath.Join(o.Dir, name)
		if err := os.WriteFile(cfgs[k], []byte(appsConfig(db, simURL, ports, k, o)), 0o600); err != nil {
			return nil, fmt.Errorf("bench apps: %w", err)
		}
	}
	return cfgs, nil
}
