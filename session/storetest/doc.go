// Package storetest is the conformance suite that every session.Store runs,
// unchanged: memory, SQLite, Redis and PostgreSQL alike. It checks each rule
// of the contract written on session.Store, one named subtest per rule, so a
// failure names the rule a store broke.
//
// A store author calls Run from a test in the store's package:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) session.Store {
//			s, err := mystore.Open(t.Context(), dsnForTest(t)) // fresh and empty
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run calls newStore once per subtest, with the subtest's *testing.T. Each
// call must return a store that holds nothing, isolated from the stores of
// other calls: a database store gets its own database, schema or table
// prefix, a Redis store its own key prefix or logical database. Releasing the
// store is newStore's business: register a t.Cleanup that closes it and drops
// what it created. One subtest closes its store itself, so that cleanup must
// tolerate a store already closed (ignore Close's error, or make Close
// idempotent).
//
// # Time
//
// Stores with their own expiry (Redis TTLs) evict records by the wall clock,
// so the suite keeps every record's deadline in the future of the real clock:
// times are offsets from the moment a subtest starts, and expiry is exercised
// by passing a later "now" to EndExpired or a later "at" to Touch, never by
// waiting. There is one exception: the rule that a store does not judge
// expiry itself is checked with a record whose deadline passed one second
// ago, which Get must still return. A store with its own expiry must
// therefore keep a record for a grace period after its deadline (Redis-backed
// stores commonly keep it for minutes): until the Manager's sweeper has ended
// it, the record is what the session's end event and Ended answer come from.
//
// Every time the suite stores carries a nanosecond part, and some carry a
// zone other than UTC, so a store that rounds to microseconds or drops the
// zone offset fails the round-trip rules. Times are compared with
// time.Time.Equal, as the contract says.
//
// # Data
//
// The suite stores Data with multibyte UTF-8, quotes, backslashes, newlines,
// empty keys and values, and a 4 KiB value. It treats a nil and an empty Data
// map alike. It does not store NUL bytes or invalid UTF-8, which the contract
// leaves undefined.
//
// The subtests run one after another. The rules about concurrent calls (the
// Concurrency group, and concurrent renewals under Renew) start goroutines;
// run the suite with the race detector.
package storetest
