package state

import (
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// contribution is the rule of one counter kind: every row of table that
// matches where counts once under (scope, label, bucket) and adds amount.
// Expressions are SQL over the row ($r.) and, when withOrder, its order
// ($o., orders.id = $r.order_id; for the orders table $o is the row).
// The same rule generates the triggers that keep the counter (SQLite and
// PostgreSQL) and the query that recounts it from the rows.
type contribution struct {
	kind      CounterKind
	table     string
	withOrder bool
	scope     string
	label     string
	amount    string
	// bucketAt is a time expression: the bucket is its start, bucketWidth
	// seconds wide (0 when the expression is NULL); "" for bucket 0.
	bucketAt    string
	bucketWidth int64
	// where selects the rows that count, over $r only ("" for all).
	where string
	// deps are the row's columns the contribution reads; orderDeps its
	// order's (withOrder): a change of one of them moves the row's count.
	deps, orderDeps []string
}

// contributions are the trigger-kept counters (CountRefused is written by
// the callback handler instead).
var contributions = []contribution{
	{kind: CountOrders, table: "orders", scope: "$r.app_id", label: "$r.status", amount: "$r.total_amount",
		deps: []string{"app_id", "status", "total_amount"}},
	{kind: CountAutoSettle, table: "orders", scope: "$r.app_id", label: "''", amount: "$r.total_amount - $r.cps_share",
		bucketAt: "$r.auto_settle_at", bucketWidth: 3600, where: "$r.auto_settle_at IS NOT NULL",
		deps: []string{"app_id", "auto_settle_at", "total_amount", "cps_share"}},
	{kind: CountRefunds, table: "refunds", withOrder: true, scope: "$o.app_id", label: "$r.phase", amount: "$r.amount",
		deps: []string{"order_id", "phase", "amount"}, orderDeps: []string{"app_id"}},
	{kind: CountSettlements, table: "settlements", withOrder: true, scope: "$o.app_id", label: "$r.phase", amount: "$r.amount",
		deps: []string{"order_id", "phase", "amount"}, orderDeps: []string{"app_id"}},
	{kind: CountDue, table: "settlements", withOrder: true, scope: "$o.app_id", label: "''",
		amount:   "CASE WHEN $r.item_order_id = '' THEN $o.total_amount - $o.cps_share ELSE 0 END",
		bucketAt: "COALESCE($r.due_at, $o.settle_after)", bucketWidth: 3600, where: "$r.phase = 'pending'",
		deps: []string{"order_id", "phase", "due_at", "item_order_id"}, orderDeps: []string{"app_id", "settle_after", "total_amount", "cps_share"}},
	{kind: CountSettled, table: "settlements", withOrder: true, scope: "$o.app_id", label: "''", amount: "$r.amount",
		bucketAt: "COALESCE($r.done_at, $r.updated_at)", bucketWidth: 3600, where: "$r.phase = 'succeeded'",
		deps: []string{"order_id", "phase", "amount", "done_at", "updated_at"}, orderDeps: []string{"app_id"}},
	{kind: CountDeliveries, table: "deliveries", scope: "$r.endpoint", label: "$r.status", amount: "0",
		deps: []string{"endpoint", "status"}},
	{kind: CountCalls, table: "attempts", scope: "''", label: "$r.api", amount: "CASE WHEN $r.err_no <> 0 THEN 1 ELSE 0 END",
		bucketAt: "$r.created_at", bucketWidth: 300, deps: []string{"api", "err_no", "created_at"}},
	{kind: CountBusy, table: "attempts", scope: "''", label: "CAST($r.err_no AS TEXT)", amount: "0",
		bucketAt: "$r.created_at", bucketWidth: 300, where: "$r.err_no IN (1001, 12001)", deps: []string{"err_no", "created_at"}},
	{kind: CountCallbacks, table: "callbacks", scope: "$r.app_id", label: "$r.type", amount: "0",
		bucketAt: "$r.received_at", bucketWidth: 3600, deps: []string{"app_id", "type", "received_at"}},
}

// bucketSQL is the dialect's bucket start (unix seconds) of a time
// expression.
func bucketSQL(d string, at string, width int64) string {
	if at == "" {
		return "0"
	}
	if d == DriverPostgres {
		return fmt.Sprintf("COALESCE(floor(extract(epoch FROM %s) / %d)::bigint * %d, 0)", at, width, width)
	}
	return fmt.Sprintf("COALESCE(CAST(strftime('%%s', %s) AS INTEGER) / %d * %d, 0)", at, width, width)
}

// bind replaces the row and order placeholders of an expression.
func bind(expr, r, o string) string {
	return strings.NewReplacer("$r.", r+".", "$o.", o+".").Replace(expr)
}

func and(conds ...string) string {
	var keep []string
	for _, c := range conds {
		if c != "" {
			keep = append(keep, "("+c+")")
		}
	}
	if len(keep) == 0 {
		return "1 = 1"
	}
	return strings.Join(keep, " AND ")
}

// selectSQL is the SELECT of (scope, kind, label, bucket, n, amount) this
// rule yields for row r and order o, signed; from is its FROM clause (may
// be "") and on the condition tying the order to the row.
func (c contribution) selectSQL(d string, r, o, from, on string, sign int) string {
	e := func(x string) string { return bind(x, r, o) }
	return fmt.Sprintf("SELECT %s, '%s', COALESCE(%s, ''), %s, %d, %d * (%s)%s WHERE %s",
		e(c.scope), c.kind, e(c.label), e(bucketSQL(d, c.bucketAt, c.bucketWidth)), sign, sign, e(c.amount), from, and(on, e(c.where)))
}

// rowSelect is selectSQL for a trigger on c.table, the row being rec (NEW
// or OLD).
func (c contribution) rowSelect(d string, rec string, sign int) string {
	if !c.withOrder {
		return c.selectSQL(d, rec, rec, "", "", sign)
	}
	return c.selectSQL(d, rec, "o", " FROM orders o", "o.id = "+rec+".order_id", sign)
}

// orderSelect is selectSQL for a trigger on orders, rec (NEW or OLD) being
// the order of c.table's rows.
func (c contribution) orderSelect(d string, rec string, sign int) string {
	return c.selectSQL(d, "r", rec, " FROM "+c.table+" r", "r.order_id = "+rec+".id", sign)
}

// recount is the query that computes the rule's counters from the rows.
func (c contribution) recount(d string) string {
	from, o := " FROM "+c.table+" r", "r"
	if c.withOrder {
		from, o = from+" JOIN orders o ON o.id = r.order_id", "o"
	}
	e := func(x string) string { return bind(x, "r", o) }
	return fmt.Sprintf("SELECT '%s' AS kind, %s AS scope, %s AS bucket, COALESCE(%s, '') AS label, COUNT(*) AS n, COALESCE(SUM(%s), 0) AS amount%s WHERE %s GROUP BY 2, 3, 4",
		c.kind, e(c.scope), e(bucketSQL(d, c.bucketAt, c.bucketWidth)), e(c.label), e(c.amount), from, and(e(c.where)))
}

// changedSQL is the condition "one of cols differs between OLD and NEW".
func changedSQL(d string, cols []string) string {
	op := " IS NOT "
	if d == DriverPostgres {
		op = " IS DISTINCT FROM "
	}
	parts := make([]string, len(cols))
	for i, col := range cols {
		parts[i] = "OLD." + col + op + "NEW." + col
	}
	return strings.Join(parts, " OR ")
}

// trigger is one generated trigger: its name, table, event, WHEN condition
// and the statements it runs.
type trigger struct {
	name, table, event, when string
	body                     []string
}

const deltaInsert = "INSERT INTO counter_deltas (scope, kind, label, bucket, n, amount) "

// triggers are the triggers that keep every rule's counters.
func triggers(d string) []trigger {
	var out []trigger
	for _, c := range contributions {
		name := "ctr_" + c.table + "_" + string(c.kind)
		guard := ""
		if c.where != "" { // only rows that counted before or count now
			guard = and(bind(c.where, "OLD", "OLD")+" OR "+bind(c.where, "NEW", "NEW"), changedSQL(d, c.deps))
		} else {
			guard = changedSQL(d, c.deps)
		}
		out = append(out,
			trigger{name + "_ins", c.table, "INSERT", "", []string{deltaInsert + c.rowSelect(d, "NEW", 1)}},
			trigger{name + "_upd", c.table, updateOf(c.deps), guard, []string{deltaInsert + c.rowSelect(d, "OLD", -1), deltaInsert + c.rowSelect(d, "NEW", 1)}},
			trigger{name + "_del", c.table, "DELETE", "", []string{deltaInsert + c.rowSelect(d, "OLD", -1)}})
		if c.withOrder {
			out = append(out, trigger{"ctr_orders_" + string(c.kind) + "_of_" + c.table, "orders", updateOf(c.orderDeps), changedSQL(d, c.orderDeps),
				[]string{deltaInsert + c.orderSelect(d, "OLD", -1), deltaInsert + c.orderSelect(d, "NEW", 1)}})
		}
	}
	return out
}

// updateOf is the event of an update trigger that depends on cols only:
// "UPDATE OF a, b", so that an UPDATE setting none of them (a claim's or a
// release's lease columns, on every due order) does not even evaluate the
// trigger's condition. An UPDATE that changes a column names it in its SET,
// so no change that counts is missed; the WHEN condition still drops the
// updates that set a column to its old value.
func updateOf(cols []string) string {
	if len(cols) == 0 {
		return "UPDATE"
	}
	return "UPDATE OF " + strings.Join(cols, ", ")
}

// dropSQL is the DDL removing t, if it exists.
func (t trigger) dropSQL(d string) string {
	if d != DriverPostgres {
		return "DROP TRIGGER IF EXISTS " + t.name
	}
	return "DROP TRIGGER IF EXISTS " + t.name + " ON " + t.table
}

// createSQL is the DDL creating t: one CREATE TRIGGER on SQLite; a
// function and its trigger on PostgreSQL.
func (t trigger) createSQL(d string) []string {
	when := ""
	if t.when != "" {
		when = " WHEN (" + t.when + ")"
	}
	if d != DriverPostgres {
		return []string{fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s FOR EACH ROW%s BEGIN %s; END",
			t.name, t.event, t.table, when, strings.Join(t.body, "; "))}
	}
	return []string{
		fmt.Sprintf("CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN %s; RETURN NULL; END $fn$",
			t.name, strings.Join(t.body, "; ")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s FOR EACH ROW%s EXECUTE FUNCTION %s()", t.name, t.event, t.table, when, t.name),
	}
}

// migrateCounters is schema step 14: the counter tables, the triggers
// (created before the backfill, so on PostgreSQL a write that commits
// after this step either waited for its locks and fired them, or is in
// the backfill's snapshot), and the backfill from every row. It may run
// again (a test taking the schema back): it replaces the triggers and
// recounts.
func migrateCounters(tx *gorm.DB) error {
	d := DriverSQLite
	if tx.Dialector.Name() == "postgres" {
		d = DriverPostgres
	}
	if d == DriverSQLite {
		// A rowid key without AUTOINCREMENT: no sqlite_sequence update per
		// delta (ids may be reused once folded, which nothing minds).
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS counter_deltas (id integer PRIMARY KEY, kind text NOT NULL, scope text NOT NULL,
			bucket integer NOT NULL, label text NOT NULL, n integer NOT NULL, amount integer NOT NULL)`).Error; err != nil {
			return err
		}
	}
	if err := tx.Migrator().AutoMigrate(&Counter{}, &counterDelta{}); err != nil {
		return err
	}
	if err := dropCounterTriggers(tx, d); err != nil {
		return err
	}
	for _, q := range []string{"DELETE FROM counters", "DELETE FROM counter_deltas"} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	for _, t := range triggers(d) {
		for _, q := range t.createSQL(d) {
			if err := tx.Exec(q).Error; err != nil {
				return fmt.Errorf("trigger %s: %w", t.name, err)
			}
		}
	}
	for _, c := range contributions {
		q := "INSERT INTO counters (kind, scope, bucket, label, n, amount) SELECT kind, scope, bucket, label, n, amount FROM (" + c.recount(d) + ") b"
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("backfill %s: %w", c.kind, err)
		}
	}
	return nil
}

// dropCounterTriggers removes every counter trigger (migrateCounters
// re-creates them; tests that take the schema back before step 14 drop
// them, as such a schema had none).
func dropCounterTriggers(tx *gorm.DB, d string) error {
	for _, t := range triggers(d) {
		if err := tx.Exec(t.dropSQL(d)).Error; err != nil {
			return fmt.Errorf("drop trigger %s: %w", t.name, err)
		}
	}
	return nil
}
