package trade

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/payd/payd/internal/douyin"
	"github.com/sirupsen/logrus"
)

// TokenPath is the client_token endpoint, trailing slash included.
const TokenPath = "/oauth/client_token/"

// Token timing (facts file, "Credential"): refresh when less than
// RefreshBefore remains; re-read the shared row at least every ReRead.
const (
	RefreshBefore = 15 * time.Minute
	ReRead        = time.Minute
	// LimitWait is how long fetching stops after a 10020.
	LimitWait = 5 * time.Minute
)

// client_token error codes.
const (
	TokenErrParamMissing = 10002
	TokenErrUnknownKey   = 10003
	TokenErrBadSecret    = 10013
	TokenErrLimit        = 10020
)

// Token is an app's client_token and when it expires. String never shows
// the value.
type Token struct {
	Value     string
	ExpiresAt time.Time
}

// String renders the token without its value.
func (t Token) String() string {
	return fmt.Sprintf("client_token(expires %s)", t.ExpiresAt.Format(time.RFC3339))
}

// GoString renders the token without its value, also for %#v.
func (t Token) GoString() string { return t.String() }

// TokenStore is the database row every replica shares per app. Load returns
// the zero Token when there is none. Claim takes the refresh lease for
// holder until until, unless another holder's lease is live at now. Replace
// stores next and drops the lease only if the stored value is still old
// ("" for none): a refresher replaces only the token it read.
type TokenStore interface {
	Load(ctx context.Context, appID string) (Token, error)
	Claim(ctx context.Context, appID, holder string, now, until time.Time) (bool, error)
	Replace(ctx context.Context, appID, old string, next Token) (bool, error)
}

// Credential is an app's client_key and secret. ClientKey is the app id
// when empty.
type Credential struct {
	AppID     string
	ClientKey string
	Secret    string
}

// String renders the credential without its secret.
func (c Credential) String() string { return "app " + c.AppID }

// GoString renders the credential without its secret.
func (c Credential) GoString() string { return c.String() }

// TokenFetchError is a client_token answer with a non-zero error_code that
// is not a configuration error (those wrap ErrConfig): nothing was sent to
// a business API, so the call is retryable.
type TokenFetchError struct {
	AppID       string
	Code        int
	Description string
	Err         error
}

// Error implements error.
func (e *TokenFetchError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("fetch client_token for %s: %v", e.AppID, e.Err)
	}
	return fmt.Sprintf("fetch client_token for %s: error_code %d: %s", e.AppID, e.Code, e.Description)
}

// Unwrap returns the underlying error.
func (e *TokenFetchError) Unwrap() error { return e.Err }

// TokensOptions configure Tokens.
type TokensOptions struct {
	BaseURL string // where /oauth/client_token/ is
	Apps    []Credential
	Store   TokenStore
	// Holder names this process in the refresh lease; random when empty.
	Holder string
	// Lease bounds one refresh (30 s when zero); Poll is how often a
	// replica waiting for another's refresh re-reads (250 ms when zero).
	Lease, Poll time.Duration
	Now         func() time.Time
	HTTPClient  *http.Client
	Log         *logrus.Entry
}

// Tokens is the TokenSource over a shared TokenStore: one refresher at a
// time across replicas (the lease), and within the process (a lock per app).
type Tokens struct {
	opts TokensOptions
	http *http.Client
	apps map[string]*appToken
}

type appToken struct {
	cred         Credential
	mu           sync.Mutex
	cached       Token
	readAt       time.Time
	configErr    error
	blockedUntil time.Time
}

