package account

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// throttleMigrations are the throttle's tables: the failure counters and
// the known clients. They are a component of their own ("account_throttle"),
// so that their steps never interleave with the users table's.
var throttleMigrations = []sqldb.Migration{{
	Name: "failure counters and known clients",
	SQL: `CREATE TABLE account_throttle (
		scope           TEXT    NOT NULL,
		subject         TEXT    NOT NULL,
		failures        INTEGER NOT NULL,
		window_end      BIGINT  NOT NULL,
		lockouts        INTEGER NOT NULL,
		locked_until    BIGINT  NOT NULL,
		in_flight       INTEGER NOT NULL,
		in_flight_until BIGINT  NOT NULL,
		forget_at       BIGINT  NOT NULL,
		PRIMARY KEY (scope, subject)
	);
	CREATE INDEX account_throttle_forget ON account_throttle (forget_at);
	CREATE TABLE account_known_clients (
		name      TEXT   NOT NULL REFERENCES account_users (name) ON DELETE CASCADE,
		kind      TEXT   NOT NULL CHECK (kind IN ('device', 'address')),
		client    TEXT   NOT NULL,
		last_used BIGINT NOT NULL,
		PRIMARY KEY (name, kind, client)
	);
	CREATE INDEX account_known_clients_last_used ON account_known_clients (last_used);`,
}}

// admitWait bounds how long an attempt waits for the attempts in flight
// ahead of it on the same key, each a hash and a few queries: as long as a
// reservation can last, after which any ahead of it has expired. The
// request's deadline (10 seconds in the server) usually ends the wait
// first. Either way the attempt is then refused as busy, never as failed.
const admitWait = reservationTTL

// pollInterval is how often a waiting attempt asks the database again, for
// attempts in flight in other processes; this process's own settlements
// wake it at once.
const pollInterval = 100 * time.Millisecond

// settleTimeout bounds the recording of an attempt's outcome, which goes on
// when the request is cancelled: a client that hangs up after its guess was
// checked must not escape the count.
const settleTimeout = 5 * time.Second

// sweepInterval is how often a process deletes the counters nothing needs
// any more and the clients unused for KnownClientTTL.
const sweepInterval = time.Minute

// throttleKey is one thing an attempt is counted against.
type throttleKey struct {
	scope   ThrottleScope
	subject string // the user name, address, device hash or session ID
	policy  ThrottlePolicy
	user    string // the user it is about, for events
}

// id identifies the key in memory.
func (k throttleKey) id() string { return string(k.scope) + "\x00" + k.subject }

// throttle counts failures in the shared database, so that every process
// on it enforces one limit; in memory it only queues attempts and remembers
// locks, neither of which can let a guess through that the database would
// refuse.
type throttle struct {
	db       *sqldb.DB
	now      func() time.Time
	log      *slog.Logger
	observer ThrottleObserver

	// admitWait is admitWait, shorter in tests.
	admitWait time.Duration

	gates keyGates
	locks lockCache

	settledMu sync.Mutex
	settled   chan struct{} // closed, and replaced, when an attempt settles

	lastSweep atomic.Int64 // UnixNano of the last sweep
}

// errFull says that attempts in flight hold the rest of a key's budget.
var errFull = errors.New("account: attempts in flight fill the budget")

// settledSignal returns a channel that is closed at the next settlement.
func (t *throttle) settledSignal() <-chan struct{} {
	t.settledMu.Lock()
	defer t.settledMu.Unlock()
	if t.settled == nil {
		t.settled = make(chan struct{})
	}
	return t.settled
}

func (t *throttle) signalSettled() {
	t.settledMu.Lock()
	defer t.settledMu.Unlock()
	if t.settled != nil {
		close(t.settled)
		t.settled = nil
	}
}

// reservation is an attempt's place in the budget of each of its keys,
// held while its password is checked.
type reservation struct {
	t       *throttle
	keys    []throttleKey
	ip      string // the attempt's client address, for events
	release func() // gives back the in-memory queue slots
}

// begin admits an attempt against all of keys, waiting while attempts in
// flight hold a key's budget. It returns a *ThrottledError when a key is
// locked (or, after admitWait, of ScopeBusy), ctx.Err() when the request is
// cancelled, or a database error.
func (t *throttle) begin(ctx context.Context, keys []throttleKey, ip string) (*reservation, error) {
	slices.SortFunc(keys, func(a, b throttleKey) int { return cmp.Compare(a.id(), b.id()) })
	if err := t.cachedLock(keys); err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, t.admitWait)
	defer cancel()
	release, err := t.gates.acquire(wait, keys)
	if err != nil {
		return nil, waitEnded(ctx)
	}
	for {
		if err := t.cachedLock(keys); err != nil {
			release()
			return nil, err
		}
		settled := t.settledSignal()
		err := t.reserve(ctx, keys)
		if err == nil {
			return &reservation{t: t, keys: keys, ip: ip, release: release}, nil
		}
		if !errors.Is(err, errFull) {
			release()
			return nil, err
		}
		timer := time.NewTimer(pollInterval)
		select {
		case <-settled:
		case <-timer.C:
		case <-wait.Done():
			timer.Stop()
			release()
			return nil, waitEnded(ctx)
		}
		timer.Stop()
	}
}

