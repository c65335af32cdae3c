package reconcile_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/provider"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

// fakeProvider is a minimal in-memory Douyin in payd's own terms: no
// signatures, no err_no, nothing of ecpay. A write is accepted and stays
// PROCESSING for one query; a refund's channel fails the first failRefunds
// numbers; a settlement before paidAt + period is refused as "not yet".
type fakeProvider struct {
	mu          sync.Mutex
	now         func() time.Time
	paidAt      time.Time
	total       int64
	period      time.Duration
	failRefunds int
	refunds     map[string]*fakeItem
	settles     map[string]*fakeItem
	calls       map[provider.Call]int
}

type fakeItem struct {
	amount  int64
	queries int
	fail    bool
}

// newFakeProvider is a fakeProvider on clock now, for orders of 1,000 fen
// paid at paidAt, settled after seven days.
func newFakeProvider(now func() time.Time, paidAt time.Time) *fakeProvider {
	return &fakeProvider{now: now, paidAt: paidAt, total: 1000, period: 7 * 24 * time.Hour,
		refunds: map[string]*fakeItem{}, settles: map[string]*fakeItem{}, calls: map[provider.Call]int{}}
}

func (f *fakeProvider) count(c provider.Call) {
	f.calls[c]++
}

func (f *fakeProvider) QueryOrder(ctx context.Context, o provider.OrderRef) (*provider.OrderInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count(provider.CallQueryOrder)
	paid := f.paidAt
	return &provider.OrderInfo{Status: provider.OrderSuccess, DouyinOrderID: "fake-" + o.OutOrderNo, TotalAmount: f.total, PaidAt: &paid, CPSKnown: true}, nil
}

func (f *fakeProvider) CreateRefund(ctx context.Context, req provider.RefundRequest) (*provider.RefundInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count(provider.CallCreateRefund)
	if _, ok := f.refunds[req.OutRefundNo]; ok {
		return nil, &provider.Error{Class: provider.Refused, Reason: provider.Exists, Tips: "number used"}
	}
	it := &fakeItem{amount: req.Amount, fail: f.failRefunds > 0}
	f.failRefunds--
	f.refunds[req.OutRefundNo] = it
	return &provider.RefundInfo{Status: provider.StatusProcessing, DouyinRefundID: "rf-" + req.OutRefundNo, Amount: req.Amount}, nil
}

func (f *fakeProvider) QueryRefund(ctx context.Context, o provider.OrderRef, ref provider.ItemRef) (*provider.RefundInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count(provider.CallQueryRefund)
	return f.query(f.refunds[ref.No], ref.No)
}

func (f *fakeProvider) CreateSettle(ctx context.Context, req provider.SettleRequest) (*provider.SettleInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count(provider.CallCreateSettle)
	if due := f.paidAt.Add(f.period); f.now().Before(due) {
		return nil, &provider.Error{Class: provider.Refused, Reason: provider.NotYet, Until: due, Tips: "withdrawal period"}
	}
	f.settles[req.OutSettleNo] = &fakeItem{amount: req.Amount}
	return &provider.SettleInfo{Status: provider.StatusProcessing, DouyinSettleID: "st-" + req.OutSettleNo}, nil
}

func (f *fakeProvider) QuerySettle(ctx context.Context, o provider.OrderRef, ref provider.ItemRef) (*provider.SettleInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count(provider.CallQuerySettle)
	info, err := f.query(f.settles[ref.No], ref.No)
	if err != nil {
		return nil, err
	}
	return &provider.SettleInfo{Status: info.Status, DouyinSettleID: info.DouyinRefundID, Amount: info.Amount}, nil
}

// query answers PROCESSING once, then the item's end.
func (f *fakeProvider) query(it *fakeItem, no string) (*provider.RefundInfo, error) {
	if it == nil {
		return nil, &provider.Error{Class: provider.Refused, Reason: provider.NotFound, Tips: "no such number"}
	}
	it.queries++
	info := &provider.RefundInfo{Status: provider.StatusProcessing, DouyinRefundID: "id-" + no, Amount: it.amount}
	switch {
	case it.queries < 2:
	case it.fail:
		info.Status, info.Message = provider.StatusFail, "channel failure"
	default:
		info.Status = provider.StatusSuccess
	}
	return info, nil
}

