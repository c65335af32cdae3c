package tradesim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

// issued is one client_token.
type issued struct {
	Value     string
	ExpiresAt time.Time
}

// handleClientToken is POST /oauth/client_token/: a new token lives
// TokenTTL; it cuts the previous one to TokenGrace and kills every older
// one (only the newest two live); more than TokenLimit fetches in
// TokenWindow answer 10020.
func (s *Server) handleClientToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType    string `json:"grant_type"`
		ClientKey    string `json:"client_key"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.GrantType != "client_credential" || req.ClientKey == "" || req.ClientSecret == "" {
		tokenAnswer(w, trade.TokenErrParamMissing, "parameter missing", nil, 0)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[req.ClientKey]
	switch {
	case a == nil:
		tokenAnswer(w, trade.TokenErrUnknownKey, "client_key unknown", nil, 0)
		return
	case a.Secret != req.ClientSecret:
		tokenAnswer(w, trade.TokenErrBadSecret, "client_key or client_secret wrong", nil, 0)
		return
	}
	now := s.nowLocked()
	recent := s.fetches[a.AppID][:0]
	for _, t := range s.fetches[a.AppID] {
		if now.Sub(t) < TokenWindow {
			recent = append(recent, t)
		}
	}
	s.fetches[a.AppID] = recent
	if len(recent) >= s.cfg.TokenLimit {
		tokenAnswer(w, trade.TokenErrLimit, "too many client_token requests", nil, 0)
		return
	}
	s.fetches[a.AppID] = append(recent, now)
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := issued{Value: "clt." + hex.EncodeToString(b[:]), ExpiresAt: now.Add(s.cfg.TokenTTL)}
	live := s.tokens[a.AppID]
	if n := len(live); n > 0 {
		prev := live[n-1]
		if grace := now.Add(TokenGrace); prev.ExpiresAt.After(grace) {
			prev.ExpiresAt = grace
		}
		live = []issued{prev}
	}
	s.tokens[a.AppID] = append(live, tok)
	tokenAnswer(w, 0, "", &tok, s.cfg.TokenTTL)
}

func tokenAnswer(w http.ResponseWriter, code int, desc string, tok *issued, ttl time.Duration) {
	data := map[string]any{"error_code": code, "description": desc}
	msg := "error"
	if tok != nil {
		data["access_token"] = tok.Value
		data["expires_in"] = int64(ttl / time.Second)
		msg = "success"
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "message": msg})
}

// tokenApp returns the app a live token belongs to, or the err_no refusing
// it: 28001008 expired, 28001003 unknown or killed.
func (s *Server) tokenAppLocked(value string, now time.Time) (*App, int) {
	if value == "" {
		return nil, trade.ErrNoTokenInvalid
	}
	for app, toks := range s.tokens {
		for _, t := range toks {
			if t.Value != value {
				continue
			}
			if !now.Before(t.ExpiresAt) {
				return nil, trade.ErrNoTokenExpired
			}
			return s.apps[app], 0
		}
	}
	return nil, trade.ErrNoTokenInvalid
}
