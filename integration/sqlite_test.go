package integration

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver the server uses, for the lock
)

// These tests run real servers on one SQLite file, as on one machine: a
// server and the command line, two servers, and another process that holds
// the file's write lock.

// sqliteDB returns the -db DSN of a new SQLite file, and its path.
func sqliteDB(t *testing.T) (dsn, path string) {
	path = filepath.Join(t.TempDir(), "sg.db")
	return "sqlite:" + path, path
}

// writeLock holds the write lock of the SQLite file at path from another
// connection, as a second process running a long transaction would, until
// the returned function is called. Readers go on (WAL); every writer waits
// for the lock and fails when its busy timeout or its context runs out.
func writeLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
			t.Errorf("releasing the write lock: %v", err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// metric returns the value of the series name{labels} (the whole label
// set, as the exposition writes it) on s, or -1 when there is none.
func metric(t *testing.T, s *instance, series string) float64 {
	t.Helper()
	resp := do(t, s, (&browser{}).request("GET", "/metrics", nil))
	for line := range strings.SplitSeq(resp.body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return f
		}
	}
	return -1
}

// TestSQLiteSignOutWhileLocked signs out while another process holds the
// SQLite file's write lock: the sign-out cannot be recorded, so the server
// must say so (503, "still signed in") and keep the cookie, /readyz must
// say 503 and the metrics count it. Once the lock is released, /readyz is
// 200 again, the same sign-out works, and a copy of the cookie is refused.
func TestSQLiteSignOutWhileLocked(t *testing.T) {
	db, path := sqliteDB(t)
	addUser(t, db, "user", "alice", alicePassword)
	const storeTimeout = 500 * time.Millisecond
	s := startInstance(t, "server", "-db", db, "-store-timeout", storeTimeout.String())
	var alice browser
	alice.login(t, s, "alice", alicePassword)
	copied := browser{cookie: alice.cookie}
	if resp := do(t, s, alice.request("GET", "/readyz", nil)); resp.status != http.StatusOK {
		t.Fatalf("/readyz before the lock: %d", resp.status)
	}

	release := writeLock(t, path)
	start := time.Now()
	resp := alice.send(t, s, alice.request("POST", "/auth/logout", url.Values{}))
	t.Logf("the sign-out answered %d after %v", resp.status, time.Since(start).Round(time.Millisecond))
	if resp.status != http.StatusServiceUnavailable || !strings.Contains(resp.body, "You are still signed in") {
		t.Fatalf("sign-out with the file locked: %d %.500s, want 503 saying the person is still signed in", resp.status, resp.body)
	}
	if alice.cookie != copied.cookie || resp.header.Get("Set-Cookie") != "" {
		t.Fatalf("the failed sign-out touched the cookie: Set-Cookie %q", resp.header.Get("Set-Cookie"))
	}
	if resp.header.Get("Clear-Site-Data") != "" {
		t.Errorf("the failed sign-out sent Clear-Site-Data")
	}
	resp = alice.send(t, s, alice.jsonRequest("POST", "/auth/logout", url.Values{}))
	if e := jsonBody[map[string]string](t, resp); resp.status != http.StatusServiceUnavailable || e["error"] != "unavailable" {
		t.Errorf("JSON sign-out with the file locked: %d %s, want 503 unavailable", resp.status, resp.body)
	}
	// Reads go on under the lock: the person is indeed still signed in.
	expectSignedIn(t, &copied, s, "alice")
	if resp := do(t, s, alice.request("GET", "/readyz", nil)); resp.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz while sign-outs fail: %d, want 503", resp.status)
	}
	if n := metric(t, s, `sessionguard_store_write_failures_total{op="end"}`); n < 2 {
		t.Errorf(`sessionguard_store_write_failures_total{op="end"} = %v, want at least 2`, n)
	}

	release()
	took := waitFor(t, recoverTimeout, "/readyz 200 after the lock was released", func() bool {
		return do(t, s, alice.request("GET", "/readyz", nil)).status == http.StatusOK
	})
	t.Logf("/readyz 200 again %v after the lock was released", took.Round(time.Millisecond))
	resp = alice.send(t, s, alice.request("POST", "/auth/logout", url.Values{}))
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/auth/login?reason=logout" || alice.cookie != "" {
		t.Fatalf("sign-out after the lock: %d to %q, cookie kept %v", resp.status, resp.header.Get("Location"), alice.cookie != "")
	}
	expectRefused(t, &copied, s, "logout")
	expectAlive(t, s)
}

