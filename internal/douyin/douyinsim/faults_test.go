package douyinsim

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

func TestServer_RequestFaults(t *testing.T) {
	tests := []struct {
		name       string
		faults     Faults
		wantClass  douyin.Class
		wantErrNo  int // -1: no JSON answer
		wantStatus int // HTTP status of a TransportError, 0 when none
		effect     bool
	}{
		{"1000 without effect", Faults{Err1000NoEffect: 1}, douyin.ClassUnknown, douyin.ErrNoInternal, 0, false},
		{"1000 after the effect", Faults{Err1000AfterEffect: 1}, douyin.ClassUnknown, douyin.ErrNoInternal, 0, true},
		{"HTTP 500 without effect", Faults{HTTP500: 1}, douyin.ClassUnknown, -1, 500, false},
		{"HTTP 500 after the effect", Faults{HTTP500AfterEffect: 1}, douyin.ClassUnknown, -1, 500, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, testConfig())
			b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
			b.sim.SetFaults(tc.faults)
			_, err := b.refund("o1", "o1-r-1", 100)
			if got := douyin.Classify(err); got != tc.wantClass {
				t.Fatalf("class %v (err %v), want %v", got, err, tc.wantClass)
			}
			if got := douyin.ErrNo(err); got != tc.wantErrNo {
				t.Fatalf("err_no %d (err %v), want %d", got, err, tc.wantErrNo)
			}
			var te *douyin.TransportError
			if tc.wantStatus != 0 && (!errors.As(err, &te) || te.Status != tc.wantStatus) {
				t.Fatalf("err %v, want HTTP %d", err, tc.wantStatus)
			}
			b.sim.SetFaults(Faults{})
			_, qerr := b.client.QueryRefund(context.Background(), douyin.QueryRefundRequest{OutRefundNo: "o1-r-1"})
			if tc.effect {
				if qerr != nil {
					t.Fatalf("the effect was not applied: query %v", qerr)
				}
			} else {
				wantErrNo(t, qerr, douyin.ErrNoRefundNotFound)
				// Not remembered: the same number works afterwards.
				if _, err := b.refund("o1", "o1-r-1", 100); err != nil {
					t.Fatalf("resend after a fault without effect: %v", err)
				}
			}
			st := b.sim.Stats()
			if tc.wantStatus == 500 && st.HTTP500s != 1 {
				t.Errorf("stats http500s %d, want 1", st.HTTP500s)
			}
			if tc.wantErrNo == douyin.ErrNoInternal && st.ByAPI[douyin.APICreateRefund][douyin.ErrNoInternal] != 1 {
				t.Errorf("stats calls %v, want one 1000", st.ByAPI)
			}
			b.sim.Advance(time.Hour)
			if n := len(b.ledgerOrder(t, "o1").Refunds); n != 1 {
				t.Errorf("%d refunds in the ledger, want 1", n)
			}
			wantNoViolations(t, b.sim)
		})
	}
}

func TestServer_HangAfterEffect(t *testing.T) {
	cfg := testConfig()
	cfg.Faults = Faults{HangAfterEffect: 1, Hang: 20 * time.Second}
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	impatient := newClient(t, b.url, 200*time.Millisecond, douyin.App{AppID: testApp, Salt: testSalt})

	start := time.Now()
	_, err := impatient.CreateRefund(context.Background(), douyin.CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: "o1-r-1",
		Reason: "x", RefundAmount: 100})
	var te *douyin.TransportError
	if !errors.As(err, &te) || douyin.Classify(err) != douyin.ClassUnknown {
		t.Fatalf("err %v, want a timeout of class unknown", err)
	}
	b.sim.SetFaults(Faults{})
	if info := b.queryRefund(t, "o1-r-1"); info.RefundAmount != 100 {
		t.Fatalf("refundInfo %+v, want the refund applied", info)
	}
	// The hang ends when the client leaves, not after 20 s.
	waitUntil(t, 5*time.Second, "the hang to end", func() bool {
		return b.sim.Stats().ByAPI[douyin.APICreateRefund][0] == 1
	})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("hang lasted %s after the client gave up", d)
	}
	if h := b.sim.Stats().Hangs; h != 1 {
		t.Errorf("stats hangs %d, want 1", h)
	}
}

