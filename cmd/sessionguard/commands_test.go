package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/passkey"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/sqlitestore"
)

// cli runs the command line in this process and returns its exit code and
// output.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, envOf(env), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestUserAndAuditCommands runs the account and audit commands in-process
// against a SQLite file named by SESSIONGUARD_DB.
func TestUserAndAuditCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SESSIONGUARD_DB": "sqlite:" + filepath.Join(dir, "a.db")}
	const pw = "correct horse battery staple"

	// SESSIONGUARD_ROLE is no variable (-role is for the command line
	// only): it changes nothing, and says so.
	roleEnv := map[string]string{"SESSIONGUARD_DB": env["SESSIONGUARD_DB"], "SESSIONGUARD_ROLE": "admin"}
	if code, out, errOut := cli(t, roleEnv, pw+"\nignored second line\n", "user", "add", "-password-stdin", "alice"); code != 0 || out != "created user alice\n" ||
		errOut != "sessionguard: warning: SESSIONGUARD_ROLE is set but no flag reads it (see 'sessionguard serve -h' for the variables)\n" {
		t.Fatalf("user add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ := cli(t, env, "", "user", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "alice  user  false") {
		t.Errorf("user list: exit %d\n%s", code, out)
	}
	// A -db flag wins over SESSIONGUARD_DB. Only serve and user add create
	// a database; the other commands refuse a file that does not exist.
	other := filepath.Join(dir, "b.db")
	if code, _, errOut := cli(t, env, "", "user", "list", "-db", "sqlite:"+other); code != exitFailure ||
		errOut != "sessionguard: no database file "+other+" (see -db; serve and user add create it)\n" {
		t.Errorf("user list -db missing file: exit %d, %q", code, errOut)
	}
	if code, _, errOut := cli(t, env, "", "audit", "-db", "sqlite:"+other); code != exitFailure || !strings.Contains(errOut, "no database file") {
		t.Errorf("audit -db missing file: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a reading command created the database: %v", err)
	}
	if code, _, _ := cli(t, env, pw+"\n", "user", "add", "-db", "sqlite:"+other, "-password-stdin", "zed"); code != 0 {
		t.Fatalf("user add -db other: exit %d", code)
	}
	if code, out, _ := cli(t, env, "", "user", "list", "-db", "sqlite:"+other); code != 0 || strings.Contains(out, "alice") || !strings.Contains(out, "zed") {
		t.Errorf("user list -db other: exit %d\n%s", code, out)
	}

	// Runtime refusals: exit 1, one line.
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{pw + "\n", []string{"user", "add", "-password-stdin", "Alice"}, `sessionguard: user "alice" exists already`},
		{"short\n", []string{"user", "add", "-password-stdin", "bob"}, "sessionguard: password must have at least 15 characters"},
		{"", []string{"user", "add", "-password-stdin", "bob"}, "sessionguard: no password on standard input (-password-stdin reads one line)"},
		{"", []string{"user", "disable", "nobody"}, `sessionguard: no user "nobody"`},
		{"", []string{"user", "enable", "nobody"}, `sessionguard: no user "nobody"`},
		{pw + "\n", []string{"user", "passwd", "-password-stdin", "nobody"}, `sessionguard: no user "nobody"`},
	} {
		code, out, errOut := cli(t, env, tc.stdin, tc.args...)
		if code != exitFailure || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.args, code, out, errOut, tc.want)
		}
	}

	// A refused password is refused before the database is opened.
	if code, _, _ := cli(t, map[string]string{"SESSIONGUARD_DB": "sqlite:" + filepath.Join(dir, "c.db")}, "short\n", "user", "add", "-password-stdin", "bob"); code != exitFailure {
		t.Errorf("weak password: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused password created the database: %v", err)
	}

	// Usage mistakes: exit 2, one line, nothing changed.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user"}, "sessionguard: user needs a subcommand: add, list, disable, enable, passwd or mfa-reset (see 'sessionguard user -h')\n"},
		{[]string{"user", "remove", "alice"}, `sessionguard: unknown user subcommand "remove": use add, list, disable, enable, passwd or mfa-reset (see 'sessionguard user -h')` + "\n"},
		{[]string{"user", "add", "-password-stdin"}, "sessionguard: user add needs exactly one NAME (see 'sessionguard user add -h')\n"},
		{[]string{"user", "add", "-role", "root", "bob"}, `sessionguard: invalid value "root" for -role: want one of admin, user` + "\n"},
		{[]string{"user", "add", "-password-stdin", "bob", "-role", "admin"}, "sessionguard: flag -role after an argument: flags come first (sessionguard user add [flags] NAME)\n"},
		{[]string{"user", "add", "-password-stdin", "bob smith"}, `sessionguard: invalid NAME "bob smith": user name may hold only letters a-z, digits and . _ - @` + "\n"},
		{[]string{"user", "disable", "-sessions", "redis://localhost:6379?key_prefix=", "alice"},
			"sessionguard: invalid value for -sessions: key_prefix= is empty: leave it out for the default \"sg:\"\n"},
		{[]string{"user", "list", "extra"}, `sessionguard: user list takes no arguments, got "extra"` + "\n"},
		{[]string{"audit", "-since", "-1h"}, `sessionguard: invalid value "-1h" for -since: must not be negative` + "\n"},
		{[]string{"audit", "-since", "yesterday"}, `sessionguard: invalid value "yesterday" for -since: time: invalid duration "yesterday"` + "\n"},
		{[]string{"audit", "-db", "mysql://x"}, `sessionguard: invalid value for -db: unsupported database scheme "mysql": use ...`},
	} {
		code, out, errOut := cli(t, env, "", tc.args...)
		want, prefix := strings.CutSuffix(tc.want, "...")
		ok := errOut == want
		if prefix {
			ok = strings.HasPrefix(errOut, want) && strings.Count(errOut, "\n") == 1
		}
		if code != exitUsage || !ok || (out != "" && tc.args[0] != "user") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}

	if code, out, errOut := cli(t, env, "", "user", "disable", "alice"); code != 0 || out != "disabled alice; ended 0 session(s)\n" {
		t.Errorf("user disable: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := cli(t, env, "", "user", "list"); code != 0 || !strings.Contains(out, "alice  user  true") {
		t.Errorf("user list after disable:\n%s", out)
	}
	if code, out, errOut := cli(t, env, "", "user", "disable", "-sessions", "memory", "alice"); code != 0 || out != "disabled alice\n" ||
		!strings.Contains(errOut, "cannot end them; the server ends them at their next request") {
		t.Errorf("user disable -sessions memory: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := cli(t, env, "", "user", "enable", "alice"); code != 0 || out != "enabled alice\n" {
		t.Errorf("user enable: exit %d, %q %q", code, out, errOut)
	}

	code, out, _ = cli(t, env, "", "audit", "-json")
	if code != 0 {
		t.Fatalf("audit -json: exit %d", code)
	}
	var events []string
	for line := range strings.Lines(out) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit -json line %q: %v", line, err)
		}
		for _, k := range []string{"time", "event", "user", "session", "reason", "ip"} {
			if _, ok := e[k]; !ok {
				t.Errorf("line %q lacks %q", line, k)
			}
		}
		events = append(events, e["event"].(string)+" "+e["user"].(string))
	}
	want := []string{"user_created alice", "user_disabled alice", "user_disabled alice", "user_enabled alice"}
	if strings.Join(events, ",") != strings.Join(want, ",") {
		t.Errorf("audit events (oldest first) = %v, want %v", events, want)
	}
	if code, out, _ := cli(t, env, "", "audit", "-event", "user_disabled"); code != 0 ||
		!strings.Contains(out, "user_disabled") || strings.Contains(out, "user_created") || !strings.HasPrefix(out, "TIME") {
		t.Errorf("audit -event user_disabled: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(t, env, "", "audit", "-json", "-user", "nobody"); code != 0 || out != "" {
		t.Errorf("audit -user nobody: exit %d, %q", code, out)
	}
}

