package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Sentinel errors. Store methods wrap them with what was being done; test
// them with errors.Is.
var (
	// ErrNotFound: the named order, refund or settlement does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the row changed since it was read (a lost race on its
	// version or phase, or a lost lease). Re-read and decide again.
	ErrConflict = errors.New("conflict: row changed since it was read")
	// ErrInvalid: a declaration or transition is not acceptable; the wrapped
	// message names the field and the problem.
	ErrInvalid = errors.New("invalid")
	// ErrKeyReused: a refund's idempotency key was declared again with a
	// different order, amount or reason.
	ErrKeyReused = errors.New("idempotency key reused with different content")
	// ErrSchemaTooNew: the database was migrated by a newer payd than this
	// binary; Open refuses it rather than misread it.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrNoDatabase: Options.MustExist was set and the database is missing
	// (SQLite: no such file; PostgreSQL: no payd schema in it).
	ErrNoDatabase = errors.New("no payd database")
)

// invalidError is an ErrInvalid whose text is only its message, so that
// errors read "declare refund k1: amount must be positive" rather than
// carrying the word "invalid" in the middle.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// The drivers Open accepts.
const (
	// DriverSQLite is the embedded default (github.com/mattn/go-sqlite3 via
	// gorm.io/driver/sqlite).
	DriverSQLite = "sqlite"
	// DriverPostgres is PostgreSQL via gorm.io/driver/postgres (pgx).
	DriverPostgres = "postgres"
)

// Options configure Open.
type Options struct {
	// Driver is DriverSQLite (the default when empty) or DriverPostgres.
	Driver string
	// DSN is a file path for SQLite (created if absent) or a postgres:// URL.
	DSN string
	// Synchronous is SQLite's PRAGMA synchronous: OFF, NORMAL, FULL or EXTRA;
	// "FULL" when empty, so an intent is on disk before the call it announces.
	Synchronous string
	// BusyTimeout is how long SQLite waits for another writer before failing;
	// 5s when zero.
	BusyTimeout time.Duration
	// MaxOpenConns bounds the connection pool. When zero: 1 for SQLite (one
	// writer at a time is all SQLite allows anyway, and it rules out
	// SQLITE_BUSY between payd's own goroutines), 10 for PostgreSQL.
	MaxOpenConns int
	// Now is the clock for CreatedAt/UpdatedAt and GORM's NowFunc; time.Now
	// when nil. Every time is stored in UTC.
	Now func() time.Time
	// Logger receives migration progress; discarded when nil.
	Logger *logrus.Entry
	// MustExist makes Open refuse, with ErrNoDatabase, a database payd has
	// not created: a SQLite file that does not exist (it is not created) or
	// a database without payd's schema. Every command but migrate and serve
	// sets it, so a mistyped path is an error, not a new empty database.
	MustExist bool
}

// Store is payd's database: every query and transition the reconciler, the
// jobs and the CLI need. It is safe for concurrent use.
type Store struct {
	db      *gorm.DB
	dialect string
	now     func() time.Time
	log     *logrus.Entry
	// apps caches the apps that have orders (see othersOf).
	apps *appList
}

// with is s bound to db (a transaction or a savepoint).
func (s *Store) with(db *gorm.DB) *Store {
	return &Store{db: db, dialect: s.dialect, now: s.now, log: s.log, apps: s.apps}
}

