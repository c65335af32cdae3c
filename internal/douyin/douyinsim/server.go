package douyinsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"

	"github.com/payd/payd/internal/douyin"
)

// tickEvery is how often, in wall time, the background loop finishes due
// refunds and settlements and sends due callbacks.
const tickEvery = 20 * time.Millisecond

// maxInFlightCallbacks bounds the callbacks of one app being sent at once.
// Douyin notifies each mini-program on its own: a bound shared by every
// app made callbacks of a hundred apps queue behind each other (at 20
// apps × 30 settlements/s each arrived two seconds late), which Douyin's
// callbacks do not.
const maxInFlightCallbacks = 16

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	apps map[string]App
	log  *logrus.Entry

	// The simulated clock: start + wall time elapsed since wallStart +
	// offset. wall is the only reading of real time.
	wall      func() time.Time
	wallStart time.Time
	start     time.Time
	offset    atomic.Int64

	mu          sync.Mutex
	rng         *rand.Rand
	faults      Faults
	seq         int64
	orders      map[numKey]*order
	orderList   []*order
	refunds     map[numKey]*refund
	settlements map[numKey]*settlement
	failed      map[failKey]string // first answers that were definite errors: their tips
	balance     map[string]int64
	jobs        jobHeap
	deliveries  deliveryHeap
	inFlight    int            // callbacks being sent
	appInFlight map[string]int // of them, by app
	stats       Stats
	httpSrv     *http.Server

	limMu   sync.Mutex
	limits  map[douyin.API]float64
	buckets map[numKey]*rate.Limiter // keyed by app and API name

	handler   http.Handler
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New validates cfg, applies its defaults and returns a simulator whose
// background work (finishing refunds and settlements, sending callbacks) has
// started. Close stops it. Serve it with Start or mount Handler.
func New(cfg Config) (*Server, error) {
	return newServer(cfg, time.Now)
}

func newServer(cfg Config, wall func() time.Time) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		apps:        make(map[string]App, len(cfg.Apps)),
		log:         cfg.Logger,
		wall:        wall,
		wallStart:   wall(),
		start:       cfg.Start,
		rng:         rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eedd0c0ffee)),
		faults:      cfg.Faults,
		orders:      make(map[numKey]*order),
		refunds:     make(map[numKey]*refund),
		settlements: make(map[numKey]*settlement),
		failed:      make(map[failKey]string),
		appInFlight: make(map[string]int),
		balance:     make(map[string]int64, len(cfg.Apps)),
		stats:       newStats(),
		buckets:     make(map[numKey]*rate.Limiter),
	}
	if s.start.IsZero() {
		s.start = s.wallStart
	}
	for _, a := range cfg.Apps {
		s.apps[a.AppID] = a
		s.balance[a.AppID] = cfg.WithdrawableBalance
	}
	s.limits = mergeLimits(cfg.Limits)
	s.handler = s.routes()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Handler returns the simulator's HTTP handler: the ecpay v1 endpoints under
// /api/apps/ecpay/v1/ and the control API under /_sim/.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr (e.g. "127.0.0.1:0") and serves Handler in the
// background. It returns the base URL to give a client.
func (s *Server) Start(addr string) (baseURL string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return "", errors.New("start simulator: closed")
	}
	if s.httpSrv != nil {
		return "", errors.New("start simulator: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("start simulator: %w", err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.httpSrv = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln) // returns ErrServerClosed on Close
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops serving, sending callbacks and background work, and waits for
// them. Hanging answers are cut short. It is safe to call more than once.
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
	if err != nil {
		return fmt.Errorf("close simulator: %w", err)
	}
	return nil
}

// Now returns the simulated time.
func (s *Server) Now() time.Time {
	return s.start.Add(s.wall().Sub(s.wallStart) + time.Duration(s.offset.Load()))
}

// Advance moves the simulated clock forward by d (a negative d is ignored).
// Refunds and settlements that fall due are finished at once; their
// callbacks follow on the next background tick.
func (s *Server) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	s.offset.Add(int64(d))
	s.lock(s.Now())
	s.mu.Unlock()
}

// SetFaults replaces the injected faults. Invalid probabilities are clamped
// to [0, 1]; the control API rejects them instead.
func (s *Server) SetFaults(f Faults) {
	for _, p := range []*float64{&f.Err1000NoEffect, &f.Err1000AfterEffect, &f.HTTP500, &f.HTTP500AfterEffect,
		&f.HangAfterEffect, &f.CallbackDrop, &f.CallbackDuplicate, &f.CallbackDelay, &f.RefundChannelFail} {
		switch {
		case *p > 1:
			*p = 1
		case !(*p > 0):
			*p = 0
		}
	}
	f.Hang = max(f.Hang, 0)
	f.CallbackDelayMax = max(f.CallbackDelayMax, 0)
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// SetLimits replaces the per-app, per-API rates (see Config.Limits) and
// refills every bucket.
func (s *Server) SetLimits(limits map[douyin.API]float64) {
	merged := mergeLimits(limits)
	s.limMu.Lock()
	s.limits = merged
	s.buckets = make(map[numKey]*rate.Limiter)
	s.limMu.Unlock()
}

func mergeLimits(limits map[douyin.API]float64) map[douyin.API]float64 {
	out := make(map[douyin.API]float64, len(douyin.DefaultLimits))
	for k, v := range douyin.DefaultLimits {
		out[k] = v
	}
	for k, v := range limits {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// allow takes a token from the app's bucket for api; false means the call
// is over the rate and is answered 1001.
func (s *Server) allow(app string, api douyin.API) bool {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	k := numKey{app, string(api)}
	b := s.buckets[k]
	if b == nil {
		r, ok := s.limits[api]
		if !ok {
			r = 30
		}
		if r < 0 {
			b = rate.NewLimiter(rate.Inf, 1)
		} else {
			b = rate.NewLimiter(rate.Limit(r), max(1, int(r/10)))
		}
		s.buckets[k] = b
	}
	return b.AllowN(s.wall(), 1)
}

// lock takes s.mu and finishes what fell due by now.
func (s *Server) lock(now time.Time) {
	s.mu.Lock()
	s.processDueLocked(now)
}

// roll reports whether an event of probability p happens. s.mu must be held.
func (s *Server) rollLocked(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return s.rng.Float64() < p
}

// loop is the background work: every tick, finish what fell due and send
// the callbacks whose time has come.
func (s *Server) loop() {
	defer s.wg.Done()
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.tick()
		}
	}
}

func (s *Server) tick() {
	s.lock(s.Now())
	due := s.dueDeliveriesLocked(s.wall())
	s.mu.Unlock()
	for _, d := range due {
		s.wg.Add(1)
		go s.deliver(d)
	}
}
