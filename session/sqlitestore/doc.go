// Package sqlitestore is the embedded default session.Store: sessions live in
// one SQLite database file beside the program, with nothing else to run.
//
// # One file
//
// The server keeps its accounts and audit log in the same file, in tables of
// their own; every table of this package is named session_*, and its schema
// version is the row "session" of schema_migrations, the table the server's
// other components keep theirs in (PRAGMA user_version belongs to the whole
// file). Open migrates the session tables to the version this code knows, in
// one transaction, and refuses a file written by a newer version
// (ErrSchemaTooNew) instead of guessing at its layout.
//
// # The sweep
//
// Each session's expiry, computed by the Manager, is kept in an indexed
// column. A session ends in place: its row stays, with why and when it
// ended and until when that is kept, and with its data, IP address and
// User-Agent cleared, so that ending it rewrites the row and two small
// indexes whose keys follow the order of expiry, not the indexes on its
// ID, token hash and user, where every session lands on a page of its
// own. Those are written once the ending is forgotten (KeepUntil), when
// EndExpired purges the row. It works in transactions of at most 64
// records, each reading a batch through the expiry index and ending it in
// one statement: a Touch or a sign-in waits for one of them at most, and
// reads never wait. The last transaction of a call also purges and trims,
// so the Manager's call every second between sweeps takes the write lock
// once. Every 500 records, and when it finds no more, it has the
// write-ahead log checkpointed on a goroutine and a connection of its own,
// so that no request's commit has to.
//
// # Pure Go
//
// The driver is modernc.org/sqlite, SQLite translated to Go, so the program
// builds with CGO_ENABLED=0: one static binary, cross-compiled without a C
// toolchain. It costs some speed against the C library, which a session store
// (one indexed read per request, a write every touch interval) does not miss.
//
// # Crashes
//
// The database runs in WAL mode with synchronous=NORMAL. A write that has
// returned survives the process crashing or being killed: it is in the WAL
// file, which the next open replays. A power loss or a kernel crash is
// different: synchronous=NORMAL syncs the WAL to disk at checkpoints, not at
// every commit, so the transactions of the last moments before the outage
// may be lost, though the database is never corrupted. For sessions that
// means a login may have to be repeated, a touch may be lost (the session
// then times out a little early) and, the one loss that weakens security, a
// logout or revocation may be undone, its session working again until its
// own deadline. Syncing every commit (synchronous=FULL) would make each touch
// wait for the disk; deployments that cannot accept the risk should use a
// replicated store.
//
// # Several processes
//
// Every method is safe for concurrent use, including from several processes
// (or several Stores) opened on the same file: SQLite lets one writer in at a
// time, and waits up to five seconds for it (busy_timeout) before failing.
// End's exactly-once rule holds across processes, because the record is
// read and ended, on the condition that it has not ended, inside one write
// transaction, which holds SQLite's write lock from its start. A sign-out, revocation or renewal made by any of them is
// refused by every other at once, although each keeps recently read records
// in memory (see WithCache): before a read from memory the Store asks SQLite
// whether another connection has committed (PRAGMA data_version), and drops
// the records whose token stopped working. The file must be on a local disk:
// SQLite's locking does not work over network file systems.
package sqlitestore
