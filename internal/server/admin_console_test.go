package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestNewAdminHandler_console(t *testing.T) {
	console := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := NewAdminHandler(AdminOptions{Token: "admin-token-0123456789", Console: console, Ready: func() error { return nil }})
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/", http.StatusTeapot},
		{"/attention", http.StatusTeapot},
		{"/v1/status", http.StatusUnauthorized}, // the API keeps its bearer token
		{"/healthz", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("GET %s: %d, want %d", tt.path, rec.Code, tt.want)
		}
	}
}
