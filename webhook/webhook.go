// Package webhook verifies the events payd POSTs to a merchant's backend.
//
// Every delivery carries four headers: Payd-Event-Id, Payd-Event-Type,
// Payd-Timestamp (unix seconds) and Payd-Signature ("v1=" and the hex
// HMAC-SHA256, keyed with the endpoint's secret, of the timestamp, a dot and
// the raw body). A receiver checks the signature, rejects a timestamp further
// than a tolerance from its clock, and rejects an event id it has already
// accepted within that window, so a captured request cannot be replayed:
//
//	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//	ev, err := webhook.VerifyEvent(secret, r.Header, body, 5*time.Minute)
//	if err != nil { w.WriteHeader(webhook.StatusFor(err)); return }
//
// payd retries a delivery until it gets a 2xx answer, with the same event id
// each time, so a receiver sees an id again when its first answer was lost:
// VerifyEvent then returns ErrReplayed, for which StatusFor answers 200 (the
// event was already accepted). A receiver that fails to process an accepted
// event should call Forget(ev.ID) before answering non-2xx, so that payd's
// retry is accepted.
//
// VerifyEvent keeps the ids it has accepted in a bounded package-level cache
// shared by the whole process. A Verifier has its own cache and clock, for
// tests and for services that want isolation (one per endpoint secret, say).
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The headers of a delivery.
const (
	// HeaderID carries the event's id ("evt_…"), the same on every retry.
	HeaderID = "Payd-Event-Id"
	// HeaderType carries the event's type ("refund.succeeded", …).
	HeaderType = "Payd-Event-Type"
	// HeaderTimestamp carries the signing time in unix seconds.
	HeaderTimestamp = "Payd-Timestamp"
	// HeaderSignature carries "v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>";
	// several comma-separated values are accepted (secret rotation).
	HeaderSignature = "Payd-Signature"
)

// The errors VerifyEvent returns; test them with errors.Is.
var (
	// ErrMalformed: a header is missing or unparsable, or the body is not an
	// event matching the headers.
	ErrMalformed = errors.New("webhook: malformed event")
	// ErrBadSignature: no signature matches the body and timestamp under the
	// secret.
	ErrBadSignature = errors.New("webhook: bad signature")
	// ErrStale: the timestamp is further than the tolerance from now.
	ErrStale = errors.New("webhook: timestamp outside tolerance")
	// ErrReplayed: the event id was already accepted within the tolerance
	// window.
	ErrReplayed = errors.New("webhook: event already received")
)

// Event is a verified event.
type Event struct {
	// ID is stable across retries: use it to de-duplicate.
	ID string `json:"id"`
	// Seq is payd's outbox position: events of one order arrive in Seq order.
	Seq        int64     `json:"seq"`
	Type       string    `json:"type"`
	CreatedAt  time.Time `json:"created_at"`
	AppID      string    `json:"app_id"`
	OutOrderNo string    `json:"out_order_no"`
	// Data is the resource the event is about (amounts in fen).
	Data json.RawMessage `json:"data"`
}

// Sign returns the Payd-Signature value of body signed at ts with secret.
func Sign(secret string, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, ts.Unix(), body))
}

func mac(secret string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// StatusFor is the HTTP status a receiver answers for VerifyEvent's error:
// 200 for nil and for ErrReplayed (payd stops retrying what was already
// accepted), 400 otherwise.
func StatusFor(err error) int {
	if err == nil || errors.Is(err, ErrReplayed) {
		return http.StatusOK
	}
	return http.StatusBadRequest
}

// DefaultCapacity bounds the number of event ids a replay cache remembers.
const DefaultCapacity = 100000

// defaultVerifier holds the package-level replay cache of VerifyEvent.
var defaultVerifier = &Verifier{}

// VerifyEvent checks one delivery (its headers and raw body) against secret
// and returns the event: ErrMalformed, ErrBadSignature, ErrStale when the
// timestamp is more than tolerance from now, ErrReplayed when the id was
// already accepted. Accepted ids are remembered in a package-level cache of
// DefaultCapacity ids for tolerance past their timestamp.
func VerifyEvent(secret string, header http.Header, body []byte, tolerance time.Duration) (*Event, error) {
	return defaultVerifier.verify(secret, header, body, tolerance)
}

// Forget removes id from VerifyEvent's replay cache, so that payd's retry of
// an event the receiver failed to process is accepted.
func Forget(id string) { defaultVerifier.Forget(id) }

// Verifier verifies deliveries with its own replay cache. The zero value is
// not usable without Secret; set Tolerance (5m when zero), Now (time.Now
// when nil) and Capacity (DefaultCapacity when zero) as needed. It is safe
// for concurrent use.
type Verifier struct {
	Secret    string
	Tolerance time.Duration
	Now       func() time.Time
	Capacity  int

	mu    sync.Mutex
	seen  map[string]time.Time // id → when it may be forgotten
	queue []string             // ids in order of acceptance
}

// Verify is VerifyEvent with v's secret, tolerance, clock and cache.
func (v *Verifier) Verify(header http.Header, body []byte) (*Event, error) {
	tol := v.Tolerance
	if tol <= 0 {
		tol = 5 * time.Minute
	}
	return v.verify(v.Secret, header, body, tol)
}

// Forget removes id from v's replay cache.
func (v *Verifier) Forget(id string) {
	v.mu.Lock()
	delete(v.seen, id)
	v.mu.Unlock()
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) verify(secret string, header http.Header, body []byte, tolerance time.Duration) (*Event, error) {
	id := header.Get(HeaderID)
	tsText := header.Get(HeaderTimestamp)
	sigs := header.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return nil, fmt.Errorf("%w: missing %s, %s or %s header", ErrMalformed, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not unix seconds", ErrMalformed, HeaderTimestamp)
	}
	if secret == "" {
		return nil, fmt.Errorf("%w: no secret to verify with", ErrBadSignature)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range strings.Split(sigs, ",") {
		hexSig, found := strings.CutPrefix(strings.TrimSpace(s), "v1=")
		if !found {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return nil, ErrBadSignature
	}
	now := v.now()
	signed := time.Unix(ts, 0)
	if d := now.Sub(signed); d > tolerance || d < -tolerance {
		return nil, fmt.Errorf("%w: signed at %s, now %s", ErrStale, signed.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	if ev.ID != id {
		return nil, fmt.Errorf("%w: body id %q differs from %s %q", ErrMalformed, ev.ID, HeaderID, id)
	}
	if err := v.remember(id, signed.Add(tolerance), now); err != nil {
		return nil, err
	}
	return &ev, nil
}

// remember records id as accepted until forgetAt; ErrReplayed when it is
// already there. Expired ids are dropped from the front of the queue; when
// the cache is full the oldest id is dropped even if it has not expired.
func (v *Verifier) remember(id string, forgetAt, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = make(map[string]time.Time)
	}
	if until, ok := v.seen[id]; ok && now.Before(until) {
		return fmt.Errorf("%w: %s", ErrReplayed, id)
	}
	capacity := v.Capacity
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	for len(v.queue) > 0 {
		head := v.queue[0]
		until, ok := v.seen[head]
		if ok && now.Before(until) && len(v.seen) < capacity {
			break
		}
		if ok && (!now.Before(until) || len(v.seen) >= capacity) {
			delete(v.seen, head)
		}
		v.queue = v.queue[1:]
	}
	v.seen[id] = forgetAt
	v.queue = append(v.queue, id)
	return nil
}
