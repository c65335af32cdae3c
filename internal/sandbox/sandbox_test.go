package sandbox

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/config"
	"github.com/payd/payd/internal/douyin/tradesim"
)

// lines hands each Write (Serve writes a line at a time) to the test.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// TestServe_TradeAppsOnly: a config whose apps are all trade apps gets the
// trade simulator alone (the ecpay simulator refuses to start without an
// app, which made payd sandbox fail for such a merchant).
func TestServe_TradeAppsOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(lines, 16)
	done := make(chan error, 1)
	log := logrus.New()
	log.SetOutput(io.Discard)
	tr := Trade{Apps: []tradesim.App{{AppID: "tt-only-trade", Secret: "only-trade-secret"}}}
	go func() {
		done <- Serve(ctx, out, config.Sandbox{Listen: "127.0.0.1:0"}, nil, tr, logrus.NewEntry(log))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	var url string
	for timeout := time.After(10 * time.Second); url == ""; {
		select {
		case err := <-done:
			done <- nil
			t.Fatalf("Serve ended: %v", err)
		case <-timeout:
			t.Fatal("no trade simulator after 10s")
		case line := <-out:
			if strings.HasPrefix(line, "douyin simulator on") {
				t.Fatalf("an ecpay simulator without apps: %q", line)
			}
			if rest, ok := strings.CutPrefix(line, "trade simulator on "); ok {
				url, _, _ = strings.Cut(rest, " ")
			}
		}
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
