package state

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// TestConnPragmas_SetOnEveryConnection reads the pragmas of connPragmas
// back from a store's connection.
func TestConnPragmas_SetOnEveryConnection(t *testing.T) {
	s := newTestStore(t)
	var temp, ckpt, cache int
	must(t, s.DB().Raw("PRAGMA temp_store").Scan(&temp).Error)
	must(t, s.DB().Raw("PRAGMA wal_autocheckpoint").Scan(&ckpt).Error)
	must(t, s.DB().Raw("PRAGMA cache_size").Scan(&cache).Error)
	if temp != 2 || ckpt != 8000 || cache != -16384 {
		t.Fatalf("temp_store %d, wal_autocheckpoint %d, cache_size %d: want 2 (MEMORY), 8000 and -16384 (16 MiB)", temp, ckpt, cache)
	}
}

// TestConnPragmas_SavepointJournalInMemory writes far more than SQLite's
// 64 KiB in-memory allowance for the savepoint journal inside savepoints,
// as a group commit does, and checks that the process never opened a
// temporary file for it (SQLite unlinks its temporary files at once, so
// they show as deleted descriptors).
func TestConnPragmas_SavepointJournalInMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fd")
	}
	s := newTestStore(t)
	ctx := context.Background()
	must(t, s.DB().Exec("CREATE TABLE fill (id integer PRIMARY KEY, pad text)").Error)
	must(t, s.DB().Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO fill SELECT i, printf('%.500c', 'x') FROM n").Error)
	before := deletedTempFiles(t)
	err := s.InTx(ctx, func(tx *Store) error {
		for i := range 4 {
			err := transaction(tx.db, func(sp *gorm.DB) error {
				return sp.Exec("UPDATE fill SET pad = printf('%.500c', ?) WHERE id % 4 = ?", string(rune('a'+i)), i).Error
			})
			if err != nil {
				return err
			}
		}
		if after := deletedTempFiles(t); after > before {
			t.Errorf("%d temporary files open inside the savepoints, %d before: the savepoint journal went to disk", after, before)
		}
		return nil
	})
	must(t, err)
	var n int64
	must(t, s.DB().Raw("SELECT COUNT(*) FROM fill WHERE pad LIKE 'd%'").Scan(&n).Error)
	if n != 500 {
		t.Fatalf("%d rows of the last savepoint stored, want 500", n)
	}
}

// deletedTempFiles counts the process's open SQLite temporary files
// (named etilqs_…, unlinked).
func deletedTempFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.Contains(target, "etilqs_") && strings.HasSuffix(target, "(deleted)") {
			n++
		}
	}
	return n
}
