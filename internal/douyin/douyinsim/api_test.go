package douyinsim

import (
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payd/payd/internal/douyin"
)

func TestServer_Authentication(t *testing.T) {
	b := setup(t, testConfig())
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	ctx := context.Background()

	t.Run("wrong salt answers 2008 and does nothing", func(t *testing.T) {
		c := newClient(t, b.url, time.Second, douyin.App{AppID: testApp, Salt: "not-the-salt"})
		_, err := c.CreateRefund(ctx, douyin.CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: "bad-sign-1", Reason: "x", RefundAmount: 10})
		wantErrNo(t, err, douyin.ErrNoBadSignature)
		if douyin.Classify(err) != douyin.ClassConfig {
			t.Errorf("class = %v, want config", douyin.Classify(err))
		}
		_, err = b.client.QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: "bad-sign-1"})
		wantErrNo(t, err, douyin.ErrNoRefundNotFound)
	})
	t.Run("unknown app answers 2042", func(t *testing.T) {
		c := newClient(t, b.url, time.Second, douyin.App{AppID: "tt-nobody", Salt: testSalt})
		_, err := c.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "o1"})
		wantErrNo(t, err, douyin.ErrNoBadAppID)
	})
	t.Run("another app's salt does not sign for this app", func(t *testing.T) {
		c := newClient(t, b.url, time.Second, douyin.App{AppID: testApp, Salt: "other-salt"})
		_, err := c.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "o1"})
		wantErrNo(t, err, douyin.ErrNoBadSignature)
	})
	t.Run("missing sign answers 2008", func(t *testing.T) {
		code, body := postJSON(t, b.url+douyin.APIQueryOrder.Path(), `{"app_id":"`+testApp+`","out_order_no":"o1"}`)
		if code != http.StatusOK || !strings.Contains(string(body), `"err_no":2008`) {
			t.Fatalf("answer %d %s, want 200 with err_no 2008", code, body)
		}
	})
	t.Run("orders are per app", func(t *testing.T) {
		c := newClient(t, b.url, time.Second, douyin.App{AppID: otherApp, Salt: "other-salt"})
		_, err := c.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "o1"})
		wantErrNo(t, err, douyin.ErrNoOrderNotFound)
	})
	t.Run("unknown endpoint is 404, GET is 405", func(t *testing.T) {
		code, _ := postJSON(t, b.url+douyin.PathPrefix+"nope", `{}`)
		if code != http.StatusNotFound {
			t.Errorf("unknown endpoint: status %d, want 404", code)
		}
		resp, err := http.Get(b.url + douyin.APIQueryOrder.Path())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: status %d, want 405", resp.StatusCode)
		}
	})
}

