package redisstore

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseDSN(t *testing.T) {
	type want struct {
		addrs          []string
		db             int
		user, password string
		tls            string // the TLS ServerName, "" for no TLS
		cluster        bool
		master         string
		sentinelPass   string
		readTimeout    time.Duration
	}
	cases := []struct {
		dsn  string
		want want
	}{
		{"redis://127.0.0.1:6379/0", want{addrs: []string{"127.0.0.1:6379"}}},
		{"redis://localhost", want{addrs: []string{"localhost:6379"}}},
		{"redis://cache.internal:6380/3", want{addrs: []string{"cache.internal:6380"}, db: 3}},
		{"redis://:s%40cret@h:6379/1", want{addrs: []string{"h:6379"}, db: 1, password: "s@cret"}},
		{"redis://app:pw@h:6379/0?read_timeout=2s", want{addrs: []string{"h:6379"}, user: "app", password: "pw", readTimeout: 2 * time.Second}},
		{"rediss://app:pw@redis.example.com:6380/2", want{addrs: []string{"redis.example.com:6380"}, db: 2, user: "app", password: "pw", tls: "redis.example.com"}},
		{"redis://[::1]:7000/0", want{addrs: []string{"[::1]:7000"}}},
		{"redis://h1:7000,h2:7001,[::1]:7002", want{addrs: []string{"h1:7000", "h2:7001", "[::1]:7002"}, cluster: true}},
		{"rediss://u:p@h1,h2/0", want{addrs: []string{"h1:6379", "h2:6379"}, cluster: true, user: "u", password: "p", tls: "h1"}},
		{"redis://cfg.example.com:6379?cluster=true", want{addrs: []string{"cfg.example.com:6379"}, cluster: true}},
		{"redis://h1:6379,h2:6379?cluster=1", want{addrs: []string{"h1:6379", "h2:6379"}, cluster: true}},
		{"redis://:pw@s1,s2:26380/4?master_name=mymaster&sentinel_password=sp", want{addrs: []string{"s1:26379", "s2:26380"}, db: 4, password: "pw", master: "mymaster", sentinelPass: "sp"}},
	}
	for _, c := range cases {
		t.Run(c.dsn, func(t *testing.T) {
			cfg, err := parseDSN(c.dsn)
			if err != nil {
				t.Fatal(err)
			}
			var got want
			var tlsConfig *tls.Config
			var contextTimeouts bool
			if o := cfg.single; o != nil {
				got = want{addrs: []string{o.Addr}, db: o.DB, user: o.Username, password: o.Password, readTimeout: o.ReadTimeout}
				tlsConfig, contextTimeouts = o.TLSConfig, o.ContextTimeoutEnabled
			} else {
				o := cfg.multi
				got = want{addrs: o.Addrs, db: o.DB, user: o.Username, password: o.Password, readTimeout: o.ReadTimeout,
					cluster: o.IsClusterMode, master: o.MasterName, sentinelPass: o.SentinelPassword}
				tlsConfig, contextTimeouts = o.TLSConfig, o.ContextTimeoutEnabled
			}
			if tlsConfig != nil {
				got.tls = tlsConfig.ServerName
			}
			if !slices.Equal(got.addrs, c.want.addrs) || got.db != c.want.db || got.user != c.want.user ||
				got.password != c.want.password || got.tls != c.want.tls || got.cluster != c.want.cluster ||
				got.master != c.want.master || got.sentinelPass != c.want.sentinelPass || got.readTimeout != c.want.readTimeout {
				t.Errorf("parsed\n%+v\nwant\n%+v", got, c.want)
			}
			if c.want.cluster || c.want.master != "" {
				if cfg.multi == nil {
					t.Error("a Cluster or Sentinel DSN gave single-server options")
				}
			}
			if !contextTimeouts {
				t.Error("ContextTimeoutEnabled is off: the Manager's timeouts would not bound a slow server")
			}
		})
	}
}

