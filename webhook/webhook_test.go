package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

const secret = "0123456789abcdef-secret"

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// signed returns the headers and body of event id signed at ts.
func signed(id string, ts time.Time, key string) (http.Header, []byte) {
	body := []byte(`{"id":"` + id + `","seq":3,"type":"refund.succeeded","created_at":"2026-03-01T10:00:00Z","app_id":"app1","out_order_no":"o1","data":{"amount":300}}`)
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderType, "refund.succeeded")
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(key, ts, body))
	return h, body
}

func newVerifier(now *time.Time) *Verifier {
	return &Verifier{Secret: secret, Tolerance: 5 * time.Minute, Now: func() time.Time { return *now }}
}

func TestVerifier_Accepts(t *testing.T) {
	now := t0
	v := newVerifier(&now)
	h, body := signed("evt_1", t0.Add(-time.Minute), secret)
	ev, err := v.Verify(h, body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "evt_1" || ev.Seq != 3 || ev.Type != "refund.succeeded" || ev.OutOrderNo != "o1" || string(ev.Data) != `{"amount":300}` || !ev.CreatedAt.Equal(t0) {
		t.Fatalf("event %+v", ev)
	}
}

func TestVerifier_Rejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h http.Header, body []byte) []byte
		want   error
	}{
		{"wrong secret", func(h http.Header, body []byte) []byte {
			h.Set(HeaderSignature, Sign("another-secret-0123456", t0, body))
			return body
		}, ErrBadSignature},
		{"body changed", func(h http.Header, body []byte) []byte {
			return []byte(string(body[:len(body)-2]) + "9}}")
		}, ErrBadSignature},
		{"timestamp changed", func(h http.Header, body []byte) []byte {
			h.Set(HeaderTimestamp, strconv.FormatInt(t0.Unix()+1, 10))
			return body
		}, ErrBadSignature},
		{"not hex", func(h http.Header, body []byte) []byte { h.Set(HeaderSignature, "v1=zz"); return body }, ErrBadSignature},
		{"unknown scheme", func(h http.Header, body []byte) []byte {
			h.Set(HeaderSignature, "v0="+h.Get(HeaderSignature)[3:])
			return body
		}, ErrBadSignature},
		{"no signature", func(h http.Header, body []byte) []byte { h.Del(HeaderSignature); return body }, ErrMalformed},
		{"no id", func(h http.Header, body []byte) []byte { h.Del(HeaderID); return body }, ErrMalformed},
		{"bad timestamp", func(h http.Header, body []byte) []byte { h.Set(HeaderTimestamp, "yesterday"); return body }, ErrMalformed},
		{"id differs from body", func(h http.Header, body []byte) []byte { h.Set(HeaderID, "evt_other"); return body }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			v := newVerifier(&now)
			h, body := signed("evt_1", t0, secret)
			body = tt.mutate(h, body)
			if _, err := v.Verify(h, body); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifier_Stale(t *testing.T) {
	for _, skew := range []time.Duration{-5*time.Minute - time.Second, 5*time.Minute + time.Second} {
		now := t0.Add(skew)
		v := newVerifier(&now)
		h, body := signed("evt_1", t0, secret)
		if _, err := v.Verify(h, body); !errors.Is(err, ErrStale) {
			t.Fatalf("clock %s from the signature: error %v, want ErrStale", skew, err)
		}
	}
	now := t0.Add(5 * time.Minute)
	if _, err := newVerifier(&now).Verify(signed("evt_1", t0, secret)); err != nil {
		t.Fatalf("at the tolerance: %v", err)
	}
}

func TestVerifier_Replayed(t *testing.T) {
	now := t0
	v := newVerifier(&now)
	h, body := signed("evt_1", t0, secret)
	if _, err := v.Verify(h, body); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	_, err := v.Verify(h, body)
	if !errors.Is(err, ErrReplayed) || StatusFor(err) != http.StatusOK {
		t.Fatalf("replay: %v (status %d), want ErrReplayed answered 200", err, StatusFor(err))
	}
	// payd's retry signs again with a new timestamp: still the same id.
	if _, err := v.Verify(signed("evt_1", now, secret)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("re-signed retry: %v, want ErrReplayed", err)
	}
	// A forged request does not poison the cache.
	fh, fbody := signed("evt_2", now, "not-the-secret-at-all")
	if _, err := v.Verify(fh, fbody); !errors.Is(err, ErrBadSignature) || StatusFor(err) != http.StatusBadRequest {
		t.Fatalf("forged: %v", err)
	}
	if _, err := v.Verify(signed("evt_2", now, secret)); err != nil {
		t.Fatalf("genuine after forged: %v", err)
	}
	// Forget lets a retry in after the receiver failed to process it.
	v.Forget("evt_1")
	if _, err := v.Verify(signed("evt_1", now, secret)); err != nil {
		t.Fatalf("after Forget: %v", err)
	}
}

func TestVerifier_CapacityBounded(t *testing.T) {
	now := t0
	v := newVerifier(&now)
	v.Capacity = 3
	for i := range 10 {
		if _, err := v.Verify(signed("evt_"+strconv.Itoa(i), now, secret)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.seen); n > 3 {
		t.Fatalf("cache holds %d ids, want at most 3", n)
	}
	if _, err := v.Verify(signed("evt_9", now, secret)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("newest id: %v, want ErrReplayed", err)
	}
	// Expired ids are dropped.
	now = now.Add(time.Hour)
	if _, err := v.Verify(signed("evt_new", now, secret)); err != nil {
		t.Fatal(err)
	}
	if n := len(v.seen); n != 1 {
		t.Fatalf("cache holds %d ids after expiry, want 1", n)
	}
}

func TestVerifyEvent(t *testing.T) {
	id := "evt_pkg_" + strconv.FormatInt(time.Now().UnixNano(), 10)
	h, body := signed(id, time.Now(), secret)
	if _, err := VerifyEvent(secret, h, body, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEvent(secret, h, body, time.Minute); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second time: %v, want ErrReplayed", err)
	}
	Forget(id)
	if _, err := VerifyEvent(secret, h, body, time.Minute); err != nil {
		t.Fatalf("after Forget: %v", err)
	}
	if _, err := VerifyEvent("", h, body, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("empty secret: %v, want ErrBadSignature", err)
	}
	old, obody := signed(id+"-old", time.Now().Add(-2*time.Minute), secret)
	if _, err := VerifyEvent(secret, old, obody, time.Minute); !errors.Is(err, ErrStale) {
		t.Fatalf("old: %v, want ErrStale", err)
	}
}
