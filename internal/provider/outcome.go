package provider

import (
	"errors"
	"fmt"
	"time"
)

// Class says what the reconciler may do after a call.
type Class int

// The outcome classes of a call, the same for every API.
const (
	// Done: Douyin answered and the answer was understood.
	Done Class = iota
	// Retryable: Douyin certainly did not act (rate limited, a refused access
	// token that the adapter has refreshed, a connection refused before
	// sending): send the same request again later.
	Retryable
	// Unknown: a write may or may not have taken effect (timeout, 5xx, a busy
	// answer, no envelope): query before anything is resent.
	Unknown
	// Refused: a definite answer that repeating will not change; Reason says
	// what the reconciler does about it.
	Refused
	// Configuration: the app's configuration is wrong (keys, ids, rights):
	// no call of this app can succeed until an operator fixes it.
	Configuration
)

// String is the class's name in the attempt log and the metrics. The names
// predate the seam and are kept so that dashboards keep working.
func (c Class) String() string {
	switch c {
	case Done:
		return "ok"
	case Retryable:
		return "retryable"
	case Unknown:
		return "unknown"
	case Refused:
		return "permanent"
	case Configuration:
		return "config"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Reason is why Douyin refused, in the terms the reconciler acts on.
type Reason string

// The refusal reasons the reconciler acts on; "" is any other refusal,
// which parks the item.
const (
	// NotYet: not allowed yet (e.g. before the settle period or fulfilment);
	// try again after Error.Until with a new number.
	NotYet Reason = "not_yet"
	// Exists: the number was already used; adopt what exists through a query.
	Exists Reason = "exists"
	// NothingLeft: there is nothing left to refund or settle.
	NothingLeft Reason = "nothing_left"
	// SettledByProvider: Douyin settles this app itself; payd only observes.
	SettledByProvider Reason = "settled_by_provider"
	// NotFound: Douyin does not know the order or number queried.
	NotFound Reason = "not_found"
)

// Error is a call's answer that is not a success, in payd's terms.
type Error struct {
	Class  Class
	Reason Reason
	// Until is when a NotYet refusal may be retried; zero when not known.
	Until time.Time
	// ErrNo and Tips are what Douyin said (ErrNo -1 when there was no
	// parsable answer), LogID its log id, for the attempt log and support.
	ErrNo int
	Tips  string
	LogID string
	// Err is the underlying error, for logs.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("douyin: err_no %d: %s", e.ErrNo, e.Tips)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Outcome classifies a call's error: nil is Done; an *Error in the chain
// says its class and reason; any other error is Unknown, as nothing proves
// that a request which failed in an unexpected way was not executed.
func Outcome(err error) (Class, Reason) {
	if err == nil {
		return Done, ""
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Class, pe.Reason
	}
	return Unknown, ""
}

// ErrNo returns Douyin's err_no in err's chain: 0 for nil, -1 when there was
// no answer to read one from.
func ErrNo(err error) int {
	if err == nil {
		return 0
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.ErrNo
	}
	return -1
}

// Tips returns Douyin's message in err's chain, else the error's text.
func Tips(err error) string {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) && pe.Tips != "" {
		return pe.Tips
	}
	return err.Error()
}

// OutcomeName names a call's outcome for the attempt log and the metrics:
// the class, except that a definite "no such order or number" is
// "not_found" — for a write whose outcome was unknown it is the proof that
// allows a resend, not a failure.
func OutcomeName(err error) string {
	c, r := Outcome(err)
	if c == Refused && r == NotFound {
		return "not_found"
	}
	return c.String()
}