func TestServer_FieldValidation(t *testing.T) {
	b := setup(t, testConfig())
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	ctx := context.Background()
	long := strings.Repeat("x", 101)
	tests := []struct {
		name string
		call func() error
		tips string
	}{
		{"refund amount zero", func() error {
			_, err := b.refund("o1", "v-1", 0)
			return err
		}, "refund_amount"},
		{"refund amount negative", func() error {
			_, err := b.refund("o1", "v-2", -5)
			return err
		}, "refund_amount"},
		{"refund reason missing", func() error {
			_, err := b.client.CreateRefund(ctx, douyin.CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: "v-3", RefundAmount: 1})
			return err
		}, "reason"},
		{"refund reason too long", func() error {
			_, err := b.client.CreateRefund(ctx, douyin.CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: "v-4", Reason: long, RefundAmount: 1})
			return err
		}, "reason"},
		{"refund number with a bad character", func() error {
			_, err := b.refund("o1", "v 5", 1)
			return err
		}, "out_refund_no"},
		{"refund number too long", func() error {
			_, err := b.refund("o1", strings.Repeat("n", 65), 1)
			return err
		}, "out_refund_no"},
		{"refund notify_url plain http to a remote host", func() error {
			_, err := b.client.CreateRefund(ctx, douyin.CreateRefundRequest{OutOrderNo: "o1", OutRefundNo: "v-6", Reason: "x",
				RefundAmount: 1, NotifyURL: "http://merchant.example/notify"})
			return err
		}, "notify_url"},
		{"order valid_time too short", func() error {
			_, err := b.client.CreateOrder(ctx, douyin.CreateOrderRequest{OutOrderNo: "c-1", TotalAmount: 100, Subject: "s", Body: "b", ValidTime: 299})
			return err
		}, "valid_time"},
		{"order without subject", func() error {
			_, err := b.client.CreateOrder(ctx, douyin.CreateOrderRequest{OutOrderNo: "c-2", TotalAmount: 100, Body: "b", ValidTime: 300})
			return err
		}, "subject"},
		{"order amount too large", func() error {
			_, err := b.client.CreateOrder(ctx, douyin.CreateOrderRequest{OutOrderNo: "c-3", TotalAmount: 10_000_000_001, Subject: "s", Body: "b", ValidTime: 300})
			return err
		}, "total_amount"},
		{"settle without desc", func() error {
			_, err := b.client.Settle(ctx, douyin.SettleRequest{OutOrderNo: "o1", OutSettleNo: "s-v-1"})
			return err
		}, "settle_desc"},
		{"settle with a zero receiver amount", func() error {
			_, err := b.settle("o1", "s-v-2", douyin.Receiver{MerchantUID: "p1", Amount: 0})
			return err
		}, "settle_params"},
		{"settle with five receivers", func() error {
			_, err := b.settle("o1", "s-v-3", douyin.Receiver{MerchantUID: "p1", Amount: 1}, douyin.Receiver{MerchantUID: "p2", Amount: 1},
				douyin.Receiver{MerchantUID: "p3", Amount: 1}, douyin.Receiver{MerchantUID: "p4", Amount: 1}, douyin.Receiver{MerchantUID: "p5", Amount: 1})
			return err
		}, "at most 4"},
		{"settle receivers over 30%", func() error {
			_, err := b.settle("o1", "s-v-4", douyin.Receiver{MerchantUID: "p1", Amount: 200}, douyin.Receiver{MerchantUID: "p2", Amount: 101})
			return err
		}, "30%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantErrNo(t, err, douyin.ErrNoBadParam)
			if !strings.Contains(err.Error(), tc.tips) {
				t.Errorf("err %v does not name %s", err, tc.tips)
			}
		})
	}
	t.Run("a number sent as a string", func(t *testing.T) {
		ans := rawCall(t, b.url, douyin.APICreateRefund, testSalt, map[string]any{
			"app_id": testApp, "out_order_no": "o1", "out_refund_no": "v-raw-1", "reason": "x", "refund_amount": "100",
		})
		if ans["err_no"] != float64(douyin.ErrNoBadParam) || !strings.Contains(ans["err_tips"].(string), "refund_amount") {
			t.Fatalf("answer %v, want 2010 about refund_amount", ans)
		}
	})
	t.Run("a fractional amount", func(t *testing.T) {
		ans := rawCall(t, b.url, douyin.APICreateRefund, testSalt, map[string]any{
			"app_id": testApp, "out_order_no": "o1", "out_refund_no": "v-raw-2", "reason": "x", "refund_amount": 1.5,
		})
		if ans["err_no"] != float64(douyin.ErrNoBadParam) {
			t.Fatalf("answer %v, want 2010", ans)
		}
	})
	if l := b.ledgerOrder(t, "o1"); len(l.Refunds) != 0 || len(l.Settlements) != 0 {
		t.Errorf("rejected calls left refunds %v and settlements %v", l.Refunds, l.Settlements)
	}
}

