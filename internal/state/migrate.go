package state

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// SchemaVersion is the newest schema this binary knows: the number of the
// last migration step.
const SchemaVersion = 17

// migration is one numbered schema change. Steps run in order, each in its
// own transaction together with the row that records it.
type migration struct {
	version int
	name    string
	up      func(tx *gorm.DB) error
}

// migrations is the schema's history; append, never edit a step that has
// shipped. Step 1 creates the tables from the models. A later step that adds
// a table (event deliveries, say) is AutoMigrate of the new model; one that
// adds a column is AutoMigrate of the changed model, which adds only what is
// missing, so it is also right on a database whose step 1 ran with the newer
// model.
var migrations = []migration{
	{version: 1, name: "orders, refunds, settlements, attempts, callbacks, events", up: func(tx *gorm.DB) error {
		return tx.Migrator().AutoMigrate(&Order{}, &Refund{}, &Settlement{}, &Attempt{}, &Callback{}, &Event{})
	}},
	{version: 2, name: "event deliveries, delivery attempts, fan-out cursors", up: func(tx *gorm.DB) error {
		if err := tx.Migrator().AutoMigrate(&Delivery{}, &DeliveryAttempt{}, &DeliveryCursor{}); err != nil {
			return err
		}
		// ReplaySince reads events by creation time.
		return tx.Exec("CREATE INDEX IF NOT EXISTS ix_events_created_at ON events (created_at)").Error
	}},
	{version: 3, name: "replicas, for sharing Douyin's rate limits", up: func(tx *gorm.DB) error {
		return tx.Migrator().AutoMigrate(&Replica{})
	}},
	{version: 4, name: "the parked phase is stored as parked, not failed", up: func(tx *gorm.DB) error {
		for _, table := range []string{"refunds", "settlements"} {
			if err := tx.Exec("UPDATE "+table+" SET phase = ? WHERE phase = ?", PhaseParked, "failed").Error; err != nil {
				return err
			}
		}
		return nil
	}},
	{version: 5, name: "trade client tokens; callbacks wide enough for trade callbacks", up: migrateTradeTokens},
	{version: 6, name: "indexes on Douyin's numbers and times, for the console's search and charts", up: migrateConsoleIndexes},
	{version: 7, name: "refunds started at Douyin (users, customer service, expiry): refunds.source", up: func(tx *gorm.DB) error {
		return tx.Migrator().AutoMigrate(&Refund{})
	}},
	{version: 8, name: "merchant audits of refunds users start: refunds.audit_*; orders.pay_channel", up: func(tx *gorm.DB) error {
		return tx.Migrator().AutoMigrate(&Refund{}, &Order{})
	}},
	{version: 9, name: "fulfilments (the fulfilment settle rule); orders.item_orders", up: func(tx *gorm.DB) error {
		return tx.Migrator().AutoMigrate(&Order{}, &Fulfilment{})
	}},
	{version: 10, name: "settlements per order or per item order: settlements.item_order_id, unique with order_id", up: migrateItemSettlements},
	{version: 11, name: "apps Douyin settles itself (app_settings); settlements.source", up: func(tx *gorm.DB) error {
		return tx.Migrator().AutoMigrate(&AppSetting{}, &Settlement{})
	}},
	{version: 12, name: "the API each order was created under, and each item sent under: orders.api, refunds.api, settlements.api", up: migrateOrderAPI},
	{version: 13, name: "due orders by app, for the fair claim", up: func(tx *gorm.DB) error {
		return tx.Exec("CREATE INDEX IF NOT EXISTS ix_orders_app_next_action ON orders (app_id, next_action_at)").Error
	}},
	{version: 14, name: "counters kept by triggers in every write's transaction, backfilled from the rows", up: migrateCounters},
	{version: 15, name: "the last reconcile passes and settle batches (passes); refunds awaiting audit by deadline", up: func(tx *gorm.DB) error {
		if err := tx.Migrator().AutoMigrate(&Pass{}); err != nil {
			return err
		}
		// The console's pending audits, soonest deadline first.
		return tx.Exec("CREATE INDEX IF NOT EXISTS ix_refunds_audit ON refunds (audit_phase, audit_deadline)").Error
	}},
	{version: 16, name: "replicas keep their place (replicas.place): a restart takes its old slot, no other replica's moves", up: func(tx *gorm.DB) error {
		return tx.Migrator().AutoMigrate(&Replica{})
	}},
	{version: 17, name: "one index finds due orders: ix_orders_due, by app, of the orders with a next action only", up: migrateDueIndex},
}

// migrateDueIndex replaces the two indexes holding next_action_at
// (idx_orders_next_action_at, and ix_orders_app_next_action of schema 13)
// with one, ix_orders_due: (app_id, next_action_at) of the orders that
// have a next action. A lease moves each claimed order's next_action_at,
// through every index that holds it; and most orders (settled, refunded,
// waiting for nothing) have none, so the index holds the live orders
// only. Every due query names a time (next_action_at <= ?, > ?), which
// implies the index's condition on both databases.
func migrateDueIndex(tx *gorm.DB) error {
	for _, q := range []string{
		"DROP INDEX IF EXISTS idx_orders_next_action_at",
		"DROP INDEX IF EXISTS ix_orders_app_next_action",
		"CREATE INDEX IF NOT EXISTS ix_orders_due ON orders (app_id, next_action_at) WHERE next_action_at IS NOT NULL",
	} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	return nil
}

