package daemon

import (
	"os"
	"runtime/pprof"

	"github.com/sirupsen/logrus"
)

// ProfileEnv names the environment variable that makes payd serve write a
// CPU profile (pprof) of its whole run to the file it names: `payd bench
// apps --profile` sets it, to see where payd's time per call goes.
const ProfileEnv = "PAYD_CPUPROFILE"

// withProfile starts the CPU profile ProfileEnv asks for, if any, and
// returns release extended to stop it (and then give up what release
// gives up). A profile that cannot start is logged and skipped.
func withProfile(release func(), log *logrus.Entry) func() {
	path := os.Getenv(ProfileEnv)
	if path == "" {
		return release
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		log.WithError(err).Warn("cpu profile not started")
		if f != nil {
			f.Close()
		}
		return release
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		release()
	}
}