func TestServer_CreateOrder(t *testing.T) {
	k := newSink(t, testToken, nil)
	cfg := testConfig()
	cfg.NotifyURL = k.srv.URL
	b := setup(t, cfg)
	ctx := context.Background()
	req := douyin.CreateOrderRequest{OutOrderNo: "co-1", TotalAmount: 2_500_000, Subject: "shoes", Body: "red shoes",
		ValidTime: 900, CPExtra: "extra"}

	first, err := b.client.CreateOrder(ctx, req)
	if err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if first.OrderID == "" || first.OrderToken == "" {
		t.Fatalf("CreateOrder = %+v, want order_id and order_token", first)
	}
	changed := req
	changed.TotalAmount = 1
	again, err := b.client.CreateOrder(ctx, changed)
	if err != nil || *again != *first {
		t.Fatalf("repeat CreateOrder = %+v, %v; want the first answer %+v", again, err, first)
	}

	q := b.queryOrder(t, "co-1")
	if q.PaymentInfo.OrderStatus != douyin.StatusProcessing || q.PaymentInfo.TotalFee != 2_500_000 || q.PaymentInfo.PayTime != "" {
		t.Fatalf("before payment: %+v", q.PaymentInfo)
	}
	if _, ok, _ := q.PaymentInfo.PaidAt(); ok {
		t.Fatal("an unpaid order has a pay time")
	}

	b.sim.Advance(time.Minute)
	paidAt := b.sim.Now()
	if err := b.sim.Pay("", "co-1"); err == nil {
		t.Fatal("Pay without app_id succeeded with two apps configured")
	}
	if err := b.sim.Pay(testApp, "co-1"); err != nil {
		t.Fatalf("Pay: %v", err)
	}
	if err := b.sim.Pay(testApp, "co-1"); err == nil {
		t.Fatal("paying twice succeeded")
	}
	if err := b.sim.Pay(testApp, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Pay unknown order = %v, want ErrNotFound", err)
	}
	q = b.queryOrder(t, "co-1")
	got, ok, err := q.PaymentInfo.PaidAt()
	if q.PaymentInfo.OrderStatus != douyin.StatusSuccess || !ok || err != nil || got.Unix() != paidAt.Unix() {
		t.Fatalf("after payment: %+v (paid at %v, want %v)", q.PaymentInfo, got, paidAt)
	}
	if q.OrderID != first.OrderID || q.PaymentInfo.CPExtra != "extra" {
		t.Errorf("query_order = %+v, want order_id %s and cp_extra", q, first.OrderID)
	}

	waitUntil(t, 2*time.Second, "the payment callback", func() bool { return k.count() >= 1 })
	cbs := k.wantVerified(t)
	p := cbs[0].Payment
	if cbs[0].Type != douyin.CallbackPayment || p == nil || p.CPOrderNo != "co-1" || p.TotalAmount != 2_500_000 ||
		p.Status != douyin.StatusSuccess || int64(p.PaidAt) != paidAt.Unix() || p.OrderID != first.OrderID {
		t.Fatalf("payment callback %+v / %+v", cbs[0], p)
	}

	t.Run("an unpaid order times out after valid_time", func(t *testing.T) {
		if _, err := b.client.CreateOrder(ctx, douyin.CreateOrderRequest{OutOrderNo: "co-2", TotalAmount: 100,
			Subject: "s", Body: "b", ValidTime: 300}); err != nil {
			t.Fatal(err)
		}
		b.sim.Advance(299 * time.Second)
		if s := b.queryOrder(t, "co-2").PaymentInfo.OrderStatus; s != douyin.StatusProcessing {
			t.Fatalf("status %s before valid_time, want PROCESSING", s)
		}
		b.sim.Advance(time.Second)
		if s := b.queryOrder(t, "co-2").PaymentInfo.OrderStatus; s != douyin.StatusTimeout {
			t.Fatalf("status %s after valid_time, want TIMEOUT", s)
		}
		if err := b.sim.Pay(testApp, "co-2"); err == nil {
			t.Fatal("paying a timed-out order succeeded")
		}
		_, err := b.refund("co-2", "co-2-r-1", 10)
		wantErrNo(t, err, douyin.ErrNoBadParam)
	})
	t.Run("a number whose first create failed keeps failing", func(t *testing.T) {
		bad := douyin.CreateOrderRequest{OutOrderNo: "co-3", TotalAmount: 100, Subject: "s", Body: "b", ValidTime: 10}
		_, err := b.client.CreateOrder(ctx, bad)
		wantErrNo(t, err, douyin.ErrNoBadParam)
		bad.ValidTime = 600
		_, err = b.client.CreateOrder(ctx, bad)
		wantErrNo(t, err, douyin.ErrNoBadParam)
		if !strings.Contains(err.Error(), "already failed") {
			t.Errorf("err %v, want already failed", err)
		}
	})
}

