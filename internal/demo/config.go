package demo

import (
	crand "crypto/rand"
	"encoding/hex"
	"time"

	"github.com/payd/payd/internal/config"
)

// channelFailures is the share of refund attempts that fail at the channel
// in the demo.
const channelFailures = 0.35

// Configure adapts the shipped config to a demo: a fresh database in dir,
// fast schedules, loopback listeners, every app settled automatically.
func Configure(cfg *config.Config, dir string) {
	cfg.Database.Driver = "sqlite"
	cfg.Database.DSN = dir + "/demo.db"
	cfg.Database.Synchronous = "NORMAL"
	cfg.Reconcile.Schedule = "@every 1s"
	cfg.Reconcile.Poll = config.Backoff{config.D(300 * time.Millisecond), config.D(700 * time.Millisecond), config.D(2 * time.Second)}
	cfg.Reconcile.Retry = config.Backoff{config.D(time.Second), config.D(2 * time.Second)}
	cfg.Reconcile.SettleRetry = cfg.Reconcile.Retry
	cfg.Reconcile.Workers = 16
	// 35% of refund attempts fail at the channel in the demo: with 8
	// attempts a refund parks with odds of 0.35^8 (2 in 10,000).
	cfg.Reconcile.RefundAttempts = 8
	cfg.SettleBatch.Schedule = "@every 1s"
	cfg.Sweep.Schedule = "@every 5s"
	cfg.Sweep.StaleAfter = config.D(5 * time.Second)
	cfg.Server.CallbackListen = "127.0.0.1:0"
	cfg.Server.AdminListen = "127.0.0.1:0"
	if cfg.Server.AdminToken == "" {
		var b [16]byte
		_, _ = crand.Read(b[:])
		cfg.Server.AdminToken = hex.EncodeToString(b[:])
	}
	cfg.Server.ShutdownTimeout = config.D(10 * time.Second)
	for i := range cfg.Douyin.Apps {
		cfg.Douyin.Apps[i].NotifyURL = ""
		cfg.Douyin.Apps[i].AutoSettle = true
	}
}
