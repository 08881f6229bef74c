package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// testDSN returns the address of the Redis server tests use, or skips the
// test when none is configured.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SESSIONGUARD_TEST_REDIS")
	if dsn == "" {
		t.Skip("SESSIONGUARD_TEST_REDIS not set: skipping Redis tests")
	}
	return dsn
}

// testPrefix returns a key prefix no other test uses, of characters that
// need no escaping in a SCAN pattern.
func testPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "sgtest-" + hex.EncodeToString(b[:]) + ":"
}

// form is how a test Store runs its calls.
type form int

const (
	atomicForm  form = iota // one script per call, as on a single server
	clusterForm             // one slot per script, as on a Cluster
)

func (f form) String() string { return [...]string{"atomic", "cluster form"}[f] }

// newTestStore opens a Store on the test server under a fresh key prefix, in
// the given form, and deletes its keys when the test ends. It returns the
// store and a client of the test's own for looking at the keys.
func newTestStore(t testing.TB, f form, opts ...Option) (*Store, redis.UniversalClient) {
	t.Helper()
	dsn := testDSN(t)
	prefix := testPrefix()
	s, err := Open(dsn, append([]Option{WithKeyPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if f == clusterForm {
		s.atomic, s.mode = false, "0"
	}
	raw := rawClient(t)
	t.Cleanup(func() {
		s.Close()
		deleteKeys(t, raw, prefix)
		raw.Close()
	})
	return s, raw
}

// rawClient returns a client of the test's own on the test server, which
// must be one server: the suite runs on a Cluster in TestCluster, which
// starts its own.
func rawClient(t testing.TB) *redis.Client {
	t.Helper()
	cfg, err := parseDSN(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.single == nil {
		t.Fatal("SESSIONGUARD_TEST_REDIS must name one Redis server, not a Cluster or Sentinel")
	}
	return redis.NewClient(cfg.single)
}

// deleteKeys deletes every key under prefix.
func deleteKeys(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	switch c := c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("deleting the test's keys: %v", err)
	}
}

// keys returns every key under prefix.
func keys(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	ks, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
