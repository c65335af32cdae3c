package trade

import (
	"errors"
	"fmt"

	"github.com/payd/payd/internal/douyin"
)

// Class is the outcome class of a call; the same classes as the ecpay
// client's.
type Class = douyin.Class

// Douyin's err_no values payd branches on (facts file, "Error numbers").
const (
	ErrNoSuccess          = 0
	ErrNoParam            = 10000
	ErrNoParse            = 10002
	ErrNoTooFrequent      = 12001
	ErrNoTooFrequentGW    = 28003018
	ErrNoInternal         = 13000
	ErrNoBusy             = 28001005
	ErrNoNetwork          = 28001006
	ErrNoTokenInvalid     = 28001003
	ErrNoTokenExpired     = 28001008
	ErrNoTokenInvalidOld  = 2190002
	ErrNoTokenExpiredOld  = 2190008
	ErrNoTokenIllegal     = 11002
	ErrNoOrderNotFound    = 20000
	ErrNoOrderState       = 20001
	ErrNoCPSNone          = 20004
	ErrNoSystem           = 23000
	ErrNoItemUnknown      = 23024
	ErrNoItemNotOfOrder   = 23025
	ErrNoSettleNoOrder    = 23101
	ErrNoSettleNotPaid    = 23102
	ErrNoSettleNotDone    = 23107
	ErrNoSettleNoExists   = 23111
	ErrNoSettleNoMoney    = 23112
	ErrNoSettleNotAllowed = 23113
	ErrNoSettleAuto       = 23117
	ErrNoSettleWholeBar   = 23118
)

// APIError is an answer with a non-zero err_no.
type APIError struct {
	API    API
	Status int // the HTTP status it came with (200 or 400 as documented)
	ErrNo  int
	ErrMsg string
	LogID  string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("douyin trade %s: err_no %d: %s (log_id %s)", e.API, e.ErrNo, e.ErrMsg, e.LogID)
}

// Class classifies the answer: on err_no alone, with undocumented numbers
// Unknown on a write (it may have run) and definite on a read.
func (e *APIError) Class() Class {
	switch e.ErrNo {
	case ErrNoSuccess:
		return douyin.ClassOK
	case ErrNoTooFrequent, ErrNoTooFrequentGW:
		return douyin.ClassRetryable
	case ErrNoInternal, ErrNoBusy, ErrNoNetwork, ErrNoSystem:
		return douyin.ClassUnknown
	case ErrNoParam, ErrNoParse, ErrNoOrderNotFound, ErrNoOrderState, ErrNoCPSNone,
		ErrNoItemUnknown, ErrNoItemNotOfOrder, ErrNoSettleNoOrder, ErrNoSettleNotPaid,
		ErrNoSettleNotDone, ErrNoSettleNoExists, ErrNoSettleNoMoney, ErrNoSettleNotAllowed,
		ErrNoSettleAuto, ErrNoSettleWholeBar:
		return douyin.ClassPermanent
	}
	if e.TokenRefused() {
		// The call did not run; the client has refreshed the token.
		return douyin.ClassRetryable
	}
	if e.API.Write() {
		return douyin.ClassUnknown
	}
	return douyin.ClassPermanent
}

// TokenRefused reports whether Douyin refused the access token (the call did
// not run).
func (e *APIError) TokenRefused() bool { return tokenRefused(e.ErrNo) }

func tokenRefused(errNo int) bool {
	switch errNo {
	case ErrNoTokenInvalid, ErrNoTokenExpired, ErrNoTokenInvalidOld, ErrNoTokenExpiredOld, ErrNoTokenIllegal:
		return true
	}
	return false
}

// TransportError is a call without a usable answer: not sent, timed out, an
// HTTP 5xx, or a body that is not the envelope (HTML, empty, bad JSON).
type TransportError struct {
	API API
	// Sent is false when the request certainly never reached Douyin.
	Sent bool
	// Status is the HTTP status, 0 when there was no response.
	Status int
	// LogID is the envelope's log_id when one could be read.
	LogID string
	Err   error
}

// Error implements error.
func (e *TransportError) Error() string {
	switch {
	case !e.Sent:
		return fmt.Sprintf("douyin trade %s: not sent: %v", e.API, e.Err)
	case e.Status != 0:
		return fmt.Sprintf("douyin trade %s: http %d: %v", e.API, e.Status, e.Err)
	}
	return fmt.Sprintf("douyin trade %s: %v", e.API, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Class is Retryable when nothing was sent, else Unknown.
func (e *TransportError) Class() Class {
	if !e.Sent {
		return douyin.ClassRetryable
	}
	return douyin.ClassUnknown
}

// ErrConfig wraps every error that only an operator can fix: a wrong
// client_key/secret (10013), an unknown app. Classify returns ClassConfig.
var ErrConfig = errors.New("douyin trade: configuration")

// ErrTokenLimited is returned while Douyin's client_token limit (10020, 500
// fetches in 5 minutes) is in force: nothing was sent.
var ErrTokenLimited = errors.New("douyin trade: client_token fetch limit reached (10020)")

// Classify returns the class of a call's error; nil is ClassOK. A request
// payd could not build is permanent: nothing was sent, repeating will not
// help.
func Classify(err error) Class {
	if err == nil {
		return douyin.ClassOK
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class()
	}
	var te *TransportError
	if errors.As(err, &te) {
		return te.Class()
	}
	var fe *TokenFetchError
	switch {
	case errors.Is(err, ErrConfig):
		return douyin.ClassConfig
	case errors.As(err, &fe):
		// No business call was sent.
		return douyin.ClassRetryable
	}
	if errors.Is(err, ErrTokenLimited) {
		return douyin.ClassRetryable
	}
	return douyin.ClassPermanent
}

// ErrNo returns the err_no of an APIError in err's chain, or -1.
func ErrNo(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.ErrNo
	}
	return -1
}

// LogID returns the log_id Douyin gave with a failure, "" when none.
func LogID(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.LogID
	}
	var te *TransportError
	if errors.As(err, &te) {
		return te.LogID
	}
	return ""
}
