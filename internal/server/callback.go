// Package server is payd's HTTP surface: the Douyin callback endpoint (whose
// callbacks are only hints to look sooner), the bearer-token admin API,
// /metrics and /healthz.
package server

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/state"
)

// Inbox stores verified callbacks. *state.Store satisfies it.
type Inbox interface {
	InsertCallback(ctx context.Context, cb *state.Callback, now time.Time) (bool, error)
}

// Waker is told that a hint arrived. *jobs.Reconciler satisfies it.
type Waker interface {
	Wake()
}

// CallbackOptions configure the callback handler.
type CallbackOptions struct {
	Inbox Inbox
	// Tokens maps app_id to the app's callback Token (ecpay apps, and trade
	// apps migrated from ecpay for their legacy callbacks); "" = none.
	Tokens map[string]string
	// PlatformKeys maps a trade app's app_id to its platform public key,
	// which verifies its version 2.0/3.0 callbacks.
	PlatformKeys map[string]*rsa.PublicKey
	// PreRefund answers a trade app's pre_create_refund synchronously;
	// nil answers HTTP 503, so that Douyin asks again later.
	PreRefund PreRefunder
	Waker     Waker
	Clock     clock.Clock
	Metrics   *metrics.Metrics
	Log       *logrus.Entry
	// Rate and Burst bound the callback traffic whose signature does not
	// verify (per second); beyond them it is refused with 429. Unverified
	// traffic never costs a database write, and verified callbacks are not
	// limited. 200/s and 400 when zero.
	Rate  float64
	Burst int
	// Ready reports whether the daemon can take callbacks (database
	// writable); nil means always.
	Ready func() error
}

// CallbackHandler serves POST /douyin/notify and GET /healthz.
type CallbackHandler struct {
	o        CallbackOptions
	limiter  *rate.Limiter
	mux      *http.ServeMux
	refusals *refusals
}

// NewCallbackHandler returns the handler of the callback listener.
func NewCallbackHandler(o CallbackOptions) *CallbackHandler {
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.Burst <= 0 {
		o.Burst = 400
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = discardLog()
	}
	h := &CallbackHandler{o: o, limiter: rate.NewLimiter(rate.Limit(o.Rate), o.Burst), mux: http.NewServeMux()}
	h.refusals = newRefusals(h)
	h.mux.HandleFunc("POST /douyin/notify", h.notify)
	h.mux.HandleFunc("GET /healthz", healthz(o.Ready))
	return h
}

// ServeHTTP implements http.Handler.
func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ack is the answer Douyin takes as delivered.
var ack = []byte(`{"err_no":0,"err_tips":"success"}`)

func (h *CallbackHandler) count(typ, result string) {
	if h.o.Metrics != nil {
		h.o.Metrics.Callbacks.WithLabelValues(typ, result).Inc()
	}
}

// refuse answers a callback that is not taken, and counts it: in the
// process's metrics and, added up for a few seconds, in the database per
// app (refusals.go), so every replica's console shows the cluster's
// refusals. app is "" when the callback did not verify.
func (h *CallbackHandler) refuse(w http.ResponseWriter, app string, status int, typ, result, msg string) {
	h.count(typ, result)
	h.refusals.add(app, result)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"err_no": status, "err_tips": msg})
	_, _ = w.Write(b)
}

// notify verifies a callback and stores it as a hint. Traffic whose
// signature does not verify is rate limited (Rate, Burst): within the rate
// it is refused with a status naming the problem, beyond it with 429; it
// never reaches the database. A verified callback is never rate limited, so
// a storm of forged ones cannot delay Douyin's genuine ones: checking a
// signature costs one SHA-1 over at most MaxCallbackBody bytes.
func (h *CallbackHandler) notify(w http.ResponseWriter, r *http.Request) {
	// refuse answers traffic that did not verify, and takes a token of the
	// limiter: once over the rate it answers 429 and reports false (do not
	// log: a storm must not flood the log either).
	app := "" // the app_id the body names, once parsed (not verified)
	refuse := func(status int, typ, result, msg string) bool {
		allowed := h.limiter.Allow()
		if !allowed {
			status, result, msg = http.StatusTooManyRequests, "rate_limited", "too many unverified callbacks"
		}
		h.refuse(w, app, status, typ, result, msg)
		return allowed
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, douyin.MaxCallbackBody))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, "", "too_large", "callback body over 64 KiB or unreadable")
		return
	}
	if tradeVersion(body) {
		h.notifyTrade(w, r, body, refuse)
		return
	}
	parsed, err := douyin.ParseCallback(body)
	if err != nil {
		if refuse(http.StatusBadRequest, "", "malformed", "malformed callback: "+callbackProblem(err)) {
			h.o.Log.WithError(err).Debug("malformed callback")
		}
		return
	}
	typ, app := string(parsed.Type), parsed.AppID
	token, ok := h.o.Tokens[parsed.AppID]
	if !ok || token == "" {
		if refuse(http.StatusBadRequest, typ, "unknown_app", "callback for an app_id payd does not serve") {
			h.o.Log.WithField("app", parsed.AppID).Warn("callback for an unknown app")
		}
		return
	}
	// The body is parsed once: ParseCallback decoded the msg, which is
	// what the signature covers (a third of the handler's CPU went to
	// parsing it again in VerifyCallback).
	if err := parsed.VerifySignature(token); err != nil {
		if refuse(http.StatusUnauthorized, typ, "bad_signature", "signature check failed") {
			h.o.Log.WithField("app", parsed.AppID).WithField("type", typ).Warn("callback refused: bad_signature")
		}
		return
	}
	h.store(w, r, &state.Callback{AppID: parsed.AppID, Type: typ, Signature: parsed.Signature, SubjectNo: parsed.SubjectNo, Raw: string(body)})
}

// store puts a verified callback in the inbox and acknowledges it; a
// failure to store is not acknowledged, so Douyin sends it again.
func (h *CallbackHandler) store(w http.ResponseWriter, r *http.Request, row *state.Callback) {
	typ := row.Type
	now := h.o.Clock.Now()
	row.ReceivedAt = now
	inserted, err := h.o.Inbox.InsertCallback(r.Context(), row, now)
	if err != nil {
		// Not acknowledged: Douyin will send it again.
		h.refuse(w, row.AppID, http.StatusServiceUnavailable, typ, "store_error", "callback not stored")
		h.o.Log.WithError(err).WithField("type", typ).Error("store callback")
		return
	}
	if inserted {
		h.count(typ, "stored")
		if h.o.Waker != nil && row.OrderID != 0 {
			h.o.Waker.Wake()
		}
	} else {
		h.count(typ, "duplicate")
	}
	h.o.Log.WithFields(logrus.Fields{"type": typ, "subject": row.SubjectNo, "new": inserted}).Debug("callback stored")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ack)
}

// callbackProblem is what is wrong with a callback, without the douyin
// package's prefixes.
func callbackProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), douyin.ErrMalformedCallback.Error()+": ")
	return strings.TrimPrefix(msg, "douyin callback: ")
}

func healthz(ready func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				b, _ := json.Marshal(map[string]string{"status": "unavailable", "error": err.Error()})
				_, _ = w.Write(b)
				return
			}
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}
}

func discardLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
