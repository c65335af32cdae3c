package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/state"
)

// client is a browser without JavaScript: a cookie jar that does not follow
// redirects, so tests see them.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T, srv *httptest.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: srv.URL, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *client) login(token string) {
	c.t.Helper()
	resp, body := c.do("POST", "/login", url.Values{"token": {token}, "next": {"/"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) csrf() string {
	c.t.Helper()
	_, body := c.do("GET", "/attention", nil, nil)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF token on /attention: %s", body)
	}
	return m[1]
}

func serve(t *testing.T) (*bundle, *httptest.Server) {
	b := setup(t, seedScenario)
	srv := httptest.NewServer(b.con)
	t.Cleanup(srv.Close)
	return b, srv
}

func refundPhase(t *testing.T, st *state.Store, key string) state.Phase {
	t.Helper()
	var r state.Refund
	must(t, st.DB().Where("idem_key = ?", key).First(&r).Error)
	return r.Phase
}

func TestConsole_pages(t *testing.T) {
	_, srv := serve(t)
	c := newClient(t, srv)
	c.login(adminToken)
	for _, tt := range []struct{ path, want string }{
		{"/", "Money in flight"},
		{"/", "¥12.00"}, // the processing refund of ord-a-0005, in flight
		{"/orders", "ord-b-0024"},
		{"/orders?status=SUCCESS&app=" + appA, "ord-a-0001"},
		{"/orders/" + appA + "/ord-a-0006", "every attempt FAILED at the channel"},
		{"/calendar", "batch orders"},
		{"/attention", "ord-a-0006-r1"},
		{"/attention", "503 Service Unavailable"},
		{"/search?q=N7000000000000001003", "ord-b-0003"},
		{"/search?q=ord-a-0006-r1-1", "out_refund_no"},
		{"/events?failed=1", "evt_00000000000000000000000000000007"},
	} {
		resp, body := c.do("GET", tt.path, nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s: %d, want %q in the page", tt.path, resp.StatusCode, tt.want)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s: %s %q, want %q", tt.path, k, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", tt.path, csp)
		}
	}
	// Amounts in yuan, exact to the fen: ord-a-0007 totals 7099 fen.
	if _, body := c.do("GET", "/orders/"+appA+"/ord-a-0007", nil, nil); !strings.Contains(body, "¥70.99") {
		t.Error("order page does not show ¥70.99")
	}
	if resp, _ := c.do("GET", "/orders/"+appA+"/no-such-order", nil, nil); resp.StatusCode != 404 {
		t.Errorf("unknown order: %d, want 404", resp.StatusCode)
	}
}

func TestConsole_hostile(t *testing.T) {
	b, srv := serve(t)
	anon := newClient(t, srv)
	t.Run("unauthenticated", func(t *testing.T) {
		for _, p := range []string{"/", "/orders", "/attention", "/orders/" + appA + "/ord-a-0006", "/events", "/nope"} {
			resp, _ := anon.do("GET", p, nil, nil)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
				t.Errorf("GET %s: %d %s, want a redirect to sign in", p, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		for _, op := range []string{"retry", "agree", "deny"} {
			resp, _ := anon.do("POST", "/actions/"+op, url.Values{"one": {"refund:ord-a-0006-r1"}, "csrf": {"x"}}, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s unauthenticated: %d, want 401", op, resp.StatusCode)
			}
		}
	})
	t.Run("forged cookie", func(t *testing.T) {
		for _, v := range []string{"x", strings.Repeat("A", 43), "../../etc", strings.Repeat("z", 5000)} {
			resp, _ := anon.do("GET", "/", nil, map[string]string{"Cookie": cookieName + "=" + v})
			if resp.StatusCode != http.StatusSeeOther {
				t.Errorf("cookie %.20q: %d, want a redirect to sign in", v, resp.StatusCode)
			}
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		resp, body := anon.do("POST", "/login", url.Values{"token": {"admin-token-012345678"}}, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "wrong token") || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("wrong token: %d %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
	})
	c := newClient(t, srv)
	c.login(adminToken)
	csrf := c.csrf()
	key := "ord-a-0006-r1"
	tests := []struct {
		name   string
		form   url.Values
		hdr    map[string]string
		status int
	}{
		{"no csrf", url.Values{"one": {"refund:" + key}}, nil, 403},
		{"wrong csrf", url.Values{"one": {"refund:" + key}, "csrf": {csrf + "x"}}, nil, 403},
		{"cross-site", url.Values{"one": {"refund:" + key}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"other origin", url.Values{"one": {"refund:" + key}, "csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}, 403},
		{"oversized", url.Values{"one": {"refund:" + key}, "csrf": {csrf}, "pad": {strings.Repeat("x", maxForm)}}, nil, 400},
		{"too many", url.Values{"sel": make([]string, maxSelection+1), "csrf": {csrf}}, nil, 400},
		{"bad item", url.Values{"one": {"order:" + key}, "csrf": {csrf}}, nil, 400},
		{"nothing", url.Values{"csrf": {csrf}}, nil, 400},
		{"long reason", url.Values{"one": {"refund:" + key}, "csrf": {csrf}, "reason": {strings.Repeat("理", 101)}}, nil, 400},
	}
	auditOf := func() state.AuditPhase {
		var r state.Refund
		must(t, b.store.DB().Where("idem_key = ?", "dyaudit01").First(&r).Error)
		return r.AuditPhase
	}
	for _, tt := range tests {
		resp, body := c.do("POST", "/actions/retry", tt.form, tt.hdr)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, resp.StatusCode, tt.status, body)
		}
		if got := refundPhase(t, b.store, key); got != state.PhaseParked {
			t.Fatalf("%s: refund is %s: a refused request changed it", tt.name, got)
		}
		// The same requests at the audit buttons, naming a refund awaiting audit.
		form := url.Values{}
		for k, v := range tt.form {
			form[k] = v
		}
		if strings.HasPrefix(form.Get("one"), "refund:") {
			form.Set("one", "refund:dyaudit01")
		}
		for _, op := range []string{"agree", "deny"} {
			if resp, body := c.do("POST", "/actions/"+op, form, tt.hdr); resp.StatusCode != tt.status {
				t.Errorf("%s %s: %d, want %d: %.200s", op, tt.name, resp.StatusCode, tt.status, body)
			}
		}
		if got := auditOf(); got != state.AuditWaiting {
			t.Fatalf("%s: audit is %s: a refused request changed it", tt.name, got)
		}
	}
	// An audit message longer than Douyin takes: refused, nothing changed.
	c.do("POST", "/actions/deny", url.Values{"one": {"refund:dyaudit01"}, "csrf": {csrf}, "message": {strings.Repeat("x", state.MaxDenyMessage+1)}}, nil)
	if got := auditOf(); got != state.AuditWaiting {
		t.Fatalf("a deny with a %d-byte message changed the audit: %s", state.MaxDenyMessage+1, got)
	}
	if resp, _ := c.do("POST", "/login", url.Values{"token": {adminToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != 403 {
		t.Errorf("cross-site sign-in: %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/actions/explode", url.Values{"one": {"refund:" + key}, "csrf": {csrf}}, nil); resp.StatusCode != 404 {
		t.Errorf("unknown action: %d, want 404", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/orders?after=abc", nil, nil); resp.StatusCode != 400 {
		t.Errorf("bad cursor: %d, want 400", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/search?q="+strings.Repeat("9", 200), nil, nil); resp.StatusCode != 400 {
		t.Errorf("long search: %d, want 400", resp.StatusCode)
	}
}

func TestConsole_actions(t *testing.T) {
	b, srv := serve(t)
	c := newClient(t, srv)
	c.login(adminToken)
	csrf := c.csrf()
	post := func(op string, form url.Values) string {
		t.Helper()
		form.Set("csrf", csrf)
		form.Set("back", "/attention")
		resp, body := c.do("POST", "/actions/"+op, form, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/attention" {
			t.Fatalf("%s: %d %s", op, resp.StatusCode, body)
		}
		_, page := c.do("GET", "/attention", nil, nil)
		return page
	}
	page := post("retry", url.Values{"one": {"refund:ord-a-0006-r1"}})
	if got := refundPhase(t, b.store, "ord-a-0006-r1"); got != state.PhasePending || !strings.Contains(page, "retry: 1 done") {
		t.Errorf("after retry: %s, flash in page: %v", got, strings.Contains(page, "retry: 1 done"))
	}
	page = post("cancel", url.Values{"sel": {"refund:ord-a-0007-r1", "refund:ord-a-0003-r1"}, "reason": {"duplicate wish"}})
	if got := refundPhase(t, b.store, "ord-a-0007-r1"); got != state.PhaseCancelled {
		t.Errorf("after cancel: %s", got)
	}
	if got := refundPhase(t, b.store, "ord-a-0003-r1"); got != state.PhaseSucceeded || !strings.Contains(page, "1 done, 1 refused") {
		t.Errorf("a succeeded refund was cancelled (%s) or the refusal not shown", got)
	}
	post("retry", url.Values{"one": {"settlement:" + appA + "/ord-a-0018"}})
	var st state.Settlement
	must(t, b.store.DB().Joins("JOIN orders o ON o.id = settlements.order_id").Where("o.out_order_no = ?", "ord-a-0018").First(&st).Error)
	if st.Phase != state.PhasePending || st.Attempt != 2 {
		t.Errorf("settlement after retry: %s attempt %d", st.Phase, st.Attempt)
	}
	post("replay", url.Values{"one": {"event:evt_00000000000000000000000000000007"}})
	var d state.Delivery
	must(t, b.store.DB().Where("event_id = ?", "evt_00000000000000000000000000000007").First(&d).Error)
	if d.Status != state.DeliveryPending || d.Attempts != 0 {
		t.Errorf("delivery after replay: %s, %d attempts", d.Status, d.Attempts)
	}
}

func TestConsole_viewerChangesNothing(t *testing.T) {
	b, srv := serve(t)
	c := newClient(t, srv)
	c.login(viewerToken)
	_, page := c.do("GET", "/attention", nil, nil)
	if strings.Contains(page, ">Retry<") || strings.Contains(page, ">Replay<") || !strings.Contains(page, "ord-a-0006-r1") {
		t.Error("the viewer's attention page offers buttons or hides the parked refund")
	}
	csrf := csrfRe.FindStringSubmatch(page)[1] // the sign-out form's
	for _, op := range []string{"retry", "cancel"} {
		resp, body := c.do("POST", "/actions/"+op, url.Values{"one": {"refund:ord-a-0006-r1"}, "csrf": {csrf}}, nil)
		if resp.StatusCode != 403 || !strings.Contains(body, "read-only") {
			t.Errorf("viewer %s: %d", op, resp.StatusCode)
		}
	}
	resp, _ := c.do("POST", "/actions/replay", url.Values{"one": {"event:evt_00000000000000000000000000000007"}, "csrf": {csrf}}, nil)
	if resp.StatusCode != 403 {
		t.Errorf("viewer replay: %d", resp.StatusCode)
	}
	if got := refundPhase(t, b.store, "ord-a-0006-r1"); got != state.PhaseParked {
		t.Errorf("the viewer changed a refund: %s", got)
	}
}

func TestConsole_session(t *testing.T) {
	b, srv := serve(t)
	c := newClient(t, srv)
	resp, _ := c.do("POST", "/login", url.Values{"token": {adminToken}, "next": {"//evil.example/x"}}, map[string]string{"X-Forwarded-Proto": "https"})
	ck := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Secure", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("sign-in sent the browser to %q, want /", loc)
	}
	plain := newClient(t, srv)
	resp, _ = plain.do("POST", "/login", url.Values{"token": {adminToken}}, nil)
	if strings.Contains(resp.Header.Get("Set-Cookie"), "Secure") {
		t.Error("cookie over plain HTTP is Secure: the browser would drop it")
	}
	// Sign-out ends the session on the server, not only in the browser.
	_, page := plain.do("GET", "/", nil, nil)
	csrf := csrfRe.FindStringSubmatch(page)[1]
	u, _ := url.Parse(srv.URL)
	old := plain.http.Jar.Cookies(u)
	if resp, _ := plain.do("POST", "/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	replay := newClient(t, srv)
	replay.http.Jar.SetCookies(u, old)
	if resp, _ := replay.do("GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a signed-out cookie still works: %d", resp.StatusCode)
	}
	// Expiry.
	c2 := newClient(t, srv)
	c2.login(adminToken)
	b.clock.Advance(12*time.Hour + time.Second)
	if resp, _ := c2.do("GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("an expired session still works: %d", resp.StatusCode)
	}
	_ = context.Background()
}

// TestConsole_audits: the attention page lists the refunds awaiting audit
// with their deadline; Deny without a message is refused with the way
// out and changes nothing; Deny with one and Agree store the decision for
// the reconciler to send; the viewer token changes nothing.
func TestConsole_audits(t *testing.T) {
	b, srv := serve(t)
	audit := func(key string) state.Refund {
		t.Helper()
		var r state.Refund
		must(t, b.store.DB().Where("idem_key = ?", key).First(&r).Error)
		return r
	}
	viewer := newClient(t, srv)
	viewer.login(viewerToken)
	if resp, body := viewer.do("POST", "/actions/agree", url.Values{"csrf": {viewer.csrf()}, "one": {"refund:dyaudit01"}}, nil); resp.StatusCode != 403 || !strings.Contains(body, "read-only") {
		t.Fatalf("viewer agree: %d %.200s", resp.StatusCode, body)
	}
	c := newClient(t, srv)
	c.login(adminToken)
	_, page := c.do("GET", "/attention", nil, nil)
	// Listed soonest deadline first, with the deadline in Shanghai time:
	// dyaudit02 was created 20 h ago (deadline in 52 h), dyaudit01 10 h ago.
	i2, i1 := strings.Index(page, "dyaudit02"), strings.Index(page, "dyaudit01")
	if i2 < 0 || i1 < 0 || i2 > i1 || !strings.Contains(page, "2026-12-03 14:00") || !strings.Contains(page, "Douyin approves the refund") {
		t.Fatalf("audits on the attention page (dyaudit02 at %d, dyaudit01 at %d): %s", i2, i1, page)
	}
	csrf := c.csrf()
	resp, _ := c.do("POST", "/actions/deny", url.Values{"csrf": {csrf}, "one": {"refund:dyaudit02"}, "back": {"/attention"}}, nil)
	_, page = c.do("GET", "/attention", nil, nil)
	if resp.StatusCode != 303 || !strings.Contains(page, "deny: 0 done, 1 refused") || !strings.Contains(page, "message: required to deny a refund (the buyer reads it)") {
		t.Fatalf("deny without a message: %d, flash in %s", resp.StatusCode, page)
	}
	if r := audit("dyaudit02"); r.AuditPhase != state.AuditWaiting {
		t.Fatalf("a refused deny changed the audit: %s", r.AuditPhase)
	}
	c.do("POST", "/actions/deny", url.Values{"csrf": {csrf}, "one": {"refund:dyaudit02"}, "message": {"the parcel was delivered intact"}}, nil)
	if r := audit("dyaudit02"); r.AuditPhase != state.AuditDecided || r.AuditDecision != state.AuditDeny || r.AuditMessage != "the parcel was delivered intact" {
		t.Fatalf("denied: %s %s %q", r.AuditPhase, r.AuditDecision, r.AuditMessage)
	}
	c.do("POST", "/actions/agree", url.Values{"csrf": {csrf}, "sel": {"refund:dyaudit01"}}, nil)
	if r := audit("dyaudit01"); r.AuditPhase != state.AuditDecided || r.AuditDecision != state.AuditAgree || r.AuditBy != state.AuditByOperator {
		t.Fatalf("agreed: %s %s by %s", r.AuditPhase, r.AuditDecision, r.AuditBy)
	}
	if _, page = c.do("GET", "/attention", nil, nil); strings.Contains(page, "dyaudit01") || strings.Contains(page, "dyaudit02") {
		t.Fatal("decided audits are still listed as awaiting a decision")
	}
	// Agree names refunds only.
	if resp, body := c.do("POST", "/actions/agree", url.Values{"csrf": {csrf}, "one": {"event:evt_1"}}, nil); resp.StatusCode != 400 || !strings.Contains(body, "nothing was changed") {
		t.Fatalf("agree an event: %d %.200s", resp.StatusCode, body)
	}
}

// TestConsole_calendarHeldBack: the calendar counts the pending
// settlements an open refund holds back, from the refunds in flight, and
// the count follows the refund to its end.
func TestConsole_calendarHeldBack(t *testing.T) {
	b, srv := serve(t)
	c := newClient(t, srv)
	c.login(adminToken)
	held := func() string {
		t.Helper()
		_, page := c.do("GET", "/calendar", nil, nil)
		i := strings.Index(page, `id="wait-refunds">`)
		if i < 0 {
			t.Fatalf("no held-back count on the calendar: %s", page)
		}
		rest := page[i+len(`id="wait-refunds">`):]
		return rest[:strings.Index(rest, "<")]
	}
	if got := held(); got != "0" {
		t.Fatalf("held back before: %s, want 0", got)
	}
	// ord-a-0016 and ord-b-0020 have pending settlements; refunds on them hold them back.
	ctx := context.Background()
	for _, w := range []state.RefundWish{{AppID: appA, OutOrderNo: "ord-a-0016", Key: "hold-1", Amount: 100}, {AppID: appA, OutOrderNo: "ord-a-0016", Key: "hold-2", Amount: 100},
		{AppID: appB, OutOrderNo: "ord-b-0020", Key: "hold-3", Amount: 100}} {
		_, _, err := b.store.DeclareRefund(ctx, w, b.clock.Now())
		must(t, err)
	}
	if got := held(); got != "2" {
		t.Fatalf("held back with three open refunds on two orders: %s, want 2", got)
	}
	for _, k := range []string{"hold-1", "hold-2"} {
		_, err := b.store.CancelRefund(ctx, k, "test", b.clock.Now())
		must(t, err)
	}
	if got := held(); got != "1" {
		t.Fatalf("held back after cancelling ord-a-0016's refunds: %s, want 1", got)
	}
}
