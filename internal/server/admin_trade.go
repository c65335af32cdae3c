package server

import (
	"net/http"

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
