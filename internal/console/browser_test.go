package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/payd/payd/internal/state"
)

// chromium finds a Chromium to drive: $PAYD_CHROMIUM, else Debian's
// chromium (what .ci/run installs), else the usual other names.
func chromium(t *testing.T) string {
	if p := os.Getenv("PAYD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary found (apt-get install -y chromium, or set PAYD_CHROMIUM): the browser tests skip")
	return ""
}

// browser starts a headless Chromium with a fresh profile and no network
// of its own, and records every URL it requests.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

func newBrowser(t *testing.T) *browser {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	b := &browser{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enable network events: %v", err)
	}
	return b
}

func (b *browser) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text returns the text of the first element matching sel.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// shot saves a screenshot of the page as docs/console/<name>.png when
// PAYD_CONSOLE_SCREENSHOTS names a directory.
func (b *browser) shot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("PAYD_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (b *browser) signIn(t *testing.T, base, token string) {
	t.Helper()
	b.run(t, "sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#replicas")),
	)
}

func TestBrowser_console(t *testing.T) {
	bd, srv := serve(t)
	br := newBrowser(t)
	base := srv.URL

	br.signIn(t, base, adminToken)
	if got := br.text(t, "#inflight-"+appA); got != "¥12.00" {
		t.Errorf("money in flight of %s: %q, want ¥12.00", appA, got)
	}
	br.shot(t, "overview")

	br.run(t, "orders", chromedp.Navigate(base+"/orders"), chromedp.WaitVisible(chromedp.CSS("#orders")))
	if got := br.text(t, "#orders"); !strings.Contains(got, "ord-t-0003") || !strings.Contains(got, "ord-b-0024") || !strings.Contains(got, "ord-a-0002") {
		t.Errorf("orders page lacks the scenario's orders: %.200q", got)
	}
	br.shot(t, "orders")

	br.run(t, "open an order", chromedp.Navigate(base+"/orders?app="+appA), chromedp.Click(chromedp.CSS(`a[href="/orders/`+appA+`/ord-a-0006"]`)),
		chromedp.WaitVisible(chromedp.CSS("#timeline")))
	if got := br.text(t, "#timeline"); !strings.Contains(got, "refund ord-a-0006-r1") || !strings.Contains(got, "order.paid") {
		t.Errorf("timeline: %.300q", got)
	}
	if got := br.text(t, "#plan"); !strings.Contains(got, "settle") && !strings.Contains(got, "nothing to do") {
		t.Errorf("plan: %q", got)
	}
	br.shot(t, "order")

	br.run(t, "attention", chromedp.Navigate(base+"/attention"), chromedp.WaitVisible(chromedp.CSS("#parked-refunds")))
	br.shot(t, "attention")
	br.run(t, "retry", chromedp.Click(chromedp.CSS("#retry-ord-a-0006-r1")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := br.text(t, "#flash"); got != "retry: 1 done" {
		t.Errorf("flash after retry: %q", got)
	}
	if got := refundPhase(t, bd.store, "ord-a-0006-r1"); got != state.PhasePending {
		t.Errorf("retried refund is %s, want pending", got)
	}
	br.run(t, "order after retry", chromedp.Navigate(base+"/orders/"+appA+"/ord-a-0006"), chromedp.WaitVisible(chromedp.CSS("#refunds")))
	if got := br.text(t, "#refunds"); !strings.Contains(got, "pending") || !strings.Contains(got, "ord-a-0006-r1-2") {
		t.Errorf("the order page does not show the refund pending with attempt 2: %q", got)
	}
	br.run(t, "cancel", chromedp.Navigate(base+"/attention"), chromedp.Click(chromedp.CSS("#cancel-ord-a-0007-r1")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := refundPhase(t, bd.store, "ord-a-0007-r1"); got != state.PhaseCancelled {
		t.Errorf("cancelled refund is %s", got)
	}
	br.run(t, "agree an audit", chromedp.Navigate(base+"/attention"), chromedp.WaitVisible(chromedp.CSS("#audits")),
		chromedp.Click(chromedp.CSS("#agree-dyaudit01")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := br.text(t, "#flash"); got != "agree: 1 done" {
		t.Errorf("flash after agree: %q", got)
	}
	if got := br.text(t, "#audits"); strings.Contains(got, "dyaudit01") || !strings.Contains(got, "dyaudit02") {
		t.Errorf("after agreeing dyaudit01 the audits list shows %q; want only dyaudit02", got)
	}
	var agreed state.Refund
	must(t, bd.store.DB().Where("idem_key = ?", "dyaudit01").First(&agreed).Error)
	if agreed.AuditPhase != state.AuditDecided || agreed.AuditDecision != state.AuditAgree || agreed.AuditBy != state.AuditByOperator {
		t.Errorf("agreed refund: audit %s %s by %s, want decided agree by operator", agreed.AuditPhase, agreed.AuditDecision, agreed.AuditBy)
	}
	ev := "evt_00000000000000000000000000000007"
	br.run(t, "replay", chromedp.Navigate(base+"/attention"), chromedp.Click(chromedp.CSS("#replay-"+ev)), chromedp.WaitVisible(chromedp.CSS("#flash")))
	var d state.Delivery
	must(t, bd.store.DB().Where("event_id = ?", ev).First(&d).Error)
	if d.Status != state.DeliveryPending {
		t.Errorf("replayed delivery is %s, want pending", d.Status)
	}

	for _, p := range []struct{ path, wait, name string }{
		{"/calendar", "#calendar", "calendar"}, {"/events", ".deliveries", "events"}, {"/search?q=ord-a-0009-r1-1", "#hits", "search"},
	} {
		br.run(t, p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
		br.shot(t, p.name)
	}
	if got := br.text(t, "#hits"); !strings.Contains(got, "ord-a-0009") {
		t.Errorf("search: %q", got)
	}

	refusals(t, br, bd, base)

	br.run(t, "sign out", chromedp.Navigate(base+"/"), chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	br.shot(t, "login")
	br.run(t, "after sign-out", chromedp.Navigate(base+"/attention"), chromedp.WaitVisible(chromedp.CSS("#token")))

	br.mu.Lock()
	defer br.mu.Unlock()
	for _, u := range br.urls {
		if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "http://127.0.0.1:") && !strings.HasPrefix(u, "http://localhost:") && !strings.HasPrefix(u, "data:") && u != "about:blank" {
			t.Errorf("a page needed the network: %s", u)
		}
	}
}

// refusals: a form posted without its CSRF token, and one posted from
// another origin (another port of the same host: same-site, so even the
// SameSite=Strict cookie goes along and only the origin check and the CSRF
// token stand in the way), change nothing.
func refusals(t *testing.T, br *browser, bd *bundle, base string) {
	t.Helper()
	br.run(t, "no csrf", chromedp.Navigate(base+"/attention"), chromedp.WaitVisible(chromedp.CSS("#parked-refunds")),
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())`),
		chromedp.Click(chromedp.CSS("#retry-ord-a-0009-r1")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := br.text(t, "#error"); !strings.Contains(got, "CSRF") {
		t.Errorf("a form without its CSRF token: %q", got)
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/actions/retry"><input name="one" value="refund:ord-a-0009-r1"><button id="go">win a prize</button></form>`, base)
	}))
	defer evil.Close()
	br.run(t, "evil page", chromedp.Navigate(evil.URL))
	br.run(t, "evil click", chromedp.Click(chromedp.CSS("#go")))
	br.run(t, "evil answer", chromedp.WaitVisible(chromedp.CSS("#error")))
	body := br.text(t, "#error")
	if !strings.Contains(body, "cross-site request refused") {
		t.Errorf("a cross-site form was not refused: %.200q", body)
	}
	if got := refundPhase(t, bd.store, "ord-a-0009-r1"); got != state.PhaseParked {
		t.Errorf("a refused form changed the refund: %s", got)
	}
}

func TestBrowser_viewer(t *testing.T) {
	bd, srv := serve(t)
	br := newBrowser(t)
	br.signIn(t, srv.URL, viewerToken)
	br.run(t, "attention", chromedp.Navigate(srv.URL+"/attention"), chromedp.WaitVisible(chromedp.CSS("#parked-refunds")))
	buttons, err := chromedp.Run(br.ctx, chromedp.Evaluate[int](`document.querySelectorAll('main button').length`))
	if err != nil {
		t.Fatal(err)
	}
	if buttons != 0 {
		t.Errorf("the viewer sees %d action buttons", buttons)
	}
	// The viewer's own form (its sign-out form's CSRF token), pointed at
	// an action: what a viewer who edits the page could send.
	br.run(t, "viewer post", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.querySelector('form.logout');
		f.action = '/actions/retry';
		const one = document.createElement('input');
		one.name = 'one'; one.value = 'refund:ord-a-0006-r1';
		f.appendChild(one);
		f.submit();
	})()`), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := br.text(t, "#error"); !strings.Contains(got, "read-only") {
		t.Errorf("the viewer's POST: %q", got)
	}
	if got := refundPhase(t, bd.store, "ord-a-0006-r1"); got != state.PhaseParked {
		t.Errorf("the viewer changed a refund: %s", got)
	}
}
