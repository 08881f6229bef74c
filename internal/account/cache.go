package account

import (
	"context"
	"sync"
	"time"

	"github.com/sessionguard/sessionguard/internal/coalesce"
	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// maxCachedUsers bounds the users the cache holds: the signed-in users of a
// busy server, at about a hundred bytes each.
const maxCachedUsers = 10_000

// cacheMigrations are the steps of the "account_cache" component: a counter
// that every change to account_users bumps, by trigger, in the transaction
// of the change, whichever process or program version makes it. A Store
// that reads the same counter as when it cached a user knows that nobody
// has changed any user since.
var cacheMigrations = []sqldb.Migration{{
	Name: "account version counter",
	SQLite: `CREATE TABLE account_version (n INTEGER NOT NULL);
	INSERT INTO account_version (n) VALUES (0);
	CREATE TRIGGER account_users_inserted AFTER INSERT ON account_users
		BEGIN UPDATE account_version SET n = n + 1; END;
	CREATE TRIGGER account_users_updated AFTER UPDATE ON account_users
		BEGIN UPDATE account_version SET n = n + 1; END;
	CREATE TRIGGER account_users_deleted AFTER DELETE ON account_users
		BEGIN UPDATE account_version SET n = n + 1; END;`,
	Postgres: `CREATE TABLE account_version (n BIGINT NOT NULL);
	INSERT INTO account_version (n) VALUES (0);
	CREATE FUNCTION account_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN UPDATE account_version SET n = n + 1; RETURN NULL; END $$;
	CREATE TRIGGER account_users_changed AFTER INSERT OR UPDATE OR DELETE ON account_users
		FOR EACH STATEMENT EXECUTE FUNCTION account_version_bump();`,
}}

// userCache keeps recently read users in memory, so that the account check
// of every signed-in request (is the user still there and enabled, which
// role?) does not read the user's row each time: through database/sql and
// the Go translation of SQLite that query cost more than the rest of a
// request.
//
// It never answers with a user that has changed, wherever the change was
// made. Before answering, it reads the account_version counter, which every
// change to a user bumps in the same transaction; if the counter moved since
// the cache was filled, it empties itself. Changes are rare (an
// administrator's action, a password change), so emptying everything costs
// little, and the counter is one row, read once for all the requests that
// arrive while a read is under way (package coalesce). Within this process,
// every write to a user also drops that user after the write and bumps the
// epoch, and a read that overlapped any write does not fill the cache, so a
// user read just before a "disable" cannot be put back after it. Password
// checks never use the cache (Authenticator reads the hash and the disabled
// flag fresh).
type userCache struct {
	ttl time.Duration
	now func() time.Time
	db  *sqldb.DB

	check *coalesce.Check // runs emptyIfChanged, one at a time
	// version is the counter as the last read saw it, and dataVersion
	// SQLite's data version before that read; read and written only by
	// emptyIfChanged.
	version     int64
	dataVersion int64

	mu      sync.Mutex
	epoch   uint64
	entries map[string]cachedUser
}

type cachedUser struct {
	user    User
	expires time.Time
}

// newUserCache returns a cache on db whose entries live for ttl, or nil (no
// cache) when ttl is not positive. db must have the account_cache tables.
func newUserCache(ctx context.Context, db *sqldb.DB, ttl time.Duration, now func() time.Time) (*userCache, error) {
	if ttl <= 0 {
		return nil, nil
	}
	c := &userCache{ttl: ttl, now: now, db: db, check: coalesce.New(), entries: make(map[string]cachedUser)}
	// The data version first: a change committed between the two reads
	// is then read again, harmlessly, by the next check.
	if v, ok, err := db.DataVersion(ctx); ok && err == nil {
		c.dataVersion = v
	}
	if err := c.readVersion(ctx, &c.version); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *userCache) readVersion(ctx context.Context, n *int64) error {
	return c.db.QueryRowContext(ctx, `SELECT n FROM account_version`).Scan(n)
}

// catchUp empties the cache if any user changed, in any process, before
// the call. A caller that gets an error must neither use the cache nor
// fill it.
func (c *userCache) catchUp(ctx context.Context) error {
	if c == nil {
		return nil
	}
	return c.check.Run(ctx, c.emptyIfChanged)
}

// emptyIfChanged reads the counter, and empties the cache if it moved. On
// SQLite it first asks the file's data version, a pragma that costs a
// fraction of the query: when nobody else has committed anything, the
// counter cannot have moved.
func (c *userCache) emptyIfChanged(ctx context.Context) error {
	// The pragma only saves work: if it fails, the counter still answers.
	dv, watched, dvErr := c.db.DataVersion(ctx)
	if dvErr == nil && watched && dv == c.dataVersion {
		return nil
	}
	var n int64
	if err := c.readVersion(ctx, &n); err != nil {
		return err
	}
	if dvErr == nil {
		c.dataVersion = dv
	}
	if n != c.version {
		c.mu.Lock()
		c.epoch++
		clear(c.entries)
		c.mu.Unlock()
		c.version = n
	}
	return nil
}

// get returns the fresh cached user called name (normalised) and the
// current epoch, to pass to put after a database read. Call catchUp first.
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
