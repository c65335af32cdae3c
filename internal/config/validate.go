package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// Limits Douyin and payd put on some fields.
const (
	maxWorkers      = 512 // reconcile.workers
	maxConcurrency  = 256 // events.concurrency
	maxAttempts     = 50  // Douyin takes at most 50 settle requests (and WeChat 50 refunds) per order
	maxSettleDesc   = 80  // runes
	minSecretLength = 16  // admin token and endpoint secrets
)

// Validate reports every problem of c at once, joined, one per line, each
// naming the field by its YAML path: "douyin.apps[0].salt: required". Its
// messages never hold a secret. It does not check what only `payd serve`
// needs: see ValidateServe.
func (c *Config) Validate() error {
	p := problems{env: c.env}
	c.Database.validate(&p, "database")
	c.Douyin.validate(&p, "douyin")
	c.Reconcile.validate(&p, "reconcile", c.Douyin.Timeout)
	p.cron("settle_batch.schedule", c.SettleBatch.Schedule)
	p.atLeast("settle_batch.limit", c.SettleBatch.Limit, 1)
	p.cron("sweep.schedule", c.Sweep.Schedule)
	p.positiveDuration("sweep.stale_after", c.Sweep.StaleAfter)
	c.Server.validate(&p, "server")
	c.Events.validate(&p, "events")
	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "json", "text")
	c.Sandbox.validate(&p, "sandbox", c.Server)
	c.Console.validate(&p, "console")
	return p.err()
}

// ValidateServe reports the problems that matter only to `payd serve`,
// which exposes the admin API: a missing, short or space-padded admin
// token. Call it after Validate (Load calls Validate).
func (c *Config) ValidateServe() error {
	p := problems{env: c.env}
	p.secret("server.admin_token", c.Server.AdminToken, minSecretLength)
	if c.Server.ViewerToken != "" {
		p.secret("server.viewer_token", c.Server.ViewerToken, minSecretLength)
		if c.Server.ViewerToken == c.Server.AdminToken {
			p.add("server.viewer_token", "same as server.admin_token: a viewer would be an admin")
		}
	}
	// Only the daemon signs events: read-only commands need no secret.
	for i, e := range c.Events.Endpoints {
		p.secret(index("events.endpoints", i)+".secret", e.Secret, minSecretLength)
	}
	return p.err()
}

func (d *Database) validate(p *problems, path string) {
	p.oneOf(path+".driver", d.Driver, "sqlite", "postgres")
	p.required(path+".dsn", d.DSN)
	if !slices.Contains([]string{"NORMAL", "FULL", "EXTRA"}, strings.ToUpper(d.Synchronous)) {
		p.add(path+".synchronous", "%q: want NORMAL, FULL or EXTRA", d.Synchronous)
	}
	p.nonNegativeDuration(path+".busy_timeout", d.BusyTimeout)
	if w := d.GroupCommitWait; w.Duration < 0 || w.Duration > 100*time.Millisecond {
		p.add(path+".group_commit_wait", "%s: want 0 (commit at once) up to 100ms", w)
	}
}

