package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

const backupAbout = `Copies the SQLite database of -db to the new file OUT while servers keep
using it: SQLite's VACUUM INTO writes the database as it was at one moment,
without stopping its writers for longer than a read. OUT must not exist.

The copy holds no sessions: after a restore everyone signs in again, so that
restoring cannot bring back a session that was signed out or revoked after
the backup. Accounts, the audit log and drafts are copied whole.

For PostgreSQL use pg_dump. Restoring is described in docs/deployment.md.`

// backupCommand runs `sessionguard backup`.
func backupCommand(ctx context.Context, args []string, env environment, stdout io.Writer) error {
	var db string
	f := newFlagSet("sessionguard backup", "sessionguard backup [flags] OUT", backupAbout)
	f.String(&db, "db", defaultDB, "DSN", "the database to copy: sqlite:PATH (for postgres://... use pg_dump)")
	rest, err := f.parse(args, env, stdout)
	if err != nil {
		return err
	}
	if isPostgres(db) {
		return usageErrorf("backup copies SQLite databases; back up PostgreSQL with pg_dump, as in pg_dump --format=custom --file=OUT DATABASE (see docs/deployment.md)")
	}
	if err := checkDB(db); err != nil {
		return usageErrorf("invalid value for %s: %v", f.lookup("db").source, err)
	}
	if len(rest) != 1 || rest[0] == "" {
		return usageErrorf("backup needs exactly one OUT, the new file to write (see 'sessionguard backup -h')")
	}
	out, err := filepath.Abs(rest[0])
	if err != nil {
		return err
	}

	src, err := openDB(ctx, db, true)
	if err != nil {
		return err
	}
	defer src.Close()

	// The file is made here, empty and readable by its owner only (it holds
	// password hashes), and never over an existing one: VACUUM INTO fills
	// an empty file, and would make a new one with the umask's permissions.
	created, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already: backup never overwrites a file; name a new one", rest[0])
	}
	if err != nil {
		return fmt.Errorf("creating the backup: %w", err)
	}
	created.Close()
	users, err := copySQLite(ctx, src, out)
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("backing up %s: %w", src, err)
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %d account(s); sessions are left out, so everyone signs in again after a restore\n", src, rest[0], users)
	return nil
}

// copySQLite writes a consistent copy of src to the empty file out, removes
// the sessions from the copy, and returns how many accounts it holds.
func copySQLite(ctx context.Context, src *sqldb.DB, out string) (users int, err error) {
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, out); err != nil {
		return 0, err
	}
	dst, err := sqldb.Open(ctx, "sqlite:"+out)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}()
	if ok, err := hasTable(ctx, dst, "session_records"); err != nil {
		return 0, err
	} else if ok {
		if _, err := dst.ExecContext(ctx, `DELETE FROM session_records`); err != nil {
			return 0, fmt.Errorf("removing the sessions from the copy: %w", err)
		}
	}
	if ok, err := hasTable(ctx, dst, "account_users"); err != nil || !ok {
		return 0, err
	}
	if err := dst.QueryRowContext(ctx, `SELECT count(*) FROM account_users`).Scan(&users); err != nil {
		return 0, err
	}
	return users, nil
}

// hasTable reports whether the SQLite database db has a table called name.
func hasTable(ctx context.Context, db *sqldb.DB, name string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n)
	return n > 0, err
}
