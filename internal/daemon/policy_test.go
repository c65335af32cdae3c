package daemon

import (
	"reflect"
	"testing"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
)

// TestPolicy_Audit: a trade app's audit policy reaches the reconciler as
// configured, in order; an ecpay app has none (every audit held).
func TestPolicy_Audit(t *testing.T) {
	cfg := config.Default()
	trade := config.DefaultApp()
	trade.AppID, trade.API = "tt-trade", config.APITrade
	trade.Audit = config.AuditPolicy{Rules: []config.AuditRule{{MaxAmount: 500, Action: "agree"}, {Fulfilled: true, Action: "deny", Message: "已核销"}}, Default: "hold"}
	ecpay := config.DefaultApp()
	ecpay.AppID = "tt-ecpay"
	cfg.Douyin.Apps = []config.App{ecpay, trade}
	p := Policy(cfg)
	want := reconcile.AuditPolicy{Rules: []reconcile.AuditRule{{MaxAmount: 500, Action: state.AuditAgree}, {Fulfilled: true, Action: state.AuditDeny, Message: "已核销"}}, Default: state.AuditHold}
	if got := p.Apps["tt-trade"].Audit; !reflect.DeepEqual(got, want) {
		t.Fatalf("trade app's audit policy: %+v, want %+v", got, want)
	}
	if got := p.Apps["tt-ecpay"].Audit; !reflect.DeepEqual(got, reconcile.AuditPolicy{}) {
		t.Fatalf("ecpay app's audit policy: %+v", got)
	}
}
