package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/payd/payd/internal/state"
)

// versionText is what payd version and payd --version print: the module
// version, the VCS commit the binary was built from (from the build info),
// the Go version and the database schema version it knows.
func versionText() string {
	version, commit, dirty := "(devel)", "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				commit = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = " (modified)"
			}
		}
	}
	return fmt.Sprintf("payd %s\ncommit %s%s\n%s\nschema version %d\n", version, commit, dirty, runtime.Version(), state.SchemaVersion)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print payd's version, commit, Go version and database schema version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(g.stdout, versionText())
			return err
		},
	}
}
