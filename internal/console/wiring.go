package console

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/events"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// Wiring is what `payd serve` hands the console.
type Wiring struct {
	Config    *config.Config
	Store     *state.Store
	Policy    reconcile.Policy
	Endpoints []events.Endpoint
	Clock     clock.Clock
	Log       *logrus.Entry
	Metrics   *metrics.Metrics // optional
	// Wake and WakeEvents wake the reconciler and the event dispatcher.
	Wake, WakeEvents func()
	// Group, when set, tracks the snapshot loop, so shutdown can wait for it.
	Group *sync.WaitGroup
}

// Mount builds the console of a running daemon and keeps its overview
// counts fresh until ctx ends. A console that cannot be built (it cannot
// once the config validated) answers every request with 503 and the reason
// is logged: the admin API goes on without it.
func Mount(ctx context.Context, w Wiring) http.Handler {
	cfg := w.Config
	o := Options{
		Store: w.Store, Policy: w.Policy, Clock: w.Clock, Log: w.Log,
		AdminToken: cfg.Server.AdminToken, ViewerToken: cfg.Server.ViewerToken,
		SessionTTL: cfg.Console.SessionTTL.Duration, Subscriptions: events.Subscriptions(w.Endpoints),
		Limits: cfg.Douyin.Limits, Wake: w.Wake, WakeEvents: w.WakeEvents,
	}
	for _, a := range cfg.Douyin.Apps {
		o.Apps = append(o.Apps, a.AppID)
	}
	if w.Metrics != nil {
		o.Gatherer = w.Metrics.Registry
	}
	loc, err := time.LoadLocation(cfg.Console.Timezone)
	var c *Console
	if err == nil {
		o.Location = loc
		c, err = New(o)
	}
	if err != nil {
		if w.Log != nil {
			w.Log.WithError(err).Error("console disabled")
		}
		return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			http.Error(rw, "the console is not available: see payd's log", http.StatusServiceUnavailable)
		})
	}
	if w.Group != nil {
		w.Group.Add(1)
	}
	go func() {
		if w.Group != nil {
			defer w.Group.Done()
		}
		c.Run(ctx)
	}()
	return c
}
