package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/state"
)

// TestAppsConfig: the configs bench apps gives its replicas parse and
// validate, name every app with its limit, listen on loopback, each
// replica on its own callback port, and spread the apps' notify_url over
// the replicas.
func TestAppsConfig(t *testing.T) {
	o := AppsOptions{Apps: 3, PerApp: 1, Limit: 40}
	for _, db := range []*appsDB{
		{driver: state.DriverSQLite, dsn: "payd.db"},
		{driver: state.DriverPostgres, dsn: "postgres://postgres@127.0.0.1:5432/test?search_path=bench_apps_x"},
	} {
		ports := []int{4321, 4322}
		for k, port := range ports {
			text := appsConfig(db, "http://127.0.0.1:1", ports, k, o)
			cfg, err := config.ParseWithEnv(strings.NewReader(text), func(string) string { return "bench-admin-token-0123456789abcdef" })
			if err != nil {
				t.Fatalf("parse:\n%s\n%v", text, err)
			}
			if err := cfg.ValidateServe(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if cfg.Database.Driver != db.driver || cfg.Database.DSN != db.dsn {
				t.Fatalf("database %+v, want %s %s", cfg.Database, db.driver, db.dsn)
			}
			if len(cfg.Douyin.Apps) != 3 || cfg.Douyin.Apps[2].AppID != appID(2) || cfg.Douyin.Limits["settle"] != 40 {
				t.Fatalf("apps %+v, limits %v", cfg.Douyin.Apps, cfg.Douyin.Limits)
			}
			if cfg.Server.CallbackListen != fmt.Sprintf("127.0.0.1:%d", port) || !strings.HasPrefix(cfg.Server.AdminListen, "127.0.0.1:") {
				t.Fatalf("listeners %q, %q", cfg.Server.CallbackListen, cfg.Server.AdminListen)
			}
			for i, app := range cfg.Douyin.Apps {
				if want := fmt.Sprintf("http://127.0.0.1:%d/douyin/notify", ports[i%2]); app.NotifyURL != want {
					t.Fatalf("app %d notify_url %q, want %q", i, app.NotifyURL, want)
				}
			}
		}
	}
}

// TestAppsOptions: replicas need PostgreSQL, and are bounded.
func TestAppsOptions(t *testing.T) {
	base := AppsOptions{Dir: "d", Serve: "s", Self: "s", Apps: 1, PerApp: 1, Limit: 1}
	for _, c := range []struct {
		replicas int
		postgres string
		want     string
	}{
		{2, "", "needs --postgres"},
		{maxReplicas + 1, "postgres://x", "want 1.."},
		{3, "postgres://x", ""},
		{0, "", ""},
	} {
		o := base
		o.Replicas, o.Postgres = c.replicas, c.postgres
		err := o.check()
		if c.want == "" && (err != nil || o.Replicas < 1) {
			t.Fatalf("replicas %d: %v (replicas %d)", c.replicas, err, o.Replicas)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Fatalf("replicas %d, postgres %q: %v, want %q", c.replicas, c.postgres, err, c.want)
		}
	}
}

// TestAppsMedianLine: sidebyside reads every figure of apps' median line.
func TestAppsMedianLine(t *testing.T) {
	line := "median stream use 0.987, use until confirmed 0.801, calls/s 1190, confirm max 2104.0ms, payd CPU per call 412us, RSS 41.2 MB, too-frequent answers 0, confirmed 6000, error lines 0, conflict lines 2\n"
	figs := parseFigures(line)
	want := []string{"median stream use", "use until confirmed", "calls/s", "confirm max", "payd CPU per call", "RSS", "too-frequent answers", "confirmed", "error lines", "conflict lines"}
	if len(figs) != len(want) {
		t.Fatalf("figures %+v", figs)
	}
	for i, f := range figs {
		if f.label != want[i] {
			t.Errorf("figure %d: %q, want %q", i, f.label, want[i])
		}
	}
	if figs[4].unit != "ms" || figs[4].value != 0.412 || figs[5].unit != "MB" {
		t.Fatalf("units: %+v", figs)
	}
}

// TestLogTrouble counts error lines (JSON and text logs) and lines naming
// a conflict or a deadlock, over every replica's log.
func TestLogTrouble(t *testing.T) {
	dir := t.TempDir()
	logs := map[string]string{
		"serve-0.log": `{"level":"warn","msg":"settle_batch: conflict: row changed since it was read"}
{"level":"error","msg":"sweep failed","err":"ERROR: deadlock detected (SQLSTATE 40P01)"}
{"level":"info","msg":"pass"}
`,
		"serve-1.log": "time=x level=error msg=\"call failed\"\ntime=x level=warn msg=\"parked\"\n",
	}
	var procs []*replicaProc
	for name, text := range logs {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, &replicaProc{log: path})
	}
	errs, conflicts, err := logTrouble(procs)
	if err != nil || errs != 2 || conflicts != 2 {
		t.Fatalf("error lines %d, conflict lines %d, %v; want 2 and 2", errs, conflicts, err)
	}
	if _, _, err := logTrouble([]*replicaProc{{log: filepath.Join(dir, "missing.log")}}); err == nil {
		t.Fatal("a missing log was read without an error")
	}
}

// TestOpenAppsDB_RefusesAURLOtherThanPostgres: --postgres must be a
// postgres:// URL that parses, and the refusal does not print its password.
func TestOpenAppsDB_RefusesAURLOtherThanPostgres(t *testing.T) {
	for _, bad := range []string{"mysql://bench:s3cret@127.0.0.1/db", "postgres://bench:s3cret@127.0.0.1:bad/db"} {
		_, err := openAppsDB(t.Context(), AppsOptions{Postgres: bad})
		if err == nil || !strings.Contains(err.Error(), "want a URL such as postgres://") {
			t.Fatalf("%s: err = %v, want the postgres:// hint", bad, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("%s: err = %v: shows the password", bad, err)
		}
	}
}
