package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is stamped at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/recledger
//
// (make build does it from git describe). Unstamped builds fall back to the
// module version and VCS data the Go toolchain records.
var version string

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go toolchain of this binary",
		Example: "  recledger version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

func versionString() string {
	v, rev, modified := buildVersion()
	var details []string
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		details = append(details, "commit "+rev+modified)
	}
	details = append(details, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return "recledger " + v + " (" + strings.Join(details, ", ") + ")"
}

// buildVersion is the stamped version (else the module's, else "(devel)"),
// the VCS revision the toolchain recorded (empty when none), and "+dirty"
// when the tree had uncommitted changes. /metrics shows it too.
func buildVersion() (v, revision, modified string) {
	v = version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v, revision, modified
}
