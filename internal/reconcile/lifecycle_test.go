package reconcile

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/state"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pol := ItemPolicy{Attempts: 3, Retry: []time.Duration{time.Minute, time.Hour}, Poll: []time.Duration{5 * time.Second, time.Minute}}
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	refused := func(r provider.Reason) error {
		return &provider.Error{Class: provider.Refused, Reason: r, ErrNo: 42, Tips: "no"}
	}
	submitting := state.Lifecycle{Phase: state.PhaseSubmitting, Attempt: 1}
	processing := state.Lifecycle{Phase: state.PhaseProcessing, Attempt: 2, Checks: 1}
	for _, tc := range []struct {
		name       string
		item       state.Lifecycle
		ans        Answer
		phase      state.Phase
		attempt    int
		next       *time.Time
		resend     bool
		events     string
		parkReason string
	}{
		{"write accepted", submitting, Answer{Call: provider.CallCreateRefund}, state.PhaseProcessing, 1, at(5 * time.Second), false, "[]", ""},
		{"write not executed keeps the number", submitting, Answer{Call: provider.CallCreateSettle, Err: &provider.Error{Class: provider.Retryable, ErrNo: 1001}},
			state.PhasePending, 1, at(5 * time.Second), false, "[]", ""},
		{"write outcome unknown stays submitting", submitting, Answer{Call: provider.CallCreateRefund, Err: &provider.Error{Class: provider.Unknown, ErrNo: -1}},
			state.PhaseSubmitting, 1, at(5 * time.Second), false, "[]", ""},
		{"any other error is unknown", submitting, Answer{Call: provider.CallCreateRefund, Err: errors.New("reset")},
			state.PhaseSubmitting, 1, at(5 * time.Second), false, "[]", ""},
		{"number exists: adopt through a query now", submitting, Answer{Call: provider.CallCreateSettle, Err: refused(provider.Exists)},
			state.PhaseSubmitting, 1, &now, false, "[]", ""},
		{"not yet: next number after the back-off", submitting, Answer{Call: provider.CallCreateSettle, Err: refused(provider.NotYet)},
			state.PhasePending, 2, at(time.Minute), false, "[]", ""},
		{"not yet: next number at the time Douyin names", submitting, Answer{Call: provider.CallCreateSettle, Err: &provider.Error{Class: provider.Refused, Reason: provider.NotYet, Until: now.Add(48 * time.Hour)}},
			state.PhasePending, 2, at(48 * time.Hour), false, "[]", ""},
		{"refused: parked", submitting, Answer{Call: provider.CallCreateRefund, Err: refused("")},
			state.PhaseParked, 1, nil, false, "[parked]", "create_refund rejected (permanent, err_no 42): no"},
		{"configuration: parked", submitting, Answer{Call: provider.CallCreateSettle, Err: &provider.Error{Class: provider.Configuration, ErrNo: 2008, Tips: "sign"}},
			state.PhaseParked, 1, nil, false, "[parked]", "settle rejected (config, err_no 2008): sign"},
		{"settled by Douyin (23117): observed from now on, polled", submitting, Answer{Call: provider.CallCreateSettle, Err: refused(provider.SettledByProvider)},
			state.PhaseProcessing, 1, at(5 * time.Second), false, "[]", ""},
		{"query SUCCESS", processing, Answer{Call: provider.CallQueryRefund, Status: provider.StatusSuccess}, state.PhaseSucceeded, 2, nil, false, "[succeeded]", ""},
		{"query FAIL: next attempt after the back-off", processing, Answer{Call: provider.CallQueryRefund, Status: provider.StatusFail, Message: "channel"},
			state.PhasePending, 3, at(time.Hour), false, "[attempt_failed]", ""},
		{"query FAIL of the last attempt: parked", state.Lifecycle{Phase: state.PhaseProcessing, Attempt: 3}, Answer{Call: provider.CallQuerySettle, Status: provider.StatusFail, Message: "channel"},
			state.PhaseParked, 3, nil, false, "[attempt_failed parked]", "attempt 3 of 3 FAILED at Douyin: channel"},
		{"query PROCESSING polls on", processing, Answer{Call: provider.CallQuerySettle, Status: provider.StatusProcessing}, state.PhaseProcessing, 2, at(time.Minute), false, "[]", ""},
		{"not found while submitting: resend the same number", submitting, Answer{Call: provider.CallQueryRefund, Err: refused(provider.NotFound)},
			state.PhaseSubmitting, 1, nil, true, "[]", ""},
		{"not found while processing: never parked, polled", processing, Answer{Call: provider.CallQueryRefund, Err: refused(provider.NotFound)},
			state.PhaseProcessing, 2, at(time.Minute), false, "[]", ""},
		{"query error: polled, in flight stays in flight", submitting, Answer{Call: provider.CallQuerySettle, Err: &provider.Error{Class: provider.Unknown, ErrNo: -1}},
			state.PhaseSubmitting, 1, at(time.Minute), false, "[]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := Decide(tc.item, tc.ans, now, pol)
			got := out.Item
			if got.Phase != tc.phase || got.Attempt != tc.attempt || out.Resend != tc.resend {
				t.Fatalf("phase %s attempt %d resend %v; want %s %d %v", got.Phase, got.Attempt, out.Resend, tc.phase, tc.attempt, tc.resend)
			}
			if !tc.resend && !sameTime(got.NextActionAt, tc.next) {
				t.Errorf("next %v, want %v", got.NextActionAt, tc.next)
			}
			if ev := fmt.Sprint(out.Events); ev != tc.events {
				t.Errorf("events %s, want %s", ev, tc.events)
			}
			if got.ParkReason != tc.parkReason {
				t.Errorf("park reason %q, want %q", got.ParkReason, tc.parkReason)
			}
			if (got.Phase == state.PhaseParked || got.Phase == state.PhaseSucceeded) != (got.DoneAt != nil) {
				t.Errorf("done_at %v for phase %s", got.DoneAt, got.Phase)
			}
		})
	}
}

