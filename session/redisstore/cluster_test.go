package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// startCluster starts a Redis Cluster of three primaries, each owning a
// third of the slots, on free local ports, and returns its DSN. The servers
// keep nothing on disk and are killed when the test ends.
func startCluster(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SESSIONGUARD_CI") != "" {
			t.Fatal("redis-server is not on PATH, and CI must run the Redis Cluster test")
		}
		t.Skip("redis-server is not on PATH: skipping the Redis Cluster test")
	}
	dir := t.TempDir()
	var addrs []string
	var buses []int
	var clients []*redis.Client
	for range 3 {
		port, bus := freePort(t), freePort(t)
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--cluster-port", fmt.Sprint(bus),
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		addrs = append(addrs, addr)
		buses = append(buses, bus)
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}

	ctx := t.Context()
	// Waiting for processes this test started is the one wait here; the
	// store's own behaviour is never timed.
	waitFor(t, "the servers to answer", func() bool {
		for _, c := range clients {
			if c.Ping(ctx).Err() != nil {
				return false
			}
		}
		return true
	})
	const slots = 16384
	for i, c := range clients {
		lo, hi := i*slots/3, (i+1)*slots/3-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("assigning slots: %v", err)
		}
	}
	for i, addr := range addrs[1:] {
		host, port, _ := net.SplitHostPort(addr)
		// The bus port is not port+10000 here, so MEET must be told it.
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port, buses[i+1]).Err(); err != nil {
			t.Fatalf("joining the nodes: %v", err)
		}
	}
	waitFor(t, "the cluster to form", func() bool {
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	})
	return "redis://" + strings.Join(addrs, ",")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCluster runs the conformance suite on a real Redis Cluster, where a
// script that touched keys of two slots would fail with CROSSSLOT, and
// checks that a user's keys share a slot while the sessions of many users
// spread over the nodes.
func TestCluster(t *testing.T) {
	testDSN(t)
	dsn := startCluster(t)
	open := func(t testing.TB, opts ...Option) *Store {
		s, err := Open(dsn, append([]Option{WithKeyPrefix(testPrefix())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if s.atomic {
			t.Fatal("a Cluster DSN made a Store in the atomic form")
		}
		return s
	}
	// Another client on the same prefix, as another process would be.
	again := func(t testing.TB, s session.Store) session.Store {
		return open(t, WithKeyPrefix(s.(*Store).prefix))
	}
	storetest.Run(t, func(t testing.TB) session.Store { return open(t) },
		storetest.WithReopen(func(t testing.TB, s session.Store) session.Store {
			s.Close()
			return again(t, s)
		}),
		storetest.WithSecondHandle(again))

	t.Run("a renewal during a sweep does not delay the end", func(t *testing.T) {
		renewalDuringSweep(t, open(t))
	})

	t.Run("keys of one user share a slot, users spread over the nodes", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		c := s.c.(*redis.ClusterClient)
		now := time.Now()
		nodes := make(map[string]bool)
		for i := range 30 {
			rec := storetest.NewRecord(fmt.Sprint("user-", i), now, session.Policy{})
			if err := s.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			tag := userTag(rec.UserID)
			slot := func(key string) int64 {
				n, err := c.ClusterKeySlot(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if a, b := slot(s.prefix+recordRef(rec.UserID, rec.ID)), slot(s.indexKey(tag)); a != b {
				t.Fatalf("record and index of %s are in slots %d and %d", rec.UserID, a, b)
			}
			node, err := c.MasterForKey(ctx, s.indexKey(tag))
			if err != nil {
				t.Fatal(err)
			}
			nodes[node.Options().Addr] = true
		}
		if len(nodes) < 2 {
			t.Errorf("the sessions of 30 users all landed on %v", nodes)
		}
		if got := len(mustList(t, s, "")); got != 30 {
			t.Errorf("List(\"\") found %d sessions across the nodes, want 30", got)
		}
	})
}

func mustList(t *testing.T, s *Store, user string) []session.Record {
	t.Helper()
	recs, err := s.List(context.Background(), user, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// renewalDuringSweep puts a Renew that moves the expiry earlier between a
// sweep's reading of a record (not yet expired: its index score was a lower
// bound, left so by Touch) and the sweep's correction of that score. The
// record and the index are in different slots, so nothing makes the two
// steps atomic; the correction must not hide the renewal's earlier expiry,
// or the session would end, and its end event go out, only at the later
// one.
func renewalDuringSweep(t *testing.T, s *Store) {
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	p := session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}
	rec := storetest.NewRecord("renewed-while-swept", now, p)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// The index keeps now+30m, a lower bound of the touched now+50m.
	touched := now.Add(20 * time.Minute)
	if err := s.Touch(ctx, rec.ID, touched, expiryOf(p, now, touched)); err != nil {
		t.Fatal(err)
	}
	newHash := storetest.NewRecord("", now, p).TokenHash
	r := session.Renewal{AuthenticatedAt: now.Add(31 * time.Minute), LastActivity: now.Add(31 * time.Minute),
		Expires: session.Expiry{At: now.Add(35 * time.Minute), Reason: session.ReasonAbsolute}}
	renewed := false
	s.beforeIndexWrites = func() {
		if renewed {
			return
		}
		renewed = true
		if err := s.Renew(ctx, rec.ID, rec.TokenHash, newHash, r); err != nil {
			t.Errorf("Renew during the sweep: %v", err)
		}
	}
	ended, err := s.EndExpired(ctx, now.Add(31*time.Minute), time.Hour, 10)
	s.beforeIndexWrites = nil
	if err != nil || len(ended) != 0 || !renewed {
		t.Fatalf("the first sweep ended %v (%v), renewed in between: %v", endedIDs(ended), err, renewed)
	}
	ended, err = s.EndExpired(ctx, r.Expires.At, time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0].ID != rec.ID || ended[0].Reason != session.ReasonAbsolute || !ended[0].At.Equal(r.Expires.At) {
		t.Fatalf("the sweep at the renewed expiry ended %+v, want %s, absolute at %v", ended, rec.ID, r.Expires.At)
	}
	if n := s.c.ZCard(ctx, s.expiryKey).Val(); n != 0 {
		t.Errorf("the expiry index holds %d entries after the only session ended", n)
	}
}