func TestServer_CPSInfo(t *testing.T) {
	b := setup(t, testConfig())
	b.seed(t, SeedOrder{OutOrderNo: "cps-1", TotalAmount: 1000, CPSShare: 70, CPSDelay: 10 * time.Minute})
	b.seed(t, SeedOrder{OutOrderNo: "cps-0", TotalAmount: 1000})
	if _, known, err := b.queryOrder(t, "cps-1").CPSShare(); known || err != nil {
		t.Fatalf("cps known = %v (%v) before the delay", known, err)
	}
	b.sim.Advance(10 * time.Minute)
	share, known, err := b.queryOrder(t, "cps-1").CPSShare()
	if !known || err != nil || share != 70 {
		t.Fatalf("CPSShare = %d, %v, %v; want 70 known", share, known, err)
	}
	if _, known, _ := b.queryOrder(t, "cps-0").CPSShare(); known {
		t.Error("an order without a CPS share reports cps_info")
	}
}

func TestServer_NotFound(t *testing.T) {
	b := setup(t, testConfig())
	ctx := context.Background()
	_, err := b.client.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "missing"})
	wantErrNo(t, err, douyin.ErrNoOrderNotFound)
	_, err = b.client.QueryRefund(ctx, douyin.QueryRefundRequest{OutRefundNo: "missing"})
	wantErrNo(t, err, douyin.ErrNoRefundNotFound)
	_, err = b.client.QuerySettle(ctx, douyin.QuerySettleRequest{OutSettleNo: "missing"})
	wantErrNo(t, err, douyin.ErrNoOrderNotFound)
	if !strings.Contains(err.Error(), "settle not found") {
		t.Errorf("query_settle err %v, want settle not found", err)
	}
	_, err = b.client.UnsettleAmount(ctx, douyin.UnsettleAmountRequest{OutOrderNo: "missing"})
	wantErrNo(t, err, douyin.ErrNoOrderNotFound)
	_, err = b.refund("missing", "m-r-1", 10)
	wantErrNo(t, err, douyin.ErrNoBadParam)
	_, err = b.settle("missing", "m-s-1")
	wantErrNo(t, err, douyin.ErrNoBadParam)
}

