// Package pgtest gives tests a fresh PostgreSQL schema of the server
// PAYD_TEST_POSTGRES_DSN names, or skips them where none is set. It imports
// nothing of payd, so every package's tests can use it.
package pgtest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// DSNEnv names the variable holding the PostgreSQL server the PostgreSQL suites use.
const DSNEnv = "PAYD_TEST_POSTGRES_DSN"

// Schema returns the DSN of a new, empty schema (its name starting
// with prefix) of the database DSNEnv names, dropped at cleanup; it
// skips the test, saying why, when the variable is not set.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	base := os.Getenv(DSNEnv)
	if base == "" {
		t.Skip(DSNEnv + " is not set: this test needs a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/test)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("connect to %s: %v", DSNEnv, err)
	}
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		if db, err := admin.DB(); err == nil {
			_ = db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", DSNEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
