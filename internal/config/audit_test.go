package config

import (
	"strings"
	"testing"
)

// TestConfig_AuditPolicy: a trade app's audit policy parses in order and
// every mistake is reported with the field that has it.
func TestConfig_AuditPolicy(t *testing.T) {
	pubFile, privFile, _ := testPEMs(t, t.TempDir())
	with := func(audit string) string {
		return strings.NewReplacer("PUB", pubFile, "PRIV", privFile).Replace(tradeDoc) + "      audit:\n" + audit
	}
	env := map[string]string{"SECRET": "cs-1"}
	c := mustParse(t, with(`        rules:
          - {max_amount: 5000, action: agree}
          - {fulfilled: true, action: deny, message: 已核销}
        default: hold
`), env)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	a := c.Douyin.Apps[1].Audit
	if len(a.Rules) != 2 || a.Rules[0].MaxAmount != 5000 || a.Rules[0].Action != "agree" || !a.Rules[1].Fulfilled || a.Rules[1].Message != "已核销" || a.Default != "hold" {
		t.Fatalf("policy: %+v", a)
	}

	for _, tc := range []struct{ name, audit, want string }{
		{"unknown action", "        rules: [{action: maybe}]\n", `douyin.apps[1].audit.rules[0].action: "maybe": want agree, deny or hold`},
		{"no action", "        rules: [{max_amount: 10}]\n", `douyin.apps[1].audit.rules[0].action: required`},
		{"deny without message", "        rules: [{action: deny}]\n", `douyin.apps[1].audit.rules[0].message: required with`},
		{"negative amount", "        rules: [{max_amount: -1, action: agree}]\n", `douyin.apps[1].audit.rules[0].max_amount: -1`},
		{"default deny without message", "        default: deny\n", `douyin.apps[1].audit.default_message: required with`},
		{"message on agree", "        rules: [{action: agree, message: x}]\n", `douyin.apps[1].audit.rules[0].message: only with deny`},
		{"long message", "        rules: [{action: deny, message: " + strings.Repeat("x", 513) + "}]\n", `douyin.apps[1].audit.rules[0].message: 513 bytes: at most 512`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mustParse(t, with(tc.audit), env).Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v\nwant %s", err, tc.want)
			}
		})
	}
	t.Run("ecpay app", func(t *testing.T) {
		doc := strings.Replace(strings.NewReplacer("PUB", pubFile, "PRIV", privFile).Replace(tradeDoc), "      token: t\n", "      token: t\n      audit: {default: agree}\n", 1)
		err := mustParse(t, doc, env).Validate()
		if err == nil || !strings.Contains(err.Error(), "douyin.apps[0].audit: only trade apps") {
			t.Fatalf("Validate: %v", err)
		}
	})
}