func TestSubcommandHelp(t *testing.T) {
	for _, args := range [][]string{
		{"user", "-h"}, {"user", "add", "-h"}, {"user", "list", "-h"}, {"user", "disable", "-h"},
		{"user", "enable", "-h"}, {"user", "passwd", "-h"}, {"audit", "-h"},
	} {
		code, out, errOut := cli(t, nil, "", args...)
		if code != 0 || !strings.Contains(out, "Usage: sessionguard ") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
		if len(args) > 1 && args[1] == "-h" {
			continue
		}
		if !strings.Contains(out, "-db DSN") || !strings.Contains(out, "$SESSIONGUARD_DB") {
			t.Errorf("%v: help lacks -db and its variable:\n%s", args, out)
		}
	}
	_, out, _ := cli(t, nil, "", "user", "add", "-h")
	if !strings.Contains(out, "-password-stdin") || strings.Contains(out, "$SESSIONGUARD_PASSWORD_STDIN") || strings.Contains(out, "$SESSIONGUARD_ROLE") {
		t.Errorf("user add -h: per-invocation flags must not be read from the environment:\n%s", out)
	}
	_, out, _ = cli(t, nil, "", "user", "disable", "-h")
	if !strings.Contains(out, "-sessions DSN") {
		t.Errorf("user disable -h lacks -sessions:\n%s", out)
	}
}

