// Package storetest is the conformance suite every session.Store runs,
// unchanged: memory, SQLite, Redis and PostgreSQL alike, and yours. It is
// also the guide to writing one.
//
// # What a store does
//
// A store only keeps what the Manager gives it. The Manager owns the clock
// and the policy: it computes each session's expiry (Record.Expires: when
// and why the session ends if nothing ends it first) and hands it over
// with every change of the times. A store never computes a deadline from a
// policy; it compares the instants it holds with the instants it is given.
// What it must guarantee is that its conditional writes are atomic: that
// is what makes every session end exactly once, even with several
// processes sharing one database.
//
// A store keeps two kinds of record:
//
//   - Sessions (session.Record), found by ID and by token hash, listed by
//     user, and selected by Expires.At for the sweep. Every field
//     round-trips: times to the nanosecond, Expires (its instant and its
//     reason), Persistent, an empty UserID (anonymous sessions), and Data
//     (nil and empty alike).
//   - Ended tokens: a token hash with the Ending that removed its session,
//     kept until Ending.KeepUntil, so that a browser presenting the old
//     token can be told why it stopped working.
//
// # What to implement, in order
//
// Each step is a group of Run's subtests (Create, Touch, and so on), so a
// new store can be brought up one group at a time with go test -run.
//
//  1. Create, Get, Ping and Close. Create refuses a duplicate ID or token
//     hash with session.ErrConflict. Get returns session.ErrNotFound for an
//     unknown hash, and returns a record past its expiry: the Manager, not
//     the store, decides what has expired. A closed store answers every
//     call with an error other than ErrNotFound, and does not panic.
//  2. End and Ended. End removes the record and keeps its ending, in one
//     atomic step that exactly one of concurrent callers wins (a DELETE ...
//     RETURNING, a compare in a script, a mutex); the others get ErrNotFound.
//  3. Touch(id, at, exp): if the stored Expires.At is after at, set
//     LastActivity to the later of the stored one and at, and Expires to exp
//     if exp.At is later than the stored one. Otherwise ErrNotFound, changing
//     nothing: activity never revives an expired session.
//  4. SaveData(id, old, data): replace the data only if the stored data
//     still equals old, else session.ErrStale. This compare-and-set is what
//     keeps two requests that set different keys at once from losing one:
//     the Manager reads again and retries on ErrStale. Compare maps, not
//     bytes, unless your encoding is canonical (encoding/json sorts map keys,
//     so its output is); store empty data one way, so nil and empty compare
//     equal.
//  5. Renew(id, old, new, r): only if the record's hash is still old, swap
//     it for new and set AuthenticatedAt, LastActivity and Expires to r's,
//     as given. ErrNotFound if the hash is no longer old (another renewal
//     won), ErrConflict if new is another record's.
//  6. EndExpired(now, keep, limit): end, as End does, up to limit records
//     whose Expires.At is at or before now, each with Ending{Reason:
//     Expires.Reason, At: Expires.At, KeepUntil: Expires.At + keep}; and
//     forget up to limit ended tokens whose KeepUntil has passed. Index the
//     expiry so the sweep costs what it ends, and hold no lock longer than
//     one batch: requests keep being served while a million sessions expire.
//  7. List(userID, limit): a user's records (everyone's for ""), oldest
//     CreatedAt first. Records past their expiry may be included.
//
// Optional abilities are separate interfaces the Manager detects:
// session.CountingStore (a count for a metrics gauge, checked by the Count
// group when present), session.InMemoryStore, and session.SweepBatcher (a
// store that runs in the caller's process asks for small sweep calls, since
// each holds a core for its whole length).
//
// # How the suite proves it
//
// Every rule of the contract on session.Store is a named subtest, so a
// failure names the rule broken. Times carry nanoseconds and zones other
// than UTC, so rounding or a lost offset fails the round trips; expiries
// are ones no policy would give, so a store that recomputes them fails.
// Boundaries are checked at the instant and one nanosecond either side.
// The Concurrency group races End against End and against EndExpired,
// sweepers against each other, Renew and activity against End, and writers
// of different keys against each other with the Manager's
// read/compare-and-set/retry loop; run it with the race detector. It ends
// with a sweep of 1,000 sessions in batches while Get, Touch and SaveData
// of a live session keep succeeding.
//
// Two groups run when the store can provide what they need:
//
//   - WithReopen: records, data, endings and expiries survive closing the
//     store and opening its database again.
//   - WithSecondHandle: the concurrency rules again, with the racers split
//     between two handles on one database, as two processes; and what one
//     handle writes, the other reads at once. A store that caches must not
//     serve data older than SaveData compares against, or the Manager's
//     retry never succeeds.
//
// Bench measures the calls a Manager makes on each request and sweep.
//
// # Example
//
// A store author calls Run, and Bench, from tests in the store's package:
//
//	func newTestStore(t testing.TB) session.Store {
//		s, err := mystore.Open(t.Context(), dsnForTest(t)) // fresh and empty
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { s.Close() })
//		return s
//	}
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, newTestStore,
//			storetest.WithReopen(func(t testing.TB, s session.Store) session.Store {
//				s.Close()
//				return reopen(t, s.(*mystore.Store).DSN())
//			}),
//			storetest.WithSecondHandle(func(t testing.TB, s session.Store) session.Store {
//				return reopen(t, s.(*mystore.Store).DSN())
//			}))
//	}
//
//	func BenchmarkStore(b *testing.B) { storetest.Bench(b, newTestStore) }
//
// Run calls newStore once per subtest. Each call must return a store that
// holds nothing, isolated from the stores of other calls: a database store
// gets its own database, schema or table prefix, a Redis store its own key
// prefix or logical database. Releasing it is newStore's business, through
// t.Cleanup; some subtests close the store themselves, so that cleanup must
// tolerate a store already closed. The suite's own reference_test.go is a
// complete store, a map and a mutex, in about 250 lines.
//
// # Time
//
// Stores with their own expiry (Redis TTLs) evict records by the wall clock,
// so the suite keeps expiries in the future of the real clock: times are
// offsets from the moment a subtest starts, and expiry is exercised by
// passing a later "now" to EndExpired or a later "at" to Touch, never by
// waiting. The exception is the rule that a store does not judge expiry
// itself: one record's expiry passed a second ago, and Get must still return
// it. A store with its own expiry must therefore keep a record for a grace
// period past Expires.At (a minute is better than a second): until the
// Manager's sweeper has ended it, the record is what the session's end event
// and Ended answer come from.
//
// # Data
//
// The suite stores Data with multibyte UTF-8, quotes, backslashes, newlines,
// empty keys and values, and a 4 KiB value. It does not store NUL bytes or
// invalid UTF-8, which the Manager refuses before any store sees them.
package storetest
