package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/sessionguard/sessionguard/account"
	"github.com/sessionguard/sessionguard/audit"
	"github.com/sessionguard/sessionguard/session"
)

const userAbout = `Manages the accounts in the -db database:

  sessionguard user add [-role admin|user] [-password-stdin] NAME
  sessionguard user list
  sessionguard user disable NAME    (also ends the user's sessions)
  sessionguard user enable NAME
  sessionguard user passwd [-password-stdin] NAME    (also ends the user's sessions)

Passwords are typed twice at a terminal without echo, or read as one line
from standard input with -password-stdin (for scripts:
printf '%s\n' "$PASSWORD" | sessionguard user add -password-stdin alice).`

// userCommand runs `sessionguard user SUBCOMMAND ...`.
func userCommand(ctx context.Context, args []string, env environment, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, "Usage: sessionguard user add|list|disable|enable|passwd [flags] [NAME]\n\n%s\n\nRun 'sessionguard user SUBCOMMAND -h' for its flags.\n", userAbout)
		if len(args) == 0 {
			return usageErrorf("user needs a subcommand: add, list, disable, enable or passwd (see 'sessionguard user -h')")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var (
		db, sessions  string
		role          string
		passwordStdin bool
	)
	var f *flagSet
	switch sub {
	case "add":
		f = newFlagSet("sessionguard user add", "sessionguard user add [flags] NAME", "Creates an account.")
		commandLineOnly(f.Choice(&role, "role", string(account.RoleUser), []string{string(account.RoleAdmin), string(account.RoleUser)},
			"what the user may do: admin manages users and sessions"))
		commandLineOnly(f.Bool(&passwordStdin, "password-stdin", "read the password as one line from standard input instead of prompting"))
	case "list":
		f = newFlagSet("sessionguard user list", "sessionguard user list [flags]", "Lists the accounts: name, role, disabled, created.")
	case "disable":
		f = newFlagSet("sessionguard user disable", "sessionguard user disable [flags] NAME",
			"Disables an account, so it cannot sign in, and ends its sessions.")
	case "enable":
		f = newFlagSet("sessionguard user enable", "sessionguard user enable [flags] NAME", "Enables a disabled account again.")
	case "passwd":
		f = newFlagSet("sessionguard user passwd", "sessionguard user passwd [flags] NAME",
			"Sets a new password for an account and ends its sessions.")
		commandLineOnly(f.Bool(&passwordStdin, "password-stdin", "read the password as one line from standard input instead of prompting"))
	default:
		return usageErrorf("unknown user subcommand %q: use add, list, disable, enable or passwd (see 'sessionguard user -h')", sub)
	}
	f.String(&db, "db", defaultDB, "DSN", "the database of the accounts: sqlite:PATH or postgres://...")
	if sub == "disable" || sub == "passwd" {
		f.String(&sessions, "sessions", "", "DSN", "the session store whose sessions of the user to end, as serve's -sessions").
			defaultIs("the -db database")
	}
	rest, err := f.parse(args, env, stdout)
	if err != nil {
		return err
	}
	if err := checkDB(db); err != nil {
		return usageErrorf("invalid value for %s: %v", f.lookup("db").source, err)
	}
	if sub == "disable" || sub == "passwd" {
		if err := checkSessions(sessions, db); err != nil {
			return usageErrorf("invalid value for %s: %v", f.lookup("sessions").source, err)
		}
	}

	var name string
	switch {
	case sub == "list" && len(rest) > 0:
		return usageErrorf("user list takes no arguments, got %q", rest[0])
	case sub == "list":
	case len(rest) != 1:
		return usageErrorf("user %s needs exactly one NAME (see 'sessionguard user %s -h')", sub, sub)
	default:
		if name, err = account.NormalizeName(rest[0]); err != nil {
			return usageErrorf("invalid NAME %q: %v", rest[0], err)
		}
	}

	// The password is asked before anything is opened: a mistake in typing
	// it should not cost a database migration, and a script should fail
	// before it touches anything.
	var password string
	if sub == "add" || sub == "passwd" {
		if password, err = readPassword(stdin, stderr, name, passwordStdin); err != nil {
			return err
		}
		if err := account.CheckPassword(name, password); err != nil {
			return err
		}
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := openDB(ctx, db, sub != "add")
	if err != nil {
		return err
	}
	defer d.Close()
	al, err := openAudit(ctx, d, log)
	if err != nil {
		return err
	}
	accounts, err := account.NewStore(ctx, d, account.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("opening the accounts: %w", err)
	}

	switch sub {
	case "add":
		if err := accounts.Create(ctx, name, password, account.Role(role)); err != nil {
			return accountError(err, name)
		}
		recordAudit(ctx, al, log, audit.UserCreated, name)
		fmt.Fprintf(stdout, "created %s %s\n", role, name)
	case "list":
		users, err := accounts.List(ctx)
		if err != nil {
			return fmt.Errorf("listing the accounts: %w", err)
		}
		printUsers(stdout, users)
	case "enable":
		if err := accounts.SetDisabled(ctx, name, false); err != nil {
			return accountError(err, name)
		}
		recordAudit(ctx, al, log, audit.UserEnabled, name)
		fmt.Fprintf(stdout, "enabled %s\n", name)
	case "disable", "passwd":
		what, change := "disabled", func() error {
			if err := accounts.SetDisabled(ctx, name, true); err != nil {
				return accountError(err, name)
			}
			recordAudit(ctx, al, log, audit.UserDisabled, name)
			return nil
		}
		if sub == "passwd" {
			what, change = "changed the password of", func() error {
				if err := accounts.SetPassword(ctx, name, password); err != nil {
					return accountError(err, name)
				}
				recordAudit(ctx, al, log, audit.PasswordChanged, name)
				return nil
			}
		}
		if sessions == "memory" {
			// A memory store lives inside the server process: no other
			// process can reach its sessions.
			if err := change(); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s\n", what, name)
			fmt.Fprintf(stderr, "sessionguard: note: with -sessions memory the sessions live inside the server process, so this command cannot end them; %s\n",
				map[string]string{
					"disable": "the server ends them at their next request, since the account is disabled",
					"passwd":  "end them from the admin page, or they run until they time out",
				}[sub])
			return nil
		}
		// The session store is opened before the change, so that a store
		// that cannot be reached leaves the account as it was instead of
		// changed with its sessions still running.
		ended, err := withSessions(ctx, sessions, db, al, log, func(m *session.Manager) (int, error) {
			if err := change(); err != nil {
				return 0, err
			}
			n, err := m.RevokeUser(ctx, name, "")
			if err != nil {
				return n, fmt.Errorf("the account of %s is changed, but ending its sessions failed after %d: %w", name, n, err)
			}
			return n, nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s; ended %d session(s)\n", what, name, ended)
	}
	return nil
}

// withSessions opens the session store named by the -sessions and -db DSNs,
// runs fn with a Manager on it whose ended sessions are audited, and closes
// both. The Manager runs no sweeper: the server's does that work.
func withSessions(ctx context.Context, dsn, db string, al *auditLog, log *slog.Logger, fn func(*session.Manager) (int, error)) (int, error) {
	desc, open, err := sessionBackend(dsn, db)
	if err != nil {
		return 0, err
	}
	store, err := open(ctx, defaultStoreTimeout)
	if err != nil {
		return 0, fmt.Errorf("opening the session store %s: %w", desc, err)
	}
	defer store.Close()
	m, err := session.New(session.Config{
		Store:         store,
		Observers:     []session.Observer{al},
		Logger:        log,
		SweepInterval: -1,
	})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	return fn(m)
}

// accountError words an account package error for the command line.
func accountError(err error, name string) error {
	switch {
	case errors.Is(err, account.ErrNotFound):
		return fmt.Errorf("no user %q", name)
	case errors.Is(err, account.ErrExists):
		return fmt.Errorf("user %q exists already", name)
	case errors.Is(err, account.ErrWeakPassword), errors.Is(err, account.ErrLastAdmin):
		return err
	}
	return fmt.Errorf("updating user %q: %w", name, err)
}

func printUsers(w io.Writer, users []account.User) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tDISABLED\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", u.Name, u.Role, u.Disabled, u.CreatedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}

// maxPasswordInput bounds what -password-stdin reads: far above any
// password the account package accepts, far below a memory problem.
const maxPasswordInput = 4 << 10

// readPassword gets the new password of user: one line from stdin with
// fromStdin, else typed twice at the terminal without echo (prompts on
// prompt). Without -password-stdin, a stdin that is not a terminal is a
// usage error: reading a password from a pipe by surprise would be worse.
func readPassword(stdin io.Reader, prompt io.Writer, user string, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReaderSize(io.LimitReader(stdin, maxPasswordInput), 512).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		if len(line) >= maxPasswordInput && !strings.HasSuffix(line, "\n") {
			return "", fmt.Errorf("the password line on standard input is longer than %d bytes", maxPasswordInput)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			return "", errors.New("no password on standard input (-password-stdin reads one line)")
		}
		return line, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageErrorf("standard input is not a terminal, so the password cannot be typed: pass it as one line on standard input with -password-stdin")
	}
	fmt.Fprintf(prompt, "New password for %s: ", user)
	first, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	fmt.Fprintf(prompt, "Repeat the password: ")
	second, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if string(first) != string(second) {
		return "", errors.New("the two passwords differ; nothing was changed")
	}
	if len(first) == 0 {
		return "", errors.New("the password is empty; nothing was changed")
	}
	return string(first), nil
}