func (d *Douyin) validate(p *problems, path string) {
	if p.required(path+".base_url", d.BaseURL) && d.BaseURL != SandboxName {
		p.url(path+".base_url", d.BaseURL, baseURL)
	}
	p.positiveDuration(path+".timeout", d.Timeout)
	p.limits(path+".limits", d.Limits, "", APINames())
	p.atLeast(path+".burst", d.Burst, 1)
	if w := d.InFlightWindow; w.Duration < 0 || w.Duration > 10*time.Second {
		p.add(path+".in_flight_window", "%s: want 0 (no bound) up to 10s", w)
	}
	if p.required(path+".trade.base_url", d.Trade.BaseURL) && d.Trade.BaseURL != SandboxName {
		p.url(path+".trade.base_url", d.Trade.BaseURL, baseURL)
	}
	p.limits(path+".trade.limits", d.Trade.Limits, "trade ", TradeAPINames())
	p.appDefaults(path+".app_defaults", d.AppDefaults)
	if len(d.Apps) == 0 {
		p.add(path+".apps", "at least one app required")
	}
	first := make(map[string]int)
	for i, a := range d.Apps {
		ap := index(path+".apps", i)
		if p.required(ap+".app_id", a.AppID) {
			if j, dup := first[a.AppID]; dup {
				p.add(ap+".app_id", "%q repeats %s", a.AppID, index(path+".apps", j))
			} else {
				first[a.AppID] = i
			}
		}
		switch a.API {
		case "", APIEcpay:
			p.secret(ap+".salt", a.Salt, 0)
			p.secret(ap+".token", a.Token, 0)
			if a.Audit.Set() {
				p.add(ap+".audit", "only trade apps audit refunds (api: trade); remove it")
			}
		case APITrade:
			if a.Token != "" { // a migrated app's legacy callbacks
				p.secret(ap+".token", a.Token, 0)
			}
			p.validateTrade(ap, a)
		default:
			p.add(ap+".api", "%q is not an API payd speaks: use %q or %q (or leave it out for %[2]q)", a.API, APIEcpay, APITrade)
		}
		p.positiveDuration(ap+".settle_period", a.SettlePeriod)
		if p.required(ap+".settle_desc", a.SettleDesc) {
			if n := utf8.RuneCountInString(a.SettleDesc); n > maxSettleDesc {
				p.add(ap+".settle_desc", "%d characters: at most %d", n, maxSettleDesc)
			}
		}
		if a.NotifyURL != "" {
			p.url(ap+".notify_url", a.NotifyURL, httpsOrLocal)
		}
	}
}

func (r *Reconcile) validate(p *problems, path string, callTimeout Duration) {
	p.cron(path+".schedule", r.Schedule)
	p.between(path+".workers", r.Workers, 0, maxWorkers) // 0: as the apps need (Config.Workers)
	p.atLeast(path+".batch", r.Batch, 1)
	if p.positiveDuration(path+".lease", r.Lease) && callTimeout.Duration > 0 && r.Lease.Duration <= callTimeout.Duration {
		// A lease that ends while its call is in flight lets a second
		// worker take the row.
		p.add(path+".lease", "%s: must be longer than douyin.timeout (%s)", r.Lease, callTimeout)
	}
	p.between(path+".refund_attempts", r.RefundAttempts, 1, maxAttempts)
	p.between(path+".settle_attempts", r.SettleAttempts, 1, maxAttempts)
	p.backoff(path+".retry", r.Retry)
	p.backoff(path+".settle_retry", r.SettleRetry)
	p.fraction(path+".jitter", r.Jitter)
	p.backoff(path+".poll", r.Poll)
}

func (s *Server) validate(p *problems, path string) {
	p.listen(path+".callback_listen", s.CallbackListen)
	p.listen(path+".admin_listen", s.AdminListen)
	if s.AdminListen == s.CallbackListen && !ephemeral(s.AdminListen) {
		p.add(path+".admin_listen", "%q: same address as %s.callback_listen", s.AdminListen, path)
	}
	p.positive(path+".callback_rate", s.CallbackRate)
	p.atLeast(path+".callback_burst", s.CallbackBurst, 1)
	p.positiveDuration(path+".shutdown_timeout", s.ShutdownTimeout)
}

func (c *Console) validate(p *problems, path string) {
	if p.required(path+".timezone", c.Timezone) {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			p.add(path+".timezone", "%q is not an IANA time zone (such as Asia/Shanghai or UTC)", c.Timezone)
		}
	}
	if p.positiveDuration(path+".session_ttl", c.SessionTTL) && c.SessionTTL.Duration > 720*time.Hour {
		p.add(path+".session_ttl", "%s: at most 720h", c.SessionTTL.Duration)
	}
}

