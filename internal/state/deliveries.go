package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DeliveryStatus is where one event's delivery to one endpoint stands.
type DeliveryStatus string

const (
	// DeliveryPending: not acknowledged yet. FanOut and Replay put a row
	// here; the dispatcher claims it when NextAttemptAt has passed and moves
	// it to delivered, back to pending (a retry later) or to dead.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: the endpoint answered 2xx. Terminal until replayed.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryDead: the retry schedule is exhausted. Terminal until replayed;
	// it no longer holds back the order's later events.
	DeliveryDead DeliveryStatus = "dead"
)

// Delivery is one event's delivery to one endpoint. A pending delivery
// holds back every later pending delivery of the same order to the same
// endpoint, so an endpoint sees each order's events in order.
type Delivery struct {
	ID int64 `gorm:"primaryKey" json:"id"`
	// Endpoint is the configured endpoint's name.
	Endpoint string `gorm:"size:64;not null;uniqueIndex:ux_deliveries_endpoint_seq,priority:1;index:ix_deliveries_due,priority:1;index:ix_deliveries_order,priority:1" json:"endpoint"`
	// EventSeq is the event's Seq: the delivery order.
	EventSeq   int64          `gorm:"not null;uniqueIndex:ux_deliveries_endpoint_seq,priority:2;index:ix_deliveries_order,priority:5" json:"event_seq"`
	EventID    string         `gorm:"size:40;not null;index" json:"event_id"`
	EventType  EventType      `gorm:"size:40;not null" json:"event_type"`
	AppID      string         `gorm:"size:64;not null;index:ix_deliveries_order,priority:2" json:"app_id"`
	OutOrderNo string         `gorm:"size:64;not null;index:ix_deliveries_order,priority:3" json:"out_order_no"`
	Status     DeliveryStatus `gorm:"size:16;not null;index:ix_deliveries_due,priority:2;index:ix_deliveries_order,priority:4" json:"status"`
	// Attempts counts the POSTs made since the delivery was created or last
	// replayed.
	Attempts int `gorm:"not null;default:0" json:"attempts"`
	// NextAttemptAt is when the delivery is due while pending; a claimed
	// delivery carries its lease expiry here, so a crashed dispatcher's
	// delivery becomes due again by itself.
	NextAttemptAt *time.Time `gorm:"index:ix_deliveries_due,priority:3" json:"next_attempt_at,omitempty"`
	// LeaseOwner names the dispatcher holding the delivery; LeaseUntil is
	// when its hold ends.
	LeaseOwner string     `gorm:"size:64" json:"-"`
	LeaseUntil *time.Time `json:"-"`
	// LastStatus is the HTTP status of the last attempt, 0 when there was no
	// answer.
	LastStatus int `json:"last_status,omitempty"`
	// LastError is the last attempt's error or response snippet.
	LastError   string     `gorm:"size:512" json:"last_error,omitempty"`
	LatencyMS   int64      `json:"latency_ms"` // of the last attempt
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// DeliveryAttempt is one POST of a delivery, appended and never changed:
// the delivery log.
type DeliveryAttempt struct {
	ID         int64  `gorm:"primaryKey" json:"id"`
	DeliveryID int64  `gorm:"not null;index" json:"delivery_id"`
	EventID    string `gorm:"size:40;not null;index" json:"event_id"`
	Endpoint   string `gorm:"size:64;not null" json:"endpoint"`
	// StatusCode is the HTTP status, 0 when there was no answer.
	StatusCode int    `json:"status_code"`
	OK         bool   `json:"ok"`
	LatencyMS  int64  `json:"latency_ms"`
	Snippet    string `gorm:"size:512" json:"snippet,omitempty"` // start of the response body
	Error      string `gorm:"size:512" json:"error,omitempty"`
	CreatedAt  time.Time
}

// DeliveryCursor is how far the outbox has been fanned out to one endpoint.
type DeliveryCursor struct {
	Endpoint  string `gorm:"primaryKey;size:64"`
	LastSeq   int64  `gorm:"not null"`
	UpdatedAt time.Time
}

// Subscription is an endpoint as the store sees it: its name and the event
// types it wants (empty: all).
type Subscription struct {
	Endpoint string
	Types    []string
	// Since is when the process fanning out started with this endpoint
	// configured. An endpoint seen for the first time takes the events
	// created at or after it: whatever that process (or a replica started
	// later) wrote is the endpoint's, however late its first fan-out runs.
	// Zero: none of the events that exist then.
	Since time.Time
}

// Wants reports whether the subscription takes events of type t.
func (s Subscription) Wants(t EventType) bool {
	return len(s.Types) == 0 || slices.Contains(s.Types, string(t))
}

// maxSnippet bounds stored response snippets and errors (bytes).
const maxSnippet = 500

// FanOut creates pending deliveries, due at now, to sub for up to limit
// outbox events after the endpoint's cursor, and moves the cursor past them.
// An endpoint seen for the first time starts at the end of the outbox as it
// was at sub.Since: its cursor is set to the newest event created before
// then, and the events after it are fanned out at once (Replay sends older
// history). Seq values are taken before commit, so on PostgreSQL a later
// event may be visible before an earlier one commits: FanOut stops before a
// gap in Seq unless the event after it is older than gapGrace (a gap that
// old is a rolled-back transaction). It returns how many deliveries it
// created; ErrConflict when another dispatcher moved the cursor meanwhile.
func (s *Store) FanOut(ctx context.Context, sub Subscription, limit int, gapGrace time.Duration, now time.Time) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	now = utc(now)
	created := 0
	err := s.write(ctx, func(tx *gorm.DB) error {
		var cur DeliveryCursor
		err := first(tx.Where("endpoint = ?", sub.Endpoint), &cur)
		if errors.Is(err, ErrNotFound) {
			var last int64
			q := tx.Model(&Event{}).Select("COALESCE(MAX(seq), 0)")
			if !sub.Since.IsZero() {
				q = q.Where("created_at < ?", utc(sub.Since))
			}
			if err := q.Scan(&last).Error; err != nil {
				return fmt.Errorf("read newest event: %w", err)
			}
			cur = DeliveryCursor{Endpoint: sub.Endpoint, LastSeq: last, UpdatedAt: now}
			if err := tx.Create(&cur).Error; err != nil {
				if errors.Is(err, gorm.ErrDuplicatedKey) {
					return ErrConflict
				}
				return fmt.Errorf("create cursor: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("read cursor: %w", err)
		}
		var evs []Event
		if err := tx.Where("seq > ?", cur.LastSeq).Order("seq").Limit(limit).Find(&evs).Error; err != nil {
			return fmt.Errorf("read events after %d: %w", cur.LastSeq, err)
		}
		last := cur.LastSeq
		var rows []Delivery
		for _, ev := range evs {
			if ev.Seq != last+1 && now.Sub(ev.CreatedAt) < gapGrace {
				break // an earlier event may still commit
			}
			last = ev.Seq
			if !sub.Wants(ev.Type) {
				continue
			}
			rows = append(rows, newDelivery(sub.Endpoint, ev, now))
		}
		if last == cur.LastSeq {
			return nil
		}
		if len(rows) > 0 {
			// A replay may have created some of them already.
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows)
			if res.Error != nil {
				return fmt.Errorf("insert deliveries: %w", res.Error)
			}
			created = int(res.RowsAffected)
		}
		res := tx.Model(&DeliveryCursor{}).Where("endpoint = ? AND last_seq = ?", sub.Endpoint, cur.LastSeq).
			Updates(map[string]any{"last_seq": last, "updated_at": now})
		return changed(res)
	})
	if err != nil {
		return 0, fmt.Errorf("fan out events to %s: %w", sub.Endpoint, err)
	}
	return created, nil
}

func newDelivery(endpoint string, ev Event, now time.Time) Delivery {
	return Delivery{
		Endpoint: endpoint, EventSeq: ev.Seq, EventID: ev.ID, EventType: ev.Type, AppID: ev.AppID, OutOrderNo: ev.OutOrderNo,
		Status: DeliveryPending, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now,
	}
}

// DueDelivery is a claimed delivery with the event it carries.
type DueDelivery struct {
	Delivery
	Event Event
}

// dueDeliveriesQuery selects the due deliveries of one endpoint that are the head of
// their order's queue: pending, due, and no earlier delivery of the same
// order to the same endpoint still pending. ix_deliveries_due drives the
// outer scan, ix_deliveries_order the NOT EXISTS probe.
const dueDeliveriesQuery = `SELECT d.id FROM deliveries d
WHERE d.endpoint = ? AND d.status = ? AND d.next_attempt_at <= ?
AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.endpoint = d.endpoint AND p.app_id = d.app_id
  AND p.out_order_no = d.out_order_no AND p.status = ? AND p.event_seq < d.event_seq)
ORDER BY d.event_seq LIMIT ?`

// ClaimDeliveries leases up to limit due deliveries of endpoint to owner
// until now+lease, oldest event first, at most one per order (the head of
// its queue), and returns them with their events. A claimed delivery is not
// due again before the lease ends, so two dispatchers never send it at once.
func (s *Store) ClaimDeliveries(ctx context.Context, endpoint, owner string, limit int, lease time.Duration, now time.Time) ([]DueDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	now = utc(now)
	until := now.Add(lease)
	var out []DueDelivery
	err := s.write(ctx, func(tx *gorm.DB) error {
		var ids []int64
		if err := tx.Raw(dueDeliveriesQuery+s.claimLock(), endpoint, DeliveryPending, now, DeliveryPending, limit).Scan(&ids).Error; err != nil {
			return fmt.Errorf("find due deliveries: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		byID, set := inIDs(tx, "id", ids)
		res := tx.Model(&Delivery{}).Where(byID+" AND status = ? AND next_attempt_at <= ?", set, DeliveryPending, now).
			Updates(map[string]any{"next_attempt_at": until, "lease_owner": owner, "lease_until": until, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("lease deliveries: %w", res.Error)
		}
		if res.RowsAffected != int64(len(ids)) {
			return fmt.Errorf("lease deliveries: %d of %d rows updated: %w", res.RowsAffected, len(ids), ErrConflict)
		}
		var ds []Delivery
		if err := tx.Where(byID, set).Order("event_seq").Find(&ds).Error; err != nil {
			return fmt.Errorf("read deliveries: %w", err)
		}
		seqs := make([]int64, len(ds))
		for i, d := range ds {
			seqs[i] = d.EventSeq
		}
		var evs []Event
		if err := tx.Where(inIDs(tx, "seq", seqs)).Find(&evs).Error; err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		bySeq := make(map[int64]Event, len(evs))
		for _, ev := range evs {
			bySeq[ev.Seq] = ev
		}
		for _, d := range ds {
			ev, ok := bySeq[d.EventSeq]
			if !ok {
				return fmt.Errorf("delivery %d: event %s: %w", d.ID, d.EventID, ErrNotFound)
			}
			out = append(out, DueDelivery{Delivery: d, Event: ev})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries of %s: %w", endpoint, err)
	}
	return out, nil
}

// AttemptResult is the outcome of one POST of a claimed delivery.
type AttemptResult struct {
	DeliveryID int64
	// Owner must be the lease owner the delivery was claimed by.
	Owner string
	// OK: the endpoint acknowledged (2xx).
	OK         bool
	StatusCode int
	Latency    time.Duration
	Snippet    string // start of the response body
	Error      string // transport error, redirect, timeout
	// RetryAt is when to try again after a failure; nil marks the delivery
	// dead (the schedule is exhausted). Ignored when OK.
	RetryAt *time.Time
}

// RecordAttempt appends the attempt to the delivery log and, in the same
// transaction, marks the delivery delivered, schedules its retry or marks it
// dead. ErrConflict when the delivery is no longer pending under owner's
// lease (it was replayed or its lease was taken over meanwhile).
func (s *Store) RecordAttempt(ctx context.Context, r AttemptResult, now time.Time) (*Delivery, error) {
	now = utc(now)
	snippet, errText := truncate(r.Snippet, maxSnippet), truncate(r.Error, maxSnippet)
	var d Delivery
	err := s.write(ctx, func(tx *gorm.DB) error {
		if err := first(tx.Where("id = ?", r.DeliveryID), &d); err != nil {
			return err
		}
		if d.Status != DeliveryPending || d.LeaseOwner != r.Owner {
			return ErrConflict
		}
		if err := tx.Create(&DeliveryAttempt{
			DeliveryID: d.ID, EventID: d.EventID, Endpoint: d.Endpoint, StatusCode: r.StatusCode, OK: r.OK,
			LatencyMS: r.Latency.Milliseconds(), Snippet: snippet, Error: errText, CreatedAt: now,
		}).Error; err != nil {
			return fmt.Errorf("insert attempt: %w", err)
		}
		last := errText
		if last == "" {
			last = snippet
		}
		upd := map[string]any{
			"attempts": d.Attempts + 1, "last_status": r.StatusCode, "last_error": last,
			"latency_ms": r.Latency.Milliseconds(), "lease_owner": "", "lease_until": nil, "updated_at": now,
		}
		switch {
		case r.OK:
			upd["status"], upd["delivered_at"], upd["next_attempt_at"], upd["last_error"] = DeliveryDelivered, now, nil, ""
		case r.RetryAt != nil:
			upd["status"], upd["next_attempt_at"] = DeliveryPending, utc(*r.RetryAt)
		default:
			upd["status"], upd["next_attempt_at"] = DeliveryDead, nil
		}
		res := tx.Model(&Delivery{}).Where("id = ? AND status = ? AND lease_owner = ? AND attempts = ?", d.ID, DeliveryPending, r.Owner, d.Attempts).Updates(upd)
		if err := changed(res); err != nil {
			return err
		}
		return first(tx.Where("id = ?", d.ID), &d)
	})
	if err != nil {
		return nil, fmt.Errorf("record attempt of delivery %d: %w", r.DeliveryID, err)
	}
	return &d, nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// DeliveryFilter selects deliveries for ListDeliveries.
type DeliveryFilter struct {
	// Endpoint limits the list to one endpoint; "" for all.
	Endpoint string
	// EventID limits the list to one event; "" for all.
	EventID string
	// Failed keeps dead deliveries and pending ones with a failed attempt.
	Failed bool
	// Limit bounds the list; 100 when zero.
	Limit int
}

// ListDeliveries returns deliveries matching f, newest event first.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q := s.session(ctx).Model(&Delivery{})
	if f.Endpoint != "" {
		q = q.Where("endpoint = ?", f.Endpoint)
	}
	if f.EventID != "" {
		q = q.Where("event_id = ?", f.EventID)
	}
	if f.Failed {
		q = q.Where("status = ? OR (status = ? AND attempts > 0)", DeliveryDead, DeliveryPending)
	}
	var out []Delivery
	if err := q.Order("event_seq DESC, id").Limit(f.Limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// DeliveryLog returns every attempt of delivery id, oldest first.
func (s *Store) DeliveryLog(ctx context.Context, id int64) ([]DeliveryAttempt, error) {
	var out []DeliveryAttempt
	if err := s.session(ctx).Where("delivery_id = ?", id).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read attempts of delivery %d: %w", id, err)
	}
	return out, nil
}

// DeliveryCounts counts deliveries by status.
func (s *Store) DeliveryCounts(ctx context.Context) (map[DeliveryStatus]int64, error) {
	var rows []struct {
		Status DeliveryStatus
		N      int64
	}
	if err := s.session(ctx).Model(&Delivery{}).Select("status, COUNT(*) AS n").Group("status").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	out := map[DeliveryStatus]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// replayBatch bounds the events Replay reads at once.
const replayBatch = 500

// ReplayEvent makes event id due now again at every subscription that wants
// its type: a delivered or dead delivery goes back to pending with a fresh
// retry schedule, a missing one is created. A delivery in flight under a
// live lease is left alone. It returns how many deliveries it made due;
// ErrNotFound when there is no such event.
func (s *Store) ReplayEvent(ctx context.Context, subs []Subscription, id string, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *gorm.DB) error {
		var ev Event
		if err := first(tx.Where("id = ?", id), &ev); err != nil {
			return err
		}
		var err error
		n, err = s.replay(tx, subs, []Event{ev}, utc(now))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("replay event %s: %w", id, err)
	}
	return n, nil
}

// ReplaySince is ReplayEvent for every event created at or after since.
func (s *Store) ReplaySince(ctx context.Context, subs []Subscription, since, now time.Time) (int, error) {
	since, now = utc(since), utc(now)
	total := 0
	var after int64
	for {
		var evs []Event
		if err := s.session(ctx).Where("created_at >= ? AND seq > ?", since, after).Order("seq").Limit(replayBatch).Find(&evs).Error; err != nil {
			return total, fmt.Errorf("replay events since %s: read events: %w", since.Format(time.RFC3339), err)
		}
		if len(evs) == 0 {
			return total, nil
		}
		var n int
		err := s.write(ctx, func(tx *gorm.DB) error {
			var err error
			n, err = s.replay(tx, subs, evs, now)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("replay events since %s: %w", since.Format(time.RFC3339), err)
		}
		total += n
		after = evs[len(evs)-1].Seq
	}
}

func (s *Store) replay(tx *gorm.DB, subs []Subscription, evs []Event, now time.Time) (int, error) {
	n := 0
	for _, sub := range subs {
		for _, ev := range evs {
			if !sub.Wants(ev.Type) {
				continue
			}
			row := newDelivery(sub.Endpoint, ev, now)
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
			if res.Error != nil {
				return n, fmt.Errorf("create delivery of %s to %s: %w", ev.ID, sub.Endpoint, res.Error)
			}
			if res.RowsAffected == 1 {
				n++
				continue
			}
			res = tx.Model(&Delivery{}).
				Where("endpoint = ? AND event_seq = ? AND NOT (status = ? AND lease_until IS NOT NULL AND lease_until > ?)", sub.Endpoint, ev.Seq, DeliveryPending, now).
				Updates(map[string]any{
					"status": DeliveryPending, "attempts": 0, "next_attempt_at": now, "lease_owner": "", "lease_until": nil,
					"delivered_at": nil, "updated_at": now,
				})
			if res.Error != nil {
				return n, fmt.Errorf("reset delivery of %s to %s: %w", ev.ID, sub.Endpoint, res.Error)
			}
			n += int(res.RowsAffected)
		}
	}
	return n, nil
}
