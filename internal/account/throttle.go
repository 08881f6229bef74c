package account

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ThrottleScope says what a ThrottledError limits, and whose failures a
// ThrottleEvent is about.
type ThrottleScope string

// The scopes of throttling. Each counts only failures (wrong passwords,
// unknown names, disabled accounts), never successes or attempts in progress.
const (
	// ScopeAccount: too many failed sign-ins for this user name from
	// clients that are not one of its known devices.
	ScopeAccount ThrottleScope = "account"
	// ScopeIP: too many failed sign-ins from this client address (an IPv6
	// client's /64).
	ScopeIP ThrottleScope = "ip"
	// ScopeDevice: too many failed sign-ins from this known device of
	// the account (see RememberClient).
	ScopeDevice ThrottleScope = "device"
	// ScopeKnownAddress: too many failed sign-ins for this user name from
	// this known address of the account (see RememberClient).
	ScopeKnownAddress ThrottleScope = "known_address"
	// ScopeSession: too many wrong passwords re-authenticating in this
	// signed-in session (Verify).
	ScopeSession ThrottleScope = "session"
	// ScopeBusy: the attempt could not be checked now, because too many
	// sign-ins are being checked at once. Nothing failed; the person should
	// simply try again.
	ScopeBusy ThrottleScope = "busy"
)

// ThrottledError refuses a sign-in or re-authentication without checking the
// password, because of earlier failures (see ThrottlePolicy) or load
// (ScopeBusy). Answer it with 429 Too Many Requests and a Retry-After header
// (RetryAfterSeconds), and with words that match Busy: "the server is busy"
// is not "too many wrong passwords". Its Scope is for logs and metrics;
// telling the client which limit it hit helps attackers more than users.
type ThrottledError struct {
	// RetryAfter is how long to wait before the next attempt can be
	// checked; always positive.
	RetryAfter time.Duration
	// Scope is the limit that refused the attempt.
	Scope ThrottleScope
}

// Error says why the attempt was refused and for how long, without the
// user name or address.
func (e *ThrottledError) Error() string {
	if e.Busy() {
		return fmt.Sprintf("account: busy checking other sign-ins; try again in %v", e.RetryAfter)
	}
	return fmt.Sprintf("account: too many failed sign-ins (%s); try again in %v", e.Scope, e.RetryAfter)
}

// Busy reports whether the attempt was refused because of load rather than
// earlier failures.
func (e *ThrottledError) Busy() bool { return e.Scope == ScopeBusy }

// RetryAfterSeconds returns RetryAfter in whole seconds, rounded up, for a
// Retry-After header; at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// ThrottlePolicy limits failed attempts for one key (a user name, a client
// address, a known device or a session). Failures are counted in a window
// that opens at the first one; the Failures-th failure within it locks the
// key for Lockout. After a lockout one more failure locks it again, for
// twice as long each time up to MaxLockout, so that guessing slows to a
// trickle; the key is forgotten (and the lockouts start again from Lockout)
// once Window passes after a lockout ends with no further failure.
//
// A success forgets the key's failures, except an address's: otherwise an
// attacker with an account of their own could reset their address's count
// between guesses. A lock is never lifted early, by anyone.
type ThrottlePolicy struct {
	// Failures is how many failures within Window lock the key.
	Failures int
	// Window is how long failures are counted from the first one.
	Window time.Duration
	// Lockout is the length of the first lockout.
	Lockout time.Duration
	// MaxLockout caps the doubling lockouts.
	MaxLockout time.Duration
}

// DefaultAccountThrottle allows 5 failed attempts per user name in 15
// minutes, then locks it for 1, 2, 4 ... minutes up to an hour: at most a few
// dozen guesses a day, and a user who mistypes five times waits one minute.
// NIST SP 800-63B-4 §3.2.2 caps consecutive failures at 100, which this
// stays far below. Because anyone can fail on purpose, the lock holds only
// against clients the account does not know (see RememberClient); the same
// policy limits each known device, each known address of the account, and
// each session's re-authentication, on its own.
var DefaultAccountThrottle = ThrottlePolicy{Failures: 5, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}

// DefaultIPThrottle allows 20 failed sign-ins per client address (or IPv6 /64
// network) a minute, then locks it for 1, 2, 4 ... minutes up to 15: enough
// for an office behind one NAT address, too few to try one password against
// many accounts.
var DefaultIPThrottle = ThrottlePolicy{Failures: 20, Window: time.Minute, Lockout: time.Minute, MaxLockout: 15 * time.Minute}

