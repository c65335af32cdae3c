package state

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
)

// openCached opens a database file through the caching driver, one
// connection, and returns it with a way to read that connection's hits.
func openCached(t *testing.T, path string) (*sql.DB, func() int) {
	t.Helper()
	db, err := sql.Open(sqliteDriverName, "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	hits := func() int {
		c, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		n := -1
		if err := c.Raw(func(dc any) error { n = dc.(*cachedConn).hits; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return db, hits
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func columns(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	return cols
}

// TestCachedConn: a statement is prepared once and served again; a query
// of the same text while its rows are open gets a statement of its own;
// arguments that do not fill the parameters fail as mattn fails them,
// with no binding left over; reads, RETURNING and several statements run
// through Exec leave nothing unfinished; a schema change, by this
// connection or another, is seen at once.
func TestCachedConn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, hits := openCached(t, path)
	mustExec(t, db, "CREATE TABLE t (a INTEGER, b INTEGER)")
	for i := range 3 {
		mustExec(t, db, "INSERT INTO t (a, b) VALUES (?, ?)", i, 10*i)
	}
	if h := hits(); h < 2 {
		t.Fatalf("%d cache hits after the same insert three times, want ≥ 2", h)
	}

	// Nested: the same query, on the same connection, while its rows are
	// open.
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := c.QueryContext(ctx, "SELECT a FROM t ORDER BY a")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for r1.Next() {
		var a int
		if err := r1.Scan(&a); err != nil {
			t.Fatal(err)
		}
		r2, err := c.QueryContext(ctx, "SELECT a FROM t ORDER BY a")
		if err != nil {
			t.Fatalf("the same query while its rows are open: %v", err)
		}
		n := 0
		for r2.Next() {
			n++
		}
		r2.Close()
		got = append(got, a*10+n)
	}
	r1.Close()
	c.Close()
	if want := []int{3, 13, 23}; !slices.Equal(got, want) {
		t.Fatalf("nested reads %v, want %v (each row of the outer, with the inner's 3 rows)", got, want)
	}

	// Too few arguments: an error, and no stale binding.
	if _, err := db.Exec("INSERT INTO t (a, b) VALUES (?, ?)", 7); err == nil {
		t.Fatal("an insert with one argument for two parameters succeeded")
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t WHERE a = 7").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows with a = 7: %d %v, want 0", n, err)
	}

	// Reads, RETURNING and several statements through Exec finish: the
	// table can be dropped after them.
	mustExec(t, db, "SELECT a FROM t")
	mustExec(t, db, "INSERT INTO t (a, b) VALUES (?, ?) RETURNING a", 8, 80)
	mustExec(t, db, "CREATE TABLE u (x INTEGER); INSERT INTO u VALUES (1)")
	if err := db.QueryRow("SELECT count(*) FROM u").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows of u: %d %v, want 1", n, err)
	}

	// Schema changes, here and from another connection.
	if cols := columns(t, db, "SELECT * FROM t"); !slices.Equal(cols, []string{"a", "b"}) {
		t.Fatalf("columns %v", cols)
	}
	mustExec(t, db, "ALTER TABLE t ADD COLUMN c INTEGER")
	if cols := columns(t, db, "SELECT * FROM t"); !slices.Equal(cols, []string{"a", "b", "c"}) {
		t.Fatalf("columns after this connection added c: %v", cols)
	}
	other, _ := openCached(t, path)
	mustExec(t, other, "ALTER TABLE t DROP COLUMN b")
	if cols := columns(t, db, "SELECT * FROM t"); !slices.Equal(cols, []string{"a", "c"}) {
		t.Fatalf("columns after another connection dropped b: %v", cols)
	}
	// Inside a transaction: the cookie is read once, at BEGIN; a change
	// the transaction makes itself is seen by its next statement.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := tx.Exec("INSERT INTO t (a, c) VALUES (?, ?)", 9, 90); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec("ALTER TABLE t ADD COLUMN d INTEGER"); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query("SELECT * FROM t")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	rows.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cols, []string{"a", "c", "d"}) {
		t.Fatalf("columns after the transaction added d: %v", cols)
	}
	mustExec(t, db, "DROP TABLE t")
}
