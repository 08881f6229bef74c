package session

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrNotFound is returned by a Store when the session (or ended-token record)
// asked for does not exist: it never did, it has ended, or its record expired.
var ErrNotFound = errors.New("session: not found")

// ErrConflict is returned by Store.Create when a record with the same public ID
// or token hash already exists. With 256-bit tokens it means a bug, not bad luck.
var ErrConflict = errors.New("session: record already exists")

// ErrStale is returned by Store.SaveData when the record's data is no longer
// the data the caller read: another request changed it meanwhile. The Manager
// reads the record again and reapplies its change, so that two requests
// setting different keys at once both keep their value.
var ErrStale = errors.New("session: data changed meanwhile")

// Store keeps session records. The Manager is its only caller; applications
// use the Manager. Every method must be safe for concurrent use, including from
// several processes sharing one database.
//
// A store only keeps what it is given. The Manager owns the clock and the
// policy: it computes every session's expiry (Record.Expires: when and why
// it ends if nothing ends it first) and hands it to the store with every
// change of the times. A store never computes a deadline; it compares the
// instants it holds with the instants it is given.
//
// The contract, which the storetest package checks for every implementation:
//
//   - Records are found by the SHA-256 hash of their token, never by the token.
//   - Times round-trip with nanosecond precision and compare with time.Time.Equal.
//   - Nothing is ever upserted: Touch, SaveData and Renew change a record only
//     if it still exists, so a request racing a logout can never bring the
//     session back.
//   - End removes a record exactly once: of two concurrent End calls (or an End
//     racing EndExpired, on any number of processes) exactly one gets the
//     record back, the other gets ErrNotFound. The Manager emits the end event
//     only for the call that won, so every session ends once.
//   - A store does not judge expiry with its own clock when asked for a record:
//     Get returns a record even past its expiry, and the Manager decides
//     with its clock. Stores with their own expiry (Redis TTLs) must keep a
//     record for a grace period past Record.Expires.At (at least a second; a
//     minute is better), so that the Manager's sweeper ends it and its end
//     event is sent.
//   - Times are those representable as int64 Unix nanoseconds (years 1678
//     to 2262); a store may refuse others with an error.
//   - Data keys and values are valid UTF-8 without NUL bytes (Session.Set
//     refuses others), so every store can keep them as text or JSON. An empty
//     map and a nil map are the same data.
type Store interface {
	// Create inserts a new record. It returns ErrConflict if a record with the
	// same ID or TokenHash exists.
	Create(ctx context.Context, rec Record) error

	// Get returns the record whose token hashes to h, or ErrNotFound.
	Get(ctx context.Context, h TokenHash) (Record, error)

	// Touch records activity at time at: LastActivity becomes the later of
	// its stored value and at, and Expires becomes exp if exp.At is later
	// than the stored Expires.At. It returns ErrNotFound, changing nothing,
	// if the record does not exist or its stored Expires.At is not after at
	// (an expired session cannot be brought back by activity).
	Touch(ctx context.Context, id string, at time.Time, exp Expiry) error

	// SaveData replaces the record's data with data if its stored data is
	// still old (compared as maps: same keys, same values). It returns
	// ErrStale, changing nothing, if the stored data differs from old, and
	// ErrNotFound if the record does not exist.
	SaveData(ctx context.Context, id string, old, data map[string]string) error

	// Renew replaces the token hash of the record with public ID id, if its
	// current hash is old, and sets AuthenticatedAt, LastActivity and Expires
	// to the values given. The old hash stops finding the record at once. It
	// returns ErrNotFound, changing nothing, if there is no such record or its
	// hash is no longer old (a concurrent renewal won), and ErrConflict if new
	// is another record's.
	Renew(ctx context.Context, id string, old, new TokenHash, r Renewal) error

	// End removes the record with public ID id and keeps an ended-token
	// record (its token hash, e.Reason and e.At) until e.KeepUntil, so that
	// Ended can tell why the token stopped working. It returns the removed
	// record, or ErrNotFound if there was none: see the exactly-once rule above.
	End(ctx context.Context, id string, e Ending) (Record, error)

	// EndExpired ends, as End does, up to limit records whose Expires.At is
	// at or before now, each with Ending{Reason: Expires.Reason, At:
	// Expires.At, KeepUntil: Expires.At + keep}. It also deletes up to limit
	// ended-token records whose KeepUntil is at or before now. It returns the
	// records it ended; fewer than limit, and no error, means none are left.
	// limit is positive. It must not hold locks that block other calls for
	// longer than one bounded batch.
	//
	// A record it cannot read (another writer damaged it) must not stop
	// this sweep or the next: the store ends it all the same (or leaves it
	// to expire by itself), without returning it, and may name it in an
	// error returned beside the records; the Manager sends their end events
	// and reports the error.
	EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]Ended, error)

	// Ended returns why the session with token hash h ended, or ErrNotFound if
	// the store knows nothing of it (never issued, or its record expired).
	Ended(ctx context.Context, h TokenHash) (Ending, error)

	// List returns the records of one user, or of all users when userID is
	// empty (anonymous sessions included), oldest first (by CreatedAt), at
	// most limit of them (limit <= 0: no limit). It may include records past
	// their expiry that no sweep has ended yet; the Manager leaves them out.
	List(ctx context.Context, userID string, limit int) ([]Record, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}

