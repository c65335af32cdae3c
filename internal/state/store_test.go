package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpen_SQLitePragmas(t *testing.T) {
	ctx := context.Background()
	pragma := func(t *testing.T, s *Store, name string) string {
		t.Helper()
		var v string
		must(t, s.DB().Raw("PRAGMA "+name).Scan(&v).Error)
		return strings.ToLower(v)
	}
	t.Run("defaults", func(t *testing.T) {
		s := newTestStore(t)
		for name, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": "5000",
		} {
			if got := pragma(t, s, name); got != want {
				t.Errorf("PRAGMA %s = %s, want %s", name, got, want)
			}
		}
	})
	t.Run("configured", func(t *testing.T) {
		s, err := Open(ctx, Options{DSN: filepath.Join(t.TempDir(), "p.db"), Synchronous: "normal", BusyTimeout: 1500 * time.Millisecond, MaxOpenConns: 3})
		must(t, err)
		defer func() { _ = s.Close() }()
		// Every pooled connection gets the pragmas: hold three at once.
		sqlDB, err := s.DB().DB()
		must(t, err)
		var held []interface{ Close() error }
		for range 3 {
			c, err := sqlDB.Conn(ctx)
			must(t, err)
			held = append(held, c)
			var sync, busy string
			must(t, c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
			must(t, c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
			if sync != "1" || busy != "1500" {
				t.Errorf("connection %d: synchronous=%s busy_timeout=%s, want 1 (NORMAL) and 1500", len(held), sync, busy)
			}
		}
		for _, c := range held {
			_ = c.Close()
		}
	})
	t.Run("foreign keys enforced", func(t *testing.T) {
		s := newTestStore(t)
		err := s.DB().Create(&Refund{OrderID: 999, Key: "k", Amount: 1, Phase: PhasePending, Attempt: 1, OutRefundNo: "k-1"}).Error
		if err == nil {
			t.Fatal("a refund of a missing order was inserted")
		}
	})
}

func TestOpen_Invalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		msg  string
	}{
		{"no dsn", Options{}, "open store: dsn: required"},
		{"driver", Options{Driver: "mysql", DSN: "x"}, `open store: driver: "mysql" is not "sqlite" or "postgres"`},
		{"synchronous", Options{DSN: "x", Synchronous: "sometimes"}, `open store: synchronous: "SOMETIMES" is not OFF, NORMAL, FULL or EXTRA`},
		{"busy timeout", Options{DSN: "x", BusyTimeout: -time.Second}, "open store: busy_timeout: -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), tc.o)
			wantErr(t, err, ErrInvalid, tc.msg)
		})
	}
}

func TestOpen_SQLitePathNeedsNoEscaping(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "odd name?x=1#frag%20.db")
	s, err := Open(context.Background(), Options{DSN: path})
	must(t, err)
	must(t, s.Migrate(context.Background()))
	must(t, s.Close())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "odd name?x=1#frag%20.db") {
			t.Errorf("unexpected file %q beside the database", e.Name())
		}
	}
}

func TestStore_Migrate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// newEnv migrated from empty; check the result, then migrate again.
		v, err := e.AppliedVersion(ctx)
		must(t, err)
		if v != SchemaVersion {
			t.Fatalf("applied version %d, want %d", v, SchemaVersion)
		}
		for _, table := range []string{"orders", "refunds", "settlements", "attempts", "callbacks", "events", "schema_versions"} {
			if !e.DB().Migrator().HasTable(table) {
				t.Errorf("table %s missing", table)
			}
		}
		for table, index := range map[string]string{
			"orders":      "ix_orders_due",
			"refunds":     "ix_refunds_phase_updated",
			"settlements": "ix_settlements_phase_updated",
		} {
			if !e.DB().Migrator().HasIndex(table, index) {
				t.Errorf("index %s on %s missing", index, table)
			}
		}
		// Schema 17 dropped them for ix_orders_due: a lease moves
		// next_action_at through one index only.
		for _, gone := range []string{"idx_orders_next_action_at", "ix_orders_app_next_action"} {
			if e.DB().Migrator().HasIndex("orders", gone) {
				t.Errorf("index %s on orders is still there", gone)
			}
		}
		must(t, e.Migrate(ctx))
		var rows int64
		must(t, e.DB().Table("schema_versions").Count(&rows).Error)
		if rows != int64(len(migrations)) {
			t.Fatalf("schema_versions has %d rows after a second Migrate, want %d", rows, len(migrations))
		}
	})
}

