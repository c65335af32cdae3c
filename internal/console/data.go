package console

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/payd/payd/internal/state"
)

// pageSize is the rows of one page of every list.
const pageSize = 50

// Keyset cursors: "<id>" for lists in id order, "<unix nanos>.<id>" for
// lists in (updated_at, id) order. Every list reads pageSize+1 rows from
// an index, whatever the table's size.

func parseIDCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, badRequestf("cursor %q: want a row number", s)
	}
	return id, nil
}

type timeCursor struct {
	at time.Time
	id int64
}

func parseTimeCursor(s string) (*timeCursor, error) {
	if s == "" {
		return nil, nil
	}
	ts, ids, ok := strings.Cut(s, ".")
	n, err1 := strconv.ParseInt(ts, 10, 64)
	id, err2 := strconv.ParseInt(ids, 10, 64)
	if !ok || err1 != nil || err2 != nil || id < 1 {
		return nil, badRequestf("cursor %q: want <time>.<row>", s)
	}
	return &timeCursor{at: time.Unix(0, n).UTC(), id: id}, nil
}

func (t timeCursor) String() string { return fmt.Sprintf("%d.%d", t.at.UnixNano(), t.id) }

// ordersPage is one page of orders, newest first.
type ordersPage struct {
	Orders []state.Order
	Next   string
	Status string
	App    string
}

func listOrders(ctx context.Context, db *gorm.DB, app, status, cursor string) (*ordersPage, error) {
	before, err := parseIDCursor(cursor)
	if err != nil {
		return nil, err
	}
	q := db.WithContext(ctx).Model(&state.Order{})
	if status != "" {
		q = q.Where("status = ?", status)
	}
	if app != "" {
		q = q.Where("app_id = ?", app)
	}
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	p := &ordersPage{Status: status, App: app}
	if err := q.Order("id DESC").Limit(pageSize + 1).Find(&p.Orders).Error; err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	if len(p.Orders) > pageSize {
		p.Orders = p.Orders[:pageSize]
		p.Next = strconv.FormatInt(p.Orders[pageSize-1].ID, 10)
	}
	return p, nil
}

// parkedRow is a parked refund or settlement as the attention page lists it.
type parkedRow struct {
	Kind       string // refund or settlement
	AppID      string
	OutOrderNo string
	Key        string // the refund's key; "" for a settlement
	Number     string
	Amount     int64
	Reason     string
	At         time.Time
	Item       string // the action form's value
}

type parkedPage struct {
	Rows []parkedRow
	Next string
}

// listParked reads one page of parked items of table (refunds or
// settlements), most recently parked first, through ix_<table>_phase_updated.
func listParked(ctx context.Context, db *gorm.DB, table, cursor string) (*parkedPage, error) {
	cur, err := parseTimeCursor(cursor)
	if err != nil {
		return nil, err
	}
	number, key, amount := "r.out_refund_no", "r.idem_key", "r.amount"
	if table == "settlements" {
		number, key, amount = "r.out_settle_no", "r.item_order_id", "r.amount"
	}
	q := db.WithContext(ctx).Table(table+" AS r").
		Select("r.id, r.updated_at, r.park_reason, o.app_id, o.out_order_no, "+number+" AS number, "+key+" AS k, "+amount+" AS amount, o.total_amount").
		Joins("JOIN orders o ON o.id = r.order_id").Where("r.phase = ?", state.PhaseParked)
	if cur != nil {
		q = q.Where("(r.updated_at < ? OR (r.updated_at = ? AND r.id < ?))", cur.at, cur.at, cur.id)
	}
	var rows []struct {
		ID          int64
		UpdatedAt   time.Time
		ParkReason  string
		AppID       string
		OutOrderNo  string
		Number      string
		K           string
		Amount      int64
		TotalAmount int64
	}
	if err := q.Order("r.updated_at DESC, r.id DESC").Limit(pageSize + 1).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list parked %s: %w", table, err)
	}
	p := &parkedPage{}
	for i, r := range rows {
		if i == pageSize {
			p.Next = timeCursor{at: rows[i-1].UpdatedAt, id: rows[i-1].ID}.String()
			break
		}
		row := parkedRow{Kind: "refund", AppID: r.AppID, OutOrderNo: r.OutOrderNo, Key: r.K, Number: r.Number,
			Amount: r.Amount, Reason: r.ParkReason, At: r.UpdatedAt, Item: "refund:" + r.K}
		if table == "settlements" {
			// k is the item order of an item settlement ("" for a whole
			// order's): its buttons name it.
			row.Kind, row.Key, row.Item = "settlement", "", settlementItem(r.AppID, r.OutOrderNo, r.K)
			if row.Amount == 0 {
				row.Amount = r.TotalAmount
			}
		}
		p.Rows = append(p.Rows, row)
	}
	return p, nil
}

type deliveriesPage struct {
	Rows     []state.Delivery
	Next     string
	Endpoint string
	Failed   bool
}

// listDeliveries reads one page of deliveries, newest first; failed keeps
// dead ones and pending ones with a failed attempt.
func listDeliveries(ctx context.Context, db *gorm.DB, endpoint string, failed bool, cursor string) (*deliveriesPage, error) {
	before, err := parseIDCursor(cursor)
	if err != nil {
		return nil, err
	}
	q := db.WithContext(ctx).Model(&state.Delivery{})
	if endpoint != "" {
		q = q.Where("endpoint = ?", endpoint)
	}
	if failed {
		q = q.Where("(status = ? OR (status = ? AND attempts > 0 AND last_status NOT BETWEEN 200 AND 299))", state.DeliveryDead, state.DeliveryPending)
	}
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	p := &deliveriesPage{Endpoint: endpoint, Failed: failed}
	if err := q.Order("id DESC").Limit(pageSize + 1).Find(&p.Rows).Error; err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	if len(p.Rows) > pageSize {
		p.Rows = p.Rows[:pageSize]
		p.Next = strconv.FormatInt(p.Rows[pageSize-1].ID, 10)
	}
	return p, nil
}

