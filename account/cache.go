package account

import (
	"sync"
	"time"
)

// maxCachedUsers bounds the users the cache holds: the signed-in users of a
// busy server, at about a hundred bytes each.
const maxCachedUsers = 10_000

// userCache keeps recently read users in memory, so that the account check
// of every signed-in request (is the user still there and enabled, which
// role?) does not cost a database query: through database/sql and the Go
// translation of SQLite that query cost more than the rest of a request.
//
// It is safe for the same reasons as the SQLite session store's cache, on
// the same rules. Every write this Store makes to a user drops that user
// after the write and bumps the epoch, and a read that overlapped any write
// does not fill the cache, so a user read just before a "disable" cannot be
// put back after it: a change made by this process is seen at once. A
// change made by another process on the same database (the command line,
// another server on PostgreSQL) is seen when the entry is older than ttl.
// That delay never lets a disabled user in for longer than ttl, and in
// practice not at all: disabling a user or changing a password, from the
// command line or the admin page of any instance, also ends the user's
// sessions in the session store, which every request checks; the account
// check is the fallback for a revocation that was missed (a memory session
// store, which the command line cannot reach). Password checks never use
// the cache (Authenticator reads the hash and the disabled flag fresh), so
// sign-in always sees the latest password and state.
type userCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	epoch   uint64
	entries map[string]cachedUser
}

type cachedUser struct {
	user    User
	expires time.Time
}

// newUserCache returns a cache whose entries live for ttl, or nil (no
// cache) when ttl is not positive.
func newUserCache(ttl time.Duration, now func() time.Time) *userCache {
	if ttl <= 0 {
		return nil
	}
	return &userCache{ttl: ttl, now: now, entries: make(map[string]cachedUser)}
}

// get returns the fresh cached user called name (normalised) and the
// current epoch, to pass to put after a database read.
func (c *userCache) get(name string) (User, uint64, bool) {
	if c == nil {
		return User{}, 0, false
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	if !ok || !now.Before(e.expires) {
		return User{}, c.epoch, false
	}
	return e.user, c.epoch, true
}

// put caches u, read from the database when the epoch was epoch, unless a
// write happened since.
func (c *userCache) put(u User, epoch uint64) {
	if c == nil {
		return
	}
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if _, ok := c.entries[u.Name]; !ok && len(c.entries) >= maxCachedUsers {
		for name := range c.entries { // evict an arbitrary entry
			delete(c.entries, name)
			break
		}
	}
	c.entries[u.Name] = cachedUser{user: u, expires: expires}
}

// forget drops the user called name (normalised) and bumps the epoch; it
// is called after every write to a user, whether it succeeded or not.
func (c *userCache) forget(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.entries, name)
}