func (p ThrottlePolicy) validate(what string) error {
	if p.Failures < 1 || p.Window <= 0 || p.Lockout <= 0 || p.MaxLockout < p.Lockout {
		return fmt.Errorf("account: %s throttle needs Failures >= 1, positive Window and Lockout, and MaxLockout >= Lockout", what)
	}
	return nil
}

// lockout returns the length of the n-th lockout in a row: Lockout doubled
// n-1 times, at most MaxLockout.
func (p ThrottlePolicy) lockout(n int) time.Duration {
	d := p.Lockout
	for i := 1; i < n && d < p.MaxLockout; i++ {
		d *= 2
	}
	return min(d, p.MaxLockout)
}

// reservationTTL is how long an attempt in flight holds its place in a key's
// budget. A check takes a hash and a few queries, bounded by the request's
// deadline (10 seconds in the server); a reservation older than this belongs
// to a process that died mid-check, and counts for nothing.
const reservationTTL = 30 * time.Second

// entry is what the throttle remembers of one key. Its methods are the
// throttling rules; the database only stores the result.
//
// An attempt reserves its place (inFlight) before its password is checked
// and settles it after. A key admits an attempt only while its failures and
// the attempts in flight stay below the policy's Failures, so that many
// concurrent guesses cannot all pass before the first failure is counted;
// an attempt beyond that waits for those in flight instead of being told it
// failed.
type entry struct {
	failures      int       // counted toward the next lockout
	windowEnd     time.Time // when failures reset, if there has been no lockout
	lockouts      int       // in a row, since the key was last forgotten
	lockedUntil   time.Time
	inFlight      int       // attempts admitted and not settled
	inFlightUntil time.Time // when those count for nothing
}

// refresh brings e up to date at now: reservations past their time and a
// history whose window (or lockouts) ended are forgotten.
func (e *entry) refresh(p ThrottlePolicy, now time.Time) {
	if !e.inFlightUntil.After(now) {
		e.inFlight, e.inFlightUntil = 0, time.Time{}
	}
	if at := e.historyEnds(p); !at.IsZero() && !at.After(now) {
		*e = entry{inFlight: e.inFlight, inFlightUntil: e.inFlightUntil}
	}
}

// historyEnds returns when e's failures and lockouts are forgotten, or the
// zero time when it has none.
func (e *entry) historyEnds(p ThrottlePolicy) time.Time {
	switch {
	case e.lockouts > 0:
		return e.lockedUntil.Add(p.Window)
	case e.failures > 0:
		return e.windowEnd
	}
	return time.Time{}
}

// forgetAt returns when e holds nothing worth keeping: its row may then be
// deleted.
func (e *entry) forgetAt(p ThrottlePolicy) time.Time {
	at := e.historyEnds(p)
	if e.inFlight > 0 && e.inFlightUntil.After(at) {
		at = e.inFlightUntil
	}
	return at
}

// admission is what a key says to an attempt.
type admission int

const (
	admitted admission = iota
	locked             // refused until lockedUntil
	full               // attempts in flight hold the rest of the budget: wait
)

// admit reserves a place for an attempt at now, or says why not.
func (e *entry) admit(p ThrottlePolicy, now time.Time) admission {
	switch {
	case now.Before(e.lockedUntil):
		return locked
	case e.failures+e.inFlight >= p.Failures:
		return full
	}
	e.inFlight++
	e.inFlightUntil = now.Add(reservationTTL)
	return admitted
}

// settle ends an attempt's reservation.
func (e *entry) settle() {
	if e.inFlight > 0 {
		e.inFlight--
	}
	if e.inFlight == 0 {
		e.inFlightUntil = time.Time{}
	}
}

// fail settles an attempt as a failure at now and returns the lockout it
// caused, if it was one too many.
func (e *entry) fail(p ThrottlePolicy, now time.Time) time.Duration {
	e.settle()
	if e.failures == 0 && e.lockouts == 0 {
		e.windowEnd = now.Add(p.Window)
	}
	e.failures++
	if e.failures < p.Failures {
		return 0
	}
	e.lockouts++
	d := p.lockout(e.lockouts)
	e.lockedUntil = now.Add(d)
	e.failures = p.Failures - 1 // one more failure after the lockout locks again
	return d
}

// succeed settles an attempt as a success; reset forgets the key's failures.
// It reports whether a lockout was forgotten.
func (e *entry) succeed(reset bool) bool {
	e.settle()
	if !reset {
		return false
	}
	hadLockout := e.lockouts > 0
	*e = entry{inFlight: e.inFlight, inFlightUntil: e.inFlightUntil}
	return hadLockout
}