// hit is one search result: an order and what about it matched.
type hit struct {
	AppID, OutOrderNo, Matched string
}

// search finds orders by any number a merchant or Douyin support would
// quote; every column it reads is indexed.
func search(ctx context.Context, db *gorm.DB, q string) ([]hit, error) {
	db = db.WithContext(ctx)
	var hits []hit
	seen := map[string]bool{}
	add := func(app, no, what string) {
		if !seen[app+"/"+no] {
			seen[app+"/"+no] = true
			hits = append(hits, hit{AppID: app, OutOrderNo: no, Matched: what})
		}
	}
	type ref struct{ AppID, OutOrderNo string }
	lookups := []struct {
		what, from, where string
	}{
		{"out_order_no", "orders o", "o.out_order_no = ?"},
		{"Douyin order_id", "orders o", "o.order_id = ?"},
		{"out_refund_no", "refunds r JOIN orders o ON o.id = r.order_id", "r.out_refund_no = ?"},
		{"refund key", "refunds r JOIN orders o ON o.id = r.order_id", "r.idem_key = ?"},
		{"Douyin refund_id", "refunds r JOIN orders o ON o.id = r.order_id", "r.refund_no = ?"},
		{"out_settle_no", "settlements r JOIN orders o ON o.id = r.order_id", "r.out_settle_no = ?"},
		{"Douyin settle_id", "settlements r JOIN orders o ON o.id = r.order_id", "r.settle_no = ?"},
		{"an earlier attempt's number", "attempts r JOIN orders o ON o.id = r.order_id", "r.merchant_no = ?"},
		{"event id", "events o", "o.id = ?"},
	}
	for _, l := range lookups {
		var refs []ref
		if err := db.Table(l.from).Select("o.app_id, o.out_order_no").Where(l.where, q).Limit(20).Scan(&refs).Error; err != nil {
			return nil, fmt.Errorf("search %s: %w", l.what, err)
		}
		for _, r := range refs {
			add(r.AppID, r.OutOrderNo, l.what)
		}
	}
	return hits, nil
}

// orderDeliveries returns the deliveries of the given events.
func orderDeliveries(ctx context.Context, db *gorm.DB, eventIDs []string) ([]state.Delivery, error) {
	if len(eventIDs) == 0 {
		return nil, nil
	}
	var out []state.Delivery
	if err := db.WithContext(ctx).Where("event_id IN ?", eventIDs).Order("event_seq, endpoint").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	return out, nil
}

// auditRow is a refund awaiting the merchant's audit, as the attention
// page lists it.
type auditRow struct {
	AppID, OutOrderNo, Key, Source string
	Amount                         int64
	Reason                         string
	Phase                          state.AuditPhase
	Decision                       state.AuditDecision
	ErrTips                        string
	Deadline                       *time.Time
	Item                           string
}

type auditsPage struct {
	Rows []auditRow
	Next string
}

// openAudits are the audit phases that wait for a person: no decision yet
// (waiting), or Douyin refused the one sent (refused). A decided one is
// the reconciler's to send, and leaves the list.
var openAudits = []state.AuditPhase{state.AuditWaiting, state.AuditRefused}

// listAudits reads one page of refunds awaiting audit, soonest deadline
// first (ix_refunds_audit); the cursor is "<deadline unix nanos>.<id>".
func listAudits(ctx context.Context, db *gorm.DB, cursor string) (*auditsPage, error) {
	cur, err := parseTimeCursor(cursor)
	if err != nil {
		return nil, err
	}
	q := db.WithContext(ctx).Table("refunds AS r").
		Select("r.id, r.idem_key, r.amount, r.reason, r.source, r.audit_phase, r.audit_decision, r.err_tips, r.audit_deadline, o.app_id, o.out_order_no").
		Joins("JOIN orders o ON o.id = r.order_id").Where("r.audit_phase IN ? AND r.phase = ?", openAudits, state.PhaseProcessing)
	if cur != nil {
		q = q.Where("(r.audit_deadline > ? OR (r.audit_deadline = ? AND r.id > ?))", cur.at, cur.at, cur.id)
	}
	var rows []struct {
		ID            int64
		IdemKey       string
		Amount        int64
		Reason        string
		Source        string
		AuditPhase    state.AuditPhase
		AuditDecision state.AuditDecision
		ErrTips       string
		AuditDeadline *time.Time
		AppID         string
		OutOrderNo    string
	}
	if err := q.Order("r.audit_deadline, r.id").Limit(pageSize + 1).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list audits: %w", err)
	}
	p := &auditsPage{}
	for i, r := range rows {
		if i == pageSize {
			if d := rows[i-1].AuditDeadline; d != nil {
				p.Next = timeCursor{at: *d, id: rows[i-1].ID}.String()
			}
			break
		}
		p.Rows = append(p.Rows, auditRow{AppID: r.AppID, OutOrderNo: r.OutOrderNo, Key: r.IdemKey, Source: r.Source, Amount: r.Amount,
			Reason: r.Reason, Phase: r.AuditPhase, Decision: r.AuditDecision, ErrTips: r.ErrTips, Deadline: r.AuditDeadline, Item: "refund:" + r.IdemKey})
	}
	return p, nil
}

// settlementItem is the action item of a settlement: the whole order's, or
// one item order's.
func settlementItem(app, no, itemOrderID string) string {
	if itemOrderID == "" {
		return "settlement:" + app + "/" + no
	}
	return "settlement:" + app + "/" + no + "/" + itemOrderID
}
