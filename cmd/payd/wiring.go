package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/daemon"
	"github.com/payd/payd/internal/state"
)

// loadConfig reads the config file named by --config, $PAYD_CONFIG or
// ./config.yaml, expands ${ENV} and validates it.
func (g *globals) loadConfig() (*config.Config, error) {
	path := config.ResolvePath(g.configPath, g.getenv)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config: %w (name the config file with --config FILE or %s, or run payd in the directory of config.yaml)", err, config.PathEnv)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := config.ParseWithEnv(f, g.getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	if g.logFormat != "" {
		cfg.Log.Format = g.logFormat
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// open loads the config and opens its database, for a one-shot command;
// the caller closes the store.
func (g *globals) open(ctx context.Context) (*config.Config, *state.Store, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := g.openExisting(ctx, cfg, clock.Real{})
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// openExisting opens the configured database for any command but migrate
// and serve: a missing one is refused (naming the path and payd migrate),
// never created. One at an older schema is brought up to date.
func (g *globals) openExisting(ctx context.Context, cfg *config.Config, clk clock.Clock) (*state.Store, error) {
	log := daemon.NewLogger(cfg.Log, g.stderr)
	st, err := state.Open(ctx, daemon.StoreOptions(cfg, clk, log, true))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	v, err := st.AppliedVersion(ctx)
	if err == nil && v < state.SchemaVersion {
		err = st.Migrate(ctx)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return st, nil
}

// appFlag resolves an --app flag value.
func appFlag(cfg *config.Config, flag string) (string, error) {
	if flag != "" {
		for _, a := range cfg.Douyin.Apps {
			if a.AppID == flag {
				return flag, nil
			}
		}
		return "", fmt.Errorf("--app %s: not configured in douyin.apps", flag)
	}
	if id := daemon.DefaultAppID(cfg); id != "" {
		return id, nil
	}
	ids := make([]string, 0, len(cfg.Douyin.Apps))
	for _, a := range cfg.Douyin.Apps {
		ids = append(ids, a.AppID)
	}
	return "", fmt.Errorf("--app: required when several apps are configured (%s)", strings.Join(ids, ", "))
}
