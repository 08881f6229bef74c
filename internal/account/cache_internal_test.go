package account

import (
	"strconv"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

// testCache returns a Store's cache whose entries live for a second by the
// clock now.
func testCache(t *testing.T, now func() time.Time) *userCache {
	t.Helper()
	s, err := NewStore(t.Context(), sqldbtest.Open(t, sqldb.SQLite), Options{Params: Params{Memory: 64, Time: 1, Threads: 1}, Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	return s.cache
}

// A read that overlapped a write must not put what it read back: it may be
// the user as they were before the write.
func TestUserCacheReadOverlappingWriteIsNotKept(t *testing.T) {
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	c := testCache(t, func() time.Time { return now })
	_, epoch, ok := c.get("alice")
	if ok {
		t.Fatal("an empty cache had alice")
	}
	c.forget("alice") // a write finished while the read ran
	c.put(User{Name: "alice"}, epoch)
	if _, _, ok := c.get("alice"); ok {
		t.Error("the cache kept a user read while a write happened")
	}

	_, epoch, _ = c.get("alice")
	c.put(User{Name: "alice", Role: RoleUser}, epoch)
	if u, _, ok := c.get("alice"); !ok || u.Role != RoleUser {
		t.Errorf("get after a quiet read = %+v, %v; want the user read", u, ok)
	}
}

func TestUserCacheIsBounded(t *testing.T) {
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	c := testCache(t, func() time.Time { return now })
	for i := range maxCachedUsers + 10 {
		_, epoch, _ := c.get("")
		c.put(User{Name: "user" + strconv.Itoa(i)}, epoch)
	}
	if n := len(c.entries); n != maxCachedUsers {
		t.Errorf("%d users cached, want at most %d", n, maxCachedUsers)
	}
}

func TestUserCacheOff(t *testing.T) {
	if c, err := newUserCache(t.Context(), nil, 0, time.Now); c != nil || err != nil {
		t.Errorf("a zero TTL made a cache: %v, %v", c, err)
	}
	var c *userCache // the methods of a nil cache do nothing
	c.put(User{Name: "alice"}, 0)
	c.forget("alice")
	if _, _, ok := c.get("alice"); ok {
		t.Error("a nil cache had alice")
	}
}
