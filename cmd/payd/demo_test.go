package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemo_EveryApp: with two ecpay apps in the config, each with its own
// keys and the second with a longer settle period, the demo adds a trade
// app settled by payd and one Douyin settles itself, and drives orders for
// all four (the trade apps' buyers start refunds, one audited per app);
// every order converges, the Douyin-settled app's settlements are all
// Douyin's own, observed and adopted by payd without a settle_create,
// payd's sums agree with Douyin's per app, and both simulators' ledgers
// are clean.
func TestDemo_EveryApp(t *testing.T) {
	cfg := strings.Replace(baseConfig, "      token: ${PAYD_TOKEN}\n", "      token: ${PAYD_TOKEN}\n    - app_id: "+secondApp+
		"\n      salt: "+secondSalt+"\n      token: "+secondToken+"\n      settle_period: 200h\n", 1)
	e := newEnv(t, cfg)
	r := e.run("demo", "--orders", "10", "--timeout", "90s")
	if r.err != nil {
		t.Fatalf("demo: %v\n%s", r.err, r.stdout)
	}
	has(t, r.stdout,
		"seeded 40 paid orders in 4 app(s)",
		"buyers started 2 refunds of trade orders (2 need the merchant's audit)",
		"moving the clocks past the settle period (200h)",
		"orders:        40 paid, 40 SUCCESS in payd",
		"settlements:   40 succeeded (10 made by Douyin itself, observed by payd), 0 parked,",
		"app tt0000000000tradeauto (trade, settled by Douyin):",
		"settlements: 10 succeeded, ",
		" fen settled, all by Douyin itself: 10 observed and adopted by payd (settlement.adopted), 0 settle_create sent; Douyin agrees",
		"by buyers:   1 refunds started by users (pre_create_refund); 1 of 1 awaiting audit decided by payd's policy",
		"ledger check:  clean, ecpay and trade")
	if !regexp.MustCompile(`settlement\.adopted 10\b`).MatchString(r.stdout) {
		t.Errorf("no 10 settlement.adopted events delivered:\n%s", r.stdout)
	}
	for _, app := range []string{testApp + " (ecpay)", secondApp + " (ecpay)", "tt0000000000tradedemo (trade)", "tt0000000000tradeauto (trade, settled by Douyin)"} {
		block := regexp.MustCompile(`(?m)^  app ` + regexp.QuoteMeta(app) + `:\n    orders: +10 paid, 10 SUCCESS in payd\n` +
			`    refunds: +\d+ declared \(\d+ after settlement\): \d+ succeeded, 0 parked, \d+ fen refunded\n` +
			`(    by buyers: .*\n)?    settlements: 10 succeeded, [1-9]\d* fen settled[;,].* Douyin agrees\n`)
		if !block.MatchString(r.stdout) {
			t.Errorf("no converged block for app %s:\n%s", app, r.stdout)
		}
	}
}
