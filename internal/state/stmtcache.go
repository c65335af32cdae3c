package state

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// sqliteDriverName is mattn/go-sqlite3 with a statement cache per
// connection (cachingDriver), the driver payd opens SQLite with.
const sqliteDriverName = "payd_sqlite3"

func init() { sql.Register(sqliteDriverName, &cachingDriver{}) }

// stmtCacheSize bounds the statements one connection keeps prepared; past
// it the cache is emptied and refills with what is used.
const stmtCacheSize = 256

// cachingDriver opens mattn/go-sqlite3 connections that keep their
// statements prepared. mattn prepares, runs and finalizes a statement for
// every Exec and Query on a connection, and SQLite compiles every trigger
// a write fires into it: under `payd bench apps` a fifth of payd's CPU went
// to sqlite3_prepare_v2. GORM's PrepareStmt caches on the pool instead,
// which deadlocks on SQLite's one connection (see Open); a cache inside
// the connection cannot, since database/sql hands a connection to one
// goroutine at a time.
type cachingDriver struct {
	sqlite3.SQLiteDriver
}

// connPragmas are set on every connection, beside the DSN's (sqliteDSN),
// which mattn/go-sqlite3 has no parameter for:
//   - temp_store MEMORY: the savepoint journal (a copy of each page a
//     savepoint changes, kept to roll it back) stays in memory. In a file,
//     SQLite's default once it passes 64 KiB, as a group commit's
//     savepoints do, it cost a pwrite per page: 9 % of payd serve's CPU
//     under `payd bench apps`, more than the WAL's own writes.
//   - wal_autocheckpoint 8000 pages (32 MiB of WAL at 4 KiB pages, 1000 by
//     default): a checkpoint copies each page once however often it
//     changed since the last, and runs inside the commit that crosses the
//     mark, holding the one connection. A page the reconciler keeps
//     rewriting (an index's end, the counters' log) is copied an eighth
//     as often.
//   - cache_size 16 MiB (2 MiB by default): the pages the reconciler
//     reads and rewrites at random (orders, settlements, their indexes)
//     stay in memory instead of being read again from the WAL or the
//     file, a pread each. At 100 apps under `payd bench apps` that was a
//     tenth more calls a second and 8 MB more RSS; 32 and 64 MiB did no
//     better and cost more memory (BENCHMARKS.md §7).
const connPragmas = "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 8000; PRAGMA cache_size = -16384"

func (d *cachingDriver) Open(dsn string) (driver.Conn, error) {
	c, err := d.SQLiteDriver.Open(dsn)
	if err != nil {
		return nil, err
	}
	sc := c.(*sqlite3.SQLiteConn)
	if _, err := sc.Exec(connPragmas, nil); err != nil {
		_ = sc.Close()
		return nil, fmt.Errorf("set up SQLite connection: %w", err)
	}
	return &cachedConn{SQLiteConn: sc, stmts: map[string]*cachedStmt{}}, nil
}

// cachedConn is a connection whose single statements are prepared once,
// by their text. What the cache cannot serve goes to mattn as before:
// several statements in one text, a statement whose parameters the
// arguments do not fill, and an Exec that would leave a statement
// unfinished (a read, RETURNING, a PRAGMA).
//
// A statement prepared before the schema changed would report its old
// columns until it is stepped (mattn reads them first), so the cache is
// emptied whenever the database's schema cookie moved, by this process or
// another: it is read through a statement of its own (a step and a reset,
// about a microsecond) before each use outside a transaction and once at
// each BEGIN, and this connection's DDL empties the cache at once.
type cachedConn struct {
	*sqlite3.SQLiteConn
	stmts  map[string]*cachedStmt
	cookie *sqlite3.SQLiteStmt // PRAGMA schema_version
	schema int64               // the cookie the cached statements were prepared under
	inTx   bool                // a transaction is open (BeginTx until its end)
	hits   int                 // statements served from the cache (for tests)
	saves  int                 // savepoints begun (for tests)
}

type cachedStmt struct {
	st   *sqlite3.SQLiteStmt
	uses int
	// finishes says an Exec of it runs to its end in the one step: not a
	// read, not RETURNING (decided once, when it is prepared).
	finishes bool
	busy     bool // its rows are open
	evicted  bool // flushed while busy: finalized when its rows close
}

// cacheable reports whether query's text may be kept prepared.
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	return q != "" && !strings.Contains(q, ";") && !hasPrefixFold(q, "PRAGMA")
}

// hasPrefixFold is strings.HasPrefix ignoring case, without a copy.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// stmt returns query's cached statement, preparing it on first use; nil
// when the cache cannot serve it (see cachedConn).
func (c *cachedConn) stmt(ctx context.Context, query string, args int) (*cachedStmt, error) {
	if !cacheable(query) {
		return nil, nil
	}
	if !c.inTx { // in a transaction only this connection changes the schema
		if err := c.checkSchema(ctx); err != nil {
			return nil, err
		}
	}
	if cs, ok := c.stmts[query]; ok {
		if cs.busy || cs.st.NumInput() != args {
			return nil, nil
		}
		c.hits++
		cs.uses++
		return cs, nil
	}
	st, err := c.SQLiteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(c.stmts) >= stmtCacheSize {
		c.evict()
	}
	cs := &cachedStmt{st: st.(*sqlite3.SQLiteStmt), uses: 1}
	cs.finishes = !cs.st.Readonly() && !strings.Contains(strings.ToUpper(query), "RETURNING")
	c.stmts[query] = cs
	if cs.st.NumInput() != args {
		return nil, nil
	}
	return cs, nil
}

