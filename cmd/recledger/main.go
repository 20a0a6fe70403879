// Command recledger receives RC Cloud Recording status callbacks and keeps
// the ledger of recordings, files and URLs they describe.
//
// This file holds what every command shares: the signal context, the root
// command and the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on (and exitNotFound, 3, in client.go).
const (
	exitOK    = 0
	exitError = 1
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line; main and the tests both call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "recledger:", err)
		if errors.Is(err, errNotFound) {
			return exitNotFound
		}
		return exitError
	}
	return exitOK
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "recledger",
		Short: "The ledger of RC Cloud Recording callbacks: which files and URLs belong to which recording",
		Long: `recledger receives RC (RongCloud) RTC Cloud Recording status callbacks, verifies
their signatures, stores each one durably and answers which files and URLs
belong to a room, session, user or recordId, and whether all are uploaded.`,
		Example: `  recledger serve
  recledger recordings show 8329208b99410743dcfeb80548e2c0ec
  recledger sign --app-key your_appkey --secret S --body callback.json`,
		SilenceUsage:  true, // errors are not usage mistakes; --help shows usage
		SilenceErrors: true, // run prints them once, prefixed
		Version:       versionString(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newServeCmd(), newRecordingsCmd(), newFilesCmd(), newEventsCmd(), newQuarantineCmd(), newDestinationsCmd(),
		newEraseCmd(), newSimulateCmd(), newMigrateCmd(), newReplayCmd(), newBackupCmd(), newRestoreCmd(), newSignCmd(), newHealthCmd(), newVersionCmd())
	for _, c := range root.Commands() {
		if c.HasSubCommands() {
			group(c)
		}
	}
	return root
}

// group makes a command that only holds subcommands refuse an unknown one
// with a suggestion, as the root does; cobra would print its help and
// exit 0, so a typo in a script would pass unnoticed. Alone it prints its
// help.
func group(cmd *cobra.Command) {
	cmd.SuggestionsMinimumDistance = 2 // what the root uses
	// The flags meant for the mistyped subcommand (files lss --room x)
	// must not be refused first: the suggestion is what helps.
	cmd.FParseErrWhitelist.UnknownFlags = true
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", strings.Join(s, `" or "`))
		}
		return errors.New(msg + " (" + c.CommandPath() + " --help lists them)")
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
}
