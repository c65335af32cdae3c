package state

import (
	"strings"
	"testing"
	"time"
)

// TestRefundLimit: Douyin's per-order limits, counted in refunds sent.
func TestRefundLimit(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	recent, old := now.Add(-24*time.Hour), now.Add(-366*24*time.Hour)
	sent := RefundsSent([]Refund{
		{Phase: PhasePending, Attempt: 1}, {Phase: PhasePending, Attempt: 3}, {Phase: PhaseCancelled, Attempt: 1},
		{Phase: PhaseSubmitting, Attempt: 1}, {Phase: PhaseProcessing, Attempt: 2}, {Phase: PhaseSucceeded, Attempt: 1}, {Phase: PhaseParked, Attempt: 5},
	})
	if sent != 0+2+0+1+2+1+5 {
		t.Fatalf("RefundsSent = %d", sent)
	}
	for _, tc := range []struct {
		name    string
		o       Order
		sent    int
		wantErr string
	}{
		{"wechat under", Order{OutOrderNo: "o", PayChannel: 1, PaidAt: &recent}, 49, ""},
		{"wechat at 50", Order{OutOrderNo: "o", PayChannel: 1, PaidAt: &recent}, 50, "has 50 refunds at Douyin: at most 50 per order"},
		{"alipay at 50", Order{OutOrderNo: "o", PayChannel: 2, PaidAt: &recent}, 50, ""},
		{"alipay at 300", Order{OutOrderNo: "o", PayChannel: 2, PaidAt: &recent}, 300, "at most 300 per order"},
		{"channel unknown", Order{OutOrderNo: "o", PaidAt: &recent}, 80, ""},
		{"a year old", Order{OutOrderNo: "o", PayChannel: 1, PaidAt: &old}, 0, "more than a year ago"},
		{"pay time unknown", Order{OutOrderNo: "o"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RefundLimit(tc.o, tc.sent, now)
			if (tc.wantErr == "") != (got == "") || !strings.Contains(got, tc.wantErr) {
				t.Fatalf("RefundLimit = %q, want %q", got, tc.wantErr)
			}
		})
	}
}
