package state

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// lifecycle is one refund's whole life through the store's transitions:
// its order recorded, declared, submitting, processing, succeeded, and an
// attempt row (six transactions).
func lifecycle(b *testing.B, e *env, no string) {
	ctx, now := context.Background(), e.clock.Now()
	o, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: no, TotalAmount: 1000, Status: OrderSuccess}, now)
	must(b, err)
	r, _, err := e.DeclareRefund(ctx, RefundWish{AppID: "app1", OutOrderNo: no, Key: no + "-r", Amount: 100}, now)
	must(b, err)
	for _, to := range []Phase{PhaseSubmitting, PhaseProcessing, PhaseSucceeded} {
		from := r.Phase
		r.Phase = to
		must(b, e.UpdateRefund(ctx, r, from))
	}
	must(b, e.AppendAttempt(ctx, &Attempt{OrderID: o.ID, Resource: "refund", ResourceID: r.ID, API: "create_refund", MerchantNo: r.OutRefundNo, Outcome: "ok", CreatedAt: now}))
}

// BenchmarkCounters_writePath measures what the counters' triggers cost a
// write: each iteration runs one refund's lifecycle on a database with
// the triggers and one on a database whose triggers were dropped, one
// after the other (which goes first alternates), so that both see the
// same machine; it reports the
// time of each (ms/lifecycle) and their ratio. SQLite always; PostgreSQL
// when PAYD_TEST_POSTGRES_DSN is set.
func BenchmarkCounters_writePath(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			open := func() *env {
				if backend == "postgres" {
					return newPostgresEnv(b)
				}
				return newSQLiteEnv(b)
			}
			with, without := open(), open()
			must(b, dropCounterTriggers(without.DB(), without.dialect))
			var tWith, tWithout time.Duration
			i := 0
			for b.Loop() {
				i++
				no := fmt.Sprintf("wp%07d", i)
				first, second, tFirst, tSecond := with, without, &tWith, &tWithout
				if i%2 == 0 { // alternate which goes first
					first, second, tFirst, tSecond = without, with, &tWithout, &tWith
				}
				start := time.Now()
				lifecycle(b, first, no)
				mid := time.Now()
				lifecycle(b, second, no)
				*tFirst += mid.Sub(start)
				*tSecond += time.Since(mid)
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(i) }
			b.ReportMetric(ms(tWith), "ms/lifecycle-triggers")
			b.ReportMetric(ms(tWithout), "ms/lifecycle-no-triggers")
			b.ReportMetric(float64(tWith)/float64(tWithout), "ratio")
		})
	}
}
