package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/payd/payd/internal/douyin"
	"github.com/payd/payd/internal/douyin/douyinsim"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/testworld"
)

const (
	appID = testworld.AppID
	salt  = testworld.Salt
	token = testworld.Token
)

// newWorld is the shared test world with the seed the harnesses' figures
// were measured with.
func newWorld(t *testing.T, o testworld.Options) *testworld.World {
	t.Helper()
	if o.Seed == 0 {
		o.Seed = 7
	}
	return testworld.New(t, o)
}

// wish is what the merchant declared of one order.
type wish struct {
	total, cps int64
	refunds    map[string]int64 // refund key → amount
	settle     bool
}

// verifyLedger compares the simulator's ledger with the wishes: every
// declared refund succeeded exactly once under one of its numbers with the
// exact amount, every settlement executed once for total − refunds − cps,
// nothing else moved money, and Check is clean. It returns the executions
// counted.
func verifyLedger(t *testing.T, l douyinsim.Ledger, violations []string, wishes map[string]wish) (refunds, settlements int) {
	t.Helper()
	if len(violations) != 0 {
		t.Fatalf("simulator check: %d violations: %v", len(violations), violations)
	}
	seen := map[string]bool{}
	for _, lo := range l.Orders {
		wi, ok := wishes[lo.OutOrderNo]
		if !ok {
			t.Fatalf("ledger has order %s that was never declared", lo.OutOrderNo)
		}
		seen[lo.OutOrderNo] = true
		succeeded := map[string]int64{} // key → amount
		var refunded int64
		for _, r := range lo.Refunds {
			if r.Executions > 1 {
				t.Fatalf("refund %s of %s executed %d times", r.OutRefundNo, lo.OutOrderNo, r.Executions)
			}
			if r.Status != douyin.StatusSuccess {
				if r.Executions != 0 {
					t.Fatalf("refund %s of %s is %s with %d executions", r.OutRefundNo, lo.OutOrderNo, r.Status, r.Executions)
				}
				continue
			}
			if r.Executions != 1 {
				t.Fatalf("refund %s of %s succeeded with %d executions", r.OutRefundNo, lo.OutOrderNo, r.Executions)
			}
			key := attemptKey(r.OutRefundNo)
			if _, dup := succeeded[key]; dup {
				t.Fatalf("refund %s of %s succeeded twice", key, lo.OutOrderNo)
			}
			succeeded[key] = r.Amount
			refunded += r.Amount
			refunds++
		}
		if len(succeeded) != len(wi.refunds) {
			t.Fatalf("order %s: %d refunds succeeded, %d declared (%v vs %v)", lo.OutOrderNo, len(succeeded), len(wi.refunds), succeeded, wi.refunds)
		}
		for key, amount := range wi.refunds {
			if got, ok := succeeded[key]; !ok || got != amount {
				t.Fatalf("order %s refund %s: ledger %d (found %v), declared %d", lo.OutOrderNo, key, got, ok, amount)
			}
		}
		if lo.RefundedAmount != refunded {
			t.Fatalf("order %s: ledger refunded %d, sum of refunds %d", lo.OutOrderNo, lo.RefundedAmount, refunded)
		}
		var settledOnce int
		for _, s := range lo.Settlements {
			if s.Executions > 1 || (s.Status == douyin.StatusSuccess) != (s.Executions == 1) {
				t.Fatalf("settlement %s of %s: %s with %d executions", s.OutSettleNo, lo.OutOrderNo, s.Status, s.Executions)
			}
			settledOnce += s.Executions
		}
		want := 0
		if wi.settle {
			want = 1
		}
		if settledOnce != want {
			t.Fatalf("order %s settled %d times, want %d", lo.OutOrderNo, settledOnce, want)
		}
		if wi.settle {
			if exp := wi.total - refunded - wi.cps; lo.SettledAmount != exp {
				t.Fatalf("order %s settled %d, want %d (total %d − refunds %d − cps %d)", lo.OutOrderNo, lo.SettledAmount, exp, wi.total, refunded, wi.cps)
			}
			settlements++
		}
	}
	for no := range wishes {
		if !seen[no] {
			t.Fatalf("declared order %s is not in the ledger", no)
		}
	}
	return refunds, settlements
}

// attemptKey strips payd's "-<attempt>" suffix from a merchant number.
func attemptKey(no string) string {
	i := strings.LastIndexByte(no, '-')
	if i < 0 {
		return no
	}
	for _, c := range no[i+1:] {
		if c < '0' || c > '9' {
			return no
		}
	}
	return no[:i]
}

// verifyStore checks that payd's own rows agree with the wishes: every
// declared refund succeeded with its amount, every settlement succeeded with
// the amount the ledger shows.
func verifyStore(t *testing.T, st *state.Store, app string, l douyinsim.Ledger, wishes map[string]wish) {
	t.Helper()
	settled := map[string]int64{}
	for _, lo := range l.Orders {
		settled[lo.OutOrderNo] = lo.SettledAmount
	}
	verifyRows(t, st, app, settled, wishes)
}

// verifyRows checks payd's rows of app against the wishes: every declared
// refund succeeded with its amount, every settlement succeeded with the
// amount settled says Douyin settled of its order.
func verifyRows(t *testing.T, st *state.Store, app string, settled map[string]int64, wishes map[string]wish) {
	t.Helper()
	ctx := context.Background()
	for no, wi := range wishes {
		h, err := st.History(ctx, app, no)
		if err != nil {
			t.Fatalf("history of %s: %v", no, err)
		}
		if len(h.Refunds) != len(wi.refunds) {
			t.Fatalf("order %s: payd has %d refunds, %d declared", no, len(h.Refunds), len(wi.refunds))
		}
		for _, r := range h.Refunds {
			if r.Phase != state.PhaseSucceeded || r.Amount != wi.refunds[r.Key] {
				t.Fatalf("order %s refund %s: %s %d fen (%s), declared %d", no, r.Key, r.Phase, r.Amount, r.ParkReason, wi.refunds[r.Key])
			}
		}
		if wi.settle {
			if h.Settlement == nil || h.Settlement.Phase != state.PhaseSucceeded || h.Settlement.Amount != settled[no] {
				t.Fatalf("order %s: payd's settlement %+v, ledger settled %d", no, h.Settlement, settled[no])
			}
		}
	}
}

// callsByOutcome groups payd's attempt log by API and outcome.
func callsByOutcome(t *testing.T, st *state.Store) map[string]int64 {
	t.Helper()
	var rows []struct {
		API     string
		Outcome string
		N       int64
	}
	if err := st.DB().Model(&state.Attempt{}).Select("api, outcome, COUNT(*) AS n").Group("api, outcome").Scan(&rows).Error; err != nil {
		t.Fatalf("group attempts: %v", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.API+"/"+r.Outcome] = r.N
	}
	return out
}

// formatCounts renders a map as "k=v" pairs in key order.
func formatCounts[V any](m map[string]V) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}

// simCalls renders the simulator's answers as "api/err_no=n".
func simCalls(st douyinsim.Stats) map[string]int64 {
	out := map[string]int64{}
	for api, byErr := range st.ByAPI {
		for errNo, n := range byErr {
			out[fmt.Sprintf("%s/%d", api, errNo)] = n
		}
	}
	return out
}
