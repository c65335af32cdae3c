package console

import (
	"sort"
	"time"

	"github.com/payd/payd/internal/state"
)

// buckets are the chart's columns: 12 of 5 minutes, the last hour (the
// current 5 minutes last), as state.CountCalls buckets them.
const (
	buckets     = 12
	bucketWidth = 5 * time.Minute
)

// callsSince is the start of the chart's first column.
func callsSince(now time.Time) time.Time {
	return now.Truncate(bucketWidth).Add(-(buckets - 1) * bucketWidth)
}

// Calls is the last hour of Douyin calls, per API.
type Calls struct {
	Since     time.Time
	APIs      []APICalls
	Busy1001  int64 // answers 1001 (rate limited) in the hour
	Busy12001 int64 // answers 12001 (Douyin busy) in the hour
}

// APICalls is one API's calls in 5-minute buckets, against its budget.
type APICalls struct {
	API     string
	Buckets [buckets]int64
	Total   int64
	Errors  int64   // answers other than err_no 0
	Budget  float64 // calls one bucket may hold: limit/s × 300 s × apps
	Peak    int64
}

// PeakShare is the busiest bucket as a share of the budget, in percent.
func (a APICalls) PeakShare() float64 {
	if a.Budget <= 0 {
		return 0
	}
	return 100 * float64(a.Peak) / a.Budget
}

// Bar is one column of a chart, in the SVG's coordinates.
type Bar struct {
	X, Y, W, H float64
	N          int64
	Label      string
}

// Chart geometry.
const (
	chartW, chartH = 360.0, 90.0
	chartTop       = 10.0
)

// Bars lays out the buckets, scaled to the busiest one or to the budget
// when it is in reach, so a quiet API still shows its shape.
func (a APICalls) Bars(since time.Time, loc *time.Location) []Bar {
	scale := float64(a.Peak) * 1.25
	if a.Budget > 0 && a.Budget < scale*4 {
		scale = max(scale, a.Budget*1.1)
	}
	if scale < 1 {
		scale = 1
	}
	w := chartW / buckets
	out := make([]Bar, buckets)
	for i, n := range a.Buckets {
		h := (chartH - chartTop) * float64(n) / scale
		out[i] = Bar{X: float64(i)*w + 1, Y: chartH - h, W: w - 2, H: h, N: n,
			Label: since.Add(time.Duration(i) * bucketWidth).In(loc).Format("15:04")}
	}
	return out
}

// BudgetY is the height of the budget line, or -1 when it is off the chart.
func (a APICalls) BudgetY() float64 {
	scale := float64(a.Peak) * 1.25
	if a.Budget <= 0 || a.Budget >= scale*4 {
		return -1
	}
	scale = max(scale, a.Budget*1.1)
	return chartH - (chartH-chartTop)*a.Budget/scale
}

// callStats lays out the calls' counters (state.CountCalls: per API and
// 5 minutes, with the answers not ok; state.CountBusy: 1001 and 12001).
func (c *Console) callStats(cs []state.Counter, since time.Time, snap *Snapshot) {
	snap.Calls.Since = since
	apps := float64(max(len(c.o.Apps), 1))
	byAPI := map[string]*APICalls{}
	for api, limit := range c.o.Limits {
		byAPI[api] = &APICalls{API: api, Budget: limit * bucketWidth.Seconds() * apps}
	}
	for _, r := range cs {
		if r.Kind == state.CountBusy {
			switch r.Label {
			case "1001":
				snap.Calls.Busy1001 += r.N
			case "12001":
				snap.Calls.Busy12001 += r.N
			}
			continue
		}
		a := byAPI[r.Label]
		if a == nil {
			a = &APICalls{API: r.Label}
			byAPI[r.Label] = a
		}
		i := int(r.Time().Sub(since) / bucketWidth)
		if i < 0 || i >= buckets {
			continue
		}
		a.Buckets[i] += r.N
		a.Total += r.N
		a.Errors += r.Amount
	}
	for _, a := range byAPI {
		for _, n := range a.Buckets {
			a.Peak = max(a.Peak, n)
		}
		snap.Calls.APIs = append(snap.Calls.APIs, *a)
	}
	sort.Slice(snap.Calls.APIs, func(i, j int) bool { return snap.Calls.APIs[i].API < snap.Calls.APIs[j].API })
}
