package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// withSecondApp is baseConfig with a second ecpay app.
func withSecondApp() string {
	return strings.Replace(baseConfig, "      token: ${PAYD_TOKEN}\n", "      token: ${PAYD_TOKEN}\n    - app_id: "+secondApp+
		"\n      salt: "+secondSalt+"\n      token: "+secondToken+"\n", 1)
}

// TestStatus_byApp: payd status (text and --json) breaks the counts down by
// app: orders by status, refunds and settlements by phase with their sums;
// the totals are the apps' sums.
func TestStatus_byApp(t *testing.T) {
	e := newEnv(t, withSecondApp())
	e.run("refund", "a-1", "--app", testApp, "--amount", "100", "--reason", "x", "--key", "ka").ok(t)
	e.run("refund", "b-1", "--app", secondApp, "--amount", "200", "--reason", "x", "--key", "kb1").ok(t)
	e.run("refund", "b-2", "--app", secondApp, "--amount", "50", "--reason", "x", "--key", "kb2").ok(t)
	e.run("settle", "b-2", "--app", secondApp).ok(t)
	out := e.run("status").ok(t).stdout
	has(t, out, "REFUNDS      PHASE    COUNT  FEN\n             pending  3      350\n", "By app:\n")
	for _, re := range []string{
		`(?m)^` + testApp + ` +orders +UNKNOWN +1 *\n +refunds +pending +1 +100\n`,
		`(?m)^` + secondApp + ` +orders +UNKNOWN +2 *\n +refunds +pending +2 +250\n +settlements +pending +1 +0\n`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status lacks %s:\n%s", re, out)
		}
	}
	var st struct {
		Summary struct {
			Refunds []struct {
				Phase  string `json:"phase"`
				Count  int64  `json:"count"`
				Amount int64  `json:"amount"`
			} `json:"refunds"`
			Apps []struct {
				AppID   string                  `json:"app_id"`
				Orders  []struct{ Count int64 } `json:"orders"`
				Refunds []struct {
					Count  int64 `json:"count"`
					Amount int64 `json:"amount"`
				} `json:"refunds"`
				Settlements []struct{ Count int64 } `json:"settlements"`
			} `json:"apps"`
		} `json:"summary"`
	}
	r := e.run("status", "--json").ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	apps := st.Summary.Apps // by app_id
	if len(apps) != 2 || apps[0].AppID != secondApp || apps[1].AppID != testApp {
		t.Fatalf("apps: %+v", apps)
	}
	apps[0], apps[1] = apps[1], apps[0]
	if apps[0].Orders[0].Count != 1 || apps[0].Refunds[0].Amount != 100 || len(apps[0].Settlements) != 0 ||
		apps[1].Orders[0].Count != 2 || apps[1].Refunds[0].Count != 2 || apps[1].Refunds[0].Amount != 250 || apps[1].Settlements[0].Count != 1 {
		t.Fatalf("apps: %+v\n%s", apps, r.stdout)
	}
	if len(st.Summary.Refunds) != 1 || st.Summary.Refunds[0].Count != 3 || st.Summary.Refunds[0].Amount != 350 {
		t.Fatalf("totals: %+v", st.Summary.Refunds)
	}
}

// TestStatus_itemSettlementsAndFulfilments: payd status ORDER lists an
// order's item settlements (item order, amount, phase, attempt, next
// action) and its fulfilments, as --json does.
func TestStatus_itemSettlementsAndFulfilments(t *testing.T) {
	e := newEnv(t)
	e.run("settle", "o-1", "--item", "it-1").ok(t)
	e.run("settle", "o-1", "--item", "it-2").ok(t)
	e.run("fulfil", "o-1", "--item", "it-1", "--at", "2026-01-02").ok(t)
	e.run("fulfil", "o-2", "--at", "2026-01-03").ok(t)
	out := e.run("status", "o-1").ok(t).stdout
	for _, re := range []string{
		`(?m)^SETTLEMENT +ITEM ORDER +AMOUNT +PHASE +ATTEMPT +DUE +NEXT +NOTE\n`,
		`(?m)^st[0-9a-f]{16}-1 +it-1 +0 +pending +1 +- +\d{4}-\d\d-\d\dT[0-9:]+Z *\n`,
		`(?m)^st[0-9a-f]{16}-1 +it-2 +0 +pending +1 +- +\d{4}-\d\d-\d\dT[0-9:]+Z *\n`,
		`(?m)^FULFILMENT +ITEM ORDER +FULFILLED AT\nitem order +it-1 +2026-01-02T00:00:00Z\n`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status o-1 lacks %s:\n%s", re, out)
		}
	}
	has(t, e.run("status", "o-2").ok(t).stdout, "FULFILMENT   ITEM ORDER  FULFILLED AT\nwhole order  -           2026-01-03T00:00:00Z\n")
}