// NewTokens returns the token source, or an error naming a bad option.
func NewTokens(opts TokensOptions) (*Tokens, error) {
	if opts.Store == nil {
		return nil, errors.New("douyin trade tokens: store: required")
	}
	if !strings.HasPrefix(opts.BaseURL, "http://") && !strings.HasPrefix(opts.BaseURL, "https://") {
		return nil, fmt.Errorf("douyin trade tokens: base URL %q: want http:// or https://", opts.BaseURL)
	}
	t := &Tokens{opts: opts, http: opts.HTTPClient, apps: map[string]*appToken{}}
	for i, c := range opts.Apps {
		if c.AppID == "" || c.Secret == "" {
			return nil, fmt.Errorf("douyin trade tokens: apps[%d]: app_id and secret required", i)
		}
		t.apps[c.AppID] = &appToken{cred: c}
	}
	if t.http == nil {
		t.http = douyin.HTTPClient(nil, DefaultTimeout)
	}
	if t.opts.Holder == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		t.opts.Holder = hex.EncodeToString(b[:])
	}
	if t.opts.Lease <= 0 {
		t.opts.Lease = 30 * time.Second
	}
	if t.opts.Poll <= 0 {
		t.opts.Poll = 250 * time.Millisecond
	}
	if t.opts.Now == nil {
		t.opts.Now = time.Now
	}
	if t.opts.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		t.opts.Log = logrus.NewEntry(l)
	}
	return t, nil
}

var _ TokenSource = (*Tokens)(nil)

func (t *Tokens) app(appID string) (*appToken, error) {
	a := t.apps[appID]
	if a == nil {
		return nil, fmt.Errorf("%w: app %q has no trade credentials", ErrConfig, appID)
	}
	return a, nil
}

// Token returns the app's shared token, refreshing it when less than
// RefreshBefore remains.
func (t *Tokens) Token(ctx context.Context, appID string) (string, error) {
	a, err := t.app(appID)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.configErr != nil {
		return "", a.configErr
	}
	now := t.opts.Now()
	if a.cached.Value != "" && now.Sub(a.readAt) < ReRead && a.cached.ExpiresAt.Sub(now) >= RefreshBefore {
		return a.cached.Value, nil
	}
	tok, err := t.load(ctx, a)
	if err != nil {
		return "", err
	}
	if tok.Value != "" && tok.ExpiresAt.Sub(now) >= RefreshBefore {
		return tok.Value, nil
	}
	return t.refresh(ctx, a, tok)
}

// Refused re-reads the shared token after Douyin refused bad, and refreshes
// it when the shared one is still bad.
func (t *Tokens) Refused(ctx context.Context, appID, bad string) (string, error) {
	a, err := t.app(appID)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.configErr != nil {
		return "", a.configErr
	}
	tok, err := t.load(ctx, a)
	if err != nil {
		return "", err
	}
	if tok.Value != "" && tok.Value != bad && tok.ExpiresAt.After(t.opts.Now()) {
		return tok.Value, nil
	}
	return t.refresh(ctx, a, tok)
}

func (t *Tokens) load(ctx context.Context, a *appToken) (Token, error) {
	tok, err := t.opts.Store.Load(ctx, a.cred.AppID)
	if err != nil {
		return Token{}, fmt.Errorf("load client_token of %s: %w", a.cred.AppID, err)
	}
	a.cached, a.readAt = tok, t.opts.Now()
	return tok, nil
}

// refresh replaces old, as the one refresher of the installation: it takes
// the lease and fetches, or waits for the holder's new token. a.mu is held.
func (t *Tokens) refresh(ctx context.Context, a *appToken, old Token) (string, error) {
	deadline := t.opts.Now().Add(3 * t.opts.Lease)
	for {
		now := t.opts.Now()
		if now.Before(a.blockedUntil) {
			return "", ErrTokenLimited
		}
		claimed, err := t.opts.Store.Claim(ctx, a.cred.AppID, t.opts.Holder, now, now.Add(t.opts.Lease))
		if err != nil {
			return "", fmt.Errorf("claim client_token refresh of %s: %w", a.cred.AppID, err)
		}
		if claimed {
			// Another refresher may have finished between our read and
			// our claim: then use its token and hand the lease back.
			cur, err := t.load(ctx, a)
			if err != nil {
				return "", err
			}
			if cur.Value != old.Value && cur.ExpiresAt.After(t.opts.Now()) {
				if _, err := t.opts.Store.Replace(ctx, a.cred.AppID, cur.Value, cur); err != nil {
					return "", fmt.Errorf("release client_token lease of %s: %w", a.cred.AppID, err)
				}
				return cur.Value, nil
			}
			return t.fetchAndStore(ctx, a, cur)
		}
		if now.After(deadline) {
			return "", fmt.Errorf("refresh client_token of %s: another replica holds the refresh", a.cred.AppID)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(t.opts.Poll):
		}
		tok, err := t.load(ctx, a)
		if err != nil {
			return "", err
		}
		if tok.Value != old.Value && tok.ExpiresAt.After(t.opts.Now()) {
			return tok.Value, nil
		}
	}
}

