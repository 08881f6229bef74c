package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BusyTimeout is how long a SQLite connection waits for another writer (in
// this process or another) before failing with SQLITE_BUSY. Writes are short
// statements, one bounded batch or one migration, so five seconds means a
// stuck writer, not a busy one.
const BusyTimeout = 5 * time.Second

// SQLitePragmas configure a SQLite connection that writes: the driver runs
// busy_timeout first, so the others already wait for locks.
//
// _txlock=immediate makes every transaction take the write lock when it
// begins. A deferred transaction that reads and then writes would fail at
// once with SQLITE_BUSY, busy timeout or not, when another connection wrote
// in between; an immediate one waits its turn instead. Together with the busy
// timeout this is what lets several connections (and processes) write to one
// file without errors: SQLite admits one writer at a time, and the others
// queue.
//
// synchronous=NORMAL in WAL mode syncs at checkpoints, not at every commit: a
// commit survives a crash of the process, but the last ones may be lost (the
// file is never corrupted) if the machine loses power first. FULL would cost
// a disk flush per write.
var SQLitePragmas = "_pragma=busy_timeout(" + strconv.FormatInt(BusyTimeout.Milliseconds(), 10) + ")" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(NORMAL)" +
	"&_pragma=foreign_keys(1)" +
	"&_txlock=immediate"

// FileURI returns the SQLite URI of the file at the absolute path p. The URI
// form lets the path hold '?' or '#', which would otherwise start the DSN's
// parameters; SQLite decodes the percent escapes.
func FileURI(p string) string {
	p = filepath.ToSlash(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:/C:/dir/db
	}
	var b strings.Builder
	b.WriteString("file:")
	for i := range len(p) {
		switch c := p[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ConnectSQLite makes db's first connection, trying again while the file is
// locked, for at most BusyTimeout or until ctx ends. Opening a connection runs
// SQLitePragmas; on a new file, journal_mode(WAL) needs the file to itself,
// and SQLite answers SQLITE_BUSY at once, without its busy timeout, when
// another process is doing the same or migrating: processes started
// together on a new file would otherwise fail at random.
func ConnectSQLite(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(BusyTimeout)
	for {
		err := db.PingContext(ctx)
		if err == nil || !IsSQLiteBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// IsSQLiteBusy reports whether err is SQLite's SQLITE_BUSY (the file is
// locked), recognised by the driver's Code method as IsUniqueViolation does.
func IsSQLiteBusy(err error) bool {
	se, ok := errors.AsType[interface {
		error
		Code() int
	}](err)
	return ok && se.Code()&0xff == sqliteBusy
}

// sqliteBusy is SQLite's primary result code SQLITE_BUSY.
const sqliteBusy = 5
