package server

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/payd/payd/internal/douyin/trade"
	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/state"
)

// PreRefunder answers a verified pre_create_refund: it stores the user's
// refund before it returns the synchronous answer (trade.PreCreateRefundAnswer
// or a refusal), the same out_refund_no for every retry of one refund_id.
type PreRefunder interface {
	PreCreateRefund(ctx context.Context, cb *trade.Callback) ([]byte, error)
}

// RefundAdopter adopts the refund of a verified trade refund callback that
// payd has no row for. A PreRefunder may implement it.
type RefundAdopter interface {
	AdoptRefund(ctx context.Context, cb *trade.Callback) error
}

// SettleAdopter adopts the settlement of a verified trade settle callback
// that payd did not make. A PreRefunder may implement it.
type SettleAdopter interface {
	AdoptSettle(ctx context.Context, cb *trade.Callback) error
}

// tradeVersion reports whether body is a trade-system callback (version
// 2.0 or 3.0, RSA-signed in the headers). A legacy body (msg_signature,
// orders migrated from ecpay) and anything else takes the ecpay path,
// which refuses what it cannot verify.
func tradeVersion(body []byte) bool {
	// An ecpay body has no "version" key (its msg is a string, where any
	// quote is escaped): skip decoding the whole body for it.
	if !bytes.Contains(body, []byte(`"version"`)) {
		return false
	}
	var outer struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(body, &outer) != nil {
		return false
	}
	return outer.Version == "2.0" || outer.Version == "3.0"
}

// notifyTrade verifies a trade callback with the app's platform public key
// over the raw body and the Byte-Timestamp, Byte-Nonce-Str and
// Byte-Signature headers, then stores it as a hint (payment, refund,
// settle) or answers it synchronously (pre_create_refund).
func (h *CallbackHandler) notifyTrade(w http.ResponseWriter, r *http.Request, body []byte, refuse func(status int, typ, result, msg string) bool) {
	keys := trade.Keys{PublicKey: func(appID string) *rsa.PublicKey { return h.o.PlatformKeys[appID] }}
	cb, err := keys.Verify(body, trade.HeadersFrom(r.Header))
	if err != nil {
		status, result, msg := http.StatusBadRequest, "malformed", "malformed trade callback"
		switch {
		case errors.Is(err, trade.ErrNoKey):
			result, msg = "unknown_app", "callback for an app_id payd does not serve as a trade app"
		case errors.Is(err, trade.ErrBadSignature):
			status, result, msg = http.StatusUnauthorized, "bad_signature", "signature check failed"
		case errors.Is(err, trade.ErrUnknownCallbackType):
			result, msg = "unknown_type", "unknown trade callback type"
		}
		if refuse(status, "", result, msg) {
			h.o.Log.WithError(err).Warn("trade callback refused: " + result)
		}
		return
	}
	typ := string(cb.Type)
	if cb.Type == trade.CallbackPreCreateRefund {
		h.preCreateRefund(w, r, cb)
		return
	}
	if ad, ok := h.o.PreRefund.(RefundAdopter); ok && cb.Type == trade.CallbackRefund {
		if err := ad.AdoptRefund(r.Context(), cb); err != nil {
			h.refuse(w, cb.AppID, http.StatusServiceUnavailable, typ, "store_error", "refund not adopted")
			h.o.Log.WithError(err).WithField(logkey.App, cb.AppID).WithField(logkey.Subject, cb.SubjectNo).Error("adopt refund")
			return
		}
	}
	if ad, ok := h.o.PreRefund.(SettleAdopter); ok && cb.Type == trade.CallbackSettle {
		if err := ad.AdoptSettle(r.Context(), cb); err != nil {
			h.refuse(w, cb.AppID, http.StatusServiceUnavailable, typ, "store_error", "settlement not adopted")
			h.o.Log.WithError(err).WithField(logkey.App, cb.AppID).WithField(logkey.Subject, cb.SubjectNo).Error("adopt settlement")
			return
		}
	}
	h.store(w, r, &state.Callback{AppID: cb.AppID, Type: typ, Signature: cb.Signature, SubjectNo: cb.SubjectNo, Raw: string(body)})
}

// preCreateRefund answers a user's refund request from the database: the
// answer is written only once the refund row is stored, so an answer
// Douyin acts on always has its row.
func (h *CallbackHandler) preCreateRefund(w http.ResponseWriter, r *http.Request, cb *trade.Callback) {
	typ := string(cb.Type)
	if h.o.PreRefund == nil {
		h.refuse(w, cb.AppID, http.StatusServiceUnavailable, typ, "not_configured", "user refunds are not taken yet")
		return
	}
	answer, err := h.o.PreRefund.PreCreateRefund(r.Context(), cb)
	if err != nil {
		// No valid answer: Douyin asks again; the row, if stored, answers
		// the retry with the same number.
		h.refuse(w, cb.AppID, http.StatusServiceUnavailable, typ, "store_error", "user refund not stored")
		h.o.Log.WithError(err).WithField(logkey.App, cb.AppID).WithField(logkey.Subject, cb.SubjectNo).Error("pre_create_refund")
		return
	}
	h.count(typ, "answered")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}
