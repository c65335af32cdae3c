package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/metrics"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// OrderCreator calls create_order. *douyin.Client satisfies it.
type OrderCreator interface {
	CreateOrder(ctx context.Context, req douyin.CreateOrderRequest) (*douyin.CreateOrderResponse, error)
}

// AdminOptions configure the admin API.
type AdminOptions struct {
	Store   *state.Store
	Douyin  OrderCreator
	Waker   Waker
	Policy  reconcile.Policy
	Clock   clock.Clock
	Metrics *metrics.Metrics
	Log     *logrus.Entry
	// Token is the bearer token every /v1 request must carry.
	Token string
	// DefaultApp is used when a request names no app_id.
	DefaultApp string
	// Extra routes (e.g. events) mounted behind the same token check.
	Extra func(mux *http.ServeMux, wrap func(http.HandlerFunc) http.HandlerFunc)
	Ready func() error
	// Console, when set, serves every path the admin API does not (the web
	// console at /); it does its own sign-in.
	Console http.Handler
	// Signer signs trade apps' order data (POST /v1/orders/sign); nil
	// refuses it.
	Signer OrderSigner
}

// NewAdminHandler returns the handler of the admin listener: /v1/... behind
// the bearer token, /metrics and /healthz open (the listener binds loopback
// by default).
func NewAdminHandler(o AdminOptions) http.Handler {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = discardLog()
	}
	a := &admin{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", a.auth(a.createOrder))
	mux.HandleFunc("GET /v1/orders/{no}", a.auth(a.getOrder))
	mux.HandleFunc("POST /v1/orders/{no}/refunds", a.auth(a.declareRefund))
	mux.HandleFunc("PUT /v1/orders/{no}/settlement", a.auth(a.declareSettlement))
	mux.HandleFunc("POST /v1/orders/{no}/fulfil", a.auth(a.declareFulfilment))
	mux.HandleFunc("POST /v1/refunds/{key}/cancel", a.auth(a.cancelRefund))
	mux.HandleFunc("POST /v1/orders/{no}/settlement/cancel", a.auth(a.cancelSettlement))
	mux.HandleFunc("POST /v1/refunds/{key}/retry", a.auth(a.retryRefund))
	mux.HandleFunc("POST /v1/orders/{no}/settlement/retry", a.auth(a.retrySettlement))
	mux.HandleFunc("GET /v1/plan", a.auth(a.plan))
	mux.HandleFunc("GET /v1/status", a.auth(a.status))
	mux.HandleFunc("POST /v1/refunds/{key}/audit", a.auth(a.auditRefund))
	mux.HandleFunc("POST /v1/orders/sign", a.auth(a.signOrder))
	if o.Extra != nil {
		o.Extra(mux, a.auth)
	}
	mux.HandleFunc("GET /healthz", healthz(o.Ready))
	if o.Console != nil {
		mux.Handle("/", o.Console)
	}
	if o.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

type admin struct{ o AdminOptions }

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 1 << 20

// APIError is the JSON shape of every admin error.
type APIError = api.Error

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes a JSON error naming the problem.
func WriteError(w http.ResponseWriter, status int, format string, args ...any) {
	WriteJSON(w, status, APIError{Error: fmt.Sprintf(format, args...)})
}

func (a *admin) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok || a.o.Token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(a.o.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="payd"`)
			WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
}

// bearer returns the credentials of an Authorization header in the Bearer
// scheme, whose name is case-insensitive (RFC 7235 section 2.1).
func bearer(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(cred, " "), true
}

// decode reads a JSON body strictly: unknown fields and trailing data are errors.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("request body: trailing data after the JSON object")
	}
	return nil
}

// statusOf maps a store error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, state.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, state.ErrKeyReused), errors.Is(err, state.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, state.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (a *admin) fail(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		a.o.Log.WithError(err).Error("admin request failed")
		WriteError(w, status, "internal error")
		return
	}
	WriteError(w, status, "%s", err.Error())
}

// app resolves a request's app_id: DefaultApp when empty; an app the
// policy does not configure is an error (a wish for it could never be
// carried out, and it must not create rows).
func (a *admin) app(id string) (string, error) {
	if id == "" {
		id = a.o.DefaultApp
	}
	if len(a.o.Policy.Apps) > 0 {
		if _, ok := a.o.Policy.Apps[id]; !ok {
			if id == "" {
				return "", errors.New("app_id: required when several apps are configured")
			}
			return "", fmt.Errorf("app_id: %q is not configured in douyin.apps", id)
		}
	}
	return id, nil
}

// CreateOrderRequest is the body of POST /v1/orders.
type CreateOrderRequest struct {
	AppID       string `json:"app_id"`
	OutOrderNo  string `json:"out_order_no"`
	TotalAmount int64  `json:"total_amount"`
	Subject     string `json:"subject"`
	Body        string `json:"body"`
	ValidTime   int64  `json:"valid_time"`
	CPExtra     string `json:"cp_extra"`
}

// CreateOrderResponse is what the mini-program's tt.pay needs.
type CreateOrderResponse = api.CreatedOrder

func (a *admin) createOrder(w http.ResponseWriter, r *http.Request) {
	var req CreateOrderRequest
	if err := decode(w, r, &req); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	switch {
	case req.TotalAmount < 1 || req.TotalAmount > 10_000_000_000:
		WriteError(w, http.StatusBadRequest, "total_amount: %d fen is out of range 1..10000000000", req.TotalAmount)
		return
	case req.Subject == "" || len(req.Subject) > 128:
		WriteError(w, http.StatusBadRequest, "subject: required, at most 128 bytes")
		return
	case req.Body == "" || len(req.Body) > 128:
		WriteError(w, http.StatusBadRequest, "body: required, at most 128 bytes")
		return
	case len(req.CPExtra) > 2048:
		WriteError(w, http.StatusBadRequest, "cp_extra: at most 2048 bytes")
		return
	}
	if req.ValidTime == 0 {
		req.ValidTime = 3600
	}
	if req.ValidTime < 300 || req.ValidTime > 172800 {
		WriteError(w, http.StatusBadRequest, "valid_time: %d seconds is out of range 300..172800", req.ValidTime)
		return
	}
	appID, err := a.app(req.AppID)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	now := a.o.Clock.Now()
	// Record the order before calling Douyin: if the call's outcome is lost,
	// the reconciler still queries it.
	o, _, err := a.o.Store.UpsertOrder(r.Context(), state.OrderInput{AppID: appID, OutOrderNo: req.OutOrderNo, TotalAmount: req.TotalAmount}, now)
	if err != nil {
		a.fail(w, err)
		return
	}
	resp, err := a.o.Douyin.CreateOrder(r.Context(), douyin.CreateOrderRequest{
		AppID: appID, OutOrderNo: req.OutOrderNo, TotalAmount: req.TotalAmount, Subject: req.Subject,
		Body: req.Body, ValidTime: req.ValidTime, CPExtra: req.CPExtra, NotifyURL: a.o.Policy.App(appID).NotifyURL,
	})
	if err != nil {
		status := http.StatusBadGateway
		if douyin.Classify(err) == douyin.ClassPermanent {
			status = http.StatusBadRequest
		}
		WriteError(w, status, "create_order: %v", err)
		return
	}
	if o.DouyinOrderID == "" && o.Status == state.OrderUnknown {
		o.DouyinOrderID = resp.OrderID
		o.Status = state.OrderProcessing
		if err := a.o.Store.UpdateOrder(r.Context(), o); err != nil && !errors.Is(err, state.ErrConflict) {
			a.o.Log.WithError(err).Warn("record order_id")
		}
	}
	WriteJSON(w, http.StatusCreated, CreateOrderResponse{OutOrderNo: req.OutOrderNo, DouyinOrderID: resp.OrderID, OrderToken: resp.OrderToken})
}

func (a *admin) getOrder(w http.ResponseWriter, r *http.Request) {
	h, err := a.o.Store.History(r.Context(), r.URL.Query().Get("app_id"), r.PathValue("no"))
	if err != nil {
		a.fail(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, api.FromHistory(h, reconcile.Plan(h.OrderView, a.o.Clock.Now(), a.o.Policy)))
}

// RefundRequest is the body of POST /v1/orders/{no}/refunds.
type RefundRequest struct {
	AppID  string `json:"app_id"`
	Key    string `json:"key"`
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

func (a *admin) declareRefund(w http.ResponseWriter, r *http.Request) {
	var req RefundRequest
	if err := decode(w, r, &req); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	no := r.PathValue("no")
	appID, err := a.app(req.AppID)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.Key == "" {
		req.Key = state.DefaultRefundKey(appID, no, req.Amount, req.Reason)
	}
	rf, created, err := a.o.Store.DeclareRefund(r.Context(), state.RefundWish{
		AppID: appID, OutOrderNo: no, Key: req.Key, Amount: req.Amount, Reason: req.Reason,
	}, a.o.Clock.Now())
	var row any
	if rf != nil {
		row = api.FromRefund(*rf, appID, no)
	}
	a.declared(w, row, created, err)
}

// declared answers a declaration: the error, or the row (201 when new, 200
// when it already stood as declared), after waking the reconciler.
func (a *admin) declared(w http.ResponseWriter, row any, created bool, err error) {
	if err != nil {
		a.fail(w, err)
		return
	}
	if a.o.Waker != nil {
		a.o.Waker.Wake()
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	WriteJSON(w, status, row)
}

// SettlementRequest is the body of PUT /v1/orders/{no}/settlement.
type SettlementRequest struct {
	AppID     string         `json:"app_id"`
	At        *time.Time     `json:"at"`
	Receivers []api.Receiver `json:"receivers"`
	Desc      string         `json:"desc"`
	// ItemOrderID settles one item order; empty for the whole order.
	ItemOrderID string `json:"item_order_id"`
}

func (a *admin) declareSettlement(w http.ResponseWriter, r *http.Request) {
	var req SettlementRequest
	if err := decode(w, r, &req); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	appID, err := a.app(req.AppID)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var receivers []state.Receiver
	for _, rc := range req.Receivers {
		receivers = append(receivers, state.Receiver{MerchantUID: rc.MerchantUID, Amount: rc.Amount})
	}
	no := r.PathValue("no")
	st, created, err := a.o.Store.DeclareSettlement(r.Context(), state.SettlementWish{
		AppID: appID, OutOrderNo: no, DueAt: req.At, Receivers: receivers, Desc: req.Desc, ItemOrderID: req.ItemOrderID,
	}, a.o.Clock.Now())
	var row any
	if st != nil {
		row = api.FromSettlement(*st, appID, no)
	}
	a.declared(w, row, created, err)
}

func (a *admin) plan(w http.ResponseWriter, r *http.Request) {
	rep, err := reconcile.Report(r.Context(), a.o.Store, a.o.Clock.Now(), a.o.Policy, 1000)
	if err != nil {
		a.fail(w, err)
		return
	}
	parked, err := a.o.Store.ParkedItems(r.Context(), 1000)
	if err != nil {
		a.fail(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, api.FromPlan(rep, parked))
}

func (a *admin) status(w http.ResponseWriter, r *http.Request) {
	s, err := a.o.Store.SummaryByApp(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	parked, err := a.o.Store.ParkedItems(r.Context(), 50)
	if err != nil {
		a.fail(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, api.Status{Summary: api.FromSummary(s), Parked: api.FromParked(parked)})
}
