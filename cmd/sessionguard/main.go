// Command sessionguard is a web application where people sign in, work, and
// are signed out after a period of inactivity: the session engine of package
// session, with accounts, an audit log, metrics and an admin page.
//
// Usage:
//
//	sessionguard [serve] [flags]      run the server (the default command)
//	sessionguard user add [-role admin|user] [-password-stdin] NAME
//	sessionguard user list | disable NAME | enable NAME | passwd NAME | mfa-reset NAME
//	sessionguard audit [-since DURATION] [-json] [-user NAME] [-event NAME]
//	sessionguard backup [-db sqlite:PATH] OUT
//	sessionguard version | -version
//
// Every flag of serve, and -db and -sessions of the other commands, can also
// come from the environment as SESSIONGUARD_ followed by the flag's name in
// upper case with "_" for "-" (SESSIONGUARD_IDLE_TIMEOUT=15m); a flag on the
// command line wins. `sessionguard serve -h` lists every flag and its default.
// A SESSIONGUARD_ variable that no flag reads (a misspelling) is warned of at
// start.
//
// Exit codes: 0 success, 1 failure at run time, 2 a mistake in the command
// line or the environment (reported in one line naming the flag).
//
// This package is wiring only: the behaviour lives in package session and in
// internal/account, internal/audit, internal/drafts, internal/web and
// internal/gateway.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// The process's exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // something failed at run time: a store, a file, the network
	exitUsage   = 2 // the command line or the environment is wrong
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], environFrom(os.Environ()), os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args (without the program name) and returns the
// process's exit code. env is the environment; stdin is read by the
// password prompts (a terminal when it is an *os.File that is one). serve
// returns when ctx is done or on SIGTERM/SIGINT.
func run(ctx context.Context, args []string, env environment, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, env, stdin, stdout, stderr)
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "sessionguard: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "sessionguard: %v\n", err)
		return exitFailure
	}
}

func dispatch(ctx context.Context, args []string, env environment, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || args[0] == "-version" || args[0] == "--version") {
		cmd, rest = strings.TrimLeft(args[0], "-"), args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseServe(rest, env, stdout)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stderr)
	case "user", "audit", "backup":
		// serve logs these with its start-up lines; the other commands
		// have no log, so they go to stderr before anything happens.
		for _, w := range unknownVariables(env, variables()) {
			fmt.Fprintf(stderr, "sessionguard: warning: %s\n", w)
		}
		switch cmd {
		case "user":
			return userCommand(ctx, rest, env, stdin, stdout, stderr)
		case "audit":
			return auditCommand(ctx, rest, env, stdout)
		default:
			return backupCommand(ctx, rest, env, stdout)
		}
	case "version":
		if len(rest) > 0 {
			return usageErrorf("%s takes no arguments", args[0])
		}
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help":
		// "sessionguard help" shows serve's help, which lists every command.
		_, err := parseServe([]string{"-h"}, env, stdout)
		return err
	}
	return usageErrorf("unknown command %q: the commands are serve (the default), user, audit, backup, version (see 'sessionguard -h')", cmd)
}
