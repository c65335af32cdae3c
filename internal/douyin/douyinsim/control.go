package douyinsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// maxControlBody bounds a control request (bulk seeding included).
const maxControlBody = 64 << 20

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+douyin.PathPrefix+"{api}", s.serveAPI)
	mux.HandleFunc("POST /_sim/orders", s.handleOrders)
	mux.HandleFunc("POST /_sim/pay", s.handlePay)
	mux.HandleFunc("GET /_sim/clock", s.handleClock)
	mux.HandleFunc("POST /_sim/clock", s.handleClock)
	mux.HandleFunc("GET /_sim/faults", s.handleFaults)
	mux.HandleFunc("POST /_sim/faults", s.handleFaults)
	mux.HandleFunc("POST /_sim/limits", s.handleLimits)
	mux.HandleFunc("GET /_sim/ledger", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Ledger()) })
	mux.HandleFunc("GET /_sim/check", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]string{"violations": s.Check()})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxControlBody {
		return nil, fmt.Errorf("read body: larger than %d bytes", maxControlBody)
	}
	return b, nil
}

// handleOrders seeds one order ({"out_order_no":...}) or many
// ({"orders":[...]}).
func (s *Server) handleOrders(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode orders: %w", err))
		return
	}
	var orders []SeedOrder
	if bulk, ok := probe["orders"]; ok {
		if len(probe) != 1 {
			writeError(w, http.StatusBadRequest, errors.New("decode orders: want only \"orders\" beside a list"))
			return
		}
		if err := json.Unmarshal(bulk, &orders); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("decode orders: %w", err))
			return
		}
	} else {
		var one SeedOrder
		if err := json.Unmarshal(b, &one); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		orders = []SeedOrder{one}
	}
	if err := s.SeedOrders(orders); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"seeded": len(orders)})
}

func (s *Server) handlePay(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID      string `json:"app_id"`
		OutOrderNo string `json:"out_order_no"`
	}
	if err := decodeStrict(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.Pay(req.AppID, req.OutOrderNo); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNotFound) {
			status = http.StatusNotFound
		}
		writeError(w, status, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"out_order_no": req.OutOrderNo, "status": douyin.StatusSuccess})
}

// handleClock reads the simulated time or, on POST {"advance":"169h"},
// moves it forward first.
func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			Advance string `json:"advance"`
		}
		if err := decodeStrict(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		d, err := time.ParseDuration(req.Advance)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("advance: want a non-negative Go duration such as \"169h\", got %q", req.Advance))
			return
		}
		s.Advance(d)
	}
	writeJSON(w, http.StatusOK, map[string]string{"now": s.Now().UTC().Format(time.RFC3339Nano)})
}

// handleFaults reads the faults or, on POST, replaces them.
func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		b, err := readBody(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		var f Faults
		if err := json.Unmarshal(b, &f); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if err := f.Validate(); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		s.SetFaults(f)
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

// handleLimits replaces the rate limits: {"query_order": 5, ...}.
func (s *Server) handleLimits(w http.ResponseWriter, r *http.Request) {
	var limits map[douyin.API]float64
	if err := decodeStrict(r, &limits); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	for api := range limits {
		if _, ok := endpoints[api]; !ok {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limits: unknown api %q", api))
			return
		}
	}
	s.SetLimits(limits)
	writeJSON(w, http.StatusOK, limits)
}

func decodeStrict(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if err := strictJSON(b, v); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}

// strictJSON decodes b into v, refusing keys v does not have, so a misspelt
// field is an error instead of silently ignored.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
