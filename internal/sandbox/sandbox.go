// Package sandbox serves Douyin's simulators for payd sandbox: the ecpay
// one for every ecpay app and, beside it on the same listener, the trade
// system's for every trade app.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/sirupsen/logrus"
)

// Serve runs the ecpay simulator for apps, and the trade simulator for
// tr's apps on the same listener, until ctx ends; it writes where to
// stdout. With trade apps only, the trade simulator serves alone (the
// ecpay one needs an app).
func Serve(ctx context.Context, stdout io.Writer, sb config.Sandbox, apps []douyinsim.App, tr Trade, log *logrus.Entry) error {
	tsim, pubFile, err := tr.start(sb)
	if err != nil {
		return err
	}
	if tsim != nil {
		defer tsim.Close()
	}
	var sim *douyinsim.Server
	if len(apps) > 0 || tsim == nil {
		simCfg := sb.Simulator(apps)
		simCfg.Logger = log
		if sim, err = douyinsim.New(simCfg); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		defer sim.Close()
	}
	var url string
	switch {
	case tsim == nil:
		if url, err = sim.Start(sb.Listen); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	default:
		h := tsim.Handler()
		if sim != nil {
			h = sandboxMux(sim.Handler(), h)
		}
		var stop func() error
		if url, stop, err = listenShared(sb.Listen, h); err != nil {
			return err
		}
		defer stop()
	}
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.AppID
		log.WithField("url", url).WithField("app", a.AppID).Info("douyin simulator serves app")
	}
	if sim != nil {
		fmt.Fprintf(stdout, "douyin simulator on %s (%s %s); control API under %s/_sim/\n", url, word(len(ids), "app", "apps"), strings.Join(ids, ", "), url)
	}
	if tsim != nil {
		tids := make([]string, len(tr.Apps))
		for i, a := range tr.Apps {
			tids[i] = a.AppID
		}
		fmt.Fprintf(stdout, "trade simulator on %s (%s %s); control API under %s/_sim/trade/\n", url, word(len(tids), "app", "apps"), strings.Join(tids, ", "), url)
		if pubFile != "" {
			fmt.Fprintf(stdout, "trade callbacks are signed with the key whose public half is %s: name it in platform_public_key_file\n", pubFile)
		}
	}
	<-ctx.Done()
	return nil
}

// word picks the word for n things.
func word(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
