// Package pgstore is a session.Store kept in PostgreSQL, for running several
// instances of a server on one set of sessions: a session started on one
// instance is valid on all of them, and a sign-out or revocation on one is
// final on all of them at once.
//
// Open connects with its own pool (github.com/jackc/pgx/v5/pgxpool) from a
// postgres:// URL; New uses a pool the program already has. Either creates or
// migrates the session tables first.
//
// # Tables
//
// session_records holds the live sessions, session_ended why each ended token
// stopped working (until its retention passes). Both live in the
// connection's current schema (set it with ?search_path=... in the DSN), next
// to whatever else the database holds (the server can keep its accounts and
// audit log in the same schema). The schema version is the row "session" of
// schema_migrations, the table the server's other components use. Migrations
// run in one transaction under a transaction-scoped advisory lock, so
// instances starting at once migrate once, and a failed migration changes
// nothing; a schema written by a newer program is refused (ErrSchemaTooNew).
//
// Times are stored as bigint nanoseconds since 1970 (years 1678 to 2262), not
// timestamptz, which keeps microseconds only. The client's IP and User-Agent
// are bytea, so that whatever bytes a browser sent are kept as they were;
// session data is a jsonb object, and data that JSON cannot hold exactly
// (NUL characters, invalid UTF-8) is refused with an error.
//
// # Several instances
//
// Every rule of the session.Store contract holds across any number of Stores
// on one schema, because each write is one statement that PostgreSQL applies
// atomically under a row lock:
//
//   - Touch, SaveData and Renew are UPDATEs conditional on the record (and,
//     for Touch, its expiry; for SaveData, its data; for Renew, its old token
//     hash): nothing is upserted, so activity racing a sign-out never brings
//     a session back.
//   - End deletes the record and writes its ended-token row in one statement
//     (DELETE ... RETURNING feeding an INSERT), so of two Ends on two
//     instances exactly one gets the record; the other finds no row.
//   - Get and List take no locks and never wait for writers.
//
// Gets that arrive while a Get is in flight wait for it, and then go
// together, up to 128 in one query (token_hash = ANY($1)). Each still reads
// the table after it was called (nothing is cached, so a sign-out on one
// instance is seen at once on all), a Get that finds none in flight is sent
// at once, and one query for many saves most of the cost of a session check
// under load, in this process and in the database.
//
// The clocks of the instances should agree (NTP): each Manager judges expiry
// by its own clock, so an instance whose clock runs ahead ends sessions early
// by as much.
//
// # The sweeper
//
// EndExpired is what each instance's Manager calls every second or so. It is
// one statement: it picks up to limit records whose expiry has passed,
// oldest first, with SELECT ... FOR UPDATE SKIP LOCKED, deletes them with
// RETURNING, and inserts an ended-token row for each, with the reason and
// time of the expiry the Manager stored with the session. In the same
// statement it
// deletes up to limit ended-token rows whose retention has passed, also
// skipping locked rows.
//
// SKIP LOCKED is what lets every instance sweep at once: a sweep never waits
// for a row another transaction holds (another instance's sweep, an End, a
// Touch), it passes over it, so sweeps divide the expired sessions between
// them instead of queueing; and a row deleted by one transaction can be
// returned by no other, so each idle or absolute end is recorded, and
// returned to a Manager that emits its event, exactly once. (The tests sweep
// 5,000 expired sessions from four Stores with four pools at once, with Ends
// racing them, and find every session ended once.) The locks last as long as
// the statement, milliseconds for a batch of 500; requests never wait for
// them, except a Touch or End of a session in the batch being swept, which
// then finds it gone. Expiries are kept in an indexed column, so a sweep
// that finds nothing costs two index probes.
//
// A sweep of many batches resumes each one where the last ended, in
// (expiry, ID) order: PostgreSQL keeps the index entries of deleted rows
// until a vacuum, and a batch started at the oldest expiry would walk past
// every row the sweep had already deleted, the cost of each batch growing
// with the sweep. A row a lock kept back while its batch passed is swept
// by the next sweep, which starts at the oldest again.
//
// # Crashes
//
// A call that has returned has committed. With PostgreSQL's defaults
// (fsync=on, synchronous_commit=on) a commit is on disk, in the write-ahead
// log, before the server acknowledges it, so it survives a crash of
// sessionguard, of PostgreSQL or of the machine. A call cut short by a crash
// is applied wholly or not at all, since each is one statement: a sweep never
// leaves a session deleted without its ended-token row.
//
// Weaker settings lose the newest commits when the server (not the client)
// crashes: synchronous_commit=off up to three times wal_writer_delay (600 ms
// by default), and fail-over to an asynchronous standby whatever it had not
// received. For sessions that means a login to repeat, a touch lost (the
// session ends a little early) and, the loss that matters, a sign-out or
// revocation undone, its session working again until its own deadline.
// Nobody is ever signed in who was not. Deployments that need revocations to
// survive a fail-over should use synchronous replication.
//
// While the database cannot be reached, calls fail with an error (the Manager
// then refuses protected requests with 503, signing nobody in) and pgxpool
// replaces broken connections on the next calls, so service resumes by itself
// when the database is back.
//
// # Sizing
//
// Measured on PostgreSQL 15 with pg_total_relation_size (heap, TOAST and
// indexes) for 20,000 sessions with a 110-byte User-Agent and no data: about
// 525 bytes per live session (300 in the row, 220 in its four indexes) and
// 185 bytes per ended-token row, which stay for the Manager's EndedRetention
// (24 hours by default). Session data adds its JSON size to the row. Every
// Touch writes a new version of the row and new entries in each index (its
// expiry changes, so the update cannot be HOT); autovacuum reclaims the old
// ones, and a busy table needs about twice the measured space. So 100,000
// live sessions with a day's 200,000 endings take about 90 MB, 180 MB with
// room for updates; keeping that in shared_buffers keeps every Get off the
// disk.
//
// Writes per session are a Touch per touch interval while it is used (once a
// minute by default), one for login and one for its end: 10,000 active
// sessions make about 170 small transactions a second, each waiting for one
// WAL flush with synchronous_commit=on.
//
// Connections: each Store opened with Open keeps up to DefaultMaxConns (4 on
// a two-core machine), set pool_max_conns in the DSN to change it. The number
// of instances times their pools (sessions, plus the server's own for
// accounts and audit) must stay under the server's max_connections, 100 by
// default. Statements are prepared once per connection and cached (pgx's
// default); behind a connection pooler in transaction mode that does not
// support prepared statements, add default_query_exec_mode=exec (or
// simple_protocol) to the DSN.
package pgstore
