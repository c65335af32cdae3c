package douyinsim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/payd/payd/internal/douyin"
)

// TestServer_CheckCatchesDoubleRefund is the careless client: its refund
// gets 1000 (it did take effect), and instead of querying it resends under a
// new number. Both refunds succeed and Check says so.
func TestServer_CheckCatchesDoubleRefund(t *testing.T) {
	cfg := testConfig()
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})

	b.sim.SetFaults(Faults{Err1000AfterEffect: 1})
	_, err := b.refund("o1", "o1-r1-1", 300)
	if douyin.Classify(err) != douyin.ClassUnknown {
		t.Fatalf("first attempt: %v, want an unknown outcome", err)
	}
	b.sim.SetFaults(Faults{})
	if _, err := b.refund("o1", "o1-r1-2", 300); err != nil { // careless: a new number
		t.Fatalf("second attempt: %v", err)
	}
	b.sim.Advance(cfg.ProcessingDelay)

	v := b.sim.Check()
	if len(v) != 1 || !strings.Contains(v[0], "o1-r1") || !strings.Contains(v[0], "o1-r1-1") || !strings.Contains(v[0], "o1-r1-2") {
		t.Fatalf("Check = %q, want one violation naming both attempts of o1-r1", v)
	}
	if l := b.ledgerOrder(t, "o1"); l.RefundedAmount != 600 {
		t.Errorf("refunded %d, want the doubled 600", l.RefundedAmount)
	}
}

// TestServer_CheckPassesCarefulClient is the same outcome handled as payd
// must: query first, and resend only the same number.
func TestServer_CheckPassesCarefulClient(t *testing.T) {
	cfg := testConfig()
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	ctx := context.Background()

	b.sim.SetFaults(Faults{Err1000AfterEffect: 1})
	_, err := b.refund("o1", "o1-r1-1", 300)
	b.sim.SetFaults(Faults{})
	if douyin.Classify(err) != douyin.ClassUnknown {
		t.Fatalf("first attempt: %v", err)
	}
	if _, err := b.client.QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: "o1-r1-1"}); err != nil {
		t.Fatalf("query: %v", err)
	}
	// A refund whose attempt failed may be retried under a new attempt number.
	b.sim.SetFaults(Faults{RefundChannelFail: 1})
	if _, err := b.refund("o1", "o1-r2-1", 100); err != nil {
		t.Fatal(err)
	}
	b.sim.SetFaults(Faults{})
	b.sim.Advance(cfg.ProcessingDelay)
	if _, err := b.refund("o1", "o1-r2-2", 100); err != nil {
		t.Fatal(err)
	}
	b.sim.Advance(cfg.ProcessingDelay)
	wantNoViolations(t, b.sim)
	if l := b.ledgerOrder(t, "o1"); l.RefundedAmount != 400 {
		t.Errorf("refunded %d, want 400", l.RefundedAmount)
	}
}

// TestServer_CheckRules corrupts the simulator's own state to show each
// invariant is checked (the simulator never breaks them by itself).
func TestServer_CheckRules(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(s *Server, o *order)
		want    string
	}{
		{"a number executed twice", func(s *Server, o *order) { o.refunds[0].executions = 2 }, "executed 2 times"},
		{"refunded beyond the total", func(s *Server, o *order) { o.refunds[0].amount = 1001 }, "refunded 1001 of a total of 1000"},
		{"refunds, settlement and cps beyond the total", func(s *Server, o *order) {
			o.settlements[0].amount = 900
		}, "paid out"},
		{"settled before the period", func(s *Server, o *order) { o.paidAt = o.settlements[0].acceptedAt }, "before the settle period"},
		{"settled while unpaid", func(s *Server, o *order) { o.status = douyin.StatusFail }, "while the order is FAIL"},
		{"negative balance", func(s *Server, o *order) { s.balance[testApp] = -1 }, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Start = testStart.Add(10 * 24 * time.Hour)
			b := setup(t, cfg)
			b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000, CPSShare: 100, PaidAt: testStart})
			if _, err := b.refund("o1", "o1-r-1", 100); err != nil {
				t.Fatal(err)
			}
			b.sim.Advance(cfg.ProcessingDelay)
			if _, err := b.settle("o1", "o1-s-1"); err != nil {
				t.Fatal(err)
			}
			b.sim.Advance(cfg.ProcessingDelay)
			wantNoViolations(t, b.sim)
			b.sim.mu.Lock()
			tc.corrupt(b.sim, b.sim.orders[numKey{testApp, "o1"}])
			b.sim.mu.Unlock()
			v := b.sim.Check()
			if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tc.want) {
				t.Fatalf("Check = %q, want a violation with %q", v, tc.want)
			}
		})
	}
}