func TestReadPassword(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"secret words here\n", "secret words here", ""},
		{"secret words here\r\nmore\n", "secret words here", ""},
		{"no newline at the end", "no newline at the end", ""},
		{"  spaces kept  \n", "  spaces kept  ", ""},
		{"\n", "", "no password on standard input"},
		{"", "", "no password on standard input"},
		{strings.Repeat("x", maxPasswordInput+10), "", "longer than"},
	} {
		got, err := readPassword(strings.NewReader(tc.in), &bytes.Buffer{}, "alice", true)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("readPassword(%.20q) = %q, %v; want %q, error with %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	_, err := readPassword(strings.NewReader("pw\n"), &bytes.Buffer{}, "alice", false)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-password-stdin") {
		t.Errorf("no terminal, no -password-stdin: %v, want a usage error naming -password-stdin", err)
	}
}

// The user subcommands' help and dispatch come from one table: every entry
// is listed by `user -h` and answers its own -h.
func TestUserSubcommandTable(t *testing.T) {
	_, help, _ := cli(t, nil, "", "user", "-h")
	for _, s := range userSubcommands {
		if !strings.Contains(help, "sessionguard user "+s.name) {
			t.Errorf("user -h does not list %s:\n%s", s.name, help)
		}
		code, out, errOut := cli(t, nil, "", "user", s.name, "-h")
		if code != 0 || !strings.Contains(out, "Usage: sessionguard user "+s.name) || !strings.Contains(out, s.summary) || errOut != "" {
			t.Errorf("user %s -h: exit %d, stdout %q, stderr %q", s.name, code, out, errOut)
		}
	}
}