func TestDecide_IsPure(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pol := ItemPolicy{Attempts: 5, Retry: []time.Duration{time.Minute}, Poll: []time.Duration{time.Second}, Jitter: 0.2, Draw: 0.9}
	item := state.Lifecycle{Phase: state.PhaseProcessing, Attempt: 1}
	a := Answer{Call: provider.CallQueryRefund, Status: provider.StatusFail}
	first := Decide(item, a, now, pol)
	second := Decide(item, a, now, pol)
	if !sameTime(first.Item.NextActionAt, second.Item.NextActionAt) || first.Item.Attempt != second.Item.Attempt {
		t.Fatalf("two decisions differ: %+v, %+v", first, second)
	}
	if want := now.Add(time.Duration(float64(time.Minute) * 1.16)); !first.Item.NextActionAt.Equal(want) {
		t.Fatalf("jittered next %s, want %s", first.Item.NextActionAt, want)
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// TestDecide_SettledByProviderAdopts: only Douyin's "this app settles
// itself" makes Decide adopt the settlement; nothing else does.
func TestDecide_SettledByProviderAdopts(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	pol := ItemPolicy{Attempts: 3, Retry: []time.Duration{time.Minute}, Poll: []time.Duration{5 * time.Second}}
	submitting := state.Lifecycle{Phase: state.PhaseSubmitting, Attempt: 1}
	for _, tc := range []struct {
		err   error
		adopt bool
	}{
		{&provider.Error{Class: provider.Refused, Reason: provider.SettledByProvider, ErrNo: 23117}, true},
		{&provider.Error{Class: provider.Refused, Reason: provider.NothingLeft, ErrNo: 23112}, false},
		{&provider.Error{Class: provider.Refused, Reason: provider.NotYet, ErrNo: 23107}, false},
		{nil, false},
	} {
		if got := Decide(submitting, Answer{Call: provider.CallCreateSettle, Err: tc.err}, now, pol).Adopt; got != tc.adopt {
			t.Errorf("%v: adopt %v, want %v", tc.err, got, tc.adopt)
		}
	}
}
