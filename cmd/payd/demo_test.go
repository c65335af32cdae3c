package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemo_EveryApp: with two apps in the config, each with its own keys
// and the second with a longer settle period, the demo drives orders for
// both, every order of both converges, payd's sums agree with Douyin's per
// app, and the simulator's ledger is clean.
func TestDemo_EveryApp(t *testing.T) {
	cfg := strings.Replace(baseConfig, "      token: ${PAYD_TOKEN}\n", "      token: ${PAYD_TOKEN}\n    - app_id: "+secondApp+
		"\n      salt: "+secondSalt+"\n      token: "+secondToken+"\n      settle_period: 200h\n", 1)
	e := newEnv(t, cfg)
	r := e.run("demo", "--orders", "10", "--timeout", "90s")
	if r.err != nil {
		t.Fatalf("demo: %v\n%s", r.err, r.stdout)
	}
	has(t, r.stdout,
		"seeded 20 paid orders in 2 app(s)",
		"moving both clocks past the settle period (200h)",
		"orders:        20 paid, 20 SUCCESS in payd",
		"ledger check:  clean")
	for _, app := range []string{testApp, secondApp} {
		block := regexp.MustCompile(`(?m)^  app ` + regexp.QuoteMeta(app) + `:\n    orders: +10 paid, 10 SUCCESS in payd\n` +
			`    refunds: +\d+ declared \(\d+ after settlement\): \d+ succeeded, 0 parked, \d+ fen refunded\n` +
			`    settlements: 10 succeeded, [1-9]\d* fen settled; Douyin agrees\n`)
		if !block.MatchString(r.stdout) {
			t.Errorf("no converged block for app %s:\n%s", app, r.stdout)
		}
	}
}
