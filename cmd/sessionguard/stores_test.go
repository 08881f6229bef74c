package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedactDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"redis://localhost:6379/0":                         "redis://localhost:6379/0",
		"redis://:secret@localhost:6379/0":                 "redis://:xxxxx@localhost:6379/0",
		"rediss://app:secret@h1:7000,h2:7001?pool_size=9":  "rediss://app:xxxxx@h1:7000,h2:7001?pool_size=9",
		"redis://s1,s2?master_name=m&sentinel_password=s3": "redis://s1,s2?master_name=m&sentinel_password=xxxxx",
		"postgres://sg:p%40ss@db/sg?sslmode=require":       "postgres://sg:xxxxx@db/sg?sslmode=require",
		"postgres://sg@db/sg?password=secret":              "postgres://sg@db/sg?password=xxxxx",
		"postgres://sg@db/sg":                              "postgres://sg@db/sg",
		"nonsense":                                         "(no scheme)",
	} {
		if got := redactDSN(dsn); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}

func TestRedisOptions(t *testing.T) {
	full, prefix, err := redisOptions("redis://:pw@localhost:6379/2?key_prefix=blue:&read_timeout=500ms", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if prefix != "blue:" {
		t.Errorf("prefix %q, want blue:", prefix)
	}
	base, query, _ := strings.Cut(full, "?")
	if base != "redis://:pw@localhost:6379/2" {
		t.Errorf("base %q", base)
	}
	q, _ := url.ParseQuery(query)
	want := url.Values{
		"read_timeout":  {"500ms"}, // the DSN's own wins
		"dial_timeout":  {"2s"},
		"write_timeout": {"2s"},
		"pool_timeout":  {"2s"},
	}
	if q.Encode() != want.Encode() {
		t.Errorf("query %q, want %q (key_prefix taken out, timeouts added)", q.Encode(), want.Encode())
	}

	if _, prefix, _ := redisOptions("redis://localhost", time.Second); prefix != "sg:" {
		t.Errorf("default prefix %q, want sg:", prefix)
	}
	if _, _, err := redisOptions("redis://localhost?key_prefix=", time.Second); err == nil {
		t.Error("an empty key_prefix was accepted")
	}
	if _, _, err := redisOptions("redis://localhost?a=%zz", time.Second); err == nil {
		t.Error("a malformed query was accepted")
	}
}

func TestPostgresTimeouts(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		timeout time.Duration
		want    string
	}{
		{"postgres://sg@db/sg", 3 * time.Second, "postgres://sg@db/sg?connect_timeout=3"},
		{"postgres://sg@db/sg?search_path=blue", 2500 * time.Millisecond, "postgres://sg@db/sg?connect_timeout=3&search_path=blue"},
		{"postgres://sg@db/sg?connect_timeout=10", time.Second, "postgres://sg@db/sg?connect_timeout=10"},
	} {
		got, err := postgresTimeouts(tc.dsn, tc.timeout)
		if err != nil || got != tc.want {
			t.Errorf("postgresTimeouts(%q, %v) = %q, %v; want %q", tc.dsn, tc.timeout, got, err, tc.want)
		}
	}
}

// TestSessionBackendDefaults checks which store each -db gets without
// -sessions: SQLite sessions beside SQLite accounts, PostgreSQL beside
// PostgreSQL, so that a multi-instance deployment needs one DSN.
func TestSessionBackendDefaults(t *testing.T) {
	for _, tc := range []struct{ sessions, db, want string }{
		{"", "sqlite:sg.db", "sqlite:sg.db"},
		{"", "postgres://sg:secret@db/sg", "postgres://sg:xxxxx@db/sg"},
		{"redis://:secret@cache:6379/1", "postgres://sg@db/sg", "redis://:xxxxx@cache:6379/1"},
		{"memory", "postgres://sg@db/sg", "memory (sessions end when the process stops)"},
	} {
		desc, open, err := sessionBackend(tc.sessions, tc.db)
		if err != nil || open == nil || desc != tc.want {
			t.Errorf("sessionBackend(%q, %q) = %q, %v; want %q", tc.sessions, tc.db, desc, err, tc.want)
		}
	}
}

// TestOpenRedisUnreachable checks that serve refuses to start on a Redis
// that does not answer, within the store timeout, instead of starting a
// server whose every sign-in fails.
func TestOpenRedisUnreachable(t *testing.T) {
	_, open, err := sessionBackend("redis://127.0.0.1:1/0", "sqlite:x.db")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if s, err := open(context.Background(), 500*time.Millisecond); err == nil {
		s.Close()
		t.Fatal("opened a store on a port where nothing listens")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("giving up took %v, want about the store timeout", d)
	}
}

func TestWithDeadline(t *testing.T) {
	var left time.Duration
	h := withDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := r.Context().Deadline()
		if !ok {
			t.Error("the request has no deadline")
		}
		left = time.Until(d)
	}), time.Minute)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if left <= 50*time.Second || left > time.Minute {
		t.Errorf("deadline in %v, want about a minute", left)
	}
}
