package douyin

import (
	"errors"
	"fmt"
	"net"
)

// Class says what a caller may do after a call: it is the only thing the
// reconciler branches on.
type Class int

const (
	// ClassOK: Douyin answered err_no 0.
	ClassOK Class = iota
	// ClassRetryable: Douyin certainly did not act (1001, or the request was
	// never sent); resend the same merchant number after a back-off.
	ClassRetryable
	// ClassUnknown: the write may or may not have taken effect (1000, timeout,
	// HTTP 5xx, a body that does not parse). Query before anything is resent.
	ClassUnknown
	// ClassPermanent: a definite answer that repeating will not change
	// (2010, 2000, 3101 ...).
	ClassPermanent
	// ClassConfig: the app's configuration is wrong (2008, 2042, 2047, 2048);
	// stop and alert.
	ClassConfig
)

// String names the class as it appears in logs, metrics and the attempt log.
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassRetryable:
		return "retryable"
	case ClassUnknown:
		return "unknown"
	case ClassPermanent:
		return "permanent"
	case ClassConfig:
		return "config"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// APIError is a non-zero err_no answer from Douyin.
type APIError struct {
	API     API
	ErrNo   int
	ErrTips string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("douyin %s: err_no %d: %s", e.API, e.ErrNo, e.ErrTips)
}

// Class classifies the answer.
func (e *APIError) Class() Class {
	switch e.ErrNo {
	case ErrNoSuccess:
		return ClassOK
	case ErrNoBusy:
		return ClassRetryable
	case ErrNoInternal:
		return ClassUnknown
	case ErrNoBadSignature, ErrNoBadAppID, ErrNoBadThirdparty, ErrNoNoAuthority:
		return ClassConfig
	}
	return ClassPermanent
}

// TransportError is a call that got no usable answer: the request could not
// be sent, timed out, got a non-200 status or a body that does not parse.
type TransportError struct {
	API API
	// Sent is false when the request certainly never reached Douyin (dial
	// failure, context done before sending).
	Sent bool
	// Status is the HTTP status, 0 when there was no response.
	Status int
	Err    error
}

// Error implements error.
func (e *TransportError) Error() string {
	switch {
	case e.Status != 0:
		return fmt.Sprintf("douyin %s: http %d: %v", e.API, e.Status, e.Err)
	case !e.Sent:
		return fmt.Sprintf("douyin %s: not sent: %v", e.API, e.Err)
	}
	return fmt.Sprintf("douyin %s: %v", e.API, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Class classifies the failure.
func (e *TransportError) Class() Class {
	if !e.Sent {
		return ClassRetryable
	}
	return ClassUnknown
}

// ErrUnknownApp is returned for a request naming an app the client was not
// configured with.
var ErrUnknownApp = errors.New("douyin: unknown app_id")

// Classify returns the class of a call's error; nil is ClassOK. Errors that
// are neither APIError nor TransportError (a bad request built by the caller)
// are permanent: nothing was sent.
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class()
	}
	var te *TransportError
	if errors.As(err, &te) {
		return te.Class()
	}
	if errors.Is(err, ErrUnknownApp) {
		return ClassConfig
	}
	return ClassPermanent
}

// ErrNo returns the err_no of an APIError in err's chain, or -1.
func ErrNo(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.ErrNo
	}
	return -1
}

// notSent reports whether a transport failure happened before any byte of
// the request can have reached the server.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
