package server

import (
	"context"
	"net/http"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/state"
)

// auditRefund is POST /v1/refunds/{key}/audit: a person's decision on a
// refund awaiting audit ({key} is payd's refund key or Douyin's
// refund_id), stored for the reconciler to send before the deadline.
func (a *admin) auditRefund(w http.ResponseWriter, r *http.Request) {
	var req api.AuditRequest
	if err := decode(w, r, &req); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	rf, err := a.o.Store.DecideAudit(r.Context(), state.AuditWish{Refund: r.PathValue("key"), Decision: state.AuditDecision(req.Decision), Message: req.Message}, a.o.Clock.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	if a.o.Waker != nil {
		a.o.Waker.Wake()
	}
	WriteJSON(w, http.StatusOK, api.FromRefund(*rf, "", ""))
}

// OrderSigner signs a trade app's order data for tt.requestOrder and
// records the order as expected. *ordersign.Signer satisfies it.
type OrderSigner interface {
	Sign(ctx context.Context, req api.SignOrderRequest, now time.Time) (*api.SignedOrder, error)
}

// signOrder is POST /v1/orders/sign: the signed order data and its
// Byte-Authorization, for the merchant's backend to hand to the
// mini-program.
func (a *admin) signOrder(w http.ResponseWriter, r *http.Request) {
	var req api.SignOrderRequest
	if err := decode(w, r, &req); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if a.o.Signer == nil {
		WriteError(w, http.StatusNotFound, "no trade app is configured to sign order data")
		return
	}
	signed, err := a.o.Signer.Sign(r.Context(), req, a.o.Clock.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	if a.o.Waker != nil {
		a.o.Waker.Wake()
	}
	WriteJSON(w, http.StatusOK, signed)
}
