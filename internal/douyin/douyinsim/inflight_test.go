package douyinsim

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

// TestServer_CallbacksOfEachAppInFlight queues more callbacks for each of
// two apps than one app may have in flight, to a receiver that holds every
// request until told: each app gets its own maxInFlightCallbacks at once
// (a bound shared by the apps would hold the second app's back), never
// more, and every callback arrives once the receiver answers.
func TestServer_CallbacksOfEachAppInFlight(t *testing.T) {
	var mu sync.Mutex
	now, peak, total := map[string]int{}, map[string]int{}, 0
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app := r.URL.Query().Get("app")
		mu.Lock()
		now[app]++
		peak[app] = max(peak[app], now[app])
		mu.Unlock()
		<-release
		mu.Lock()
		now[app]--
		total++
		mu.Unlock()
		_, _ = w.Write([]byte(`{"err_no":0,"err_tips":"success"}`))
	}))
	defer recv.Close()
	defer open() // before Close, which waits for the held requests
	b := setup(t, testConfig())
	s := b.sim
	const each = maxInFlightCallbacks + 4
	s.mu.Lock()
	for _, app := range []string{testApp, otherApp} {
		for i := range each {
			s.enqueueCallbackLocked(douyin.CallbackSettle, app, "s"+strconv.Itoa(i), recv.URL+"?app="+app, s.Now(), map[string]string{"n": strconv.Itoa(i)})
		}
	}
	s.mu.Unlock()
	inFlight := func() (a, o int) {
		mu.Lock()
		defer mu.Unlock()
		return now[testApp], now[otherApp]
	}
	waitUntil(t, 5*time.Second, "both apps' callbacks in flight at once", func() bool {
		a, o := inFlight()
		return a == maxInFlightCallbacks && o == maxInFlightCallbacks
	})
	time.Sleep(3 * tickEvery) // a tick that broke the bound would show now
	open()
	waitUntil(t, 5*time.Second, "every callback acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total == 2*each
	})
	mu.Lock()
	defer mu.Unlock()
	for app, p := range peak {
		if p > maxInFlightCallbacks {
			t.Errorf("app %s had %d callbacks in flight, more than %d", app, p, maxInFlightCallbacks)
		}
	}
}
