package console

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/payd/payd/internal/state"
)

// calendarDays is how far ahead the calendar looks.
const calendarDays = 30

// CalendarDay is what one app has settling on one day of the operator's
// zone: orders the settle_batch job will pick up (AutoOrders, AutoAmount:
// their total less the CPS share) and settlements already declared and
// pending (Pending, PendingAmount: their orders' totals less the CPS
// share, before refunds; item settlements are counted and add nothing).
type CalendarDay struct {
	Day                    time.Time
	AppID                  string
	AutoOrders, AutoAmount int64
	Pending, PendingAmount int64
	Settled, SettledAmount int64 // the last days' succeeded settlements
}

// dayStarts returns the starts of n consecutive days in loc from the day
// of from, and the start after the last.
func dayStarts(from time.Time, n int, loc *time.Location) []time.Time {
	t := from.In(loc)
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	out := make([]time.Time, n+1)
	for i := range out {
		out[i] = d.AddDate(0, 0, i)
	}
	return out
}

// dayOf returns the index of the day in days (n+1 starts) that t falls
// on; a time before the first day is the first day (overdue, or not known
// yet: bucket 0); -1 after the last.
func dayOf(days []time.Time, t time.Time) int {
	for i := len(days) - 2; i >= 0; i-- {
		if !t.Before(days[i]) {
			if !t.Before(days[i+1]) {
				return -1
			}
			return i
		}
	}
	return 0
}

// calendarStats lays out the hourly counters of orders settle_batch will
// settle (state.CountAutoSettle) and of pending settlements by the hour
// they fall due (state.CountDue) on the operator's days. Days start on
// whole hours in every zone with a whole-hour offset (Asia/Shanghai);
// elsewhere a day's first or last hour is counted with its neighbour.
func (c *Console) calendarStats(cs []state.Counter, days []time.Time, snap *Snapshot) {
	apps := slices.Clone(c.o.Apps)
	for _, a := range snap.Apps {
		if !slices.Contains(apps, a.AppID) {
			apps = append(apps, a.AppID)
		}
	}
	index := map[string]int{}
	for i := 0; i < calendarDays; i++ {
		for _, app := range apps {
			index[app+"/"+strconv.Itoa(i)] = len(snap.Days)
			snap.Days = append(snap.Days, CalendarDay{Day: days[i], AppID: app})
		}
	}
	for _, r := range cs {
		if r.Kind != state.CountAutoSettle && r.Kind != state.CountDue {
			continue
		}
		i := dayOf(days, r.Time())
		j, ok := index[r.Scope+"/"+strconv.Itoa(i)]
		if i < 0 || !ok {
			continue
		}
		d := &snap.Days[j]
		if r.Kind == state.CountAutoSettle {
			d.AutoOrders += r.N
			d.AutoAmount += r.Amount
		} else {
			d.Pending += r.N
			d.PendingAmount += r.Amount
		}
	}
}

// settledByDay lays out the last 7 days' succeeded settlements per app
// (state.CountSettled, by hour of success), newest day first.
func (c *Console) settledByDay(cs []state.Counter, days []time.Time, snap *Snapshot) {
	byDay := map[string]*CalendarDay{}
	for _, r := range cs {
		if r.Kind != state.CountSettled {
			continue
		}
		i := dayOf(days, r.Time())
		if i < 0 || r.Time().Before(days[0]) {
			continue
		}
		k := strconv.Itoa(i) + "/" + r.Scope
		if byDay[k] == nil {
			byDay[k] = &CalendarDay{Day: days[i], AppID: r.Scope}
		}
		byDay[k].Settled += r.N
		byDay[k].SettledAmount += r.Amount
	}
	for _, d := range byDay {
		snap.Settled = append(snap.Settled, *d)
	}
	sort.Slice(snap.Settled, func(i, j int) bool {
		a, b := snap.Settled[i], snap.Settled[j]
		return a.Day.After(b.Day) || (a.Day.Equal(b.Day) && a.AppID < b.AppID)
	})
}
