// Package console is payd's web console: server-rendered pages on the admin
// listener at / for the person who must answer "did the settle batch go out,
// and what is stuck?" without reading JSON. Pages are html/template with
// embedded assets (no CDN, no JavaScript needed); every list is keyset
// paginated; sign-in takes the admin token (may act) or the viewer token
// (may only look) and gives a session cookie; every form that changes
// something carries the session's CSRF token.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options configure the console.
type Options struct {
	// Store is read (keyset pages and counts through its DB, read-only) and
	// changed only through its retry, cancel and replay methods.
	Store  *state.Store
	Policy reconcile.Policy
	Clock  clock.Clock
	Log    *logrus.Entry
	// AdminToken signs in with every right; ViewerToken (optional) signs in
	// read-only.
	AdminToken, ViewerToken string
	// Location is the zone times are shown in; Asia/Shanghai when nil.
	Location *time.Location
	// SessionTTL is how long a sign-in lasts; 12h when zero.
	SessionTTL time.Duration
	// Subscriptions are the event endpoints, for replays.
	Subscriptions []state.Subscription
	// Apps are the configured app_ids, in config order; Limits the calls
	// per second each app may make per API (douyin.limits).
	Apps   []string
	Limits map[string]float64
	// Wake and WakeEvents, when set, wake the reconciler after a retry or
	// cancel and the event dispatcher after a replay.
	Wake, WakeEvents func()
	// Gatherer, when set, supplies the process's callback counters.
	Gatherer prometheus.Gatherer
	// FoldEvery is how often Run folds the counters' deltas
	// (state.FoldCounters), which keeps every page's read of them short;
	// 5s when zero.
	FoldEvery time.Duration
}

// Console is the console's handler.
type Console struct {
	o        Options
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	cross    *http.CrossOriginProtection
}

// maxForm bounds the body of every console form (bytes).
const maxForm = 64 << 10

// maxSelection bounds the items one action may name.
const maxSelection = 200

// New returns the console. Call Run to fold the counters it reads.
func New(o Options) (*Console, error) {
	if o.Store == nil {
		return nil, errors.New("console: a store is required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		o.Log = logrus.NewEntry(l)
	}
	if o.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		o.Location = loc
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.FoldEvery <= 0 {
		o.FoldEvery = 5 * time.Second
	}
	o.Log = o.Log.WithField(logkey.Component, "console")
	c := &Console{o: o, sessions: newSessions(o.Clock, o.SessionTTL), cross: http.NewCrossOriginProtection()}
	pages, err := parsePages(o.Location)
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ServeHTTP sets the security headers every answer carries and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	assets, _ := fs.Sub(assetFS, "assets")
	m.Handle("GET /assets/", http.StripPrefix("/assets/", cacheAssets(http.FileServerFS(assets))))
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.post(c.logout, false))
	m.HandleFunc("GET /{$}", c.page(c.overview))
	m.HandleFunc("GET /orders", c.page(c.orders))
	m.HandleFunc("GET /orders/{app}/{no}", c.page(c.order))
	m.HandleFunc("GET /calendar", c.page(c.calendar))
	m.HandleFunc("GET /attention", c.page(c.attention))
	m.HandleFunc("GET /search", c.page(c.search))
	m.HandleFunc("GET /events", c.page(c.events))
	m.HandleFunc("POST /actions/{op}", c.post(c.action, true))
	m.HandleFunc("/", c.page(func(*http.Request, *session) (string, any, error) { return "", nil, errNotFound }))
	c.mux = m
}

func cacheAssets(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// Run folds the counters' deltas every FoldEvery until ctx ends. Pages
// are exact without it; it keeps their reads short.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.o.FoldEvery)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.o.Log.WithError(err).Warn("console: fold the counters")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh folds the counters' deltas now (Run, tests, benchmarks).
func (c *Console) Refresh(ctx context.Context) error {
	n, err := c.o.Store.FoldCounters(ctx, c.o.Clock.Now(), 0)
	if n > 0 {
		c.o.Log.Debugf("folded %d counter deltas", n)
	}
	return err
}
