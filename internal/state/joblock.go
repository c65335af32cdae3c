package state

import (
	"context"
	"database/sql/driver"
	"fmt"
)

// RunLocked runs fn while this process holds the cluster-wide lock name,
// so that a job such as settle_batch or sweep runs on one replica at a
// time. On PostgreSQL the lock is a session advisory lock taken with
// pg_try_advisory_lock on a connection of its own: a replica that dies
// loses it with its session. On SQLite fn runs at once: one payd serve
// holds a database file. ran is false, and fn is not run, when another
// replica holds the lock.
func (s *Store) RunLocked(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error) {
	if s.dialect != DriverPostgres {
		return true, fn(ctx)
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	defer conn.Close()
	// The key names the schema too: payd databases that share a server
	// (one schema each) do not hold each other's jobs.
	var key int64
	if err := conn.QueryRowContext(ctx, "SELECT hashtextextended('payd job ' || current_schema() || ' ' || $1, 0)", name).Scan(&key); err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		// Unlock even when ctx has ended; a failure leaves the lock to the
		// connection's end, which dropping it brings about.
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key); uerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // the pool drops it: the session ends
		}
	}()
	return true, fn(ctx)
}
