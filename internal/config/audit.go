package config

import "github.com/payd/payd/internal/state"

// AuditPolicy decides the refunds users start that Douyin asks a trade app
// to audit (need_refund_audit): the first rule that matches a refund
// decides; none matching, Default does. A refund held waits for a person
// (payd audit agree|deny); without a decision Douyin approves it at its
// deadline (72 h after it was created).
type AuditPolicy struct {
	// Rules are tried in order.
	Rules []AuditRule `yaml:"rules,omitempty"`
	// Default is the action when no rule matches: agree, deny or hold
	// (the default: a person decides).
	Default string `yaml:"default"`
	// DefaultMessage is the deny_message of a deny by default (required
	// then; at most 512 bytes, the buyer reads it).
	DefaultMessage string `yaml:"default_message"`
}

// AuditRule is one rule of an AuditPolicy; it matches a refund when every
// condition it sets holds.
type AuditRule struct {
	// MaxAmount matches refunds of at most this many fen; 0 (the
	// default) matches any amount.
	MaxAmount int64 `yaml:"max_amount"`
	// Fulfilled: true matches only orders the merchant declared fulfilled
	// (payd fulfil: the whole order, or each of its item orders); false
	// (the default) matches any order.
	Fulfilled bool `yaml:"fulfilled"`
	// Action is agree, deny or hold; required.
	Action string `yaml:"action"`
	// Message is the deny_message of a deny (required then; at most 512
	// bytes, the buyer reads it).
	Message string `yaml:"message"`
}

// Set reports whether the policy says anything.
func (a AuditPolicy) Set() bool {
	return len(a.Rules) > 0 || a.Default != "" || a.DefaultMessage != ""
}

var auditActions = []string{string(state.AuditAgree), string(state.AuditDeny), string(state.AuditHold)}

// auditPolicy checks an app's audit policy; path is its YAML path.
func (p *problems) auditPolicy(path string, a AuditPolicy) {
	for i, r := range a.Rules {
		rp := index(path+".rules", i)
		if r.MaxAmount < 0 {
			p.add(rp+".max_amount", "%d: want fen ≥ 0 (0 matches any amount)", r.MaxAmount)
		}
		if r.Action == "" {
			p.add(rp+".action", "required: want %s", orList(auditActions))
			continue
		}
		p.auditAction(rp+".action", rp+".message", r.Action, r.Message)
	}
	if a.Default != "" {
		p.auditAction(path+".default", path+".default_message", a.Default, a.DefaultMessage)
	} else if a.DefaultMessage != "" {
		p.add(path+".default_message", "only with default: deny")
	}
}

// auditAction checks an action and the deny_message it needs.
func (p *problems) auditAction(path, msgPath, action, message string) {
	p.oneOf(path, action, auditActions...)
	switch {
	case action == string(state.AuditDeny) && message == "":
		p.add(msgPath, "required with %s deny: the buyer reads it", path)
	case action != string(state.AuditDeny) && message != "":
		p.add(msgPath, "only with deny (the message is the refusal's reason)")
	case len(message) > state.MaxDenyMessage:
		p.add(msgPath, "%d bytes: at most %d", len(message), state.MaxDenyMessage)
	}
}