func TestServer_CreateRefund(t *testing.T) {
	cfg := testConfig()
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 2_000_000})

	t.Run("processing, then success after the delay", func(t *testing.T) {
		accepted := b.sim.Now()
		resp, err := b.refund("o1", "o1-a-1", 1_000_000) // large: signed as plain digits
		if err != nil || resp.RefundNo == "" {
			t.Fatalf("CreateRefund = %+v, %v", resp, err)
		}
		info := b.queryRefund(t, "o1-a-1")
		if info.RefundStatus != douyin.StatusProcessing || info.RefundNo != resp.RefundNo || info.RefundAmount != 1_000_000 || info.RefundedAt != 0 {
			t.Fatalf("refundInfo = %+v, want PROCESSING", info)
		}
		b.sim.Advance(cfg.ProcessingDelay - time.Second)
		if s := b.queryRefund(t, "o1-a-1").RefundStatus; s != douyin.StatusProcessing {
			t.Fatalf("status %s a second before the delay, want PROCESSING", s)
		}
		b.sim.Advance(time.Second)
		info = b.queryRefund(t, "o1-a-1")
		if info.RefundStatus != douyin.StatusSuccess || int64(info.RefundedAt) != accepted.Add(cfg.ProcessingDelay).Unix() {
			t.Fatalf("refundInfo = %+v, want SUCCESS refunded at %v", info, accepted.Add(cfg.ProcessingDelay))
		}
	})
	t.Run("a repeat returns the first answer and ignores changed parameters", func(t *testing.T) {
		first, err := b.refund("o1", "o1-b-1", 300)
		if err != nil {
			t.Fatal(err)
		}
		again, err := b.refund("o1", "o1-b-1", 900)
		if err != nil || again.RefundNo != first.RefundNo {
			t.Fatalf("repeat = %+v, %v; want refund_no %s", again, err, first.RefundNo)
		}
		if info := b.queryRefund(t, "o1-b-1"); info.RefundAmount != 300 {
			t.Fatalf("amount %d after a repeat with 900, want the first 300", info.RefundAmount)
		}
		// A repeat after success still answers the first result.
		b.sim.Advance(cfg.ProcessingDelay)
		if again, err := b.refund("o1", "o1-b-1", 300); err != nil || again.RefundNo != first.RefundNo {
			t.Fatalf("repeat after success = %+v, %v", again, err)
		}
		if n := len(b.ledgerOrder(t, "o1").Refunds); n != 2 {
			t.Fatalf("%d refunds in the ledger, want 2", n)
		}
	})
	t.Run("never beyond what is left, and a failed number keeps failing", func(t *testing.T) {
		left := 2_000_000 - 1_000_000 - 300
		_, err := b.refund("o1", "o1-c-1", int64(left)+1)
		wantErrNo(t, err, douyin.ErrNoBadParam)
		_, err = b.refund("o1", "o1-c-1", 1)
		wantErrNo(t, err, douyin.ErrNoBadParam)
		if !strings.Contains(err.Error(), "already failed") {
			t.Errorf("err %v, want already failed", err)
		}
		_, err = b.client.QueryRefund(context.Background(), douyin.QueryRefundRequest{OutRefundNo: "o1-c-1"})
		wantErrNo(t, err, douyin.ErrNoRefundNotFound)
		if _, err := b.refund("o1", "o1-c-2", int64(left)); err != nil {
			t.Fatalf("refunding exactly what is left: %v", err)
		}
		_, err = b.refund("o1", "o1-c-3", 1)
		wantErrNo(t, err, douyin.ErrNoBadParam)
	})
	t.Run("refunds of unpaid orders are refused", func(t *testing.T) {
		b.seed(t, SeedOrder{OutOrderNo: "o-unpaid", TotalAmount: 100, Status: douyin.StatusProcessing})
		_, err := b.refund("o-unpaid", "o-unpaid-1", 10)
		wantErrNo(t, err, douyin.ErrNoBadParam)
	})
	t.Run("not after a year", func(t *testing.T) {
		b.seed(t, SeedOrder{OutOrderNo: "o-old", TotalAmount: 100, PaidAt: b.sim.Now().Add(-366 * 24 * time.Hour)})
		_, err := b.refund("o-old", "o-old-1", 10)
		wantErrNo(t, err, douyin.ErrNoBadParam)
	})
	b.sim.Advance(cfg.ProcessingDelay)
	wantNoViolations(t, b.sim)
	if l := b.ledgerOrder(t, "o1"); l.RefundedAmount != 2_000_000 {
		t.Errorf("refunded %d, want all 2000000", l.RefundedAmount)
	}
}

func TestServer_RefundLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.RefundChannelFail = 1
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 100})

	t.Run("a refund that failed at the channel releases its amount and its number stays failed", func(t *testing.T) {
		if _, err := b.refund("o1", "o1-f-1", 100); err != nil {
			t.Fatal(err)
		}
		b.sim.Advance(cfg.ProcessingDelay)
		info := b.queryRefund(t, "o1-f-1")
		if info.RefundStatus != douyin.StatusFail || info.Msg != "channel failure" {
			t.Fatalf("refundInfo = %+v, want FAIL channel failure", info)
		}
		_, err := b.refund("o1", "o1-f-1", 100)
		wantErrNo(t, err, douyin.ErrNoBadParam)
		if !strings.Contains(err.Error(), "already failed") {
			t.Errorf("err %v, want already failed", err)
		}
	})
	b.sim.SetFaults(Faults{})
	t.Run("at most 50 refunds per order", func(t *testing.T) {
		for i := 2; i <= 50; i++ { // the failed refund above is the first
			if _, err := b.refund("o1", "o1-n"+strconv.Itoa(i)+"-1", 1); err != nil {
				t.Fatalf("refund %d: %v", i, err)
			}
		}
		_, err := b.refund("o1", "o1-n51-1", 1)
		wantErrNo(t, err, douyin.ErrNoBadParam)
		if !strings.Contains(err.Error(), "50") {
			t.Errorf("err %v, want the 50 limit", err)
		}
	})
	b.sim.Advance(cfg.ProcessingDelay)
	if l := b.ledgerOrder(t, "o1"); l.RefundedAmount != 49 || len(l.Refunds) != 50 {
		t.Errorf("refunded %d in %d refunds, want 49 in 50", l.RefundedAmount, len(l.Refunds))
	}
	wantNoViolations(t, b.sim)
}

