package jobs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/payd/payd/internal/logkey"
)

// Owner names this process among the replicas and in leases: host/pid.
func Owner() string {
	host, _ := os.Hostname()
	return FormatOwner(host, os.Getpid())
}

// FormatOwner is the replica name of process pid on host.
func FormatOwner(host string, pid int) string { return fmt.Sprintf("%s/%d", host, pid) }

// ParseOwner splits a replica name made by FormatOwner; ok is false for any
// other string (a host may itself hold slashes: the pid follows the last).
func ParseOwner(owner string) (host string, pid int, ok bool) {
	i := strings.LastIndexByte(owner, '/')
	if i <= 0 {
		return "", 0, false
	}
	pid, err := strconv.Atoi(owner[i+1:])
	if err != nil || pid <= 0 {
		return "", 0, false
	}
	return owner[:i], pid, true
}

// OwnerStore lists and removes replicas.
type OwnerStore interface {
	ReplicaOwners(ctx context.Context) ([]string, error)
	Leave(ctx context.Context, owner string) error
}

// ForgetDeadLocal removes the replicas of this host whose process is gone:
// a payd that was killed and restarted by its supervisor would otherwise
// share the budgets with its own ghost until the TTL passed. A failure only
// costs that wait, so it is logged, not returned.
func ForgetDeadLocal(ctx context.Context, st OwnerStore, log *logrus.Entry) {
	host, _ := os.Hostname()
	owners, err := st.ReplicaOwners(ctx)
	if err != nil {
		log.WithError(err).Warn("could not read the replicas")
		return
	}
	for _, o := range owners {
		h, pid, ok := ParseOwner(o)
		if !ok || h != host || pid == os.Getpid() || !processGone(pid) {
			continue
		}
		if err := st.Leave(ctx, o); err != nil {
			log.WithError(err).Warn("could not forget a dead replica")
			continue
		}
		log.WithField(logkey.Replica, o).Info("forgot a replica of this host whose process is gone")
	}
}
