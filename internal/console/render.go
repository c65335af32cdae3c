package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payd/payd/internal/state"
)

// errNotFound answers 404.
var errNotFound = errors.New("no such page")

// badRequest is an error in what the person asked for: 400 with its words.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badRequestf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// pageNames are the templates under templates/, each rendered inside layout.
var pageNames = []string{"login", "error", "overview", "orders", "order", "calendar", "attention", "search", "events"}

func parsePages(loc *time.Location) (map[string]*template.Template, error) {
	funcs := funcMap(loc)
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// view is what every page template receives.
type view struct {
	Title   string
	Page    string
	Session *session
	CSRF    string
	Flash   string
	Now     time.Time
	Data    any
	Path    string
}

func (v view) CanAct() bool { return v.Session != nil && v.Session.canAct() }

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, data any) {
	v := view{Page: name, Session: s, Now: c.o.Clock.Now(), Data: data, Path: r.URL.RequestURI()}
	if s != nil {
		v.CSRF = s.csrf
		v.Flash = c.sessions.takeFlash(s)
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.o.Log.WithError(err).Error("console: render " + name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page with status and a message in words.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	c.render(w, r, status, "error", s, map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

func (c *Console) failErr(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var br badRequest
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, state.ErrNotFound):
		c.fail(w, r, s, http.StatusNotFound, err.Error())
	case errors.As(err, &br):
		c.fail(w, r, s, http.StatusBadRequest, br.msg)
	default:
		c.o.Log.WithError(err).Error("console page failed")
		c.fail(w, r, s, http.StatusInternalServerError, "internal error (logged)")
	}
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// stamp is a time as a page shows it: in the operator's zone, UTC on hover.
type stamp struct {
	Local, UTC, ISO string
	Zero            bool
}

func funcMap(loc *time.Location) template.FuncMap {
	at := func(t time.Time) stamp {
		if t.IsZero() {
			return stamp{Zero: true}
		}
		return stamp{
			Local: t.In(loc).Format("2006-01-02 15:04:05"),
			UTC:   t.UTC().Format("2006-01-02 15:04:05Z") + " UTC",
			ISO:   t.UTC().Format(time.RFC3339),
		}
	}
	return template.FuncMap{
		"yuan": Yuan,
		"at":   at,
		"atp": func(t *time.Time) stamp {
			if t == nil {
				return stamp{Zero: true}
			}
			return at(*t)
		},
		"age":  func(now, t time.Time) string { return Age(now.Sub(t)) },
		"zone": func() string { return loc.String() },
		"orderURL": func(app, no string) string {
			return "/orders/" + url.PathEscape(app) + "/" + url.PathEscape(no)
		},
		"day":   func(t time.Time) string { return t.In(loc).Format("Mon 01-02") },
		"add":   func(a, b int64) int64 { return a + b },
		"upper": strings.ToUpper,
		"list":  func(xs ...string) []string { return xs },
		"dict":  func(v any, rows any) map[string]any { return map[string]any{"V": v, "Rows": rows} },
	}
}

// Yuan formats fen as yuan, exactly: 123456 → "¥1,234.56", -5 → "-¥0.05".
func Yuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign, u = "-", uint64(-fen)
	}
	whole := fmt.Sprint(u / 100)
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return fmt.Sprintf("%s¥%s.%02d", sign, b.String(), u%100)
}

// Age says how long ago in one or two units: "3d 4h", "5m", "12s".
func Age(d time.Duration) string {
	if d < 0 {
		return "in " + Age(-d)
	}
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
