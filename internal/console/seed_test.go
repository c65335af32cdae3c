package console

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/payd/payd/internal/clock"
	"github.com/payd/payd/internal/reconcile"
	"github.com/payd/payd/internal/state"
	"github.com/payd/payd/internal/storetest"
)

// The scenario's apps, tokens and endpoint.
const (
	appA        = "tt-shop-east"
	appB        = "tt-shop-west"
	appT        = "tt-shop-trade" // a trade-system app: refunds buyers start, audits
	adminToken  = "admin-token-0123456789"
	viewerToken = "viewer-token-0123456789"
	endpoint    = "backend"
)

// scenarioNow is the scenario's clock: 2026-12-01 10:00 in Shanghai.
var scenarioNow = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

type bundle struct {
	store *state.Store
	clock *clock.Fake
	con   *Console
}

// setup opens a fresh store with the scenario in it and a console on it.
func setup(tb testing.TB, seed func(tb testing.TB, st *state.Store, now time.Time)) *bundle {
	tb.Helper()
	ctx := context.Background()
	clk := clock.NewFake(scenarioNow)
	st := storetest.Open(tb, clk.Now)
	if seed != nil {
		seed(tb, st, clk.Now())
	}
	p := reconcile.DefaultPolicy()
	p.Apps = map[string]reconcile.AppPolicy{appA: {SettlePeriod: 7 * 24 * time.Hour, AutoSettle: true}, appB: {SettlePeriod: 7 * 24 * time.Hour, AutoSettle: true},
		appT: {SettlePeriod: 7 * 24 * time.Hour, AutoSettle: true, API: "trade"}}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	con, err := New(Options{
		Store: st, Policy: p, Clock: clk, AdminToken: adminToken, ViewerToken: viewerToken, Location: loc,
		Subscriptions: []state.Subscription{{Endpoint: endpoint}}, Apps: []string{appA, appB, appT},
		Limits: map[string]float64{"query_order": 30, "create_refund": 50, "query_refund": 30, "settle": 30, "query_settle": 30},
	})
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if err := con.Refresh(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("folded the seeding's counter deltas in %s", time.Since(start).Round(time.Millisecond))
	return &bundle{store: st, clock: clk, con: con}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func tp(t time.Time) *time.Time { return &t }

// seedScenario writes what a finance person would find on a busy morning:
// two apps' paid orders, refunds done, at Douyin and parked, settlements
// done, pending (the calendar) and parked, the last hour's calls (with
// 1001s), callbacks, and events whose deliveries failed.
func seedScenario(tb testing.TB, st *state.Store, now time.Time) {
	db := st.DB()
	for ai, app := range []string{appA, appB} {
		for i := 1; i <= 24; i++ {
			paid := now.Add(-time.Duration(i*7) * time.Hour)
			o := state.Order{AppID: app, OutOrderNo: fmt.Sprintf("ord-%c-%04d", 'a'+ai, i), DouyinOrderID: fmt.Sprintf("N7%018d", ai*1000+i),
				TotalAmount: int64(1000*i + 99), Status: state.OrderSuccess, PaidAt: tp(paid), CPSKnown: true, CPSShare: int64(i % 3 * 50),
				SettleAfter: tp(paid.Add(7 * 24 * time.Hour)), CreatedAt: paid, UpdatedAt: paid}
			if i%4 != 0 {
				o.AutoSettleAt = o.SettleAfter
			}
			must(tb, db.Create(&o).Error)
			seedItems(tb, st, o, i, now)
		}
	}
	seedCalls(tb, st, now)
	seedEvents(tb, st, now)
	seedTrade(tb, st, now)
	seedPasses(tb, st, now)
}

// seedTrade writes the trade app's paid orders and two refunds buyers
// asked for that await the merchant's audit, the sooner deadline first.
func seedTrade(tb testing.TB, st *state.Store, now time.Time) {
	db := st.DB()
	for i := 1; i <= 3; i++ {
		paid := now.Add(-time.Duration(i*5) * time.Hour)
		o := state.Order{AppID: appT, OutOrderNo: fmt.Sprintf("ord-t-%04d", i), DouyinOrderID: fmt.Sprintf("N9%018d", i), API: "trade",
			TotalAmount: int64(2000*i + 50), Status: state.OrderSuccess, PaidAt: tp(paid), CPSKnown: true, PayChannel: 1,
			SettleAfter: tp(paid.Add(7 * 24 * time.Hour)), AutoSettleAt: tp(paid.Add(7 * 24 * time.Hour)), CreatedAt: paid, UpdatedAt: paid}
		must(tb, db.Create(&o).Error)
		if i == 3 {
			continue
		}
		key := fmt.Sprintf("dyaudit%02d", i)
		created := now.Add(-time.Duration(10*i) * time.Hour)
		r := state.Refund{OrderID: o.ID, Key: key, Amount: int64(800 * i), Reason: "buyer: not as described", Phase: state.PhaseProcessing, Attempt: 1,
			OutRefundNo: state.RefundNo(key, 1), RefundNo: fmt.Sprintf("RT%018d", i), API: "trade", Source: state.SourceUser,
			AuditPhase: state.AuditWaiting, AuditDeadline: tp(created.Add(state.DefaultAuditWindow)),
			NextActionAt: tp(now.Add(time.Hour)), CreatedAt: created, UpdatedAt: created}
		must(tb, db.Create(&r).Error)
	}
}

// seedPasses records the last reconcile passes and a settle batch, and
// refused callbacks of the last hours, as two replicas would have.
func seedPasses(tb testing.TB, st *state.Store, now time.Time) {
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		must(tb, st.RecordPass(ctx, state.Pass{Kind: state.PassReconcile, Replica: []string{"pay-1:4242", "pay-2:4243"}[i%2],
			StartedAt: now.Add(-time.Duration(4-i) * 7 * time.Minute), DurationMS: int64(180 + 40*i), Orders: 12 + i, Actions: 9 + 2*i,
			Calls: 9 + 2*i, Retryable: i / 3, Detail: fmt.Sprintf("create_refund %d, query_refund %d", 3+i, 6+i)}))
	}
	must(tb, st.RecordPass(ctx, state.Pass{Kind: state.PassSettleBatch, Replica: "pay-1:4242", StartedAt: now.Add(-7 * time.Hour), DurationMS: 420,
		Orders: 3, Actions: 14, Detail: "after it: 14 pending, 0 at Douyin, 6 succeeded, 1 parked"}))
	must(tb, st.CountRefusedCallbacks(ctx, appA, "bad_signature", now.Add(-2*time.Hour), 3))
	must(tb, st.CountRefusedCallbacks(ctx, "", "malformed", now.Add(-30*time.Minute), 1))
}

func seedItems(tb testing.TB, st *state.Store, o state.Order, i int, now time.Time) {
	db := st.DB()
	refund := func(key string, amount int64, phase state.Phase, reason, park string, at time.Time) {
		r := state.Refund{OrderID: o.ID, Key: key, Amount: amount, Reason: reason, Phase: phase, Attempt: 1, OutRefundNo: state.RefundNo(key, 1),
			ParkReason: park, CreatedAt: at, UpdatedAt: at}
		if phase == state.PhaseSucceeded || phase == state.PhaseProcessing {
			r.RefundNo = fmt.Sprintf("R7%018d", o.ID*10+int64(i))
		}
		must(tb, db.Create(&r).Error)
	}
	switch {
	case i%4 == 0 && i <= 12:
		// Settled orders: the last days' batches.
		due := *o.SettleAfter
		st := state.Settlement{OrderID: o.ID, DueAt: &due, Phase: state.PhaseSucceeded, Attempt: 1, Auto: true,
			OutSettleNo: state.SettleNo(o.AppID, o.OutOrderNo, 1), SettleNo: fmt.Sprintf("S7%018d", o.ID), Amount: o.TotalAmount - o.CPSShare,
			CreatedAt: now.Add(-time.Duration(i) * 11 * time.Hour), UpdatedAt: now.Add(-time.Duration(i) * 11 * time.Hour)}
		must(tb, db.Create(&st).Error)
	case i%4 == 0:
		due := o.SettleAfter.Add(time.Duration(i) * time.Hour)
		must(tb, db.Create(&state.Settlement{OrderID: o.ID, DueAt: &due, Phase: state.PhasePending, Attempt: 1,
			OutSettleNo: state.SettleNo(o.AppID, o.OutOrderNo, 1), CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}).Error)
	}
	switch i {
	case 2, 3:
		refund(fmt.Sprintf("%s-r1", o.OutOrderNo), 500, state.PhaseSucceeded, "size too small", "", now.Add(-20*time.Hour))
	case 5:
		refund(fmt.Sprintf("%s-r1", o.OutOrderNo), 1200, state.PhaseProcessing, "damaged in transit", "", now.Add(-10*time.Minute))
	case 6, 7, 9:
		refund(fmt.Sprintf("%s-r1", o.OutOrderNo), int64(300*i), state.PhaseParked, "buyer changed mind",
			"every attempt FAILED at the channel (the buyer's card refused the refund)", now.Add(-time.Duration(i)*time.Hour))
	case 18:
		must(tb, db.Create(&state.Settlement{OrderID: o.ID, Phase: state.PhaseParked, Attempt: 1, OutSettleNo: state.SettleNo(o.AppID, o.OutOrderNo, 1),
			ErrNo: 2010, ParkReason: "Douyin refused the settlement: receiver merchant_uid not bound to the app",
			CreatedAt: now.Add(-30 * time.Hour), UpdatedAt: now.Add(-29 * time.Hour)}).Error)
	}
}

func seedCalls(tb testing.TB, st *state.Store, now time.Time) {
	db := st.DB()
	var ids []int64
	must(tb, db.Model(&state.Order{}).Order("id").Limit(20).Pluck("id", &ids).Error)
	apis := []string{"query_order", "create_refund", "query_refund", "settle", "query_settle"}
	for i := 0; i < 240; i++ {
		a := state.Attempt{OrderID: ids[i%len(ids)], Resource: "order", API: apis[(i*i+i/7)%len(apis)], MerchantNo: fmt.Sprintf("call-%d", i),
			Outcome: "ok", LatencyMS: int64(20 + i%40), CreatedAt: now.Add(-time.Duration(i*i%3500) * time.Second)}
		if i%23 == 0 {
			a.ErrNo, a.ErrTips, a.Outcome = 1001, "rate limited", "retryable"
		}
		must(tb, db.Create(&a).Error)
	}
	for i := 0; i < 12; i++ {
		must(tb, db.Create(&state.Callback{AppID: appA, Type: []string{"payment", "refund", "settle"}[i%3], Signature: fmt.Sprintf("sig-%d", i),
			SubjectNo: fmt.Sprintf("ord-a-%04d", i+1), OrderID: ids[i], Raw: "{}", ReceivedAt: now.Add(-time.Duration(i*4) * time.Minute)}).Error)
	}
}

func seedEvents(tb testing.TB, st *state.Store, now time.Time) {
	db := st.DB()
	for i := 1; i <= 8; i++ {
		no := fmt.Sprintf("ord-a-%04d", i)
		ev := state.Event{ID: fmt.Sprintf("evt_%032d", i), Type: state.EventOrderPaid, AppID: appA, OutOrderNo: no,
			Payload: `{"out_order_no":"` + no + `"}`, CreatedAt: now.Add(-time.Duration(9-i) * time.Hour)}
		must(tb, db.Create(&ev).Error)
		d := state.Delivery{Endpoint: endpoint, EventSeq: ev.Seq, EventID: ev.ID, EventType: ev.Type, AppID: appA, OutOrderNo: no,
			Status: state.DeliveryDelivered, Attempts: 1, LastStatus: 200, LatencyMS: 31, DeliveredAt: tp(ev.CreatedAt), CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt}
		if i >= 6 {
			d.Status, d.Attempts, d.LastStatus, d.LastError, d.DeliveredAt = state.DeliveryDead, 16, 503, "503 Service Unavailable: upstream down", nil
		}
		must(tb, db.Create(&d).Error)
	}
}
