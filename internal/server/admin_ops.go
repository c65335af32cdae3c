package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/payd/payd/internal/api"
)

// CancelRequest is the optional body of the cancel and retry routes.
type CancelRequest struct {
	AppID string `json:"app_id"`
	// ItemOrderID names the settlement of one item order (an order settled
	// item by item); "" the whole-order settlement. Settlement routes only.
	ItemOrderID string `json:"item_order_id"`
	// Reason is kept with a cancelled item and sent in its event.
	Reason string `json:"reason"`
}

// cancelRequest reads an optional CancelRequest; an empty body is one
// with the default reason.
func cancelRequest(w http.ResponseWriter, r *http.Request) (CancelRequest, error) {
	var req CancelRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil && !errors.Is(err, io.EOF) {
			return req, err
		}
	}
	if req.Reason == "" {
		req.Reason = "withdrawn through the admin API"
	}
	return req, nil
}

// refundRequest reads the body of a refund's cancel or retry, which names
// no item order.
func refundRequest(w http.ResponseWriter, r *http.Request) (CancelRequest, bool) {
	req, err := cancelRequest(w, r)
	if err == nil && req.ItemOrderID != "" {
		err = errors.New("item_order_id: names the item order of a settlement; a refund is named by its key in the path")
	}
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return req, false
	}
	return req, true
}

func (a *admin) wake() {
	if a.o.Waker != nil {
		a.o.Waker.Wake()
	}
}

func (a *admin) cancelRefund(w http.ResponseWriter, r *http.Request) {
	req, ok := refundRequest(w, r)
	if !ok {
		return
	}
	rf, err := a.o.Store.CancelRefund(r.Context(), r.PathValue("key"), req.Reason, a.o.Clock.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	a.wake()
	WriteJSON(w, http.StatusOK, api.FromRefund(*rf, "", ""))
}

// retryRefund is payd retry refund KEY: a parked refund back to pending
// with its next attempt.
func (a *admin) retryRefund(w http.ResponseWriter, r *http.Request) {
	if _, ok := refundRequest(w, r); !ok {
		return
	}
	rf, err := a.o.Store.RetryParked(r.Context(), r.PathValue("key"), a.o.Clock.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	a.wake()
	WriteJSON(w, http.StatusOK, api.FromRefund(*rf, "", ""))
}

func (a *admin) cancelSettlement(w http.ResponseWriter, r *http.Request) {
	req, err := cancelRequest(w, r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	appID := req.AppID
	if appID == "" {
		appID = a.o.DefaultApp
	}
	no := r.PathValue("no")
	st, err := a.o.Store.CancelItemSettlement(r.Context(), appID, no, req.ItemOrderID, req.Reason, a.o.Clock.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	a.wake()
	WriteJSON(w, http.StatusOK, api.FromSettlement(*st, appID, no))
}

// retrySettlement is payd retry settlement ORDER [--item ID]: a parked
// settlement back to pending with its next attempt.
func (a *admin) retrySettlement(w http.ResponseWriter, r *http.Request) {
	req, err := cancelRequest(w, r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	appID := req.AppID
	if appID == "" {
		appID = a.o.DefaultApp
	}
	no := r.PathValue("no")
	st, err := a.o.Store.RetryParkedItemSettlement(r.Context(), appID, no, req.ItemOrderID, a.o.Clock.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	a.wake()
	WriteJSON(w, http.StatusOK, api.FromSettlement(*st, appID, no))
}
