package demo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/state"
)

func TestRun_Refuses(t *testing.T) {
	start := func(context.Context, *config.Config, Env) (Daemon, error) { return nil, errors.New("not started") }
	withApp := func() *config.Config {
		c := config.Default()
		c.Douyin.Apps = []config.App{{AppID: "tt-demo", Salt: "s", Token: "t"}}
		return c
	}
	noApps := config.Default()
	tests := []struct {
		name string
		cfg  *config.Config
		o    Options
		want string
	}{
		{"no orders", withApp(), Options{Orders: 0, Start: start}, "--orders: want at least 1"},
		{"no apps", noApps, Options{Orders: 1, Start: start}, "config: douyin.apps: the demo needs at least one app"},
		{"no daemon", withApp(), Options{Orders: 1}, "demo: no daemon to start"},
		{"daemon fails", withApp(), Options{Orders: 1, Start: start}, "not started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Run(context.Background(), tt.cfg, tt.o)
			if r != nil || err == nil || err.Error() != tt.want {
				t.Fatalf("Run = %v, %v; want no report and %q", r, err, tt.want)
			}
		})
	}
}

// TestReport_Check: a run that finished fails with ErrCheck when payd and
// Douyin disagree on an app's sums or the ledger has violations, and the
// printed summary names the app that differs.
func TestReport_Check(t *testing.T) {
	sum := &state.Summary{Orders: map[state.OrderStatus]int64{}, Refunds: map[state.Phase]int64{}, Settlements: map[state.Phase]int64{}, RefundAmount: map[state.Phase]int64{}}
	good := AppReport{AppID: "tt-a", API: "ecpay", Orders: 1, Success: 1, Refunded: 10, DouyinRefunded: 10, SettledAmount: 90, DouyinSettled: 90}
	r := &Report{Summary: sum, Apps: []AppReport{good}}
	if err := r.check(nil, nil); err != nil {
		t.Fatalf("clean report: %v", err)
	}
	bad := good
	bad.AppID, bad.DouyinSettled = "tt-b", 80
	tr := good
	tr.AppID, tr.API, tr.UserRefunds, tr.AuditsAsked = "tt-t", "trade", 2, 1
	// Settled by Douyin, but payd sent a settle_create and adopted none.
	dy := good
	dy.AppID, dy.API, dy.SettledBy, dy.Settled, dy.DouyinAutoSettled, dy.SettleCalls = "tt-d", "trade", config.SettledByDy, 1, 1, 1
	r = &Report{Summary: sum, Apps: []AppReport{good, bad, tr, dy}, Violations: []string{"refund x executed twice"}}
	err := r.check([]state.Refund{{Key: "k1", ParkReason: "gave up"}}, nil)
	if !errors.Is(err, ErrCheck) {
		t.Fatalf("check = %v, want ErrCheck", err)
	}
	for _, want := range []string{"1 violations", "app tt-b: payd refunded 10 and settled 90 fen, Douyin 10 and 80", "refund k1: gave up", "app tt-t: 1 refunds awaited the merchant's audit, payd's decision reached Douyin for 0",
		"app tt-d is settled by Douyin: of 1 settlements payd observed 0, Douyin made 1 itself; payd sent 1 settle_create"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check = %v, lacks %q", err, want)
		}
	}
	var out strings.Builder
	r.Print(&out)
	for _, want := range []string{"app tt-a (ecpay):", "Douyin agrees", "app tt-b (ecpay):", "app tt-t (trade):", "2 refunds started by users (pre_create_refund); 0 of 1 awaiting audit", "DOUYIN DIFFERS: 10 fen refunded, 80 fen settled", "1 VIOLATIONS",
		"app tt-d (trade, settled by Douyin):", "all by Douyin itself: 0 observed and adopted by payd (settlement.adopted), 1 settle_create sent"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
