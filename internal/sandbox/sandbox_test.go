package sandbox

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/tradesim"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe_TradeAppsOnly: a config whose apps are all trade apps gets the
// trade simulator alone (the ecpay simulator refuses to start without an
// app, which made payd sandbox fail for such a merchant).
func TestServe_TradeAppsOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	log := logrus.New()
	log.SetOutput(io.Discard)
	tr := Trade{Apps: []tradesim.App{{AppID: "tt-only-trade", Secret: "only-trade-secret"}}}
	go func() {
		done <- Serve(ctx, &out, config.Sandbox{Listen: "127.0.0.1:0"}, nil, tr, logrus.NewEntry(log))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; {
		select {
		case err := <-done:
			done <- nil
			t.Fatalf("Serve ended: %v", err)
		default:
		}
		if i := strings.Index(out.String(), "trade simulator on "); i >= 0 {
			url, _, _ = strings.Cut(out.String()[i+len("trade simulator on "):], " ")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trade simulator after 10s: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(out.String(), "douyin simulator on") {
		t.Fatalf("an ecpay simulator without apps: %q", out.String())
	}
	resp, err := http.Get(url + "/_sim/trade/clock")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/_sim/trade/clock: HTTP %d", resp.StatusCode)
	}
}