// TestSQLiteRevocationAcrossProcesses runs two servers on one SQLite file,
// each keeping what it read in memory: a disabled account (from the command
// line, a third process) and a sign-out on one server are refused by the
// very next request to the other, with no wait in between.
func TestSQLiteRevocationAcrossProcesses(t *testing.T) {
	db, _ := sqliteDB(t)
	addUser(t, db, "user", "alice", alicePassword)
	addUser(t, db, "admin", "ada", adaPassword)
	in := startInstances(t, []string{"first", "second"}, append([]string{"-db", db}, adminPasswordOnly...)...)
	first, second := in[0], in[1]

	// Signed in on the first, served (and so cached) by both.
	var alice, ada browser
	alice.login(t, first, "alice", alicePassword)
	ada.login(t, second, "ada", adaPassword)
	for _, s := range in {
		expectSignedIn(t, &alice, s, "alice")
		expectSignedIn(t, &ada, s, "ada")
	}

	// A sign-out on the second is final on the first at once.
	copied := browser{cookie: ada.cookie}
	resp := ada.send(t, second, ada.request("POST", "/auth/logout", url.Values{}))
	if resp.status != http.StatusSeeOther || ada.cookie != "" {
		t.Fatalf("sign-out on the second: %d, cookie kept %v", resp.status, ada.cookie != "")
	}
	expectRefused(t, &copied, first, "logout")

	// A renewal (re-authentication) on the first retires the old token on
	// the second at once.
	ada.login(t, first, "ada", adaPassword)
	expectSignedIn(t, &ada, second, "ada")
	old := browser{cookie: ada.cookie}
	resp = ada.send(t, first, ada.request("POST", "/auth/reauth", url.Values{"password": {adaPassword}, "next": {"/"}}))
	if resp.status != http.StatusSeeOther || ada.cookie == old.cookie {
		t.Fatalf("re-authentication on the first: %d, new token %v", resp.status, ada.cookie != old.cookie)
	}
	if resp := old.send(t, second, old.jsonRequest("GET", "/", nil)); resp.status != http.StatusUnauthorized {
		t.Errorf("the token before the renewal on the second: %d %s, want 401", resp.status, resp.body)
	}
	expectSignedIn(t, &ada, second, "ada")

	// The command line disables alice: her session is refused by both
	// servers at once.
	cli(t, "", "user", "disable", "-db", db, "alice")
	for _, s := range in {
		expectRefused(t, &browser{cookie: alice.cookie}, s, "revoked")
	}
	for _, s := range in {
		expectAlive(t, s)
	}
}

// TestSQLiteDisabledAccountWithMemorySessions disables an account from the
// command line while the server keeps its sessions in memory, where the
// command cannot end them: the server's account check, answered from its
// own memory, must see the change at the very next request.
func TestSQLiteDisabledAccountWithMemorySessions(t *testing.T) {
	db, _ := sqliteDB(t)
	addUser(t, db, "user", "alice", alicePassword)
	s := startInstance(t, "server", "-db", db, "-sessions", "memory")
	var alice browser
	alice.login(t, s, "alice", alicePassword)
	expectSignedIn(t, &alice, s, "alice") // the account is cached now
	cli(t, "", "user", "disable", "-db", db, "-sessions", "memory", "alice")
	expectRefused(t, &alice, s, "revoked")
	expectAlive(t, s)
}

// setupLinkRE finds the token of the setup link a server prints.
var setupLinkRE = regexp.MustCompile(`/setup\?token=([A-Za-z0-9_-]{43})`)

// TestSQLiteSetupLinkOnAnyInstance starts two servers on a database with no
// account: the link the first prints works on the second, and once the
// first administrator exists no link works anywhere.
func TestSQLiteSetupLinkOnAnyInstance(t *testing.T) {
	db, _ := sqliteDB(t)
	in := startInstances(t, []string{"first", "second"}, append([]string{"-db", db}, adminPasswordOnly...)...)
	first, second := in[0], in[1]
	link := func(s *instance) string {
		var token string
		waitFor(t, startTimeout, "the setup link of "+s.name, func() bool {
			m := setupLinkRE.FindStringSubmatch(s.log())
			if m != nil {
				token = m[1]
			}
			return m != nil
		})
		return token
	}
	token, other := link(first), link(second)

	var root browser
	if resp := root.send(t, second, root.request("GET", "/setup?token="+token, nil)); resp.status != http.StatusOK {
		t.Fatalf("the first server's link on the second: %d %.300s", resp.status, resp.body)
	}
	const rootPassword = "granite owls guard the ledger"
	resp := root.send(t, second, root.request("POST", "/setup", url.Values{
		"token": {token}, "username": {"root"}, "password": {rootPassword}, "confirm_password": {rootPassword},
	}))
	if resp.status != http.StatusSeeOther || root.cookie == "" {
		t.Fatalf("setup on the second with the first's link: %d %.300s", resp.status, resp.body)
	}
	expectSignedIn(t, &root, first, "root")
	for _, s := range in {
		for _, tok := range []string{token, other} {
			if resp := do(t, s, (&browser{}).request("GET", "/setup?token="+tok, nil)); resp.status != http.StatusGone {
				t.Errorf("a setup link on %s after the first administrator exists: %d, want 410", s.name, resp.status)
			}
		}
	}
}