func TestServer_RateLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = map[douyin.API]float64{douyin.APIQueryOrder: 1}
	b := setup(t, cfg)
	b.seed(t, SeedOrder{OutOrderNo: "o1", TotalAmount: 1000})
	b.seed(t, SeedOrder{AppID: otherApp, OutOrderNo: "o1", TotalAmount: 1000})
	ctx := context.Background()

	if _, err := b.client.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "o1"}); err != nil {
		t.Fatal(err)
	}
	_, err := b.client.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "o1"})
	wantErrNo(t, err, douyin.ErrNoBusy)
	if douyin.Classify(err) != douyin.ClassRetryable {
		t.Errorf("class %v, want retryable", douyin.Classify(err))
	}
	// Other APIs and other apps have their own buckets.
	if _, err := b.refund("o1", "o1-r-1", 10); err != nil {
		t.Errorf("create_refund limited by query_order's bucket: %v", err)
	}
	other := newClient(t, b.url, time.Second, douyin.App{AppID: otherApp, Salt: "other-salt"})
	if _, err := other.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "o1"}); err != nil {
		t.Errorf("another app limited by this app's bucket: %v", err)
	}
	if st := b.sim.Stats(); st.ByAPI[douyin.APIQueryOrder][douyin.ErrNoBusy] != 1 || st.Busy() != 1 || st.Calls() != 4 {
		t.Errorf("stats %+v (busy %d, calls %d), want one 1001 of 4 calls", st, st.Busy(), st.Calls())
	}
	b.sim.SetLimits(map[douyin.API]float64{douyin.APIQueryOrder: -1})
	for i := range 5 {
		if _, err := b.client.QueryOrder(ctx, douyin.QueryOrderRequest{OutOrderNo: "o1"}); err != nil {
			t.Fatalf("unlimited query %d: %v", i, err)
		}
	}
}

// TestServer_allowBurst checks the bucket arithmetic on a fake wall clock:
// rate r holds max(1, r/10) tokens.
func TestServer_allowBurst(t *testing.T) {
	var wallNanos atomic.Int64
	wallNanos.Store(testStart.UnixNano())
	wall := func() time.Time { return time.Unix(0, wallNanos.Load()) }
	cfg := testConfig()
	cfg.Limits = map[douyin.API]float64{douyin.APIQueryOrder: 20, douyin.APISettle: 5}
	s, err := newServer(cfg, wall)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := range 2 {
		if !s.allow(testApp, douyin.APIQueryOrder) {
			t.Fatalf("call %d of a burst of 2 refused", i+1)
		}
	}
	if s.allow(testApp, douyin.APIQueryOrder) {
		t.Fatal("third call of a burst of 2 allowed")
	}
	wallNanos.Add(int64(50 * time.Millisecond)) // one token at 20 per second
	if !s.allow(testApp, douyin.APIQueryOrder) || s.allow(testApp, douyin.APIQueryOrder) {
		t.Fatal("50 ms at 20 per second should refill exactly one token")
	}
	if !s.allow(testApp, douyin.APISettle) || s.allow(testApp, douyin.APISettle) {
		t.Fatal("rate 5 should hold exactly 1 token")
	}
	if !s.allow(testApp, douyin.APICreateRefund) {
		t.Fatal("a default-rate API refused its first call")
	}
	if !s.allow(otherApp, douyin.APIQueryOrder) {
		t.Fatal("another app shares this app's bucket")
	}
}

// TestServer_CallsLogAtDebug: the simulator logs each call at debug, so a
// sandbox at the usual info level is not flooded with one line per call.
func TestServer_CallsLogAtDebug(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	cfg := testConfig()
	cfg.Logger = logrus.NewEntry(log)
	b := setup(t, cfg)
	if _, err := b.client.QueryOrder(context.Background(), douyin.QueryOrderRequest{OutOrderNo: "nobody"}); err == nil {
		t.Fatal("query of an unknown order answered")
	}
	calls := 0
	for _, e := range hook.AllEntries() {
		if _, ok := e.Data["api"]; ok {
			calls++
			if e.Level != logrus.DebugLevel {
				t.Errorf("call logged at %s: %s", e.Level, e.Message)
			}
		}
	}
	if calls != 1 {
		t.Fatalf("%d call lines for one call", calls)
	}
}
