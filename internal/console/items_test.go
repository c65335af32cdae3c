package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

// seedItemSettlements gives trade order ord-t-0003 two item settlements:
// one parked, one pending.
func seedItemSettlements(tb testing.TB, st *state.Store, now time.Time) {
	var o state.Order
	must(tb, st.DB().Where("out_order_no = ?", "ord-t-0003").First(&o).Error)
	for _, it := range []struct {
		id    string
		phase state.Phase
		park  string
	}{{"7100000000000000301", state.PhaseParked, "Douyin refused the settlement: 23113"}, {"7100000000000000302", state.PhasePending, ""}} {
		must(tb, st.DB().Create(&state.Settlement{OrderID: o.ID, ItemOrderID: it.id, Phase: it.phase, Attempt: 1, Amount: 1000,
			OutSettleNo: state.ItemSettleNo(o.AppID, o.OutOrderNo, it.id, 1), ParkReason: it.park,
			CreatedAt: now.Add(-2 * time.Hour), UpdatedAt: now.Add(-2 * time.Hour)}).Error)
	}
}

// TestConsole_itemSettlements: an item order's settlement is listed under
// Needs attention and on its order's page with buttons that name the item
// order; Retry and Cancel act on that item settlement only.
func TestConsole_itemSettlements(t *testing.T) {
	b := setup(t, func(tb testing.TB, st *state.Store, now time.Time) {
		seedScenario(tb, st, now)
		seedItemSettlements(tb, st, now)
	})
	srv := httptest.NewServer(b.con)
	t.Cleanup(srv.Close)
	c := newClient(t, srv)
	c.login(adminToken)
	parked := "settlement:" + appT + "/ord-t-0003/7100000000000000301"
	pending := "settlement:" + appT + "/ord-t-0003/7100000000000000302"
	if _, page := c.do("GET", "/attention", nil, nil); !strings.Contains(page, `value="`+parked+`"`) {
		t.Fatalf("needs attention does not offer the parked item settlement %s", parked)
	}
	if _, page := c.do("GET", "/orders/"+appT+"/ord-t-0003", nil, nil); !strings.Contains(page, `id="item-settlements"`) || !strings.Contains(page, `value="`+pending+`"`) {
		t.Fatalf("the order page does not list its item settlements with their buttons:\n%s", page)
	}
	csrf := c.csrf()
	post := func(op, one string) {
		t.Helper()
		resp, body := c.do("POST", "/actions/"+op, url.Values{"csrf": {csrf}, "back": {"/attention"}, "one": {one}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s %s: %d %s", op, one, resp.StatusCode, body)
		}
		if _, page := c.do("GET", "/attention", nil, nil); !strings.Contains(page, op+": 1 done") {
			t.Fatalf("%s %s: not done", op, one)
		}
	}
	post("retry", parked)
	post("cancel", pending)
	phase := func(item string) (state.Phase, int) {
		var st state.Settlement
		must(t, b.store.DB().Where("item_order_id = ?", item).First(&st).Error)
		return st.Phase, st.Attempt
	}
	if ph, att := phase("7100000000000000301"); ph != state.PhasePending || att != 2 {
		t.Errorf("the parked item settlement after Retry: %s attempt %d, want pending attempt 2", ph, att)
	}
	if ph, _ := phase("7100000000000000302"); ph != state.PhaseCancelled {
		t.Errorf("the pending item settlement after Cancel: %s, want cancelled", ph)
	}
	// A malformed item is refused with the form it must have.
	resp, body := c.do("POST", "/actions/retry", url.Values{"csrf": {csrf}, "one": {"settlement:" + appT + "/ord-t-0003/"}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "settlement:APP/ORDER/ITEM_ORDER") {
		t.Errorf("an empty item order: %d %s", resp.StatusCode, body)
	}
}