// TestStore_MigrateConcurrently starts several replicas on one empty
// database at once, as a rolling deploy does: every one of them migrates
// without error, and each step is applied once.
func TestStore_MigrateConcurrently(t *testing.T) {
	for _, b := range []struct {
		name string
		opts func(testing.TB) Options
	}{{"sqlite", sqliteOptions}, {"postgres", postgresOptions}} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			o := b.opts(t)
			const replicas = 4
			stores := make([]*Store, replicas)
			for i := range stores {
				s, err := Open(ctx, o)
				must(t, err)
				t.Cleanup(func() { _ = s.Close() })
				stores[i] = s
			}
			start := make(chan struct{})
			errs := make(chan error, replicas)
			for _, s := range stores {
				go func() { <-start; errs <- s.Migrate(ctx) }()
			}
			close(start)
			for range stores {
				if err := <-errs; err != nil {
					t.Errorf("a replica's Migrate: %v", err)
				}
			}
			var rows []schemaVersion
			must(t, stores[0].DB().Order("version").Find(&rows).Error)
			if len(rows) != len(migrations) {
				t.Fatalf("schema_versions has %d rows, want %d: %+v", len(rows), len(migrations), rows)
			}
			for i, r := range rows {
				if r.Version != migrations[i].version {
					t.Errorf("row %d is version %d, want %d", i, r.Version, migrations[i].version)
				}
			}
		})
	}
}

func TestStore_MigrateFromEmpty(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{DSN: filepath.Join(t.TempDir(), "e.db")})
	must(t, err)
	defer func() { _ = s.Close() }()
	if v, err := s.AppliedVersion(ctx); err != nil || v != 0 {
		t.Fatalf("empty database: version %d, %v; want 0", v, err)
	}
	if s.DB().Migrator().HasTable("orders") {
		t.Fatal("Open created tables: it must not migrate")
	}
	must(t, s.Migrate(ctx))
	if v, _ := s.AppliedVersion(ctx); v != SchemaVersion {
		t.Fatalf("after Migrate: version %d, want %d", v, SchemaVersion)
	}
}

func TestOpen_RefusesNewerSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		future := SchemaVersion + 1
		must(t, e.DB().Create(&schemaVersion{Version: future, Name: "from the future", AppliedAt: t0}).Error)
		_, err := Open(context.Background(), e.opts)
		wantErr(t, err, ErrSchemaTooNew, "")
		if want := fmt.Sprintf("the database is at version %d, this binary knows up to %d", future, SchemaVersion); !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
		wantErr(t, e.Migrate(context.Background()), ErrSchemaTooNew, "")
	})
}

func TestStore_RestartLosesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		o := e.order(t, "o1", 1000)
		r := e.refund(t, "o1", "k1", 300)
		st, _, err := e.DeclareSettlement(ctx, SettlementWish{AppID: "app1", OutOrderNo: "o1", Receivers: []Receiver{{MerchantUID: "m1", Amount: 100}}}, now)
		must(t, err)
		claims, err := e.ClaimDue(ctx, now, 10, time.Minute, "w1")
		must(t, err)
		r.Phase = PhaseSubmitting
		must(t, e.UpdateRefund(ctx, r, PhasePending, NewEvent{Type: EventRefundAttemptFailed, Payload: map[string]int{"n": 1}}))
		must(t, e.AppendAttempt(ctx, &Attempt{OrderID: o.ID, Resource: "refund", ResourceID: r.ID, API: "create_refund", MerchantNo: r.OutRefundNo, Outcome: "unknown", ErrNo: 1000}))
		_, err = e.InsertCallback(ctx, &Callback{AppID: "app1", Type: "refund", Signature: "sig1", SubjectNo: r.OutRefundNo, Raw: "{}"}, now)
		must(t, err)
		before, err := e.History(ctx, "app1", "o1")
		must(t, err)
		must(t, e.Close())

		s := e.reopen(t)
		after, err := s.History(ctx, "app1", "o1")
		must(t, err)
		if after.Order.Version != before.Order.Version || after.Order.LeaseOwner != "w1" || !timeEq(after.Order.LeaseUntil, &claims[0].LeaseUntil) {
			t.Errorf("order after restart: %+v, want %+v", after.Order, before.Order)
		}
		if len(after.Refunds) != 1 || after.Refunds[0].Phase != PhaseSubmitting || after.Refunds[0].Version != r.Version {
			t.Errorf("refunds after restart: %+v", after.Refunds)
		}
		if after.Settlement == nil || after.Settlement.ID != st.ID || after.Settlement.Receivers != st.Receivers {
			t.Errorf("settlement after restart: %+v, want %+v", after.Settlement, st)
		}
		if len(after.Attempts) != 1 || len(after.Callbacks) != 1 || len(after.Events) != 1 {
			t.Errorf("after restart: %d attempts, %d callbacks, %d events; want 1 each", len(after.Attempts), len(after.Callbacks), len(after.Events))
		}
		// The claim survives the restart too: the same worker can release it.
		must(t, s.Release(ctx, claims[0], nil, now))
	})
}

