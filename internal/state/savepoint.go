package state

import (
	"database/sql"

	"gorm.io/gorm"
)

// transaction runs fn in a transaction of db's own or, when db is already
// in one, in a savepoint of it: an error (or a panic) rolls back what fn
// wrote and nothing else. It is gorm's Transaction but for the savepoint.
// gorm names every savepoint anew (sp and a random number) and never
// releases it, so each is a statement text seen once: SQLite prepares it
// for that one use, and the connection's statement cache fills with them
// (a quarter of the group commit's savepoints went to preparing). Here
// every savepoint has one name, and each is released when fn ends: SQLite
// and PostgreSQL both take a name to mean its newest savepoint, so nested
// ones stay apart, and the three statements stay prepared. Under a
// session that disables nested transactions (InOneTx), fn runs flat.
func transaction(db *gorm.DB, fn func(tx *gorm.DB) error, opts ...*sql.TxOptions) error {
	if !inTx(db) {
		return db.Transaction(fn, opts...)
	}
	if db.DisableNestedTransaction {
		return fn(db)
	}
	return savepoint(db, fn)
}

// Savepoint statements, one name for all (see transaction).
const (
	spBegin    = "SAVEPOINT payd_sp"
	spRollback = "ROLLBACK TO SAVEPOINT payd_sp"
	spRelease  = "RELEASE SAVEPOINT payd_sp"
)

// savepoint runs fn in a savepoint of db's transaction (see transaction).
func savepoint(db *gorm.DB, fn func(tx *gorm.DB) error) (err error) {
	if _, err := exec(db, spBegin); err != nil {
		return err
	}
	ok := false
	defer func() {
		if ok {
			return
		}
		// Undo fn's writes (on an error or a panic), then drop the
		// savepoint itself, so that an enclosing one of the same name is
		// the newest again. On PostgreSQL the rollback also ends the
		// failed statement's abort.
		if _, rerr := exec(db, spRollback); rerr == nil {
			_, _ = exec(db, spRelease)
		}
	}()
	if err = fn(db.Session(&gorm.Session{NewDB: true})); err != nil {
		return err
	}
	if _, err = exec(db, spRelease); err != nil {
		return err
	}
	ok = true
	return nil
}
