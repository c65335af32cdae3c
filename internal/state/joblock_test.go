package state

import (
	"context"
	"testing"
)

func TestStore_RunLocked(t *testing.T) {
	for name, newEnv := range map[string]func(testing.TB) *env{"sqlite": newSQLiteEnv, "postgres": newPostgresEnv} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			other := e.reopen(t) // another replica on the same database
			ctx := context.Background()
			inner := false
			ran, err := e.RunLocked(ctx, "settle_batch", func(ctx context.Context) error {
				if name == "sqlite" {
					return nil // one payd serve per file: nothing to exclude
				}
				r, err := other.RunLocked(ctx, "settle_batch", func(context.Context) error { inner = true; return nil })
				if err != nil || r {
					t.Errorf("second replica: ran %v, %v; want it refused while the first holds the job", r, err)
				}
				r, err = other.RunLocked(ctx, "sweep", func(context.Context) error { return nil })
				if err != nil || !r {
					t.Errorf("another job: ran %v, %v; want it run", r, err)
				}
				return nil
			})
			if err != nil || !ran || inner {
				t.Fatalf("ran %v, %v, inner %v", ran, err, inner)
			}
			// Released: the other replica takes it now.
			if r, err := other.RunLocked(ctx, "settle_batch", func(context.Context) error { return nil }); err != nil || !r {
				t.Fatalf("after release: ran %v, %v", r, err)
			}
		})
	}
}