func (e *Events) validate(p *problems, path string) {
	first := make(map[string]int)
	for i, ep := range e.Endpoints {
		ep.validate(p, index(path+".endpoints", i))
		if ep.Name == "" {
			continue
		}
		if j, dup := first[ep.Name]; dup {
			p.add(index(path+".endpoints", i)+".name", "%q repeats %s", ep.Name, index(path+".endpoints", j))
		} else {
			first[ep.Name] = i
		}
	}
	p.backoff(path+".retry", e.Retry)
	p.positiveDuration(path+".timeout", e.Timeout)
	p.between(path+".concurrency", e.Concurrency, 1, maxConcurrency)
	p.positiveDuration(path+".tolerance", e.Tolerance)
}

func (e *Endpoint) validate(p *problems, path string) {
	p.required(path+".name", e.Name)
	if p.required(path+".url", e.URL) {
		p.url(path+".url", e.URL, anyHTTP)
	}
	seen := make(map[string]bool)
	for i, t := range e.Types {
		tp := index(path+".types", i)
		switch {
		case !slices.Contains(EventTypes, t):
			p.add(tp, "%q: unknown event type; want one of %s", t, strings.Join(EventTypes, ", "))
		case seen[t]:
			p.add(tp, "%q: repeated", t)
		}
		seen[t] = true
	}
}

func (s *Sandbox) validate(p *problems, path string, srv Server) {
	if p.listen(path+".listen", s.Listen) && !ephemeral(s.Listen) {
		// payd demo runs the simulator beside the server.
		for _, other := range []struct{ name, addr string }{
			{"server.callback_listen", srv.CallbackListen},
			{"server.admin_listen", srv.AdminListen},
		} {
			if s.Listen == other.addr {
				p.add(path+".listen", "%q: same address as %s", s.Listen, other.name)
			}
		}
	}
	p.nonNegativeDuration(path+".settle_period", s.SettlePeriod)
	p.nonNegativeDuration(path+".processing_delay", s.ProcessingDelay)
	if s.NotifyURL != "" {
		p.url(path+".notify_url", s.NotifyURL, anyHTTP)
	}
	p.nonNegative(path+".callback_scale", s.CallbackScale)
	p.limits(path+".limits", s.Limits, "", APINames())
	fp := path + ".faults"
	for _, pr := range s.Faults.Probabilities() {
		p.fraction(fp+"."+pr.Key, *pr.P)
	}
	for _, d := range s.Faults.Durations() {
		p.nonNegativeDuration(fp+"."+d.Key, D(*d.D))
	}
}

// problems collects validation errors, each "path: message".
type problems struct {
	errs []error
	// env maps a field's path to the environment variables its value
	// came from, so that an error names the way out.
	env map[string][]string
}

func (p *problems) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if vars := p.env[path]; len(vars) > 0 {
		msg += fmt.Sprintf(" (the config reads it from %s: set it in the environment)", strings.Join(vars, ", "))
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %s", path, msg))
}

// err returns every problem joined, or nil.
func (p *problems) err() error { return errors.Join(p.errs...) }

// required reports an empty s; it returns whether s is set.
func (p *problems) required(path, s string) bool {
	if s == "" {
		p.add(path, "required")
		return false
	}
	return true
}

// secret checks a secret without ever quoting it: set, no surrounding
// spaces (a pasted newline breaks signatures silently), at least minLen
// characters.
func (p *problems) secret(path, s string, minLen int) {
	switch {
	case s == "":
		p.add(path, "required")
	case strings.TrimSpace(s) != s:
		p.add(path, "has leading or trailing white space")
	case utf8.RuneCountInString(s) < minLen:
		p.add(path, "too short: at least %d characters", minLen)
	}
}

func (p *problems) oneOf(path, s string, allowed ...string) {
	if slices.Contains(allowed, s) {
		return
	}
	p.add(path, "%q: want %s", s, orList(allowed))
}

// orList renders "a, b or c".
func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func (p *problems) atLeast(path string, v, lo int) {
	if v < lo {
		p.add(path, "%d: must be at least %d", v, lo)
	}
}

func (p *problems) between(path string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(path, "%d: want %d..%d", v, lo, hi)
	}
}

