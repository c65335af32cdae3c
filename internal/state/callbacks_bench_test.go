package state

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkInsertCallbacks measures a batch of 30 settle callbacks, each
// naming a settlement payd knows, stored through InsertCallbacks (the
// duplicate check, the subjects' lookups, the rows, the hints and nudges)
// among PAYD_BENCH_ORDERS orders, on SQLite (synchronous FULL: one
// fsync a batch). ns/op is per batch.
func BenchmarkInsertCallbacks(b *testing.B) {
	e := newSQLiteEnv(b)
	n := benchOrders(b)
	seed(b, e.Store, n, benchDue, t0)
	var settles []string // every fourth order has a settlement (seed)
	for k := 0; k < n; k += 4 {
		settles = append(settles, SettleNo("app1", fmt.Sprintf("bench%08d", k), 1))
	}
	const batch = 30
	b.ResetTimer()
	for i := range b.N {
		cbs := make([]*Callback, batch)
		for j := range cbs {
			no := settles[(i*batch+j)%len(settles)]
			cbs[j] = &Callback{AppID: "app1", Type: "settle", Signature: fmt.Sprintf("sig-%d-%d", i, j), SubjectNo: no, Raw: `{"msg":"{}"}`}
		}
		for j, r := range e.InsertCallbacks(b.Context(), cbs, t0.Add(time.Duration(i)*time.Millisecond)) {
			if r.Err != nil || !r.Inserted {
				b.Fatalf("batch %d callback %d: inserted %v, %v", i, j, r.Inserted, r.Err)
			}
		}
	}
}