func TestServer_HangEndsOnClose(t *testing.T) {
	cfg := testConfig()
	cfg.Faults = Faults{HangAfterEffect: 1, Hang: time.Minute}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SeedOrder(SeedOrder{AppID: testApp, OutOrderNo: "o1", TotalAmount: 10}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, url, 30*time.Second, douyin.App{AppID: testApp, Salt: testSalt})
	done := make(chan error, 1)
	go func() {
		_, err := c.QueryOrder(context.Background(), douyin.QueryOrderRequest{OutOrderNo: "o1"})
		done <- err
	}()
	waitUntil(t, 5*time.Second, "the call to hang", func() bool { return sim.Stats().Hangs == 1 })
	closed := time.Now()
	if err := sim.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging call did not end after Close")
	}
	if d := time.Since(closed); d > 5*time.Second {
		t.Errorf("Close took %s with a hanging call", d)
	}
	if _, err := sim.Start("127.0.0.1:0"); err == nil {
		t.Error("Start after Close succeeded")
	}
	if err := sim.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestServer_FaultsAreSeeded checks that the same seed gives the same
// faults for the same calls, and another seed other ones.
func TestServer_FaultsAreSeeded(t *testing.T) {
	run := func(seed int64) string {
		cfg := testConfig()
		cfg.Seed = seed
		cfg.Faults = Faults{Err1000NoEffect: 0.5}
		b := setup(t, cfg)
		b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
		var out strings.Builder
		for range 40 {
			_, err := b.client.QueryOrder(context.Background(), douyin.QueryOrderRequest{OutOrderNo: "o1"})
			if douyin.ErrNo(err) == douyin.ErrNoInternal {
				out.WriteByte('x')
			} else if err == nil {
				out.WriteByte('.')
			} else {
				t.Fatalf("unexpected %v", err)
			}
		}
		return out.String()
	}
	a, again, other := run(7), run(7), run(8)
	if a != again {
		t.Fatalf("seed 7 gave %s then %s", a, again)
	}
	if a == other {
		t.Fatalf("seeds 7 and 8 both gave %s", a)
	}
	if !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Fatalf("probability 0.5 gave %s", a)
	}
}

func TestFaults_JSON(t *testing.T) {
	f := Faults{Err1000AfterEffect: 0.25, Hang: 3 * time.Second, CallbackDelayMax: 1500 * time.Millisecond, RefundChannelFail: 1}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"err1000_after_effect":0.25`, `"hang":"3s"`, `"callback_delay_max":"1.5s"`, `"refund_channel_fail":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, f)
	}
	for _, bad := range []string{`{"err1000_noeffect":1}`, `{"hang":"soon"}`, `{"http500":"1"}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s decoded without error", bad)
		}
	}
	if err := (Faults{HTTP500: 1.5}).Validate(); err == nil || !strings.Contains(err.Error(), "http500") {
		t.Errorf("Validate(1.5) = %v, want an error naming http500", err)
	}
}

// TestFaults_Fields: Probabilities and Durations list every field of
// Faults, each under its JSON and YAML key, so config validation, the
// sandbox's flags and the control API never miss one; Validate checks
// each of them.
func TestFaults_Fields(t *testing.T) {
	var f Faults
	keys := map[uintptr]string{}
	for _, p := range f.Probabilities() {
		keys[reflect.ValueOf(p.P).Pointer()] = p.Key
	}
	for _, d := range f.Durations() {
		keys[reflect.ValueOf(d.D).Pointer()] = d.Key
	}
	v := reflect.ValueOf(&f).Elem()
	for i := range v.NumField() {
		field := v.Type().Field(i)
		key, ok := keys[v.Field(i).Addr().Pointer()]
		if !ok {
			t.Errorf("Faults.%s is in neither Probabilities nor Durations", field.Name)
			continue
		}
		if field.Tag.Get("json") != key || field.Tag.Get("yaml") != key {
			t.Errorf("Faults.%s: key %q, tags json %q yaml %q", field.Name, key, field.Tag.Get("json"), field.Tag.Get("yaml"))
		}
	}
	if len(keys) != v.NumField() {
		t.Errorf("%d keys for %d fields", len(keys), v.NumField())
	}
	for i, p := range f.Probabilities() {
		bad := Faults{}
		*bad.Probabilities()[i].P = 1.01
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "faults."+p.Key+":") {
			t.Errorf("Validate with %s 1.01 = %v", p.Key, err)
		}
	}
	for i, d := range f.Durations() {
		bad := Faults{}
		*bad.Durations()[i].D = -time.Second
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "faults."+d.Key+":") {
			t.Errorf("Validate with %s -1s = %v", d.Key, err)
		}
	}
}