// Renewal is what Store.Renew writes besides the new token hash.
type Renewal struct {
	AuthenticatedAt time.Time
	LastActivity    time.Time
	Expires         Expiry
}

// The first and last instants a store that keeps times as int64 Unix
// nanoseconds can hold: years 1678 to 2262.
var (
	MinStoreTime = time.Unix(0, math.MinInt64)
	MaxStoreTime = time.Unix(0, math.MaxInt64)
)

// UnixNanos converts t to nanoseconds since the Unix epoch, for a store that
// keeps times as integers, or explains, naming what t is, why it cannot be
// stored: time.Time.UnixNano would silently wrap outside MinStoreTime and
// MaxStoreTime.
func UnixNanos(what string, t time.Time) (int64, error) {
	if t.Before(MinStoreTime) || t.After(MaxStoreTime) {
		return 0, fmt.Errorf("session: %s %v is outside the years 1678 to 2262 a store can hold", what, t)
	}
	return t.UnixNano(), nil
}

// InMemoryStore is an optional ability of a Store whose calls never wait for
// a network or a disk, such as the memory store. The Manager bounds every
// other store's calls with Config.StoreTimeout; for these it does not arm a
// timer, which would cost more than the call itself.
type InMemoryStore interface {
	Store
	InMemory()
}

// SweepBatcher is an optional ability of a Store that suggests how many
// sessions one EndExpired call of the Manager's sweep should end
// (Config.SweepBatch, when not set). A store that runs in the caller's
// process (memory, SQLite) does a call's work on one core without a pause,
// and requests that need the core meanwhile wait, so it asks for small
// batches (docs/benchmarks.md, the sweep, has the figures). A networked
// store's call mostly waits for its server, and fewer, larger calls cost
// it fewer round trips. A result below 1 suggests nothing, so that a
// wrapper can always forward it.
type SweepBatcher interface {
	Store
	SweepBatch() int
}

// CountingStore is an optional ability of a Store that counts its records
// without reading them all, for a metrics gauge. The count may include
// sessions past their deadline that no sweep has ended yet (about a second's
// worth).
type CountingStore interface {
	Store
	Count(ctx context.Context) (int, error)
}

// Record is a session as a Store keeps it.
type Record struct {
	Info

	// TokenHash is the SHA-256 hash of the session's token. The token itself
	// is never stored.
	TokenHash TokenHash

	// Data is the application's small key/value data; nil when empty.
	Data map[string]string
}

// Info describes a session without its secret: what can be listed, logged and
// shown to its user or an administrator.
type Info struct {
	// ID is the session's public identifier, for listing, revoking and logging.
	// The token cannot be derived from it.
	ID string

	// UserID identifies the signed-in user; the application chooses its
	// form. It is empty for an anonymous session (Manager.Start).
	UserID string

	// CreatedAt is when the session was created (by a login, or by Start for
	// an anonymous session).
	CreatedAt time.Time

	// AuthenticatedAt is when the user last proved who they are (login or
	// re-authentication). The absolute timeout counts from here.
	AuthenticatedAt time.Time

	// LastActivity is the last recorded activity. Writes are throttled, so it
	// may lag the true last activity by up to the touch interval.
	LastActivity time.Time

	// Policy holds the timeouts chosen for this session at login.
	Policy Policy

	// IP and UserAgent describe the client that logged in.
	IP        string
	UserAgent string

	// Expires is when the session ends, and why, if nothing else ends it
	// first: the earlier of IdleDeadline and AbsoluteDeadline, computed by
	// the Manager whenever it writes the times.
	Expires Expiry

	// Persistent is set for a session whose user asked to be remembered
	// (LoginOptions.RememberMe): its cookie outlives the browser, until the
	// absolute deadline.
	Persistent bool
}

// IdleDeadline is the instant from which the session would be rejected for
// inactivity, as its policy and recorded activity say.
func (i Info) IdleDeadline() time.Time { return i.LastActivity.Add(i.Policy.IdleTimeout) }

// AbsoluteDeadline is the instant from which the session is rejected whatever
// its activity.
func (i Info) AbsoluteDeadline() time.Time {
	return i.AuthenticatedAt.Add(i.Policy.AbsoluteTimeout)
}

// Expired reports whether the session is rejected at now: from the instant of
// its expiry, never later.
func (i Info) Expired(now time.Time) bool { return !now.Before(i.Expires.At) }

// Expiry is when a session ends, and why, if nothing else ends it first.
type Expiry struct {
	At time.Time
	// Reason is ReasonIdle or ReasonAbsolute.
	Reason EndReason
}

// expiryOf computes the expiry of a session with policy p, authenticated at
// authAt and last active at last: the earlier of the idle and the absolute
// deadline. A tie counts as absolute, since activity could not have helped.
// It is the one place where the timeout rule is written; stores only keep
// its result.
func expiryOf(p Policy, authAt, last time.Time) Expiry {
	idle, abs := last.Add(p.IdleTimeout), authAt.Add(p.AbsoluteTimeout)
	if !abs.After(idle) {
		return Expiry{At: abs, Reason: ReasonAbsolute}
	}
	return Expiry{At: idle, Reason: ReasonIdle}
}

// Ending says why and when a session ended, and how long a Store keeps that
// answer for a browser that presents the ended token.
type Ending struct {
	Reason    EndReason
	At        time.Time
	KeepUntil time.Time
}

// Ended is a record ended by Store.EndExpired, with how it ended.
type Ended struct {
	Record
	Ending
}
