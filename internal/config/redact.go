package config

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret in Redacted output.
const Mask = "***"

// Redacted returns a deep copy of c that is safe to print (payd config): app
// salts and tokens, the admin token and endpoint secrets are replaced by
// Mask, and passwords in the database DSN and in URLs are masked. A secret
// that is not set stays empty, so the printout shows that it is missing.
func (c *Config) Redacted() Config {
	r := c.clone()
	r.Database.DSN = RedactDSN(r.Database.DSN)
	r.Douyin.BaseURL = redactURL(r.Douyin.BaseURL)
	r.Douyin.Trade.BaseURL = redactURL(r.Douyin.Trade.BaseURL)
	for api, a := range r.Douyin.AppDefaults {
		r.Douyin.AppDefaults[api] = redactApp(a)
	}
	for i := range r.Douyin.Apps {
		r.Douyin.Apps[i] = redactApp(r.Douyin.Apps[i])
	}
	r.Server.AdminToken = mask(r.Server.AdminToken)
	r.Server.ViewerToken = mask(r.Server.ViewerToken)
	for i := range r.Events.Endpoints {
		e := &r.Events.Endpoints[i]
		e.Secret = mask(e.Secret)
		e.URL = redactURL(e.URL)
	}
	r.Sandbox.NotifyURL = redactURL(r.Sandbox.NotifyURL)
	return r
}

// redactApp masks an app's secrets.
func redactApp(a App) App {
	a.Salt = mask(a.Salt)
	a.Token = mask(a.Token)
	a.ClientSecret = mask(a.ClientSecret)
	a.PlatformPublicKey = mask(a.PlatformPublicKey)
	a.PrivateKey = mask(a.PrivateKey)
	a.NotifyURL = redactURL(a.NotifyURL)
	return a
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return Mask
}

// redactURL masks the password of a URL's user info; other text is
// returned as it is. A URL that does not parse (a bad port or escape) is
// masked from the colon after its user to its last "@": hiding too much
// of a broken URL is better than printing its password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return brokenUserInfo.ReplaceAllString(s, "${1}"+Mask+"@")
	}
	if u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	// url.UserPassword would percent-encode the mask; Redacted does not.
	return strings.Replace(u.Redacted(), ":xxxxx@", ":"+Mask+"@", 1)
}

// brokenUserInfo matches the user and password of a URL url.Parse refused.
var brokenUserInfo = regexp.MustCompile(`(://[^/:@\s]*:)\S*@`)

// dsnPassword matches a password in a key=value DSN
// ("host=db password='x y' dbname=payd") or a URL query ("?password=x").
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)

// RedactDSN masks the password of a PostgreSQL DSN, in URL or key=value
// form.
func RedactDSN(s string) string {
	return dsnPassword.ReplaceAllString(redactURL(s), "${1}"+Mask)
}