// Open connects to the database described by o. It refuses, with
// ErrSchemaTooNew, a database migrated by a newer binary. It does not
// migrate: call Migrate (payd migrate) for that.
func Open(ctx context.Context, o Options) (*Store, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if o.MustExist && o.Driver == DriverSQLite {
		if _, err := os.Stat(o.DSN); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: the file does not exist; check database.dsn (or PAYD_DSN), or create it with payd migrate", ErrNoDatabase, o.DSN)
		}
	}
	clock := o.Now
	now := func() time.Time { return utc(clock()) }
	db, err := gorm.Open(dialector(o), &gorm.Config{
		NowFunc:                now,
		TranslateError:         true, // unique violations become gorm.ErrDuplicatedKey on both drivers
		SkipDefaultTransaction: true, // every multi-statement write opens its own transaction
		Logger:                 logger.Discard,
		// No PrepareStmt: with SQLite's one connection, GORM's statement
		// store deadlocks when a statement is prepared outside a
		// transaction while a transaction holding the connection waits
		// for the same text (seen in payd demo: the event fan-out and a
		// read of the outbox). SQLite's connections keep their
		// statements prepared themselves (stmtcache.go); pgx caches on
		// PostgreSQL.
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", o.Driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", o.Driver, err)
	}
	sqlDB.SetMaxOpenConns(o.MaxOpenConns)
	sqlDB.SetMaxIdleConns(o.MaxOpenConns)
	s := &Store{db: db, dialect: o.Driver, now: now, log: o.Logger, apps: &appList{}}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open %s database: %w", o.Driver, err)
	}
	v, err := s.AppliedVersion(ctx)
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if v == 0 && o.MustExist {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("%w in %s: it has no payd schema; check database.dsn (or PAYD_DSN), or create it with payd migrate", ErrNoDatabase, redactDSN(o))
	}
	if v > SchemaVersion {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open store: %w: the database is at version %d, this binary knows up to %d", ErrSchemaTooNew, v, SchemaVersion)
	}
	return s, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Driver == "" {
		o.Driver = DriverSQLite
	}
	if o.DSN == "" {
		return o, invalidf("dsn: required")
	}
	switch o.Driver {
	case DriverSQLite:
		if o.Synchronous == "" {
			o.Synchronous = "FULL"
		}
		o.Synchronous = strings.ToUpper(o.Synchronous)
		switch o.Synchronous {
		case "OFF", "NORMAL", "FULL", "EXTRA":
		default:
			return o, invalidf("synchronous: %q is not OFF, NORMAL, FULL or EXTRA", o.Synchronous)
		}
		if o.BusyTimeout == 0 {
			o.BusyTimeout = 5 * time.Second
		}
		if o.BusyTimeout < 0 {
			return o, invalidf("busy_timeout: %s is negative", o.BusyTimeout)
		}
		if o.MaxOpenConns == 0 {
			o.MaxOpenConns = 1
		}
	case DriverPostgres:
		if o.MaxOpenConns == 0 {
			o.MaxOpenConns = 10
		}
	default:
		return o, invalidf("driver: %q is not %q or %q", o.Driver, DriverSQLite, DriverPostgres)
	}
	if o.MaxOpenConns < 0 {
		return o, invalidf("max_open_conns: %d is negative", o.MaxOpenConns)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Logger = logrus.NewEntry(l)
	}
	return o, nil
}

// Close closes the database.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	if err := sqlDB.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// DB returns the underlying GORM handle, for tools and tests that need a
// query the Store does not offer. Writes through it bypass the Store's
// conditional updates.
func (s *Store) DB() *gorm.DB { return s.db }

// Dialect names the database: DriverSQLite or DriverPostgres.
func (s *Store) Dialect() string { return s.dialect }

// write runs fn in one transaction. On SQLite the DSN's _txlock=immediate
// takes the write lock at BEGIN, so a transaction never fails half-way on
// a lock upgrade.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return transaction(s.session(ctx), fn)
}

// writeOne is write for an fn that changes the database in at most one
// statement (whatever it reads before): inside a transaction it runs
// without a savepoint of its own, because one statement is atomic by itself
// (it changes everything it names or nothing), so there is nothing of fn's
// to roll back when it fails. Outside one it is write. The reconciler's
// steps without events are such writes: two of an item's three steps, each
// in the savepoint of its group commit already.
func (s *Store) writeOne(ctx context.Context, fn func(tx *gorm.DB) error) error {
	db := s.session(ctx)
	if inTx(db) {
		return fn(db)
	}
	return transaction(db, fn)
}

// inTx reports whether db runs in a transaction.
func inTx(db *gorm.DB) bool {
	c, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok && c != nil
}

// changed returns the outcome of a conditional update: the database's
// error, or ErrConflict when no row matched its condition.
func changed(res *gorm.DB) error { return changedRows(res.RowsAffected, res.Error) }

// changedRows is changed for a statement run by exec: its error, or
// ErrConflict when it changed no row.
func changedRows(n int64, err error) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrConflict
	}
	return nil
}

// utc is how every time is stored: UTC, at PostgreSQL's microsecond
// precision, without a monotonic reading. SQLite keeps times as text, which
// compares in time order only when every value has the same zone.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// utcPtr is utc for optional times.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}

// redactDSN names the database of o without a password.
func redactDSN(o Options) string {
	if o.Driver != DriverPostgres {
		return o.DSN
	}
	u, err := url.Parse(o.DSN)
	if err != nil || u.Host == "" {
		return "the configured PostgreSQL database"
	}
	return u.Redacted()
}

// InOneTx is InTx without savepoints: the Store's own multi-statement
// methods run flat in the one transaction. A write of any size then holds
// no subtransaction per call (PostgreSQL keeps a lock per subtransaction
// until commit, and slows down with thousands of them: a declaration of
// 15,000 rows ran it out of shared memory). Any error still rolls all of
// it back; a method that ends finding nothing to do keeps the hint it
// wrote first, which only makes the order looked at again.
func (s *Store) InOneTx(ctx context.Context, fn func(tx *Store) error) error {
	return transaction(s.session(ctx).Session(&gorm.Session{DisableNestedTransaction: true}), func(tx *gorm.DB) error {
		return fn(s.with(tx))
	})
}
