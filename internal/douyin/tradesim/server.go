package tradesim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	mrand "math/rand"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Server is the simulator. It is safe for concurrent use.
type Server struct {
	cfg     Config
	handler http.Handler
	http    *http.Client

	mu       sync.Mutex
	started  time.Time // wall
	advanced time.Duration
	faults   Faults
	rng      *mrand.Rand
	apps     map[string]*App
	tokens   map[string][]issued    // app → tokens, oldest first
	fetches  map[string][]time.Time // app → fetch times in the window
	limiters map[string]*rate.Limiter
	orders   map[string]*order // by order_id
	byOut    map[string]*order // by app + "\x00" + out_order_no
	refunds  map[string]*refund
	settles  map[string]*settle
	// The indexes addRefundLocked and addSettleLocked keep, so that no
	// call scans every refund or settlement: by app + "\x00" + the
	// merchant's number, and those still PROCESSING (progressLocked).
	refundNos map[string]*refund
	settleNos map[string]*settle
	active    map[string]*refund
	settling  map[string]*settle
	autoApps  bool // some app settles automatically: progress scans the orders
	seq       int
	outbox    []*delivery

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	httpSrv   *http.Server
	closeOnce sync.Once
}

// New returns a simulator serving cfg's apps; it starts its background loop
// (refund and settlement progress, callbacks) at once.
func New(cfg Config) *Server {
	cfg.defaults()
	if cfg.PlatformKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("tradesim: generate platform key: %v", err))
		}
		cfg.PlatformKey = k
	}
	s := &Server{
		cfg: cfg, http: &http.Client{Timeout: 5 * time.Second},
		started: time.Now(), faults: cfg.Faults, rng: mrand.New(mrand.NewSource(cfg.Seed)),
		apps: map[string]*App{}, tokens: map[string][]issued{}, fetches: map[string][]time.Time{},
		limiters: map[string]*rate.Limiter{}, orders: map[string]*order{}, byOut: map[string]*order{},
		refunds: map[string]*refund{}, settles: map[string]*settle{},
		refundNos: map[string]*refund{}, settleNos: map[string]*settle{}, active: map[string]*refund{}, settling: map[string]*settle{},
	}
	if cfg.Start.IsZero() {
		s.cfg.Start = s.started
	}
	for i := range cfg.Apps {
		a := cfg.Apps[i]
		s.apps[a.AppID] = &a
		s.autoApps = s.autoApps || a.AutoSettle
	}
	s.handler = s.routes()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.loop()
	return s
}

// PublicKey is the platform public key that verifies the callbacks.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.cfg.PlatformKey.PublicKey }

// Handler serves the trade endpoints, /oauth/client_token/ and the control
// API under /_sim/trade/.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr ("127.0.0.1:0") and serves Handler; it returns the
// base URL.
func (s *Server) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil || s.httpSrv != nil {
		return "", errors.New("start trade simulator: closed or already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("start trade simulator: %w", err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.httpSrv = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops serving and background work and waits for them.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		s.mu.Lock()
		srv := s.httpSrv
		s.mu.Unlock()
		if srv != nil {
			err = srv.Close()
		}
		s.wg.Wait()
	})
	return err
}

// Now is the simulated time: Start plus wall time since New plus Advance.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Server) nowLocked() time.Time {
	return s.cfg.Start.Add(time.Since(s.started) + s.advanced).UTC()
}

// Advance moves the simulated clock forward and lets everything due happen.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanced += d
	s.progressLocked(s.nowLocked())
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

func (s *Server) rollLocked(p float64) bool { return p > 0 && s.rng.Float64() < p }

func (s *Server) nextIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%019d", prefix, 7300000000000000000+int64(s.seq))
}

// allow takes a rate token for app and api (wall clock), never blocking.
func (s *Server) allow(app, api string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := app + "\x00" + api
	l := s.limiters[k]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(s.cfg.Rate), max(1, int(s.cfg.Rate)))
		s.limiters[k] = l
	}
	return l.Allow()
}

// loop progresses refunds and settlements and sends callbacks every 20 ms.
func (s *Server) loop() {
	defer s.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.progressLocked(s.nowLocked())
			s.mu.Unlock()
			s.sendDue()
		}
	}
}
