package state

import (
	"time"
)

// transitions lists, for each phase, the phases an update may move an item
// to. The same phase is allowed so that an item can be updated in place
// (another query, a back-off).
var transitions = map[Phase][]Phase{
	PhasePending:    {PhasePending, PhaseSubmitting, PhaseParked},
	PhaseSubmitting: {PhaseSubmitting, PhasePending, PhaseProcessing, PhaseSucceeded, PhaseParked},
	PhaseProcessing: {PhaseProcessing, PhasePending, PhaseSucceeded, PhaseParked},
	PhaseParked:     {PhasePending},
	PhaseSucceeded:  nil,
}

// allowed reports whether an item may move from one phase to another.
func allowed(from, to Phase) bool {
	for _, p := range transitions[from] {
		if p == to {
			return true
		}
	}
	return false
}

// newAttempt reports whether from→to must start a new attempt with a new
// merchant number: after a definite failure (a FAIL answer while
// processing, or an operator's retry of a parked item).
func newAttempt(from, to Phase) bool {
	return to == PhasePending && (from == PhaseProcessing || from == PhaseParked)
}

// mayStartAttempt reports whether from→to may start a new attempt without
// having to: submitting → pending keeps the number when the write was proven
// never to have happened (3101) or Douyin was busy, and takes a new one when
// the query that resolved an unknown outcome found the attempt FAILED.
func mayStartAttempt(from, to Phase) bool {
	return newAttempt(from, to) || (from == PhaseSubmitting && to == PhasePending)
}

// checkStep validates one update of a refund or settlement: the phase
// transition, the attempt number (the same, or +1 when a new attempt may
// start, and +1 when it must) and the merchant number (always the
// attempt's).
func checkStep(what string, from, to Phase, oldAttempt, attempt int, wantNo, gotNo string) error {
	if !allowed(from, to) {
		return invalidf("%s: %s → %s is not an allowed transition", what, from, to)
	}
	switch {
	case attempt == oldAttempt+1 && mayStartAttempt(from, to):
	case newAttempt(from, to):
		return invalidf("%s: %s → %s must start attempt %d, not %d", what, from, to, oldAttempt+1, attempt)
	case attempt != oldAttempt && mayStartAttempt(from, to):
		return invalidf("%s: %s → %s must keep attempt %d or start %d, not %d", what, from, to, oldAttempt, oldAttempt+1, attempt)
	case attempt != oldAttempt:
		return invalidf("%s: %s → %s must keep attempt %d, not %d", what, from, to, oldAttempt, attempt)
	}
	if gotNo != wantNo {
		return invalidf("%s: merchant number of attempt %d is %s, not %s", what, attempt, wantNo, gotNo)
	}
	return nil
}

// Lifecycle is the part of a refund or settlement that moves through the
// phases: what the reconciler's one decision function reads and writes, the
// same for both kinds of item.
type Lifecycle struct {
	Phase        Phase
	Attempt      int
	Checks       int
	NextActionAt *time.Time
	ErrNo        int
	ErrTips      string
	ParkReason   string
	DoneAt       *time.Time
}

// Lifecycle returns the refund's lifecycle columns.
func (r *Refund) Lifecycle() Lifecycle {
	return Lifecycle{r.Phase, r.Attempt, r.Checks, r.NextActionAt, r.ErrNo, r.ErrTips, r.ParkReason, r.DoneAt}
}

// SetLifecycle sets the refund's lifecycle columns; a new attempt gets its
// merchant number.
func (r *Refund) SetLifecycle(l Lifecycle) {
	if l.Attempt != r.Attempt {
		r.OutRefundNo = RefundNo(r.Key, l.Attempt)
		r.RefundNo = ""
	}
	r.Phase, r.Attempt, r.Checks, r.NextActionAt = l.Phase, l.Attempt, l.Checks, l.NextActionAt
	r.ErrNo, r.ErrTips, r.ParkReason, r.DoneAt = l.ErrNo, l.ErrTips, l.ParkReason, l.DoneAt
}

// Lifecycle returns the settlement's lifecycle columns.
func (st *Settlement) Lifecycle() Lifecycle {
	return Lifecycle{st.Phase, st.Attempt, st.Checks, st.NextActionAt, st.ErrNo, st.ErrTips, st.ParkReason, st.DoneAt}
}

// SetLifecycle sets the settlement's lifecycle columns; a new attempt gets
// its merchant number, derived from the order's app and number.
func (st *Settlement) SetLifecycle(l Lifecycle, appID, outOrderNo string) {
	if l.Attempt != st.Attempt {
		st.OutSettleNo = st.NumberOf(appID, outOrderNo, l.Attempt)
		st.SettleNo = ""
	}
	st.Phase, st.Attempt, st.Checks, st.NextActionAt = l.Phase, l.Attempt, l.Checks, l.NextActionAt
	st.ErrNo, st.ErrTips, st.ParkReason, st.DoneAt = l.ErrNo, l.ErrTips, l.ParkReason, l.DoneAt
}
