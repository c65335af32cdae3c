package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/payd/payd/internal/clock"
)

// role is what a signed-in person may do.
type role string

const (
	// roleAdmin signed in with server.admin_token: sees and acts.
	roleAdmin role = "admin"
	// roleViewer signed in with server.viewer_token: sees, never acts.
	roleViewer role = "viewer"
)

// cookieName is the session cookie's name.
const cookieName = "payd_console"

// maxSessions bounds the sessions held in memory; the oldest goes first.
const maxSessions = 1000

// session is one sign-in, held in memory only: a restart signs everyone out.
type session struct {
	id      string
	role    role
	csrf    string
	created time.Time
	expires time.Time
	flash   string // a message for the next page, shown once
}

func (s *session) canAct() bool { return s.role == roleAdmin }

// Role names what the session may do, for the page header.
func (s *session) Role() string { return string(s.role) }

type sessions struct {
	mu    sync.Mutex
	m     map[string]*session
	clock clock.Clock
	ttl   time.Duration
	// fails slows down guessing of tokens: wrong sign-ins share one budget.
	fails *rate.Limiter
}

func newSessions(clk clock.Clock, ttl time.Duration) *sessions {
	return &sessions{m: map[string]*session{}, clock: clk, ttl: ttl, fails: rate.NewLimiter(rate.Limit(2), 10)}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) create(r role) *session {
	now := ss.clock.Now()
	s := &session{id: randomToken(), role: r, csrf: randomToken(), created: now, expires: now.Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		ss.pruneLocked(now)
	}
	ss.m[s.id] = s
	return s
}

// pruneLocked drops expired sessions and, while still full, the oldest.
func (ss *sessions) pruneLocked(now time.Time) {
	for id, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, id)
		}
	}
	for len(ss.m) >= maxSessions {
		var oldest *session
		for _, s := range ss.m {
			if oldest == nil || s.created.Before(oldest.created) {
				oldest = s
			}
		}
		delete(ss.m, oldest.id)
	}
}

// get returns the live session of r's cookie, or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 43 {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil {
		return nil
	}
	if !ss.clock.Now().Before(s.expires) {
		delete(ss.m, s.id)
		return nil
	}
	return s
}

func (ss *sessions) drop(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, s.id)
}

func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = msg
}

func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	msg := s.flash
	s.flash = ""
	return msg
}

// secure reports whether the browser reached payd over TLS, directly or
// through a proxy that says so.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie sets (or, with value "", deletes) the session cookie. Its life
// is a Max-Age, relative, so a browser whose clock is off keeps it as long
// as the server does.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, ttl time.Duration) {
	ck := &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1}
	if value != "" {
		ck.MaxAge = int(ttl / time.Second)
	}
	http.SetCookie(w, ck)
}

// roleOf returns the role a token signs in with; "" for a wrong one.
func (c *Console) roleOf(token string) role {
	var r role
	if c.o.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(c.o.AdminToken)) == 1 {
		r = roleAdmin
	}
	if c.o.ViewerToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(c.o.ViewerToken)) == 1 {
		r = roleViewer
	}
	return r
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessions.get(r) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", nil, map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

// login checks the token and starts a session. A login form has no session
// to carry a CSRF token yet; cross-origin posts are refused by origin.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := c.cross.Check(r); err != nil {
		c.fail(w, r, nil, http.StatusForbidden, "cross-site request refused")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, nil, http.StatusBadRequest, "the sign-in form could not be read: "+formError(err))
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	ro := c.roleOf(r.PostForm.Get("token"))
	if ro == "" {
		status, msg := http.StatusUnauthorized, "wrong token"
		if !c.sessions.fails.Allow() {
			status, msg = http.StatusTooManyRequests, "too many wrong sign-ins: wait a few seconds"
		}
		c.render(w, r, status, "login", nil, map[string]any{"Next": next, "Error": msg})
		return
	}
	s := c.sessions.create(ro)
	c.setCookie(w, r, s.id, s.expires.Sub(s.created))
	c.o.Log.WithField("role", string(ro)).Info("console sign-in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.drop(s)
	c.setCookie(w, r, "", 0)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in destination on this site: a path, never
// another host (//evil, /\evil).
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") || len(p) > 512 {
		return "/"
	}
	return p
}

// page wraps a read view: no session sends the browser to sign in.
func (c *Console) page(fn func(r *http.Request, s *session) (string, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.sessions.get(r)
		if s == nil {
			http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		name, data, err := fn(r, s)
		if err != nil {
			c.failErr(w, r, s, err)
			return
		}
		c.render(w, r, http.StatusOK, name, s, data)
	}
}

// post wraps a form that changes something: a session, a same-origin
// request, the session's CSRF token and (when act) the right to act.
func (c *Console) post(fn func(w http.ResponseWriter, r *http.Request, s *session), act bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.cross.Check(r); err != nil {
			c.fail(w, r, nil, http.StatusForbidden, "cross-site request refused")
			return
		}
		s := c.sessions.get(r)
		if s == nil {
			c.fail(w, r, nil, http.StatusUnauthorized, "not signed in (or the session expired): sign in again")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, s, http.StatusBadRequest, "the form could not be read: "+formError(err))
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
			c.fail(w, r, s, http.StatusForbidden, "the form's CSRF token is missing or stale: reload the page and try again")
			return
		}
		if act && !s.canAct() {
			c.fail(w, r, s, http.StatusForbidden, "signed in read-only (viewer token): nothing was changed")
			return
		}
		fn(w, r, s)
	}
}

func formError(err error) string {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return "larger than 64 KiB"
	}
	return "malformed"
}
