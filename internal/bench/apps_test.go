package bench

import (
	"strings"
	"testing"

	"github.com/payd/payd/internal/config"
)

// TestAppsConfig: the config bench apps gives payd serve parses and
// validates, names every app with its limit, and listens on loopback.
func TestAppsConfig(t *testing.T) {
	o := AppsOptions{Apps: 3, PerApp: 1, Limit: 40}
	text := appsConfig("payd.db", "http://127.0.0.1:1", 4321, o)
	cfg, err := config.ParseWithEnv(strings.NewReader(text), func(string) string { return "bench-admin-token-0123456789abcdef" })
	if err != nil {
		t.Fatalf("parse:\n%s\n%v", text, err)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if len(cfg.Douyin.Apps) != 3 || cfg.Douyin.Apps[2].AppID != appID(2) || cfg.Douyin.Limits["settle"] != 40 {
		t.Fatalf("apps %+v, limits %v", cfg.Douyin.Apps, cfg.Douyin.Limits)
	}
	if cfg.Server.CallbackListen != "127.0.0.1:4321" || !strings.HasPrefix(cfg.Server.AdminListen, "127.0.0.1:") {
		t.Fatalf("listeners %q, %q", cfg.Server.CallbackListen, cfg.Server.AdminListen)
	}
}

// TestAppsMedianLine: sidebyside reads every figure of apps' median line.
func TestAppsMedianLine(t *testing.T) {
	line := "median stream use 0.987, use until confirmed 0.801, calls/s 1190, confirm max 2104.0ms, payd CPU per call 412us, RSS 41.2 MB, too-frequent answers 0, confirmed 6000\n"
	figs := parseFigures(line)
	want := []string{"median stream use", "use until confirmed", "calls/s", "confirm max", "payd CPU per call", "RSS", "too-frequent answers", "confirmed"}
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
