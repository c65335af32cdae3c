package daemon

import (
	"testing"
	"time"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

// TestNewClient_InFlightWindow: douyin.in_flight_window reaches the
// client's limiter, the default and 0 (no bound) alike.
func TestNewClient_InFlightWindow(t *testing.T) {
	for _, w := range []time.Duration{config.DefaultInFlightWindow, 0, 250 * time.Millisecond} {
		cfg := config.Default()
		cfg.Douyin.Apps = []config.App{config.DefaultApp()}
		cfg.Douyin.Apps[0].AppID, cfg.Douyin.Apps[0].Salt = "tt-app", "salt"
		cfg.Douyin.InFlightWindow = config.D(w)
		c, err := NewClient(cfg, "http://127.0.0.1:1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Limiter().InFlight(); got != w {
			t.Errorf("in_flight_window %v: the limiter's window is %v", w, got)
		}
	}
}

// TestWriteStore_GroupCommitWait: database.group_commit_wait paces the
// SQLite store the reconciler and the inbox write to, the default and 0
// (commit at once) alike.
func TestWriteStore_GroupCommitWait(t *testing.T) {
	for _, w := range []time.Duration{config.DefaultGroupCommitWait, 0, 20 * time.Millisecond} {
		cfg := config.Default()
		cfg.Database.GroupCommitWait = config.D(w)
		g, ok := WriteStore(cfg, storetest.Open(t, nil)).(*state.Grouped)
		if !ok {
			t.Fatalf("group_commit_wait %v: the SQLite store is not grouped", w)
		}
		if got := g.Pace(); got != w {
			t.Errorf("group_commit_wait %v: the group's pace is %v", w, got)
		}
	}
}
