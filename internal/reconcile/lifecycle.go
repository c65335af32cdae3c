package reconcile

import (
	"errors"
	"fmt"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

// The one item lifecycle. Refunds and settlements move through the same
// phases by one pure decision, Decide: (item, answer, now, policy) → what
// the item becomes. Who moves each transition (DESIGN.md has the diagram):
//
//	pending    → submitting   the reconciler, before a write (the intent)
//	submitting → processing   Decide: the write was accepted
//	submitting → pending      Decide: not executed (same number), or a query found
//	                          the attempt FAILED (next number)
//	submitting → submitting   Decide: outcome unknown; query before any resend
//	processing → succeeded    Decide: a query says SUCCESS
//	processing → pending      Decide: a query says FAIL, attempts left (next number)
//	any open   → parked       Decide: refused for good, or the last attempt FAILED;
//	                          Plan: the wish can never be carried out as declared
//	parked     → pending      the operator (payd retry), next number

// Answer is what a call told about an item, in the lifecycle's terms.
type Answer struct {
	// Call is the call that answered.
	Call provider.Call
	// Err is the call's error: nil for a success; provider.Outcome
	// classifies it.
	Err error
	// Status is what a successful query reported.
	Status provider.ItemStatus
	// Message is Douyin's words about a FAIL.
	Message string
}

// ItemPolicy is what Decide needs of the policy for one item.
type ItemPolicy struct {
	// Attempts is how many numbers the item may use before it is parked.
	Attempts int
	// Retry is the back-off after a FAIL, Poll the query schedule.
	Retry, Poll []time.Duration
	// Jitter spreads each delay by ±Jitter of itself; Draw is the uniform
	// draw in [0, 1) it uses (so Decide stays pure).
	Jitter, Draw float64
}

// Outcome is what Decide made of an answer.
type Outcome struct {
	// Item is the item's lifecycle after the answer. A new Attempt means a
	// new merchant number (SetLifecycle derives it).
	Item state.Lifecycle
	// Resend is set when a query proved that the write never happened: send
	// the same number again now.
	Resend bool
	// Adopt is set when Douyin said it settles the app itself (23117): the
	// settlement is observed from now on (found by the order, never sent)
	// and the app is marked settled by Douyin.
	Adopt bool
	// Events are the changes the merchant is told of, in order.
	Events []Change
}

// Change is a lifecycle change the merchant is told of.
type Change string

// The changes Decide reports.
const (
	Succeeded     Change = "succeeded"
	AttemptFailed Change = "attempt_failed"
	Parked        Change = "parked"
)

// Decide is the item lifecycle: from the item as stored and a call's
// answer, what the item becomes. It is pure.
func Decide(it state.Lifecycle, a Answer, now time.Time, p ItemPolicy) Outcome {
	if a.Call == provider.CallCreateRefund || a.Call == provider.CallCreateSettle {
		return afterWrite(it, a, now, p)
	}
	return afterQuery(it, a, now, p)
}

// afterWrite: accepted → processing, polled; certainly not executed →
// pending, the same number later; unknown → still submitting, the next step
// queries before anything is resent; "exists" → submitting, adopted through
// a query now; "not yet" → pending with the next number once allowed;
// refused → parked.
func afterWrite(it state.Lifecycle, a Answer, now time.Time, p ItemPolicy) Outcome {
	err := a.Err
	class, reason := provider.Outcome(err)
	it.ErrNo, it.ErrTips = provider.ErrNo(err), truncate(provider.Tips(err), 200)
	switch class {
	case provider.Done:
		it.Phase, it.ErrNo, it.ErrTips = state.PhaseProcessing, 0, ""
		it.NextActionAt = p.at(now, p.Poll, 0)
		return Outcome{Item: it}
	case provider.Retryable:
		it.Phase = state.PhasePending
		it.NextActionAt = p.at(now, p.Poll, 0)
		return Outcome{Item: it}
	case provider.Unknown:
		it.Phase = state.PhaseSubmitting
		it.NextActionAt = p.at(now, p.Poll, 0)
		return Outcome{Item: it}
	}
	switch reason {
	case provider.SettledByProvider:
		// Nothing was settled by this call; Douyin settles the order
		// itself: observe that settlement, never send another.
		it.Phase = state.PhaseProcessing
		it.NextActionAt = p.at(now, p.Poll, 0)
		return Outcome{Item: it, Adopt: true}
	case provider.Exists:
		it.Phase = state.PhaseSubmitting
		it.NextActionAt = &now
		return Outcome{Item: it}
	case provider.NotYet:
		it.Phase = state.PhasePending
		it.NextActionAt = p.at(now, p.Retry, it.Attempt-1)
		var pe *provider.Error
		if errors.As(err, &pe) && pe.Until.After(*it.NextActionAt) {
			t := pe.Until
			it.NextActionAt = &t
		}
		it.Attempt++
		it.Checks = 0
		return Outcome{Item: it}
	}
	it.Phase = state.PhaseParked
	it.NextActionAt = nil
	it.DoneAt = &now
	it.ParkReason = refusal(a.Call, class, reason, it.ErrNo, it.ErrTips)
	return Outcome{Item: it, Events: []Change{Parked}}
}

// refusal says why a write was refused for good.
func refusal(call provider.Call, class provider.Class, reason provider.Reason, errNo int, tips string) string {
	what := "rejected"
	switch reason {
	case provider.NothingLeft:
		what = "refused: nothing left at Douyin"
	case provider.NotFound:
		what = "refused: Douyin does not know the order"
	}
	return fmt.Sprintf("%s %s (%s, err_no %d): %s", call, what, class, errNo, tips)
}

// afterQuery: SUCCESS → succeeded; FAIL → the next attempt after the
// back-off, or parked after the last one; still in progress → polled; "not
// found" for a number whose write's outcome was unknown → resend the same
// number; anything else → polled again, never parked: the money may be
// moving.
func afterQuery(it state.Lifecycle, a Answer, now time.Time, p ItemPolicy) Outcome {
	class, reason := provider.Outcome(a.Err)
	switch {
	case class == provider.Done && a.Status == provider.StatusSuccess:
		it.Phase, it.NextActionAt, it.DoneAt = state.PhaseSucceeded, nil, &now
		it.ErrNo, it.ErrTips = 0, ""
		return Outcome{Item: it, Events: []Change{Succeeded}}
	case class == provider.Done && a.Status == provider.StatusFail:
		it.ErrNo, it.ErrTips = 0, orText(a.Message, "FAIL")
		if it.Attempt >= p.Attempts {
			it.Phase, it.NextActionAt, it.DoneAt = state.PhaseParked, nil, &now
			it.ParkReason = fmt.Sprintf("attempt %d of %d FAILED at Douyin: %s", it.Attempt, p.Attempts, it.ErrTips)
			return Outcome{Item: it, Events: []Change{AttemptFailed, Parked}}
		}
		// A failed number fails forever: the next attempt needs a new one.
		it.Phase = state.PhasePending
		it.NextActionAt = p.at(now, p.Retry, it.Attempt-1)
		it.Attempt++
		it.Checks = 0
		return Outcome{Item: it, Events: []Change{AttemptFailed}}
	case class == provider.Done:
		it.Phase = state.PhaseProcessing
		it.Checks++
		it.NextActionAt = p.at(now, p.Poll, it.Checks)
		return Outcome{Item: it}
	case class == provider.Refused && reason == provider.NotFound && it.Phase == state.PhaseSubmitting:
		// Proven never to have happened: resend the same number.
		return Outcome{Item: it, Resend: true}
	}
	it.Checks++
	it.ErrNo, it.ErrTips = provider.ErrNo(a.Err), truncate(provider.Tips(a.Err), 200)
	it.NextActionAt = p.at(now, p.Poll, it.Checks)
	return Outcome{Item: it}
}

// at is now plus the n-th delay of schedule, jittered by the policy's draw.
func (p ItemPolicy) at(now time.Time, schedule []time.Duration, n int) *time.Time {
	t := NextAt(now, schedule, n, p.Jitter, p.Draw)
	return &t
}