// empty reports whether e holds nothing.
func (e *entry) empty() bool { return *e == entry{} }

// AddressKey returns what a client address is counted as, by the throttles
// here and by anyone who limits clients per address: the address itself for
// IPv4, its /64 network for IPv6 (one subscriber commonly holds a whole /64,
// so single addresses would cost an attacker nothing), and for anything that
// does not parse, the text itself, bounded in length. A port is dropped.
func AddressKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(ip); err2 == nil {
			addr, err = ap.Addr(), nil
		}
	}
	if err != nil {
		if len(ip) > 64 {
			ip = ip[:64]
		}
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}

// keyGates let at most a key's Failures attempts of this process into the
// database's admission at once; the others queue here, in memory, instead
// of all asking the database again each time one settles. They only delay:
// the database decides.
type keyGates struct {
	mu    sync.Mutex
	gates map[string]*keyGate
}

type keyGate struct {
	slots chan struct{}
	users int // holding or waiting; the gate is dropped at zero
}

// acquire takes a slot of every key, in order, and returns the function that
// gives them back; on ctx's end it gives back what it took and returns
// ctx.Err(). Callers pass keys sorted, so two attempts never wait for each
// other's slots.
func (g *keyGates) acquire(ctx context.Context, keys []throttleKey) (func(), error) {
	taken := make([]string, 0, len(keys))
	release := func() {
		for _, id := range taken {
			g.release(id)
		}
	}
	for _, k := range keys {
		id := k.id()
		g.mu.Lock()
		if g.gates == nil {
			g.gates = make(map[string]*keyGate)
		}
		gate := g.gates[id]
		if gate == nil {
			gate = &keyGate{slots: make(chan struct{}, k.policy.Failures)}
			g.gates[id] = gate
		}
		gate.users++
		g.mu.Unlock()
		select {
		case gate.slots <- struct{}{}:
			taken = append(taken, id)
		case <-ctx.Done():
			g.leave(id)
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

func (g *keyGates) release(id string) {
	g.mu.Lock()
	<-g.gates[id].slots
	g.mu.Unlock()
	g.leave(id)
}

func (g *keyGates) leave(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gate := g.gates[id]; gate != nil {
		if gate.users--; gate.users == 0 {
			delete(g.gates, id)
		}
	}
}

// lockCache remembers locks the database reported, so that a locked key is
// refused without a query. It cannot weaken a limit: a lock is never lifted
// early, so a remembered lock is right until it ends. It holds at most max
// locks; when full, it drops those that have ended, and if none have, does
// not remember the new one (the database still refuses it).
type lockCache struct {
	mu    sync.Mutex
	max   int
	until map[string]time.Time
}

func (c *lockCache) get(id string, now time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.until[id]
	if ok && !now.Before(until) {
		delete(c.until, id)
		return time.Time{}, false
	}
	return until, ok
}

func (c *lockCache) put(id string, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.until == nil {
		c.until = make(map[string]time.Time)
	}
	if _, ok := c.until[id]; !ok && len(c.until) >= c.max {
		for k, u := range c.until {
			if !now.Before(u) {
				delete(c.until, k)
			}
		}
		if len(c.until) >= c.max {
			return
		}
	}
	c.until[id] = until
}

func (c *lockCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.until)
}

// hashGate bounds the password hashes computed at once (each costs its
// memory parameter, 19 MiB by default, and a core for tens of milliseconds)
// and the callers waiting for one.
type hashGate struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
}

func newHashGate(concurrent, waiting int) *hashGate {
	return &hashGate{slots: make(chan struct{}, concurrent), maxWaiting: int64(waiting)}
}

// busyRetry is the Retry-After of an attempt refused as busy: the queues
// drain in a second or so.
const busyRetry = time.Second

// acquire takes a slot, waiting behind at most maxWaiting others; beyond
// that it fails at once with a ThrottledError of ScopeBusy. It returns
// ctx.Err() if ctx ends first.
func (g *hashGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return &ThrottledError{RetryAfter: busyRetry, Scope: ScopeBusy}
	}
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *hashGate) release() { <-g.slots }

// saturated reports whether acquire would fail at once now: every slot is
// taken and the queue is full. Checked before an attempt's other work, it
// lets a flood be refused without a query.
func (g *hashGate) saturated() bool {
	return len(g.slots) == cap(g.slots) && g.waiting.Load() >= g.maxWaiting
}
