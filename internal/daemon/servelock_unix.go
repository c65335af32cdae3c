//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// lockServe takes the serve lock of the SQLite database at dsn: an
// exclusive flock on dsn+".serve.lock", which the kernel drops when the
// process dies, so it is never stale. The file holds the owner (host/pid).
// SQLite is single-replica: a second payd serve is refused, naming the
// first. release gives the lock up.
func lockServe(dsn string) (release func(), err error) {
	path := dsn + ".serve.lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("serve lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("database %s is in use by another payd serve (%s): SQLite allows one payd serve at a time; stop that one, or set database.driver: postgres to run several replicas (payd apply beside it is fine)",
				dsn, describeOwner(strings.TrimSpace(string(owner))))
		}
		return nil, fmt.Errorf("serve lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(ProcessOwner()+"\n"), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// describeOwner turns "host/pid" into "pid N on host H".
func describeOwner(owner string) string {
	i := strings.LastIndexByte(owner, '/')
	if i < 0 {
		return "owner unknown"
	}
	return fmt.Sprintf("pid %s on host %s", owner[i+1:], owner[:i])
}
