package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/payd/payd/internal/state"
)

func TestBadKeys(t *testing.T) {
	tests := []struct {
		doc  string
		want []string
	}{
		{`{"out_order_no":"o1","refunds":[{"amount":1}],"data":{"douyin_order_id":"x"}}`, nil},
		// An event's data is public too: the webhook types are snake_case.
		{`{"data":{"OrderID":"x"}}`, []string{"$.data.OrderID (not snake_case)"}},
		{`{"Order":{"ID":1}}`, []string{"$.Order (not snake_case)", "$.Order.ID (not snake_case)"}},
		{`[{"version":2,"lease_owner":"h/1"}]`, []string{"$[0].lease_owner (lease)", "$[0].version (row version)"}},
		{`{"order_id":"x","hint_seq":1}`, []string{"$.hint_seq (hint counter)", "$.order_id (ambiguous: douyin_order_id or payd's row id)"}},
	}
	for _, tc := range tests {
		got, err := BadKeys([]byte(tc.doc))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("BadKeys(%s) = %q, %v; want %q", tc.doc, got, err, tc.want)
		}
	}
	if _, err := BadKeys([]byte("{")); err == nil {
		t.Error("BadKeys accepted a broken document")
	}
}

// TestFromSettlement_receivers: receivers, a column holding JSON, become a
// JSON array (empty, not null, when there are none).
func TestFromSettlement_receivers(t *testing.T) {
	s := FromSettlement(state.Settlement{Receivers: `[{"merchant_uid":"m1","amount":100}]`, Phase: state.PhasePending}, "app", "o1")
	if want := []Receiver{{MerchantUID: "m1", Amount: 100}}; !reflect.DeepEqual(s.Receivers, want) {
		t.Fatalf("receivers %+v, want %+v", s.Receivers, want)
	}
	raw, err := json.Marshal(FromSettlement(state.Settlement{}, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || string(m["receivers"]) != "[]" {
		t.Fatalf("no receivers encoded as %s", m["receivers"])
	}
}

func TestFromPlan_changes(t *testing.T) {
	if (PlanReport{}).Changes() {
		t.Fatal("an empty plan reports changes")
	}
	if !(PlanReport{Parked: []Parked{{Kind: "refund"}}}).Changes() {
		t.Fatal("a plan with a parked item reports no changes: plan must exit 2")
	}
	p := FromParked([]state.ParkedItem{{Kind: "settlement", AppID: "tt1", OutOrderNo: "o1"}, {Kind: "refund", Key: "k1"}})
	if p[0].Fix != "payd retry settlement o1 --app tt1" || p[1].Fix != "payd retry refund k1" {
		t.Fatalf("fix commands %q, %q", p[0].Fix, p[1].Fix)
	}
}
