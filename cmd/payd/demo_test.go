package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemo_EveryApp: with two ecpay apps in the config, each with its own
// keys and the second with a longer settle period, the demo adds a trade
// app and drives orders for all three (the trade app's buyers start
// refunds, one audited), every order converges, payd's sums agree with
// Douyin's per app, and both simulators' ledgers are clean.
func TestDemo_EveryApp(t *testing.T) {
	cfg := strings.Replace(baseConfig, "      token: ${PAYD_TOKEN}\n", "      token: ${PAYD_TOKEN}\n    - app_id: "+secondApp+
		"\n      salt: "+secondSalt+"\n      token: "+secondToken+"\n      settle_period: 200h\n", 1)
	e := newEnv(t, cfg)
	r := e.run("demo", "--orders", "10", "--timeout", "90s")
	if r.err != nil {
		t.Fatalf("demo: %v\n%s", r.err, r.stdout)
	}
	has(t, r.stdout,
		"seeded 30 paid orders in 3 app(s)",
		"moving the clocks past the settle period (200h)",
		"orders:        30 paid, 30 SUCCESS in payd",
		"by buyers:   1 refunds started by users (pre_create_refund); 1 of 1 awaiting audit decided by payd's policy",
		"ledger check:  clean, ecpay and trade")
	for _, app := range []string{testApp + " (ecpay)", secondApp + " (ecpay)", "tt0000000000tradedemo (trade)"} {
		block := regexp.MustCompile(`(?m)^  app ` + regexp.QuoteMeta(app) + `:\n    orders: +10 paid, 10 SUCCESS in payd\n` +
			`    refunds: +\d+ declared \(\d+ after settlement\): \d+ succeeded, 0 parked, \d+ fen refunded\n` +
			`(    by buyers: .*\n)?    settlements: 10 succeeded, [1-9]\d* fen settled; Douyin agrees\n`)
		if !block.MatchString(r.stdout) {
			t.Errorf("no converged block for app %s:\n%s", app, r.stdout)
		}
	}
}
