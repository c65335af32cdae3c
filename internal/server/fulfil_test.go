package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/payd/payd/internal/api"
)

func TestAdminHandler_fulfil(t *testing.T) {
	b := newAdminBundle(t)
	code, body := b.do(t, "POST", "/v1/orders/o-9/fulfil", adminToken, `{"item_order_id":"it-1","fulfilled_at":"2026-01-02T03:04:05Z"}`)
	if code != http.StatusCreated {
		t.Fatalf("first: %d %s", code, body)
	}
	var f api.Fulfilment
	if err := json.Unmarshal([]byte(body), &f); err != nil || f.OutOrderNo != "o-9" || f.ItemOrderID != "it-1" || f.FulfilledAt.Format("15:04:05") != "03:04:05" {
		t.Fatalf("row: %+v %v (%s)", f, err, body)
	}
	if !strings.Contains(body, `"fulfilled_at": "2026-01-02T03:04:05Z"`) {
		t.Fatalf("snake_case JSON: %s", body)
	}
	if code, body := b.do(t, "POST", "/v1/orders/o-9/fulfil", adminToken, `{"item_order_id":"it-1"}`); code != http.StatusOK {
		t.Fatalf("again: %d %s", code, body)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"item_order_id":"a b"}`, `item_order_id: "a b" is not 1..64 printable characters`},
		{`{"fulfilled_at":"2999-01-01T00:00:00Z"}`, "fulfilled_at: 2999-01-01T00:00:00Z is in the future"},
		{`{"app_id":"tt-other"}`, `app_id: "tt-other" is not configured in douyin.apps`},
		{`{"item":"x"}`, `unknown field "item"`},
	} {
		code, body := b.do(t, "POST", "/v1/orders/o-9/fulfil", adminToken, tc.body)
		if code != http.StatusBadRequest || !strings.Contains(apiError(t, body), tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.body, code, body, tc.want)
		}
	}
	if code, _ := b.do(t, "POST", "/v1/orders/o-9/fulfil", "wrong", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", code)
	}
	v, err := b.store.History(context.Background(), appID, "o-9")
	if err != nil || len(v.Fulfilments) != 1 {
		t.Fatalf("fulfilments stored: %+v %v", v, err)
	}
}