// checkSchema empties the cache when the schema cookie moved since the
// statements were prepared.
func (c *cachedConn) checkSchema(ctx context.Context) error {
	v, err := c.schemaVersion(ctx)
	if err != nil || v == c.schema {
		return err
	}
	c.flush()
	if c.schema != 0 {
		// Another connection changed it: this one's copy of the schema
		// is reloaded by the first statement that reads a table, before
		// anything is prepared against it.
		if _, err := c.SQLiteConn.ExecContext(ctx, "SELECT count(*) FROM sqlite_master", nil); err != nil {
			return err
		}
	}
	c.schema = v
	return nil
}

// evict makes room: it drops the statements used once (a text built for
// one set of rows, such as a batch insert), or all when they are few.
func (c *cachedConn) evict() {
	n := 0
	for q, cs := range c.stmts {
		if cs.uses <= 1 && !cs.busy {
			_ = cs.st.Close()
			delete(c.stmts, q)
			n++
		}
	}
	if n < stmtCacheSize/4 {
		c.flush()
	}
}

// isDDL reports whether query changes the schema.
func isDDL(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n")
	return hasPrefixFold(q, "CREATE") || hasPrefixFold(q, "ALTER") || hasPrefixFold(q, "DROP")
}

// schemaVersion reads the database's schema cookie.
func (c *cachedConn) schemaVersion(ctx context.Context) (int64, error) {
	if c.cookie == nil {
		st, err := c.SQLiteConn.PrepareContext(ctx, "PRAGMA schema_version")
		if err != nil {
			return 0, err
		}
		c.cookie = st.(*sqlite3.SQLiteStmt)
	}
	rows, err := c.cookie.QueryContext(ctx, nil)
	if err != nil {
		return 0, err
	}
	dest := make([]driver.Value, 1)
	err = rows.Next(dest)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	v, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("read the schema version: %T", dest[0])
	}
	return v, nil
}

// flush finalizes the cached statements not in use and forgets them all.
func (c *cachedConn) flush() {
	for q, cs := range c.stmts {
		if cs.busy {
			cs.evicted = true
		} else {
			_ = cs.st.Close()
		}
		delete(c.stmts, q)
	}
}

// ExecContext runs a write through its cached statement; SQLite finishes
// it in the one step.
func (c *cachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if query == spBegin {
		c.saves++
	}
	if isDDL(query) {
		// The statements prepared before it describe the old schema;
		// the next check outside a transaction reads the new cookie.
		c.flush()
		c.schema = 0
		return c.SQLiteConn.ExecContext(ctx, query, args)
	}
	cs, err := c.stmt(ctx, query, len(args))
	if err != nil {
		return nil, err
	}
	if cs == nil || !cs.finishes {
		return c.SQLiteConn.ExecContext(ctx, query, args)
	}
	return cs.st.ExecContext(ctx, args)
}

// QueryContext runs a query through its cached statement, held busy until
// its rows close (a second query of the same text meanwhile is prepared
// on its own).
func (c *cachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.stmt(ctx, query, len(args))
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.SQLiteConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.st.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{SQLiteRows: rows.(*sqlite3.SQLiteRows), cs: cs}, nil
}

// Close finalizes the cached statements, then closes the connection
// (SQLite would keep a connection with live statements open).
func (c *cachedConn) Close() error {
	for q, cs := range c.stmts {
		_ = cs.st.Close()
		delete(c.stmts, q)
	}
	if c.cookie != nil {
		_ = c.cookie.Close()
	}
	return c.SQLiteConn.Close()
}

// BeginTx begins a transaction and checks the schema once for all of its
// statements: while it is open, no other connection can change it.
func (c *cachedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.SQLiteConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := c.checkSchema(ctx); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	c.inTx = true
	return &cachedTx{Tx: tx, c: c}, nil
}

// cachedTx ends the connection's transaction.
type cachedTx struct {
	driver.Tx
	c *cachedConn
}

func (t *cachedTx) Commit() error {
	t.c.inTx = false
	return t.Tx.Commit()
}

func (t *cachedTx) Rollback() error {
	t.c.inTx = false
	return t.Tx.Rollback()
}

// cachedRows are a cached statement's rows: closing them resets the
// statement (mattn) and frees it for the next use.
type cachedRows struct {
	*sqlite3.SQLiteRows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.SQLiteRows.Close()
	r.cs.busy = false
	if r.cs.evicted {
		_ = r.cs.st.Close()
	}
	return err
}
