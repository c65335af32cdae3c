package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/payd/payd/internal/logkey"
	"github.com/payd/payd/internal/state"
)

// item is what an action form names: "refund:<key>",
// "settlement:<app_id>/<out_order_no>[/<item_order_id>]" or "event:<id>".
type item struct {
	kind string
	key  string // refund key or event id
	app  string
	no   string
	item string // a settlement's item order; "" for the whole order's
}

func (it item) String() string {
	if it.kind == "settlement" && it.item != "" {
		return "settlement of item " + it.item + " of order " + it.no
	}
	if it.kind == "settlement" {
		return "settlement of order " + it.no
	}
	return it.kind + " " + it.key
}

func parseItem(s string) (item, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" || len(s) > 256 || !utf8.ValidString(s) {
		return item{}, fmt.Errorf("%q: want refund:KEY, settlement:APP/ORDER or event:ID", s)
	}
	switch kind {
	case "refund", "event":
		return item{kind: kind, key: rest}, nil
	case "settlement":
		app, no, ok := strings.Cut(rest, "/")
		no, itemID, hasItem := strings.Cut(no, "/")
		if !ok || app == "" || no == "" || (hasItem && itemID == "") {
			return item{}, fmt.Errorf("%q: want settlement:APP/ORDER or settlement:APP/ORDER/ITEM_ORDER", s)
		}
		return item{kind: kind, app: app, no: no, item: itemID}, nil
	}
	return item{}, fmt.Errorf("%q: unknown kind %q", s, kind)
}

// actionItems reads the items of an action: the one whose button was
// pressed, or else the ticked selection. Every item is checked before any
// is acted on.
func actionItems(r *http.Request, op string) ([]item, error) {
	raw := r.PostForm["one"]
	if len(raw) == 0 {
		raw = r.PostForm["sel"]
	}
	switch {
	case len(raw) == 0:
		return nil, errors.New("nothing selected: tick at least one row")
	case len(raw) > maxSelection:
		return nil, fmt.Errorf("%d items selected: at most %d at once", len(raw), maxSelection)
	}
	items := make([]item, 0, len(raw))
	for _, s := range raw {
		it, err := parseItem(s)
		if err != nil {
			return nil, err
		}
		if (op == "replay") != (it.kind == "event") || ((op == "agree" || op == "deny") && it.kind != "refund") {
			return nil, fmt.Errorf("%s cannot be %sed", it, strings.TrimSuffix(op, "e"))
		}
		items = append(items, it)
	}
	return items, nil
}

func (c *Console) action(w http.ResponseWriter, r *http.Request, s *session) {
	op := r.PathValue("op")
	if op != "retry" && op != "cancel" && op != "replay" && op != "agree" && op != "deny" {
		c.fail(w, r, s, http.StatusNotFound, "no such action: "+op)
		return
	}
	items, err := actionItems(r, op)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, err.Error()+"; nothing was changed")
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		reason = "withdrawn in the console"
	}
	if utf8.RuneCountInString(reason) > 100 {
		c.fail(w, r, s, http.StatusBadRequest, "reason: at most 100 characters; nothing was changed")
		return
	}
	// message is an audit decision's: optional to agree, required to deny
	// (the buyer reads it); the store checks it.
	message := strings.TrimSpace(r.PostForm.Get("message"))
	var done int
	var refused []string
	for _, it := range items {
		if err := c.apply(r.Context(), op, it, reason, message); err != nil {
			refused = append(refused, it.String()+": "+errText(err))
			continue
		}
		done++
		c.o.Log.WithField(logkey.Action, op).WithField(logkey.Reason, reason).Info("console: " + op + " " + it.String())
	}
	if done > 0 {
		wake := c.o.Wake
		if op == "replay" {
			wake = c.o.WakeEvents
		}
		if wake != nil {
			wake()
		}
	}
	msg := fmt.Sprintf("%s: %d done", op, done)
	if len(refused) > 0 {
		msg += fmt.Sprintf(", %d refused (%s)", len(refused), strings.Join(refused, "; "))
	}
	c.sessions.setFlash(s, msg)
	http.Redirect(w, r, safeNext(r.PostForm.Get("back")), http.StatusSeeOther)
}

func (c *Console) apply(ctx context.Context, op string, it item, reason, message string) error {
	now := c.o.Clock.Now()
	st := c.o.Store
	var err error
	switch {
	case op == "retry" && it.kind == "refund":
		_, err = st.RetryParked(ctx, it.key, now)
	case op == "retry" && it.kind == "settlement":
		_, err = st.RetryParkedItemSettlement(ctx, it.app, it.no, it.item, now)
	case op == "cancel" && it.kind == "refund":
		_, err = st.CancelRefund(ctx, it.key, reason, now)
	case op == "cancel" && it.kind == "settlement":
		_, err = st.CancelItemSettlement(ctx, it.app, it.no, it.item, reason, now)
	case op == "agree" || op == "deny":
		_, err = st.DecideAudit(ctx, state.AuditWish{Refund: it.key, Decision: state.AuditDecision(op), Message: message}, now)
	case op == "replay":
		var n int
		n, err = st.ReplayEvent(ctx, c.o.Subscriptions, it.key, now)
		if err == nil && n == 0 {
			err = errors.New("no endpoint takes it now (or its delivery is in flight)")
		}
	}
	return err
}

// errText is an error for the person who pressed the button, in the
// store's words.
func errText(err error) string { return err.Error() }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
