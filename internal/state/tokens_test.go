package state

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

func TestClientTokens_ClaimAndReplace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ct := e.ClientTokens()
		if tok, err := ct.Load(ctx, "tt1"); err != nil || tok.Value != "" {
			t.Fatalf("empty: %v %v", tok, err)
		}
		claim := func(holder string, now time.Time) bool {
			t.Helper()
			ok, err := ct.Claim(ctx, "tt1", holder, now, now.Add(30*time.Second))
			must(t, err)
			return ok
		}
		if !claim("a", t0) || claim("b", t0.Add(10*time.Second)) || !claim("a", t0.Add(10*time.Second)) {
			t.Fatal("a lease is held by one holder")
		}
		if !claim("b", t0.Add(41*time.Second)) {
			t.Fatal("an expired lease was not taken over")
		}
		next := trade.Token{Value: "clt.1", ExpiresAt: t0.Add(2 * time.Hour)}
		if ok, err := ct.Replace(ctx, "tt1", "stale", next); err != nil || ok {
			t.Fatalf("replace of a token not stored: %v %v", ok, err)
		}
		if ok, err := ct.Replace(ctx, "tt1", "", next); err != nil || !ok {
			t.Fatalf("first replace: %v %v", ok, err)
		}
		if tok, _ := ct.Load(ctx, "tt1"); tok.Value != "clt.1" || !tok.ExpiresAt.Equal(next.ExpiresAt) {
			t.Fatalf("loaded %v", tok)
		}
		if !claim("c", t0.Add(42*time.Second)) {
			t.Fatal("Replace did not drop the lease")
		}
		if ok, _ := ct.Replace(ctx, "tt1", "", trade.Token{Value: "clt.x"}); ok {
			t.Fatal("replaced a stored token as if there was none")
		}
	})
}

// TestClientTokens_FourStoresRefreshOnce: four replicas, each with its own
// Store on one database, all needing a token at once: one fetch.
func TestClientTokens_FourStoresRefreshOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		var fetches atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := fetches.Add(1)
			time.Sleep(20 * time.Millisecond) // a fetch takes a while: the others must wait, not fetch
			fmt.Fprintf(w, `{"data":{"access_token":"clt.shared-%d","expires_in":7200,"error_code":0}}`, n)
		}))
		defer srv.Close()
		var sources []*trade.Tokens
		for i := 0; i < 4; i++ {
			s := e.Store
			if i > 0 {
				s = e.reopen(t)
			}
			tk, err := trade.NewTokens(trade.TokensOptions{BaseURL: srv.URL, Apps: []trade.Credential{{AppID: "tt1", Secret: "s"}},
				Store: s.ClientTokens(), Holder: fmt.Sprintf("replica-%d", i), Poll: 5 * time.Millisecond, Now: e.clock.Now})
			must(t, err)
			sources = append(sources, tk)
		}
		got := make([]string, 4)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i, tk := range sources {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = tk.Token(context.Background(), "tt1")
			}()
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil || got[i] != "clt.shared-1" {
				t.Errorf("replica %d: %q %v, want clt.shared-1", i, got[i], errs[i])
			}
		}
		if n := fetches.Load(); n != 1 {
			t.Fatalf("%d fetches, want 1", n)
		}
	})
}

// TestMigrate_TradeCallbackOnPostgres: step 5 widens a callbacks table
// created at the old sizes, and a pre_create_refund callback with an RSA
// signature fits.
func TestMigrate_TradeCallbackOnPostgres(t *testing.T) {
	e := newPostgresEnv(t)
	ctx := context.Background()
	db := e.DB()
	e.beforeCounters(t)
	must(t, db.Exec("ALTER TABLE callbacks ALTER COLUMN type TYPE varchar(16), ALTER COLUMN signature TYPE varchar(64)").Error)
	// Steps run only above the newest applied one: take back 5 and every later step.
	must(t, db.Exec("DELETE FROM schema_versions WHERE version >= 5").Error)
	must(t, db.Exec("DROP TABLE client_tokens").Error)
	must(t, e.Migrate(ctx))
	sig := strings.Repeat("A", 342) + "=="
	ok, err := e.InsertCallback(ctx, &Callback{AppID: "tt1", Type: "pre_create_refund", Signature: sig, SubjectNo: "motb7400000000000000002", Raw: "{}"}, t0)
	if err != nil || !ok {
		t.Fatalf("insert pre_create_refund callback: %v %v", ok, err)
	}
	var n int64
	must(t, db.Model(&Callback{}).Where("signature = ?", sig).Count(&n).Error)
	if n != 1 {
		t.Fatalf("%d rows", n)
	}
}