// waitEnded is the error of an attempt that stopped waiting for admission:
// the request's own cancellation, or else busy.
func waitEnded(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return &ThrottledError{RetryAfter: busyRetry, Scope: ScopeBusy}
}

// cachedLock refuses keys that a remembered lock holds.
func (t *throttle) cachedLock(keys []throttleKey) error {
	now := t.now()
	for _, k := range keys {
		if until, ok := t.locks.get(k.id(), now); ok {
			return &ThrottledError{RetryAfter: until.Sub(now), Scope: k.scope}
		}
	}
	return nil
}

// reserve admits an attempt against every key, or against none, in one
// transaction.
func (t *throttle) reserve(ctx context.Context, keys []throttleKey) error {
	if len(keys) == 0 {
		return nil
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("account: throttle: %w", err)
	}
	defer tx.Rollback()
	now := t.now()
	entries := make([]entry, len(keys))
	for i, k := range keys {
		e, err := t.lockRow(ctx, tx, k)
		if err != nil {
			return err
		}
		e.refresh(k.policy, now)
		switch e.admit(k.policy, now) {
		case locked:
			t.locks.put(k.id(), e.lockedUntil, now)
			return &ThrottledError{RetryAfter: e.lockedUntil.Sub(now), Scope: k.scope}
		case full:
			return errFull
		}
		entries[i] = e
	}
	for i, k := range keys {
		if err := t.write(ctx, tx, k, entries[i]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("account: throttle: %w", err)
	}
	return nil
}

// outcome is how an attempt ended.
type outcome int

const (
	failed    outcome = iota // a wrong password, an unknown name or a disabled account
	succeeded                // the right password
	undecided                // cancelled, busy or a database error: counts for nothing
)

// fail records the attempt as a failure. An error means the failure may not
// have been counted: the caller must not answer with the verdict, or a guess
// would go uncounted.
func (r *reservation) fail(ctx context.Context) error { return r.settle(ctx, failed) }

// succeed records the attempt as a success. A failure to record it is
// logged: the reservation expires by itself.
func (r *reservation) succeed(ctx context.Context) {
	if err := r.settle(ctx, succeeded); err != nil {
		r.t.log.WarnContext(ctx, "account: could not record a successful sign-in with the throttle", "err", err)
	}
}

// cancel gives the reservation back, counting nothing.
func (r *reservation) cancel(ctx context.Context) {
	if err := r.settle(ctx, undecided); err != nil {
		r.t.log.WarnContext(ctx, "account: could not release a sign-in reservation; it expires by itself", "err", err)
	}
}

func (r *reservation) settle(ctx context.Context, o outcome) error {
	t := r.t
	defer t.signalSettled()
	defer r.release()
	if len(r.keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	events, err := t.record(ctx, r.keys, o, r.ip)
	if err != nil {
		return err
	}
	for _, e := range events {
		t.emit(ctx, e)
	}
	t.maybeSweep(ctx)
	return nil
}

// record applies an outcome to every key in one transaction, and returns
// the locks and unlocks it caused.
func (t *throttle) record(ctx context.Context, keys []throttleKey, o outcome, ip string) ([]ThrottleEvent, error) {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("account: throttle: %w", err)
	}
	defer tx.Rollback()
	now := t.now()
	var events []ThrottleEvent
	type lock struct {
		id    string
		until time.Time
	}
	var locks []lock
	for _, k := range keys {
		e, err := t.lockRow(ctx, tx, k)
		if err != nil {
			return nil, err
		}
		e.refresh(k.policy, now)
		ev := ThrottleEvent{Scope: k.scope, User: k.user, IP: ip, Time: now}
		switch k.scope {
		case ScopeIP:
			ev.IP = k.subject
		case ScopeSession:
			ev.Session = k.subject
		}
		switch o {
		case failed:
			if d := e.fail(k.policy, now); d > 0 {
				ev.Kind, ev.Until, ev.Lockouts = ThrottleLocked, e.lockedUntil, e.lockouts
				events = append(events, ev)
				locks = append(locks, lock{k.id(), e.lockedUntil})
			}
		case succeeded:
			// An address's count survives a success: see ThrottlePolicy.
			if e.succeed(k.scope != ScopeIP) {
				ev.Kind = ThrottleUnlocked
				events = append(events, ev)
			}
		default:
			e.settle()
		}
		if err := t.write(ctx, tx, k, e); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("account: throttle: %w", err)
	}
	for _, l := range locks {
		t.locks.put(l.id, l.until, now)
	}
	return events, nil
}

// lockRow returns key's stored entry inside tx, holding its row until tx
// ends: SQLite transactions hold the whole database (BEGIN IMMEDIATE);
// PostgreSQL locks the row, which the insert makes sure exists first. On
// PostgreSQL another transaction may delete the row (it held nothing) between
// the insert and the lock: then the insert runs again.
func (t *throttle) lockRow(ctx context.Context, tx *sql.Tx, k throttleKey) (entry, error) {
	q := `SELECT failures, window_end, lockouts, locked_until, in_flight, in_flight_until
		FROM account_throttle WHERE scope = ? AND subject = ?`
	if t.db.Dialect == sqldb.Postgres {
		q += ` FOR UPDATE`
	}
	for {
		if _, err := tx.ExecContext(ctx, t.db.Rebind(`INSERT INTO account_throttle
			(scope, subject, failures, window_end, lockouts, locked_until, in_flight, in_flight_until, forget_at)
			VALUES (?, ?, 0, 0, 0, 0, 0, 0, 0) ON CONFLICT (scope, subject) DO NOTHING`), string(k.scope), k.subject); err != nil {
			return entry{}, fmt.Errorf("account: throttle: %w", err)
		}
		var e entry
		var windowEnd, lockedUntil, inFlightUntil int64
		err := tx.QueryRowContext(ctx, t.db.Rebind(q), string(k.scope), k.subject).Scan(
			&e.failures, &windowEnd, &e.lockouts, &lockedUntil, &e.inFlight, &inFlightUntil)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return entry{}, fmt.Errorf("account: throttle: %w", err)
		}
		e.windowEnd, e.lockedUntil, e.inFlightUntil = fromNanos(windowEnd), fromNanos(lockedUntil), fromNanos(inFlightUntil)
		return e, nil
	}
}