// TestUserMFAReset: mfa-reset removes the authenticator app, the recovery
// codes and the passkeys of one user, no one else's, ends the user's
// sessions, and says what it did, on standard output and in the audit log.
func TestUserMFAReset(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "a.db")
	env := map[string]string{"SESSIONGUARD_DB": dsn}
	const pw = "correct horse battery staple"
	for _, name := range []string{"alice", "bob"} {
		if code, _, errOut := cli(t, env, pw+"\n", "user", "add", "-password-stdin", name); code != 0 {
			t.Fatalf("user add %s: exit %d, %q", name, code, errOut)
		}
	}

	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	accounts, err := account.NewStore(ctx, db, account.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rp, err := passkey.ConfigFromURL("http://localhost:8080", "")
	if err != nil {
		t.Fatal(err)
	}
	passkeys, err := passkey.NewStore(ctx, db, rp, passkey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"alice", "bob"} {
		e, err := accounts.BeginTOTP(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		code, err := totp.GenerateCode(e.Secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := accounts.ConfirmTOTP(ctx, name, code); err != nil {
			t.Fatal(err)
		}
		if _, err := accounts.NewRecoveryCodes(ctx, name); err != nil {
			t.Fatal(err)
		}
		// A registration needs an authenticator; the row it would leave
		// is enough for a reset to remove.
		for j := range 2 {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO passkey_credentials (id, user_name, name, public_key,
				attestation_format, sign_count, user_verified, backup_eligible, backup_state, aaguid, transports, created_at, last_used_at)
				VALUES (?, ?, 'key', ?, 'none', 0, TRUE, FALSE, FALSE, ?, '', 0, 0)`),
				[]byte{byte(i), byte(j)}, name, []byte("public key"), make([]byte, 16)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A session of alice's, in the sessions table of the same database,
	// as the server would have started it.
	store, err := sqlitestore.Open(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.New(session.Config{Store: store, SweepInterval: session.SweepOff})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if _, err := m.Login(rec, httptest.NewRequest("POST", "/auth/login", nil), "alice", session.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	store.Close()

	code, out, errOut := cli(t, env, "", "user", "mfa-reset", "Alice")
	want := "removed the authenticator app, 10 recovery codes and 2 passkeys of alice\nreset the second factors of alice; ended 1 session(s)\n"
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("user mfa-reset: exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, want, errOut)
	}
	for _, tc := range []struct {
		user     string
		factors  account.Factors
		passkeys int
	}{
		{"alice", account.Factors{}, 0},
		{"bob", account.Factors{TOTP: true, RecoveryCodesLeft: account.RecoveryCodeCount}, 2},
	} {
		f, err := accounts.Factors(ctx, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		n, err := passkeys.Count(ctx, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		if f.TOTP != tc.factors.TOTP || f.RecoveryCodesLeft != tc.factors.RecoveryCodesLeft || n != tc.passkeys {
			t.Errorf("%s after resetting alice: %+v and %d passkeys, want %+v and %d", tc.user, f, n, tc.factors, tc.passkeys)
		}
	}

	// Again: nothing left to remove, which is no error.
	if code, out, _ := cli(t, env, "", "user", "mfa-reset", "alice"); code != 0 ||
		out != "removed no second factor of alice\nreset the second factors of alice; ended 0 session(s)\n" {
		t.Errorf("second mfa-reset: exit %d, %q", code, out)
	}
	if code, _, errOut := cli(t, env, "", "user", "mfa-reset", "nobody"); code != exitFailure || errOut != "sessionguard: no user \"nobody\"\n" {
		t.Errorf("mfa-reset nobody: exit %d, %q", code, errOut)
	}
	if code, _, errOut := cli(t, env, "", "user", "mfa-reset"); code != exitUsage || !strings.Contains(errOut, "user mfa-reset needs exactly one NAME") {
		t.Errorf("mfa-reset without NAME: exit %d, %q", code, errOut)
	}

	entries, err := auditEntries(ctx, db, audit.MFAReset)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].User != "alice" ||
		entries[0].Detail != "command line: removed the authenticator app, 10 recovery codes and 2 passkeys" ||
		entries[1].Detail != "command line: removed no second factor" {
		t.Errorf("mfa_reset entries: %+v", entries)
	}
}

// auditEntries returns the audit log's entries of event, oldest first.
func auditEntries(ctx context.Context, db *sqldb.DB, event audit.Event) ([]audit.Entry, error) {
	l, err := audit.NewLog(ctx, db, audit.Options{})
	if err != nil {
		return nil, err
	}
	return l.Query(ctx, audit.Filter{Event: event})
}
