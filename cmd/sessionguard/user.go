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

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/passkey"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
)

// userSubcommand is one `sessionguard user` subcommand. The table
// userSubcommands is the one place they are listed: the help, the
// dispatch and the error messages all come from it.
type userSubcommand struct {
	name    string
	args    string // the synopsis after "sessionguard user NAME", flags first
	summary string // one sentence, for the subcommand's own -h
	note    string // what `sessionguard user -h` adds after the synopsis

	takesName    bool // needs exactly one account NAME
	password     bool // asks for a new password; has -password-stdin
	endsSessions bool // ends the user's sessions; has -sessions
	createsDB    bool // may create the -db database, as serve does

	flags func(f *flagSet, u *userRun) // flags of its own, or nil
	run   func(ctx context.Context, u *userRun) error
}

// userRun is what a subcommand's run works with: its parsed flags and
// arguments and the stores, opened.
type userRun struct {
	sub      *userSubcommand
	name     string // the normalized NAME, if the subcommand takes one
	role     string // -role of add
	password string // the new password, if the subcommand asks for one
	db       string // -db
	sessions string // -sessions, if the subcommand ends sessions

	database       *sqldb.DB // the -db database, opened
	accounts       *account.Store
	audit          *auditLog
	log            *slog.Logger
	stdout, stderr io.Writer
}

var userSubcommands = []*userSubcommand{
	{
		name: "add", args: "[-role admin|user] [-password-stdin] NAME",
		summary:   "Creates an account.",
		takesName: true, password: true, createsDB: true,
		flags: func(f *flagSet, u *userRun) {
			commandLineOnly(f.Choice(&u.role, "role", string(account.RoleUser), []string{string(account.RoleAdmin), string(account.RoleUser)},
				"what the user may do: admin manages users and sessions"))
		},
		run: userAdd,
	},
	{
		name:    "list",
		summary: "Lists the accounts: name, role, disabled, created.",
		run:     userList,
	},
	{
		name: "disable", args: "NAME", note: "(also ends the user's sessions)",
		summary:   "Disables an account, so it cannot sign in, and ends its sessions.",
		takesName: true, endsSessions: true,
		run: userDisable,
	},
	{
		name: "enable", args: "NAME",
		summary:   "Enables a disabled account again.",
		takesName: true,
		run:       userEnable,
	},
	{
		name: "passwd", args: "[-password-stdin] NAME", note: "(also ends the user's sessions)",
		summary:   "Sets a new password for an account and ends its sessions.",
		takesName: true, password: true, endsSessions: true,
		run: userPasswd,
	},
	{
		name: "mfa-reset", args: "NAME", note: "(also ends the user's sessions)",
		summary:   "Removes an account's second factors (authenticator app, recovery codes, passkeys) and ends its sessions (docs/mfa.md).",
		takesName: true, endsSessions: true,
		run: userMFAReset,
	},
}

// userHelp is the text of `sessionguard user -h`.
func userHelp() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: sessionguard user %s [flags] [NAME]\n\n", strings.Join(userSubcommandNames(), "|"))
	b.WriteString("Manages the accounts in the -db database:\n\n")
	for _, s := range userSubcommands {
		line := strings.TrimSpace("sessionguard user " + s.name + " " + s.args)
		if s.note != "" {
			line += "    " + s.note
		}
		fmt.Fprintf(&b, "  %s\n", line)
	}
	b.WriteString(`
Passwords are typed twice at a terminal without echo, or read as one line
from standard input with -password-stdin (for scripts:
printf '%s\n' "$PASSWORD" | sessionguard user add -password-stdin alice).

Run 'sessionguard user SUBCOMMAND -h' for its flags.
`)
	return b.String()
}

func userSubcommandNames() []string {
	names := make([]string, len(userSubcommands))
	for i, s := range userSubcommands {
		names[i] = s.name
	}
	return names
}

