package console

import (
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/payd/payd/internal/state"
)

// calendarDays is how far ahead the calendar looks.
const calendarDays = 30

// CalendarDay is what one app has settling on one day of the operator's
// zone: orders the settle_batch job will pick up (AutoOrders, AutoAmount:
// their total less the CPS share) and settlements already declared and
// pending (Pending, PendingAmount: what their orders would leave).
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

func (c *Console) calendarStats(db *gorm.DB, now time.Time, snap *Snapshot) error {
	loc := c.o.Location
	days := dayStarts(now, calendarDays, loc)
	apps := c.o.Apps
	for _, a := range snap.Apps {
		if !slices.Contains(apps, a.AppID) {
			apps = append(apps, a.AppID)
		}
	}
	for i := 0; i < calendarDays; i++ {
		for _, app := range apps {
			d := CalendarDay{Day: days[i], AppID: app}
			// ix_orders_app_autosettle: one range per app and day.
			lo := days[i]
			if i == 0 {
				lo = time.Time{}
			}
			var r struct{ N, Amount int64 }
			if err := db.Raw("SELECT COUNT(*) AS n, COALESCE(SUM(total_amount - cps_share), 0) AS amount FROM orders WHERE app_id = ? AND auto_settle_at >= ? AND auto_settle_at < ?",
				app, lo.UTC(), days[i+1].UTC()).Scan(&r).Error; err != nil {
				return fmt.Errorf("calendar of %s: %w", app, err)
			}
			d.AutoOrders, d.AutoAmount = r.N, r.Amount
			snap.Days = append(snap.Days, d)
		}
	}
	if err := c.pendingByDay(db, days, snap); err != nil {
		return err
	}
	return c.settledByDay(db, now, snap)
}

// pendingByDay adds pending settlements to the days they fall due on
// (before today: today). Pending settlements are found by phase.
func (c *Console) pendingByDay(db *gorm.DB, days []time.Time, snap *Snapshot) error {
	var rows []struct {
		AppID       string
		DueAt       *time.Time
		SettleAfter *time.Time
		TotalAmount int64
		CPSShare    int64
		Refunded    int64
	}
	err := db.Raw(`SELECT o.app_id, s.due_at, o.settle_after, o.total_amount, o.cps_share,
		(SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.order_id = o.id AND r.phase <> ?) AS refunded
		FROM settlements s JOIN orders o ON o.id = s.order_id WHERE s.phase = ? LIMIT ?`,
		state.PhaseCancelled, state.PhasePending, maxCallRows).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("calendar: pending settlements: %w", err)
	}
	index := map[string]int{}
	for i, d := range snap.Days {
		index[d.AppID+d.Day.Format("2006-01-02")] = i
	}
	for _, r := range rows {
		due := r.DueAt
		if due == nil {
			due = r.SettleAfter
		}
		day := days[0]
		if due != nil && due.After(days[0]) {
			if !due.Before(days[len(days)-1]) {
				continue
			}
			day = dayStarts(*due, 0, c.o.Location)[0]
		}
		i, ok := index[r.AppID+day.Format("2006-01-02")]
		if !ok {
			continue
		}
		snap.Days[i].Pending++
		snap.Days[i].PendingAmount += max(r.TotalAmount-r.CPSShare-r.Refunded, 0)
	}
	return nil
}

// settledByDay counts the last 7 days' succeeded settlements per app, by
// day of success (ix_settlements_phase_updated: a succeeded row is final).
func (c *Console) settledByDay(db *gorm.DB, now time.Time, snap *Snapshot) error {
	days := dayStarts(now.AddDate(0, 0, -6), 7, c.o.Location)
	for i := 6; i >= 0; i-- {
		var rows []struct {
			AppID     string
			N, Amount int64
		}
		if err := db.Raw(`SELECT o.app_id, COUNT(*) AS n, COALESCE(SUM(s.amount), 0) AS amount FROM settlements s JOIN orders o ON o.id = s.order_id
			WHERE s.phase = ? AND s.updated_at >= ? AND s.updated_at < ? GROUP BY o.app_id ORDER BY o.app_id`,
			state.PhaseSucceeded, days[i].UTC(), days[i+1].UTC()).Scan(&rows).Error; err != nil {
			return fmt.Errorf("calendar: settled: %w", err)
		}
		for _, r := range rows {
			snap.Settled = append(snap.Settled, CalendarDay{Day: days[i], AppID: r.AppID, Settled: r.N, SettledAmount: r.Amount})
		}
	}
	return nil
}
