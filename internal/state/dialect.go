package state

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// This file is the one place where SQLite and PostgreSQL differ. Everything
// else is SQL both accept (with GORM turning ? into $n for PostgreSQL).

func dialector(o Options) gorm.Dialector {
	if o.Driver == DriverPostgres {
		return postgres.Open(o.DSN)
	}
	return sqlite.New(sqlite.Config{DriverName: sqliteDriverName, DSN: sqliteDSN(o)})
}

// sqliteDSN turns a file path into a mattn/go-sqlite3 URI with payd's
// pragmas, applied by the driver to every connection it opens:
//   - WAL, so readers do not block the writer;
//   - a busy timeout, so a second writer waits instead of failing;
//   - foreign keys on (SQLite's default is off);
//   - synchronous (FULL by default: a commit is on disk when it returns);
//   - _txlock=immediate: BEGIN takes the write lock at once, so a
//     transaction never fails with SQLITE_BUSY when it first writes.
func sqliteDSN(o Options) string {
	// The path is a URI path: escape what would end it or be decoded.
	path := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(o.DSN)
	return fmt.Sprintf("file:%s?_journal_mode=WAL&_busy_timeout=%d&_foreign_keys=on&_synchronous=%s&_txlock=immediate",
		path, o.BusyTimeout.Milliseconds(), o.Synchronous)
}

// claimLock is appended to the due query when claiming: on PostgreSQL,
// replicas skip each other's rows instead of queueing behind them. SQLite
// has one writer at a time (BEGIN IMMEDIATE), which is lock enough.
func (s *Store) claimLock() string {
	if s.dialect == DriverPostgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// session is s.db bound to ctx for one operation. On SQLite its statements
// run under a context that is never cancelled: mattn/go-sqlite3 steps every
// row of a query with a cancellable context in a goroutine of its own, and
// execs likewise, which made a reconcile pass in payd serve (whose contexts
// end on SIGTERM) 1.5 times slower than the same pass under
// context.Background. payd's statements are short and indexed, and a
// context already done still fails the operation at once. The cost: a
// statement waiting on another process's lock waits out the busy timeout
// even when ctx ends meanwhile.
func (s *Store) session(ctx context.Context) *gorm.DB {
	if s.dialect != DriverPostgres && ctx.Done() != nil && ctx.Err() == nil {
		ctx = context.WithoutCancel(ctx)
	}
	return s.db.WithContext(ctx)
}

// migrationLockKey is the PostgreSQL advisory lock that serializes
// migrators: "payd" in ASCII.
const migrationLockKey = 0x70617964

// migrationLock holds off other migrators until tx ends: on PostgreSQL a
// transaction-scoped advisory lock (replicas share one database); on
// SQLite the write lock BEGIN IMMEDIATE already took.
func (s *Store) migrationLock(tx *gorm.DB) error {
	if s.dialect != DriverPostgres {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockKey).Error
}

// read runs fn in a transaction that sees one snapshot: on PostgreSQL a
// read-only REPEATABLE READ one (READ COMMITTED would give each statement
// its own); on SQLite any transaction is a snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var opts *sql.TxOptions
	if s.dialect == DriverPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return transaction(s.session(ctx), fn, opts)
}

// explain returns the database's plan for query, one step per line.
func (s *Store) explain(ctx context.Context, query string, args ...any) (string, error) {
	prefix := "EXPLAIN QUERY PLAN "
	if s.dialect == DriverPostgres {
		prefix = "EXPLAIN "
	}
	rows, err := s.session(ctx).Raw(prefix+query, args...).Rows()
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", fmt.Errorf("explain: %w", err)
		}
		// SQLite: id, parent, notused, detail; PostgreSQL: one text column.
		fmt.Fprintf(&b, "%s\n", asText(vals[len(vals)-1]))
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	return b.String(), nil
}

func asText(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

// inIDs is the condition "col is one of ids" with the set bound as one
// parameter (returned with it): json_each over a JSON array on SQLite,
// ANY over an array on PostgreSQL. GORM would expand a slice into one
// placeholder per id, which makes every set size a statement of its own
// that the database parses again (a thousand placeholders cost ~0.5 ms on
// SQLite); this text is the same for every set.
func inIDs(tx *gorm.DB, col string, ids []int64) (string, string) {
	return inSet(tx, col), idSet(tx, ids)
}

// inSet is inIDs' condition alone, for a set already built (idSet).
func inSet(tx *gorm.DB, col string) string {
	if isPostgres(tx) {
		return col + " = ANY(CAST(? AS bigint[]))"
	}
	return col + " IN (SELECT value FROM json_each(?))"
}

// idSet is inIDs' parameter: ids as a PostgreSQL array or a JSON array.
func idSet(tx *gorm.DB, ids []int64) string {
	var b strings.Builder
	lb, rb := byte('['), byte(']')
	if isPostgres(tx) {
		lb, rb = '{', '}'
	}
	b.Grow(len(ids)*8 + 2)
	b.WriteByte(lb)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(rb)
	return b.String()
}

func isPostgres(tx *gorm.DB) bool { return tx.Dialector.Name() == DriverPostgres }

// idTimes is a table j(id, t) of the orders and their next times, bound as
// parameters (returned with it), for an UPDATE … FROM: json_each over
// [[id, time], …] on SQLite, with the times in the text mattn/go-sqlite3
// stores (the column compares as text); unnest of two arrays on
// PostgreSQL. A nil time is NULL.
func idTimes(tx *gorm.DB, rows []idleOrder) (string, []any) {
	var b strings.Builder
	if isPostgres(tx) {
		ids := make([]int64, len(rows))
		b.WriteByte('{')
		for i, r := range rows {
			ids[i] = r.id
			if i > 0 {
				b.WriteByte(',')
			}
			if r.next == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(`"` + r.next.UTC().Format(time.RFC3339Nano) + `"`)
			}
		}
		b.WriteByte('}')
		return "unnest(CAST(? AS bigint[]), CAST(? AS timestamptz[])) AS j(id, t)", []any{idSet(tx, ids), b.String()}
	}
	b.WriteByte('[')
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("[" + strconv.FormatInt(r.id, 10) + ",")
		if r.next == nil {
			b.WriteString("null]")
		} else {
			b.WriteString(`"` + r.next.UTC().Format(sqlite3.SQLiteTimestampFormats[0]) + `"]`)
		}
	}
	b.WriteByte(']')
	return "(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS t FROM json_each(?)) AS j", []any{b.String()}
}