// write stores key's entry, or deletes its row when it holds nothing.
func (t *throttle) write(ctx context.Context, tx *sql.Tx, k throttleKey, e entry) error {
	var err error
	if e.empty() {
		_, err = tx.ExecContext(ctx, t.db.Rebind(`DELETE FROM account_throttle WHERE scope = ? AND subject = ?`),
			string(k.scope), k.subject)
	} else {
		_, err = tx.ExecContext(ctx, t.db.Rebind(`UPDATE account_throttle SET failures = ?, window_end = ?, lockouts = ?,
			locked_until = ?, in_flight = ?, in_flight_until = ?, forget_at = ? WHERE scope = ? AND subject = ?`),
			e.failures, nanos(e.windowEnd), e.lockouts, nanos(e.lockedUntil), e.inFlight, nanos(e.inFlightUntil),
			nanos(e.forgetAt(k.policy)), string(k.scope), k.subject)
	}
	if err != nil {
		return fmt.Errorf("account: throttle: %w", err)
	}
	return nil
}

// maybeSweep deletes, at most once per sweepInterval per process, the
// counters that hold nothing any more and the known clients unused for
// KnownClientTTL. A failure is logged; the next sweep tries again.
func (t *throttle) maybeSweep(ctx context.Context) {
	now := t.now()
	last := t.lastSweep.Load()
	if now.UnixNano()-last < int64(sweepInterval) || !t.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	_, err := t.db.ExecContext(ctx, t.db.Rebind(`DELETE FROM account_throttle WHERE forget_at <= ?`), now.UnixNano())
	if err == nil {
		_, err = t.db.ExecContext(ctx, t.db.Rebind(`DELETE FROM account_known_clients WHERE last_used <= ?`),
			now.Add(-KnownClientTTL).UnixNano())
	}
	if err != nil {
		t.log.WarnContext(ctx, "account: could not delete old throttle records", "err", err)
	}
}

// emit logs a lock or unlock and hands it to the observer.
func (t *throttle) emit(ctx context.Context, e ThrottleEvent) {
	attrs := []any{"scope", string(e.Scope), "user", e.User, "ip", e.IP}
	if e.Session != "" {
		attrs = append(attrs, "session", e.Session)
	}
	switch e.Kind {
	case ThrottleLocked:
		attrs = append(attrs, "until", e.Until.UTC().Format(time.RFC3339), "lockout", e.Lockouts)
		t.log.WarnContext(ctx, "account: sign-in locked after repeated failures", attrs...)
	case ThrottleUnlocked:
		t.log.InfoContext(ctx, "account: sign-in unlocked: a success after a lockout cleared the failures", attrs...)
	}
	if t.observer != nil {
		t.observer.ThrottleEvent(ctx, e)
	}
}

// nanos stores a time as nanoseconds since the Unix epoch, the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