func TestAttemptBase(t *testing.T) {
	tests := map[string]string{
		"o1-r1-1":  "o1-r1",
		"o1-r1-12": "o1-r1",
		"refund-1": "refund",
		"plain":    "plain",
		"-1":       "-1",
		"a-b":      "a-b",
		"a-1x":     "a-1x",
	}
	for in, want := range tests {
		if got := attemptBase(in); got != want {
			t.Errorf("attemptBase(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServer_Concurrent hammers one order from several goroutines: the
// refunds accepted never exceed the order, whatever the interleaving.
func TestServer_Concurrent(t *testing.T) {
	cfg := testConfig()
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	const workers, each, amount = 8, 6, 30 // 48 refunds of 30: only 33 fit
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := b.refund("o1", fmt.Sprintf("o1-w%dn%d-1", w, i), amount)
				switch douyin.ErrNo(err) {
				case -1:
					if err != nil {
						t.Errorf("refund: %v", err)
						return
					}
					mu.Lock()
					accepted++
					mu.Unlock()
				case douyin.ErrNoBadParam:
				default:
					t.Errorf("refund: %v", err)
				}
				_ = b.sim.Ledger()
				_ = b.sim.Stats()
				if i%2 == 0 {
					b.sim.Advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	if accepted != 1000/amount {
		t.Fatalf("%d refunds accepted, want %d", accepted, 1000/amount)
	}
	b.sim.Advance(cfg.ProcessingDelay)
	if l := b.ledgerOrder(t, "o1"); l.RefundedAmount != int64(accepted*amount) {
		t.Errorf("refunded %d, want %d", l.RefundedAmount, accepted*amount)
	}
	wantNoViolations(t, b.sim)
}

func TestServer_Logging(t *testing.T) {
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel) // calls log at debug
	cfg := testConfig()
	cfg.Logger = logrus.NewEntry(logger)
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	if _, err := b.refund("o1", "o1-r-1", 10); err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, b.url, time.Second, douyin.App{AppID: testApp, Salt: "wrong-salt"})
	_, _ = bad.QueryOrder(context.Background(), douyin.QueryOrderRequest{OutOrderNo: "o1"})

	entries := hook.AllEntries()
	if len(entries) != 2 {
		t.Fatalf("%d log entries, want one per call", len(entries))
	}
	e := entries[0]
	if e.Level != logrus.DebugLevel || e.Data["api"] != "create_refund" || e.Data["app"] != testApp ||
		e.Data["no"] != "o1-r-1" || e.Data["err_no"] != 0 {
		t.Errorf("entry %v %v", e.Message, e.Data)
	}
	if entries[1].Data["err_no"] != douyin.ErrNoBadSignature {
		t.Errorf("entry %v, want err_no 2008", entries[1].Data)
	}
	for _, e := range entries {
		line, _ := e.String()
		for _, secret := range []string{testSalt, testToken, "wrong-salt"} {
			if strings.Contains(line, secret) {
				t.Errorf("log line %q contains a secret", line)
			}
		}
	}
}

func TestNew_Config(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no apps", Config{}, "apps"},
		{"no salt", Config{Apps: []App{{AppID: "a"}}}, "apps[0].salt"},
		{"no app id", Config{Apps: []App{{Salt: "s"}}}, "apps[0].app_id"},
		{"duplicate app", Config{Apps: []App{{AppID: "a", Salt: "s"}, {AppID: "a", Salt: "t"}}}, "apps[1].app_id"},
		{"bad fault", Config{Apps: []App{{AppID: "a", Salt: "s"}}, Faults: Faults{CallbackDrop: -0.1}}, "callback_drop"},
		{"bad notify url", Config{Apps: []App{{AppID: "a", Salt: "s"}}, NotifyURL: "ftp://x"}, "notify_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v does not name %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "\"s\"") {
				t.Errorf("err %v shows a salt", err)
			}
		})
	}
	s, err := New(Config{Apps: []App{{AppID: "a", Salt: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.cfg.SettlePeriod != DefaultSettlePeriod || s.cfg.ProcessingDelay != DefaultProcessingDelay || s.cfg.CallbackScale != 1 {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	if d := time.Until(s.Now()); d < -time.Minute || d > time.Minute {
		t.Errorf("zero Start gives %v, want about the wall clock", s.Now())
	}
	if got := fmt.Sprintf("%v %#v", App{AppID: "a", Salt: "s3cr3t", Token: "t0k3n"}, App{AppID: "a", Salt: "s3cr3t"}); strings.Contains(got, "s3cr3t") || strings.Contains(got, "t0k3n") {
		t.Errorf("App prints its secrets: %s", got)
	}
}

// BenchmarkServer_CreateAndQueryRefund measures a refund and its query
// through the real client, from parallel goroutines.
func BenchmarkServer_CreateAndQueryRefund(b *testing.B) {
	cfg := testConfig()
	sim, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	limits := map[douyin.API]float64{}
	for _, api := range douyin.APIs {
		limits[api] = 1e9
	}
	client, err := douyin.New(douyin.Options{BaseURL: url, Apps: []douyin.App{{AppID: testApp, Salt: testSalt}}, Limits: limits, Burst: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	orders := make([]SeedOrder, 0, b.N)
	for i := range b.N {
		orders = append(orders, SeedOrder{AppID: testApp, OutOrderNo: fmt.Sprintf("b%d", i), TotalAmount: 1000})
	}
	if err := sim.SeedOrders(orders); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			no := fmt.Sprintf("b%d", next.Add(1)-1)
			if _, err := client.CreateRefund(ctx, douyin.CreateRefundRequest{OutOrderNo: no, OutRefundNo: no + "-r-1", Reason: "x", RefundAmount: 10}); err != nil {
				b.Error(err)
				return
			}
			if _, err := client.QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: no + "-r-1"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