func TestStore_InTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		e.order(t, "o1", 1000)
		e.refund(t, "o1", "k0", 100)
		t.Run("all or nothing", func(t *testing.T) {
			err := e.InTx(ctx, func(tx *Store) error {
				if _, _, err := tx.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k1", Amount: 100}, now); err != nil {
					return err
				}
				_, _, err := tx.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k2", Amount: 5000}, now)
				return err
			})
			wantErr(t, err, ErrInvalid, "")
			var n int64
			must(t, e.DB().Model(&Refund{}).Count(&n).Error)
			if n != 1 {
				t.Fatalf("%d refunds after a failed batch, want only k0", n)
			}
		})
		t.Run("a repeated declaration inside is a no-op, not a failure", func(t *testing.T) {
			err := e.InTx(ctx, func(tx *Store) error {
				if _, created, err := tx.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k0", Amount: 100}, now); err != nil || created {
					return fmt.Errorf("repeat: created=%v err=%v", created, err)
				}
				_, _, err := tx.DeclareRefund(ctx, RefundWish{OutOrderNo: "o1", Key: "k3", Amount: 100}, now)
				return err
			})
			must(t, err)
			var keys []string
			must(t, e.DB().Model(&Refund{}).Order("id").Pluck("idem_key", &keys).Error)
			if strings.Join(keys, ",") != "k0,k3" {
				t.Fatalf("refunds %v, want k0,k3", keys)
			}
		})
		must(t, e.Ping(ctx))
	})
}

// TestStore_SessionContext: on SQLite a live cancellable context reaches
// the driver without its cancellation (mattn/go-sqlite3 would step every
// row in a goroutine of its own), keeping its values; a context already
// done still fails the operation and writes nothing.
func TestStore_SessionContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		type key struct{}
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		sc := e.session(ctx).Statement.Context
		if sc.Value(key{}) != "v" {
			t.Error("the session lost the context's values")
		}
		if stripped := sc.Done() == nil; stripped != (e.dialect != DriverPostgres) {
			t.Errorf("cancellation stripped = %t on %s", stripped, e.dialect)
		}
		cancel()
		_, _, err := e.UpsertOrder(ctx, OrderInput{AppID: "app1", OutOrderNo: "late", TotalAmount: 100, Status: OrderSuccess}, e.clock.Now())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("upsert with a cancelled context: %v, want context.Canceled", err)
		}
		if _, err := e.GetOrder(context.Background(), "app1", "late"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the cancelled upsert wrote the order: %v", err)
		}
	})
}

// TestMigrate_FailedBecomesParked: a database from before schema version 4
// stored parked items as "failed"; migrating renames them and nothing else.
func TestMigrate_FailedBecomesParked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		r := e.refund(t, "mp1", "k-mp1", 100)
		ok := e.refund(t, "mp2", "k-mp2", 100)
		must(t, e.DB().Exec("UPDATE refunds SET phase = 'failed' WHERE id = ?", r.ID).Error)
		e.beforeCounters(t)
		must(t, e.DB().Where("version >= ?", 4).Delete(&schemaVersion{}).Error)
		must(t, e.Migrate(ctx))
		if got := e.getRefund(t, r.ID).Phase; got != PhaseParked {
			t.Fatalf("a failed refund migrated to %q, want parked", got)
		}
		if got := e.getRefund(t, ok.ID).Phase; got != PhasePending {
			t.Fatalf("a pending refund migrated to %q, want it unchanged", got)
		}
	})
}