// userSubcommandList words the subcommands for an error message:
// "add, list, disable, enable, passwd or mfa-reset".
func userSubcommandList() string {
	names := userSubcommandNames()
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// userCommand runs `sessionguard user SUBCOMMAND ...`.
func userCommand(ctx context.Context, args []string, env environment, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, userHelp())
		if len(args) == 0 {
			return usageErrorf("user needs a subcommand: %s (see 'sessionguard user -h')", userSubcommandList())
		}
		return nil
	}
	var sub *userSubcommand
	for _, s := range userSubcommands {
		if s.name == args[0] {
			sub = s
		}
	}
	if sub == nil {
		return usageErrorf("unknown user subcommand %q: use %s (see 'sessionguard user -h')", args[0], userSubcommandList())
	}
	u := &userRun{sub: sub, stdout: stdout, stderr: stderr}

	command := "sessionguard user " + sub.name
	synopsis := command + " [flags]"
	if sub.takesName {
		synopsis += " NAME"
	}
	f := newFlagSet(command, synopsis, sub.summary)
	if sub.flags != nil {
		sub.flags(f, u)
	}
	var passwordStdin bool
	if sub.password {
		commandLineOnly(f.Bool(&passwordStdin, "password-stdin", "read the password as one line from standard input instead of prompting"))
	}
	f.String(&u.db, "db", defaultDB, "DSN", "the database of the accounts: sqlite:PATH or postgres://...")
	if sub.endsSessions {
		f.String(&u.sessions, "sessions", "", "DSN", "the session store whose sessions of the user to end, as serve's -sessions").
			defaultIs("the -db database")
	}
	rest, err := f.parse(args[1:], env, stdout)
	if err != nil {
		return err
	}
	if err := checkDB(u.db); err != nil {
		return usageErrorf("invalid value for %s: %v", f.lookup("db").source, err)
	}
	if sub.endsSessions {
		if err := checkSessions(u.sessions, u.db); err != nil {
			return usageErrorf("invalid value for %s: %v", f.lookup("sessions").source, err)
		}
	}

	switch {
	case !sub.takesName && len(rest) > 0:
		return usageErrorf("user %s takes no arguments, got %q", sub.name, rest[0])
	case !sub.takesName:
	case len(rest) != 1:
		return usageErrorf("user %s needs exactly one NAME (see 'sessionguard user %s -h')", sub.name, sub.name)
	default:
		if u.name, err = account.NormalizeName(rest[0]); err != nil {
			return usageErrorf("invalid NAME %q: %v", rest[0], err)
		}
	}

	// The password is asked before anything is opened: a mistake in typing
	// it should not cost a database migration, and a script should fail
	// before it touches anything.
	if sub.password {
		if u.password, err = readPassword(stdin, stderr, u.name, passwordStdin); err != nil {
			return err
		}
		if err := account.CheckPassword(u.name, u.password); err != nil {
			return err
		}
	}

	u.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := openDB(ctx, u.db, !sub.createsDB)
	if err != nil {
		return err
	}
	defer d.Close()
	u.database = d
	if u.audit, err = openAudit(ctx, d, u.log); err != nil {
		return err
	}
	if u.accounts, err = account.NewStore(ctx, d, account.Options{Logger: u.log}); err != nil {
		return fmt.Errorf("opening the accounts: %w", err)
	}
	return sub.run(ctx, u)
}

func userAdd(ctx context.Context, u *userRun) error {
	if err := u.accounts.Create(ctx, u.name, u.password, account.Role(u.role)); err != nil {
		return accountError(err, u.name)
	}
	recordAudit(ctx, u.audit, u.log, audit.UserCreated, u.name)
	fmt.Fprintf(u.stdout, "created %s %s\n", u.role, u.name)
	return nil
}

func userList(ctx context.Context, u *userRun) error {
	users, err := u.accounts.List(ctx)
	if err != nil {
		return fmt.Errorf("listing the accounts: %w", err)
	}
	printUsers(u.stdout, users)
	return nil
}

func userEnable(ctx context.Context, u *userRun) error {
	if err := u.accounts.SetDisabled(ctx, u.name, false); err != nil {
		return accountError(err, u.name)
	}
	recordAudit(ctx, u.audit, u.log, audit.UserEnabled, u.name)
	fmt.Fprintf(u.stdout, "enabled %s\n", u.name)
	return nil
}

func userDisable(ctx context.Context, u *userRun) error {
	return u.changeAndEndSessions(ctx, "disabled",
		"the server ends them at their next request, since the account is disabled",
		func() error {
			if err := u.accounts.SetDisabled(ctx, u.name, true); err != nil {
				return accountError(err, u.name)
			}
			recordAudit(ctx, u.audit, u.log, audit.UserDisabled, u.name)
			return nil
		})
}

