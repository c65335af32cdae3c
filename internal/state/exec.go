package state

import (
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// exec runs one statement on db's connection (its transaction or
// savepoint when db is in one) and returns the rows it changed, without
// GORM's processor: GORM builds every Exec anew (it walks the text for
// placeholders, copies each argument into a statement, clones its
// session, formats the SQL for a logger that discards it), a sixth of the
// group commit's time under `payd bench apps`, on the one SQLite
// connection every worker waits for. It is for the statements the
// reconciler runs per Douyin call; args are single values (an IN list is
// spelled out, see inPlaceholders), and the text uses ? placeholders,
// turned into PostgreSQL's $n there. Errors are translated as GORM's
// TranslateError would (a unique violation is gorm.ErrDuplicatedKey).
func exec(db *gorm.DB, query string, args ...any) (int64, error) {
	res, err := db.Statement.ConnPool.ExecContext(db.Statement.Context, bindVars(db, query), args...)
	if err != nil {
		return 0, translate(db, err)
	}
	return res.RowsAffected()
}

// insertID runs query, an INSERT of one row into a table keyed by id,
// and returns the new row's id: on SQLite the connection's last rowid,
// which the driver reads with the statement's result; on PostgreSQL
// through RETURNING id. On SQLite, RETURNING made the insert half as
// costly again: SQLite runs the statement to its end into a buffer and
// steps the buffer for the row, and the driver opens a result set for one
// value (45 against 25 µs of CPU per attempt in a copy of a `payd bench
// apps` database). A trigger's inserts do not move the last rowid once
// the statement ends.
func insertID(db *gorm.DB, query string, args ...any) (int64, error) {
	if isPostgres(db) {
		var id int64
		err := queryRow(db, query+" RETURNING id", args, &id)
		return id, err
	}
	res, err := db.Statement.ConnPool.ExecContext(db.Statement.Context, query, args...)
	if err != nil {
		return 0, translate(db, err)
	}
	return res.LastInsertId()
}

// queryRow is exec for a statement that returns one row (INSERT …
// RETURNING), scanned into dest.
func queryRow(db *gorm.DB, query string, args []any, dest ...any) error {
	row := db.Statement.ConnPool.QueryRowContext(db.Statement.Context, bindVars(db, query), args...)
	if err := row.Scan(dest...); err != nil {
		return translate(db, err)
	}
	return nil
}

// translate is GORM's TranslateError for an error of a statement run
// past GORM: the dialect's own error becomes GORM's (ErrDuplicatedKey,
// ErrForeignKeyViolated).
func translate(db *gorm.DB, err error) error {
	if t, ok := db.Dialector.(gorm.ErrorTranslator); ok && db.TranslateError {
		return t.Translate(err)
	}
	return err
}

// bindVars is query with its ? placeholders numbered ($1, $2, …) on
// PostgreSQL, as GORM writes them; SQLite takes ? as it is. The texts
// given hold no ? but placeholders (no literals, no JSON operators).
func bindVars(db *gorm.DB, query string) string {
	if !isPostgres(db) || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// inPlaceholders is "(?, ?, …)" for n values, the IN list exec's single
// arguments need; "(NULL)", which nothing is in, for none.
func inPlaceholders(n int) string {
	if n < 1 {
		return "(NULL)"
	}
	return "(" + strings.Repeat("?, ", n-1) + "?)"
}