// migrateOrderAPI adds orders.api, refunds.api and settlements.api and
// backfills orders.api: trade for the orders of apps that have a shared
// client token (only trade apps fetch one), ecpay for the others. An order
// of an app already moved from ecpay to trade before this step is taken as
// trade, as payd treated it until then. Items keep "" (their order's API).
func migrateOrderAPI(tx *gorm.DB) error {
	if err := tx.Migrator().AutoMigrate(&Order{}, &Refund{}, &Settlement{}); err != nil {
		return err
	}
	if err := tx.Exec("UPDATE orders SET api = 'trade' WHERE api = '' AND app_id IN (SELECT app_id FROM client_tokens)").Error; err != nil {
		return err
	}
	return tx.Exec("UPDATE orders SET api = 'ecpay' WHERE api = ''").Error
}

// migrateItemSettlements lets an order have one settlement per item order:
// it adds settlements.item_order_id ("" for the whole order: every existing
// row) and the unique index on (order_id, item_order_id), then drops the
// unique index on order_id alone. Every row is kept; the new index holds
// for them since order_id was unique.
func migrateItemSettlements(tx *gorm.DB) error {
	if err := tx.Migrator().AutoMigrate(&Settlement{}); err != nil {
		return err
	}
	return tx.Exec("DROP INDEX IF EXISTS idx_settlements_order_id").Error
}

// consoleIndexes are the indexes the console's search (every number a
// merchant or Douyin support would quote) and its last-hour charts need.
var consoleIndexes = []string{
	"CREATE INDEX IF NOT EXISTS ix_orders_douyin_id ON orders (order_id)",
	"CREATE INDEX IF NOT EXISTS ix_refunds_douyin_no ON refunds (refund_no)",
	"CREATE INDEX IF NOT EXISTS ix_settlements_douyin_no ON settlements (settle_no)",
	"CREATE INDEX IF NOT EXISTS ix_attempts_created_at ON attempts (created_at)",
	"CREATE INDEX IF NOT EXISTS ix_callbacks_received_at ON callbacks (received_at)",
}

// migrateConsoleIndexes creates consoleIndexes.
func migrateConsoleIndexes(tx *gorm.DB) error {
	for _, q := range consoleIndexes {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	return nil
}

// migrateTradeTokens adds the shared client_token table and, on PostgreSQL,
// widens callbacks.type (pre_create_refund has 17 characters) and
// callbacks.signature (a base64 RSA-2048 signature has 344); SQLite does not
// enforce varchar sizes.
func migrateTradeTokens(tx *gorm.DB) error {
	if err := tx.Migrator().AutoMigrate(&ClientToken{}); err != nil {
		return err
	}
	if tx.Dialector.Name() != "postgres" {
		return nil
	}
	return tx.Exec("ALTER TABLE callbacks ALTER COLUMN type TYPE varchar(32), ALTER COLUMN signature TYPE varchar(400)").Error
}

// schemaVersion is one applied migration step.
type schemaVersion struct {
	Version   int `gorm:"primaryKey;autoIncrement:false"`
	Name      string
	AppliedAt time.Time
}

func (schemaVersion) TableName() string { return "schema_versions" }

// AppliedVersion returns the newest migration step applied to the database,
// 0 for an empty one.
func (s *Store) AppliedVersion(ctx context.Context) (int, error) {
	db := s.session(ctx)
	if !db.Migrator().HasTable(&schemaVersion{}) {
		return 0, nil
	}
	var v int
	if err := db.Model(&schemaVersion{}).Select("COALESCE(MAX(version), 0)").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Migrate brings the database to SchemaVersion, applying each missing step
// in its own transaction together with the row that records it. It is
// idempotent, and safe when several replicas start at once: each step's
// transaction first takes the migration lock (PostgreSQL: an advisory lock;
// SQLite: BEGIN IMMEDIATE's write lock), then reads the applied version, so
// a replica that waited finds the step applied and goes on, instead of
// applying it twice or failing.
func (s *Store) Migrate(ctx context.Context) error {
	for {
		var step *migration
		err := s.write(ctx, func(tx *gorm.DB) error {
			step = nil
			if err := s.migrationLock(tx); err != nil {
				return fmt.Errorf("take the migration lock: %w", err)
			}
			if err := tx.Migrator().AutoMigrate(&schemaVersion{}); err != nil {
				return fmt.Errorf("create schema_versions: %w", err)
			}
			var current int
			if err := tx.Model(&schemaVersion{}).Select("COALESCE(MAX(version), 0)").Scan(&current).Error; err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if current > SchemaVersion {
				return fmt.Errorf("%w: the database is at version %d, this binary knows up to %d", ErrSchemaTooNew, current, SchemaVersion)
			}
			for i := range migrations {
				if migrations[i].version > current {
					step = &migrations[i]
					break
				}
			}
			if step == nil {
				return nil
			}
			if err := tx.Create(&schemaVersion{Version: step.version, Name: step.name, AppliedAt: s.now()}).Error; err != nil {
				return fmt.Errorf("step %d (%s): record it: %w", step.version, step.name, err)
			}
			if err := step.up(tx); err != nil {
				return fmt.Errorf("step %d (%s): %w", step.version, step.name, err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if step == nil {
			return nil
		}
		s.log.WithField("version", step.version).Infof("applied migration %d: %s", step.version, step.name)
	}
}