func userPasswd(ctx context.Context, u *userRun) error {
	return u.changeAndEndSessions(ctx, "changed the password of",
		"end them from the admin page, or they run until they time out",
		func() error {
			if err := u.accounts.SetPassword(ctx, u.name, u.password); err != nil {
				return accountError(err, u.name)
			}
			recordAudit(ctx, u.audit, u.log, audit.PasswordChanged, u.name)
			return nil
		})
}

// userMFAReset removes all of a user's second factors: what an
// administrator does for a user who lost the phone or the security key. The
// sessions end too, since one may be in the hands of whoever has the device.
func userMFAReset(ctx context.Context, u *userRun) error {
	return u.changeAndEndSessions(ctx, "reset the second factors of",
		"end them from the admin page, or they run until they time out",
		func() error {
			before, err := u.accounts.Factors(ctx, u.name)
			if err != nil {
				return accountError(err, u.name)
			}
			if err := u.accounts.ResetSecondFactors(ctx, u.name); err != nil {
				return accountError(err, u.name)
			}
			passkeys, err := removePasskeys(ctx, u)
			if err != nil {
				removed := describeFactors(before, 0)
				recordAuditDetail(ctx, u.audit, u.log, audit.MFAReset, u.name, "command line: removed "+removed+"; removing the passkeys failed")
				return fmt.Errorf("removed %s of %s, but removing the passkeys failed (run the command again): %w", removed, u.name, err)
			}
			removed := describeFactors(before, passkeys)
			recordAuditDetail(ctx, u.audit, u.log, audit.MFAReset, u.name, "command line: removed "+removed)
			fmt.Fprintf(u.stdout, "removed %s of %s\n", removed, u.name)
			return nil
		})
}

// removePasskeys removes all of u's passkeys, through a Store without a
// relying party: it runs no ceremony.
func removePasskeys(ctx context.Context, u *userRun) (int, error) {
	store, err := passkey.NewStore(ctx, u.database, passkey.Config{}, passkey.Options{})
	if err != nil {
		return 0, err
	}
	return store.RemoveAll(ctx, u.name)
}

// describeFactors words what a reset removed: "the authenticator app, 7
// recovery codes and 2 passkeys", or "no second factor".
func describeFactors(f account.Factors, passkeys int) string {
	var parts []string
	if f.TOTP {
		parts = append(parts, "the authenticator app")
	}
	if f.RecoveryCodesLeft > 0 {
		parts = append(parts, plural(f.RecoveryCodesLeft, "recovery code"))
	}
	if passkeys > 0 {
		parts = append(parts, plural(passkeys, "passkey"))
	}
	switch len(parts) {
	case 0:
		return "no second factor"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// changeAndEndSessions runs change, a change to u's account, and ends the
// account's sessions in the -sessions store; done words the change for the
// output ("disabled"). With a memory store, which no other process can
// reach, it only makes the change and says what becomes of the sessions
// (memoryNote).
func (u *userRun) changeAndEndSessions(ctx context.Context, done, memoryNote string, change func() error) error {
	if u.sessions == "memory" {
		if err := change(); err != nil {
			return err
		}
		fmt.Fprintf(u.stdout, "%s %s\n", done, u.name)
		fmt.Fprintf(u.stderr, "sessionguard: note: with -sessions memory the sessions live inside the server process, so this command cannot end them; %s\n", memoryNote)
		return nil
	}
	// The session store is opened before the change, so that a store
	// that cannot be reached leaves the account as it was instead of
	// changed with its sessions still running.
	ended, err := withSessions(ctx, u.sessions, u.db, u.audit, u.log, func(m *session.Manager) (int, error) {
		if err := change(); err != nil {
			return 0, err
		}
		n, err := m.RevokeUser(ctx, u.name, "")
		if err != nil {
			return n, fmt.Errorf("the account of %s is changed, but ending its sessions failed after %d: %w", u.name, n, err)
		}
		return n, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(u.stdout, "%s %s; ended %d session(s)\n", done, u.name, ended)
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
		SweepInterval: session.SweepOff,
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