func (p *problems) positive(path string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		p.add(path, "%g: must be a positive number", v)
	}
}

func (p *problems) nonNegative(path string, v float64) {
	if !(v >= 0) || math.IsInf(v, 0) {
		p.add(path, "%g: must not be negative", v)
	}
}

// fraction checks a probability or ratio: 0..1 (NaN fails).
func (p *problems) fraction(path string, v float64) {
	if !(v >= 0 && v <= 1) {
		p.add(path, "%g: want 0..1", v)
	}
}

// positiveDuration reports d <= 0; it returns whether d is positive.
func (p *problems) positiveDuration(path string, d Duration) bool {
	if d.Duration <= 0 {
		p.add(path, "%s: must be positive", d)
		return false
	}
	return true
}

func (p *problems) nonNegativeDuration(path string, d Duration) {
	if d.Duration < 0 {
		p.add(path, "%s: must not be negative", d)
	}
}

// backoff checks a delay schedule: at least one entry, all positive.
func (p *problems) backoff(path string, b Backoff) {
	if len(b) == 0 {
		p.add(path, "at least one delay required")
	}
	for i, d := range b {
		p.positiveDuration(index(path, i), d)
	}
}

// cron checks a spec with the parser cron.New uses by default: five fields
// or a descriptor ("@every 5s", "@daily").
func (p *problems) cron(path, spec string) {
	if !p.required(path, spec) {
		return
	}
	if _, err := cron.ParseStandard(spec); err != nil {
		p.add(path, "%q: %v", spec, err)
	}
}

// listen checks a host:port listen address; it returns whether it is one.
func (p *problems) listen(path, addr string) bool {
	if !p.required(path, addr) {
		return false
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		p.add(path, "%q: want host:port, such as 127.0.0.1:8080", addr)
		return false
	}
	return true
}

// ephemeral reports whether addr asks for any free port.
func ephemeral(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// urlRule says which schemes a URL field accepts.
type urlRule int

const (
	anyHTTP      urlRule = iota // http:// or https://
	httpsOrLocal                // https://, or http:// on a loopback host
	baseURL                     // http:// or https://, without query or fragment
)

// url checks an absolute http(s) URL. URLs are not quoted in messages:
// they may carry credentials.
func (p *problems) url(path, s string, rule urlRule) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		if rule == httpsOrLocal {
			p.add(path, "want an https:// URL (http:// only on 127.0.0.1 or localhost)")
		} else {
			p.add(path, "want an http:// or https:// URL with a host")
		}
		return
	}
	switch {
	case rule == httpsOrLocal && u.Scheme == "http" && !loopback(u.Hostname()):
		p.add(path, "http:// is allowed only on 127.0.0.1 or localhost; want https://")
	case rule == baseURL && (u.RawQuery != "" || u.Fragment != ""):
		p.add(path, "must not have a query or fragment: API paths are appended to it")
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// limits checks a rate map: known API names (of names; "" for ecpay's),
// positive finite rates.
func (p *problems) limits(path string, m map[string]float64, kind string, names []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(names, k) {
			p.add(join(path, k), "unknown %sAPI; want one of %s", kind, strings.Join(names, ", "))
			continue
		}
		p.positive(join(path, k), m[k])
	}
}

// appDefaults checks douyin.app_defaults: keyed by API, and never an app's
// identity (each app names its own app_id; the key already is the API).
func (p *problems) appDefaults(path string, d AppDefaults) {
	for _, api := range slices.Sorted(maps.Keys(d)) {
		ap := join(path, api)
		if api != APIEcpay && api != APITrade {
			p.add(ap, "unknown API %q: the keys are %s and %s", api, APIEcpay, APITrade)
			continue
		}
		if d[api].AppID != "" {
			p.add(ap+".app_id", "set per app, in douyin.apps; remove it here")
		}
		if d[api].API != "" && d[api].API != api {
			p.add(ap+".api", "%q under %s: the key names the API; remove it here", d[api].API, api)
		}
	}
}
