package server

import (
	"net/http"
	"time"

	"github.com/payd/payd/internal/api"
	"github.com/payd/payd/internal/state"
)

// FulfilRequest is the body of POST /v1/orders/{no}/fulfil.
type FulfilRequest struct {
	AppID string `json:"app_id"`
	// ItemOrderID is Douyin's item_order_id; empty for the whole order.
	ItemOrderID string `json:"item_order_id"`
	// FulfilledAt is when it was fulfilled; absent for now.
	FulfilledAt *time.Time `json:"fulfilled_at"`
}

// declareFulfilment records that an order or one of its item orders was
// fulfilled (payd fulfil): 201 with the row when new, 200 when it already
// was, 400 naming the field when the wish is invalid.
func (a *admin) declareFulfilment(w http.ResponseWriter, r *http.Request) {
	var req FulfilRequest
	if err := decode(w, r, &req); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	appID, err := a.app(req.AppID)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	no := r.PathValue("no")
	f, ch, err := a.o.Store.DeclareFulfilment(r.Context(), state.FulfilmentWish{
		AppID: appID, OutOrderNo: no, ItemOrderID: req.ItemOrderID, At: req.FulfilledAt,
	}, a.o.Clock.Now())
	var row any
	if f != nil {
		row = api.FromFulfilment(*f, appID, no)
	}
	a.declared(w, row, ch == state.Created, err)
}