func TestParseDSNErrors(t *testing.T) {
	const secret = "hunter2-secret"
	cases := []struct{ dsn, why string }{
		{"", "empty"},
		{"127.0.0.1:6379", "no scheme"},
		{"http://127.0.0.1:6379", "wrong scheme"},
		{"postgres://" + secret + "@h/db", "another store's DSN"},
		{"redis://u:" + secret + "@h:6379/zero", "database not a number"},
		{"redis://u:" + secret + "@h:6379/0/1", "two path segments"},
		{"redis://u:" + secret + "@h:6379/0?pool_sise=10", "misspelt option"},
		{"redis://u:" + secret + "@h:6379/0?read_timeout=soon", "bad option value"},
		{"redis://u:" + secret + "@h:99999/0", "port out of range"},
		{"redis://u:" + secret + "@h:port/0", "port not a number"},
		{"redis://u:" + secret + "@h1,,h2/0", "empty address in a list"},
		{"redis://u:" + secret + "@::1:6379/0", "IPv6 without brackets"},
		{"redis://u:" + secret + "@h1:6379,h2:6379/2", "Cluster database other than 0"},
		{"redis://u:" + secret + "@h/0?cluster=maybe", "cluster not a boolean"},
		{"redis://u:" + secret + "@h/0?cluster=1&master_name=m", "Cluster and Sentinel at once"},
		{"redis://u:" + secret + "@h/0?sentinel_password=x", "Sentinel credentials without Sentinel"},
		{"redis://u:" + secret + "@h/0?read_only=true", "reads from replicas"},
		{"unix://u:" + secret + "@/tmp/redis.sock?cluster=1", "a Unix socket Cluster"},
		{"redis://u:" + secret + "@h/0?%zz", "malformed query"},
	}
	for _, c := range cases {
		t.Run(c.why, func(t *testing.T) {
			_, err := parseDSN(c.dsn)
			if err == nil {
				t.Fatalf("parseDSN accepted a DSN with %s", c.why)
			}
			if !strings.HasPrefix(err.Error(), "redisstore: ") {
				t.Errorf("error %q does not say where it comes from", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
			if _, err := Open(c.dsn); err == nil {
				t.Error("Open accepted it")
			}
		})
	}
}

func TestOpenAndNew(t *testing.T) {
	// Neither contacts the server, so no server is needed.
	s, err := Open("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	if !s.atomic || s.prefix != DefaultKeyPrefix || s.grace != DefaultGrace {
		t.Errorf("Open's defaults: atomic %v, prefix %q, grace %v", s.atomic, s.prefix, s.grace)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, errClosed) {
		t.Errorf("Ping after Close: %v, want errClosed", err)
	}
	if err := s.c.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("the client Open made is still open after Close: %v", err)
	}

	cluster, err := Open("redis://127.0.0.1:1,127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	if cluster.atomic {
		t.Error("a Cluster DSN gave the atomic form")
	}

	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	s, err = New(client, WithKeyPrefix("app1:"), WithGrace(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if s.prefix != "app1:" || s.graceMs != 300_000 {
		t.Errorf("New's options: prefix %q, grace %d ms", s.prefix, s.graceMs)
	}
	s.Close()

	for _, c := range []struct {
		why  string
		make func() (*Store, error)
	}{
		{"nil client", func() (*Store, error) { return New(nil) }},
		{"prefix with a hash tag", func() (*Store, error) { return New(client, WithKeyPrefix("app{1}:")) }},
		{"prefix with an open brace", func() (*Store, error) { return Open("redis://h/0", WithKeyPrefix("app{")) }},
		{"negative grace", func() (*Store, error) { return New(client, WithGrace(-time.Second)) }},
	} {
		if _, err := c.make(); err == nil {
			t.Errorf("a Store with a %s was made", c.why)
		}
	}
}

// TestOnceIsNotResent checks that go-redis honours onceCmd. A fake server
// drops the connection on every GET after reading it, as a server would
// whose reply is lost: go-redis sends an ordinary command again, since it
// cannot tell whether it ran, but a once command only once.
func TestOnceIsNotResent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var gets atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveDroppingGets(conn, &gets)
		}
	}()
	client := redis.NewClient(&redis.Options{Addr: l.Addr().String(), Protocol: 2, DisableIdentity: true,
		MaxRetries: 3, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond})
	defer client.Close()
	ctx := t.Context()
	if err := client.Get(ctx, "k").Err(); err == nil {
		t.Fatal("the fake server answered a GET")
	}
	retried := gets.Swap(0)
	if err := once(client, ctx, "GET", "k").Err(); err == nil {
		t.Fatal("the fake server answered a GET")
	}
	if n := gets.Load(); n != 1 || retried != 4 {
		t.Errorf("the server saw an ordinary GET %d times and a once GET %d times; want 4 (1 + 3 retries) and 1", retried, n)
	}
}

// serveDroppingGets speaks just enough RESP to accept a connection: it
// refuses the handshake's optional commands (go-redis carries on without
// them) and closes the connection on GET.
func serveDroppingGets(conn net.Conn, gets *atomic.Int32) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "*") {
			return
		}
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		var args []string
		for range n {
			if _, err := r.ReadString('\n'); err != nil { // $len
				return
			}
			arg, err := r.ReadString('\n')
			if err != nil {
				return
			}
			args = append(args, strings.TrimSpace(arg))
		}
		if len(args) > 0 && strings.EqualFold(args[0], "GET") {
			gets.Add(1)
			return
		}
		conn.Write([]byte("-ERR unknown command\r\n"))
	}
}
