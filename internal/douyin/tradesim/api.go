package tradesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/payd/payd/internal/douyin/trade"
)

// apiErr is a refusal: err_no, message and the HTTP status it comes with.
type apiErr struct {
	errNo  int
	msg    string
	status int
}

func refuse(errNo int, format string, args ...any) *apiErr {
	return &apiErr{errNo: errNo, msg: fmt.Sprintf(format, args...), status: http.StatusOK}
}

func paramErr(format string, args ...any) *apiErr {
	return refuse(trade.ErrNoParam, "parameter error: "+format, args...)
}

// handler is one trade endpoint's action, run under s.mu with the app the
// token belongs to. It returns the answer's data (nil for none).
type handler func(a *App, body []byte, now time.Time) (any, *apiErr)

// fault is what the simulator does after a write took effect.
type fault int

const (
	noFault fault = iota
	fault13000
	fault23000
	fault5xx
	faultHang
)

func (s *Server) rollFaultLocked() fault {
	f := s.faults
	switch {
	case s.rollLocked(f.Err13000AfterEffect):
		return fault13000
	case s.rollLocked(f.Err23000AfterEffect):
		return fault23000
	case s.rollLocked(f.HTTP5xxAfterEffect):
		return fault5xx
	case s.rollLocked(f.HangAfterEffect):
		return faultHang
	}
	return noFault
}

// serveTrade checks, in order: POST, token (28001003/28001008), the rate
// (12001), then runs h; writes then get the rolled fault after their effect.
func (s *Server) serveTrade(api trade.API, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return
		}
		s.mu.Lock()
		now := s.nowLocked()
		s.progressLocked(now)
		a, errNo := s.tokenAppLocked(r.Header.Get("access-token"), now)
		s.mu.Unlock()
		if a == nil {
			writeEnvelope(w, &apiErr{errNo: errNo, msg: "access_token invalid or expired", status: http.StatusOK}, nil, api)
			return
		}
		if !s.allow(a.AppID, string(api)) {
			writeEnvelope(w, refuse(trade.ErrNoTooFrequent, "request too frequent"), nil, api)
			return
		}
		s.mu.Lock()
		data, aerr := h(a, body, now)
		f := noFault
		if aerr == nil && api.Write() {
			f = s.rollFaultLocked()
		}
		s.mu.Unlock()
		s.answerWithFault(w, r, f, aerr, data, api)
	}
}

func (s *Server) answerWithFault(w http.ResponseWriter, r *http.Request, f fault, aerr *apiErr, data any, api trade.API) {
	switch f {
	case fault13000:
		writeEnvelope(w, refuse(trade.ErrNoInternal, "internal error"), nil, api)
	case fault23000:
		writeEnvelope(w, &apiErr{errNo: trade.ErrNoSystem, msg: "system error, retry with the same params", status: http.StatusBadRequest}, nil, api)
	case fault5xx:
		http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
	case faultHang:
		select {
		case <-time.After(s.cfg.Hang):
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
		writeEnvelope(w, nil, data, api)
	default:
		writeEnvelope(w, aerr, data, api)
	}
}

func writeEnvelope(w http.ResponseWriter, aerr *apiErr, data any, api trade.API) {
	env := map[string]any{"err_no": 0, "err_msg": "success", "log_id": fmt.Sprintf("SIM%d", time.Now().UnixNano())}
	status := http.StatusOK
	if aerr != nil {
		env["err_no"], env["err_msg"], status = aerr.errNo, aerr.msg, aerr.status
	} else if data != nil {
		env["data"] = data
	}
	writeJSON(w, status, env)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeStrict decodes body into v refusing unknown fields and wrong
// types, and checks that every required field is present and not null:
// each failure is 10000 naming the field.
func decodeStrict(body []byte, v any, required ...string) *apiErr {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return paramErr("body: not a JSON object")
	}
	for _, k := range required {
		if raw, ok := keys[k]; !ok || string(raw) == "null" {
			return paramErr("%s: required", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return paramErr("%s: want %s", te.Field, te.Type)
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return paramErr("%s: unknown field", strings.Trim(name, `"`))
		}
		return paramErr("body: %v", err)
	}
	return nil
}

// exactlyOne checks that exactly one of the named values is set.
func exactlyOne(names []string, values ...string) *apiErr {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return paramErr("exactly one of %s", strings.Join(names, ", "))
	}
	return nil
}