// TestReconciler_FakeProvider drives a refund through a channel failure
// and its automatic retry, then a T+7 settlement, through a provider that
// knows nothing of ecpay: the reconciler needs only the seam.
func TestReconciler_FakeProvider(t *testing.T) {
	ctx := context.Background()
	paidAt := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	fc := clock.NewFake(paidAt.Add(time.Hour))
	fake := newFakeProvider(fc.Now, paidAt)
	fake.failRefunds = 1
	st := storetest.Open(t, fc.Now)
	p := reconcile.DefaultPolicy()
	p.Jitter = 0
	p.Apps = map[string]reconcile.AppPolicy{"fake": {SettlePeriod: 7 * 24 * time.Hour, SettleDesc: "fake"}}
	rec := reconcile.New(reconcile.Options{Store: st, Provider: fake, Clock: fc, Policy: p})
	if _, _, err := st.UpsertOrder(ctx, state.OrderInput{AppID: "fake", OutOrderNo: "o1"}, fc.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DeclareRefund(ctx, state.RefundWish{AppID: "fake", OutOrderNo: "o1", Key: "r1", Amount: 300, Reason: "fake"}, fc.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DeclareSettlement(ctx, state.SettlementWish{AppID: "fake", OutOrderNo: "o1"}, fc.Now()); err != nil {
		t.Fatal(err)
	}
	run := func(rounds int, step time.Duration, done func(*state.History) bool) *state.History {
		t.Helper()
		for i := 0; i < rounds; i++ {
			if _, err := rec.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			h, err := st.History(ctx, "fake", "o1")
			if err != nil {
				t.Fatal(err)
			}
			if done(h) {
				return h
			}
			fc.Advance(step)
		}
		t.Fatalf("not done after %d rounds", rounds)
		return nil
	}
	h := run(40, 30*time.Second, func(h *state.History) bool { return h.Refunds[0].Phase.Final() })
	rf := h.Refunds[0]
	if rf.Phase != state.PhaseSucceeded || rf.Attempt != 2 || rf.OutRefundNo != "r1-2" || rf.RefundNo != "id-r1-2" {
		t.Fatalf("refund %s attempt %d %s (%s); want succeeded on attempt 2 r1-2", rf.Phase, rf.Attempt, rf.OutRefundNo, rf.RefundNo)
	}
	if len(fake.refunds) != 2 || fake.refunds["r1-1"] == nil || !fake.refunds["r1-1"].fail {
		t.Fatalf("refund numbers sent: %v", fake.refunds)
	}
	if h.Order.DouyinOrderID != "fake-o1" {
		t.Fatalf("Douyin's order id %q not learned", h.Order.DouyinOrderID)
	}
	if s := h.Settlement; s.Phase != state.PhasePending || fake.calls[provider.CallCreateSettle] != 0 {
		t.Fatalf("settlement %s after %d settle calls before T+7", s.Phase, fake.calls[provider.CallCreateSettle])
	}

	fc.Set(paidAt.Add(7*24*time.Hour + time.Minute))
	h = run(20, 30*time.Second, func(h *state.History) bool { return h.Settlement.Phase.Final() })
	if s := h.Settlement; s.Phase != state.PhaseSucceeded || s.Amount != 700 || s.Attempt != 1 {
		t.Fatalf("settlement %s amount %d attempt %d; want succeeded, 700 fen, attempt 1", s.Phase, s.Amount, s.Attempt)
	}
	if n := fake.calls[provider.CallCreateSettle]; n != 1 {
		t.Fatalf("%d settle calls, want exactly 1", n)
	}
	if got := fake.settles[h.Settlement.OutSettleNo]; got == nil || got.amount != 700 {
		t.Fatalf("settled %+v under %s, want 700 fen", got, h.Settlement.OutSettleNo)
	}
}