func (t *Tokens) fetchAndStore(ctx context.Context, a *appToken, old Token) (string, error) {
	log := t.opts.Log.WithField("app", a.cred.AppID)
	tok, err := t.fetch(ctx, a.cred)
	if err != nil {
		// Hand the lease back at once: the other replicas need not wait
		// it out to learn the same answer.
		now := t.opts.Now()
		if _, lerr := t.opts.Store.Claim(ctx, a.cred.AppID, t.opts.Holder, now, now); lerr != nil {
			log.WithError(lerr).Warn("douyin trade: release the client_token lease")
		}
	}
	var fe *TokenFetchError
	switch {
	case errors.Is(err, ErrConfig):
		a.configErr = err
		log.WithError(err).Error("douyin trade: client_token refused the app's key or secret; payd stops asking for this app until it is reconfigured")
		return "", err
	case errors.As(err, &fe) && fe.Code == TokenErrLimit:
		a.blockedUntil = t.opts.Now().Add(LimitWait)
		log.Warn("douyin trade: client_token limit (10020) reached; not fetching for 5 minutes")
		return "", fmt.Errorf("%w: %v", ErrTokenLimited, err)
	case err != nil:
		return "", err
	}
	ok, err := t.opts.Store.Replace(ctx, a.cred.AppID, old.Value, tok)
	if err != nil {
		return "", fmt.Errorf("store client_token of %s: %w", a.cred.AppID, err)
	}
	if !ok {
		cur, err := t.load(ctx, a)
		if err != nil {
			return "", err
		}
		return cur.Value, nil
	}
	a.cached, a.readAt = tok, t.opts.Now()
	log.WithField("expires_at", tok.ExpiresAt).Info("douyin trade: refreshed client_token")
	return tok.Value, nil
}

// fetch asks Douyin for a new client_token.
func (t *Tokens) fetch(ctx context.Context, c Credential) (Token, error) {
	key := c.ClientKey
	if key == "" {
		key = c.AppID
	}
	body, _ := json.Marshal(map[string]string{"grant_type": "client_credential", "client_key": key, "client_secret": c.Secret})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.opts.BaseURL, "/")+TokenPath, bytes.NewReader(body))
	if err != nil {
		return Token{}, &TokenFetchError{AppID: c.AppID, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return Token{}, &TokenFetchError{AppID: c.AppID, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return Token{}, &TokenFetchError{AppID: c.AppID, Err: err}
	}
	var ans struct {
		Data struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   Int    `json:"expires_in"`
			ErrorCode   Int    `json:"error_code"`
			Description string `json:"description"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return Token{}, &TokenFetchError{AppID: c.AppID, Err: fmt.Errorf("http %d: %s: %w", resp.StatusCode, douyin.Snippet(raw), err)}
	}
	d := ans.Data
	switch {
	case d.ErrorCode == TokenErrBadSecret || d.ErrorCode == TokenErrUnknownKey || d.ErrorCode == TokenErrParamMissing:
		return Token{}, fmt.Errorf("%w: fetch client_token for %s: error_code %d: %s", ErrConfig, c.AppID, d.ErrorCode, d.Description)
	case d.ErrorCode != 0:
		return Token{}, &TokenFetchError{AppID: c.AppID, Code: int(d.ErrorCode), Description: d.Description}
	case d.AccessToken == "" || d.ExpiresIn <= 0:
		return Token{}, &TokenFetchError{AppID: c.AppID, Err: fmt.Errorf("http %d: no access_token or expires_in", resp.StatusCode)}
	}
	return Token{Value: d.AccessToken, ExpiresAt: t.opts.Now().Add(time.Duration(d.ExpiresIn) * time.Second).UTC()}, nil
}
