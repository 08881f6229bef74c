package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The accounts of the tests. Passwords have the 15 characters the account
// policy asks for at least.
const (
	alicePassword = "correct horse battery staple"
	adaPassword   = "ada keeps the admin keys"
)

// TestRedisStoreFails stops the Redis that holds the sessions (SIGKILL, as
// a crash) under a running server: protected requests get 503, nobody is
// signed in, the process lives, and when Redis is back (empty: it ran
// without persistence) service resumes by itself, with everyone signing in
// again.
func TestRedisStoreFails(t *testing.T) {
	rds := startPrivateRedis(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "sg.db")
	addUser(t, db, "user", "alice", alicePassword)
	s := startInstance(t, "sessionguard", "-db", db, "-sessions", rds.dsn())

	var alice browser
	alice.login(t, s, "alice", alicePassword)
	expectSignedIn(t, &alice, s, "alice")

	rds.signal(syscall.SIGKILL, true)
	took := expectUnavailable(t, s, &alice, "alice", alicePassword)
	t.Logf("Redis killed: a protected request answered 503 after %v", took.Round(time.Millisecond))
	loadWhileDown(t, s, &alice, defaultStoreTimeout)

	rds.startAndWait()
	took = waitFor(t, recoverTimeout, "/readyz 200 after Redis came back", func() bool {
		return do(t, s, (&browser{}).request("GET", "/readyz", nil)).status == http.StatusOK
	})
	t.Logf("Redis back: /readyz 200 after %v", took.Round(time.Millisecond))

	// Redis ran without persistence: the session is gone, and the old
	// cookie signs nobody in, on any kind of request.
	var resp response
	waitFor(t, recoverTimeout, "the old cookie answered without 503", func() bool {
		resp = alice.send(t, s, alice.jsonRequest("GET", "/", nil))
		if resp.status != http.StatusServiceUnavailable && resp.status != http.StatusUnauthorized {
			t.Fatalf("GET / with the lost session: %d %.300s, want 401 (or 503 while reconnecting)", resp.status, resp.body)
		}
		return resp.status == http.StatusUnauthorized
	})
	if e := jsonBody[map[string]string](t, resp); e["error"] != "unauthenticated" {
		t.Errorf("GET / with the lost session: %s, want error unauthenticated", resp.body)
	}
	stale := browser{cookie: alice.cookie}
	if resp := stale.send(t, s, stale.request("GET", "/", nil)); resp.status != http.StatusSeeOther ||
		!strings.HasPrefix(resp.header.Get("Location"), "/auth/login?") {
		t.Errorf("GET / (HTML) with the lost session: %d to %q, want 303 to the sign-in page", resp.status, resp.header.Get("Location"))
	}
	alice.login(t, s, "alice", alicePassword)
	expectSignedIn(t, &alice, s, "alice")
	expectAlive(t, s)
}

// TestRedisStoreStalls pauses the Redis that holds the sessions (SIGSTOP):
// it accepts connections and never answers, the worst kind of slow store.
// Every request must fail within the store timeout with 503, the server's
// goroutines must stay bounded under a stream of requests, and when Redis
// resumes, so does service, with the session as it was.
func TestRedisStoreStalls(t *testing.T) {
	rds := startPrivateRedis(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "sg.db")
	addUser(t, db, "user", "alice", alicePassword)
	const storeTimeout = 2 * time.Second
	s := startInstance(t, "sessionguard", "-db", db, "-sessions", rds.dsn(), "-store-timeout", storeTimeout.String())

	var alice browser
	alice.login(t, s, "alice", alicePassword)
	expectSignedIn(t, &alice, s, "alice")

	rds.signal(syscall.SIGSTOP, false)
	start := time.Now()
	resp := do(t, s, (&browser{}).request("GET", "/readyz", nil))
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis paused: %d, want 503", resp.status)
	}
	t.Logf("/readyz with Redis paused: %d after %v", resp.status, time.Since(start).Round(time.Millisecond))
	loadWhileDown(t, s, &alice, storeTimeout)

	rds.signal(syscall.SIGCONT, false)
	took := waitFor(t, recoverTimeout, "alice served again after Redis resumed", func() bool {
		resp := alice.send(t, s, alice.jsonRequest("GET", "/auth/status", nil))
		if resp.status != http.StatusOK && resp.status != http.StatusServiceUnavailable {
			t.Fatalf("status while Redis resumes: %d %.300s, want 200 (or 503 for a moment)", resp.status, resp.body)
		}
		return resp.status == http.StatusOK
	})
	t.Logf("Redis resumed: alice served again after %v", took.Round(time.Millisecond))
	expectSignedIn(t, &alice, s, "alice")
	expectAlive(t, s)
}

// TestPostgresStoreFails stops the PostgreSQL server that holds the
// sessions, the accounts and the audit log (a fast shutdown, as pg_ctl stop
// -m fast): protected requests and sign-ins get 503, the process lives, and
// when PostgreSQL is back, service resumes by itself and the session
// survived.
func TestPostgresStoreFails(t *testing.T) {
	pg := startPrivatePostgres(t)
	db := pg.dsn()
	addUser(t, db, "user", "alice", alicePassword)
	s := startInstance(t, "sessionguard", "-db", db)

	var alice browser
	alice.login(t, s, "alice", alicePassword)
	expectSignedIn(t, &alice, s, "alice")

	pg.stopFast()
	took := expectUnavailable(t, s, &alice, "alice", alicePassword)
	t.Logf("PostgreSQL stopped: a protected request answered 503 after %v", took.Round(time.Millisecond))
	loadWhileDown(t, s, &alice, defaultStoreTimeout)

	pg.startAndWait()
	took = waitFor(t, recoverTimeout, "/readyz 200 after PostgreSQL came back", func() bool {
		return do(t, s, (&browser{}).request("GET", "/readyz", nil)).status == http.StatusOK
	})
	t.Logf("PostgreSQL back: /readyz 200 after %v", took.Round(time.Millisecond))
	took = waitFor(t, recoverTimeout, "alice served again after PostgreSQL came back", func() bool {
		resp := alice.send(t, s, alice.jsonRequest("GET", "/", nil))
		if resp.status != http.StatusOK && resp.status != http.StatusServiceUnavailable {
			t.Fatalf("GET / after PostgreSQL came back: %d %.300s, want 200 (or 503 while reconnecting): the session must survive", resp.status, resp.body)
		}
		return resp.status == http.StatusOK
	})
	t.Logf("PostgreSQL back: the surviving session served after %v", took.Round(time.Millisecond))
	expectSignedIn(t, &alice, s, "alice")
	var bob browser
	bob.login(t, s, "alice", alicePassword) // a new sign-in works too
	expectAlive(t, s)
}

// TestPostgresStoreStalls pauses the PostgreSQL server (SIGSTOP to it and
// its backends; Linux only): connections are accepted and queries never answered.
// Requests needing a session fail within the store timeout, a sign-in
// (which needs the accounts, in the same database) within the server's
// request deadline, goroutines stay bounded, and service resumes with the
// session when PostgreSQL does.
func TestPostgresStoreStalls(t *testing.T) {
	pg := startPrivatePostgres(t)
	db := pg.dsn()
	addUser(t, db, "user", "alice", alicePassword)
	const storeTimeout = 2 * time.Second
	s := startInstance(t, "sessionguard", "-db", db, "-store-timeout", storeTimeout.String())

	var alice browser
	alice.login(t, s, "alice", alicePassword)
	expectSignedIn(t, &alice, s, "alice")

	pg.signalAll(syscall.SIGSTOP)
	start := time.Now()
	resp := do(t, s, (&browser{}).request("GET", "/readyz", nil))
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with PostgreSQL paused: %d, want 503", resp.status)
	}
	t.Logf("/readyz with PostgreSQL paused: %d after %v", resp.status, time.Since(start).Round(time.Millisecond))
	var fresh browser
	start = time.Now()
	resp = fresh.send(t, s, fresh.jsonRequest("POST", "/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}}))
	took := time.Since(start)
	if resp.status != http.StatusServiceUnavailable || fresh.cookie != "" {
		t.Errorf("sign-in with PostgreSQL paused: %d %.300s, want 503 and no session", resp.status, resp.body)
	}
	// The server's request deadline is 10 seconds.
	if limit := 10*time.Second + 10*time.Second; took > limit {
		t.Errorf("sign-in with PostgreSQL paused took %v, want at most %v", took, limit)
	}
	t.Logf("sign-in with PostgreSQL paused: %d after %v", resp.status, took.Round(time.Millisecond))
	loadWhileDown(t, s, &alice, storeTimeout)

	pg.signalAll(syscall.SIGCONT)
	took = waitFor(t, recoverTimeout, "alice served again after PostgreSQL resumed", func() bool {
		resp := alice.send(t, s, alice.jsonRequest("GET", "/auth/status", nil))
		if resp.status != http.StatusOK && resp.status != http.StatusServiceUnavailable {
			t.Fatalf("status while PostgreSQL resumes: %d %.300s, want 200 (or 503 for a moment)", resp.status, resp.body)
		}
		return resp.status == http.StatusOK
	})
	t.Logf("PostgreSQL resumed: alice served again after %v", took.Round(time.Millisecond))
	expectSignedIn(t, &alice, s, "alice")
	fresh.login(t, s, "alice", alicePassword)
	expectAlive(t, s)
}

// defaultStoreTimeout is serve's -store-timeout default.
const defaultStoreTimeout = 3 * time.Second

// expectSignedIn checks that b is signed in as user on s: the home page
// and /auth/status answer 200 for them.
func expectSignedIn(t *testing.T, b *browser, s *instance, user string) {
	t.Helper()
	resp := b.send(t, s, b.jsonRequest("GET", "/auth/status", nil))
	st := jsonBody[status](t, resp)
	if resp.status != http.StatusOK || !st.Authenticated || st.User != user {
		t.Fatalf("GET /auth/status on %s: %d %s, want 200 for %s", s.name, resp.status, resp.body, user)
	}
	resp = b.send(t, s, b.request("GET", "/", nil))
	if resp.status != http.StatusOK || !strings.Contains(resp.body, user) {
		t.Fatalf("GET / on %s: %d, want 200 naming %s: %.300s", s.name, resp.status, user, resp.body)
	}
}

// expectAlive checks that s still runs and never panicked.
func expectAlive(t *testing.T, s *instance) {
	t.Helper()
	if !s.alive() {
		t.Fatalf("%s exited: %v", s.name, s.err)
	}
	if strings.Contains(s.log(), "panic") {
		t.Errorf("%s logged a panic", s.name)
	}
}

// expectUnavailable checks what a server whose session store is down
// answers: 503 (page or JSON) wherever a session is needed, 503 from
// /readyz and for a sign-in, 200 from /healthz, nothing else 5xx, nobody
// signed in, and the process alive. It returns how long the server took to
// answer 503 to a protected request (the first answers after a store goes
// down may still be served from a connection that has not yet failed).
func expectUnavailable(t *testing.T, s *instance, b *browser, user, password string) time.Duration {
	t.Helper()
	took := waitFor(t, recoverTimeout, "a protected request answered 503", func() bool {
		resp := b.send(t, s, b.jsonRequest("GET", "/", nil))
		if resp.status != http.StatusServiceUnavailable && resp.status != http.StatusOK {
			t.Fatalf("GET / as the store goes down: %d %.300s, want 200 then 503", resp.status, resp.body)
		}
		return resp.status == http.StatusServiceUnavailable
	})
	var fresh browser
	for _, tc := range []struct {
		name   string
		b      *browser
		req    *http.Request
		status int
		json   bool   // the body must be {"error":"unavailable"}
		text   string // the body must contain this
	}{
		{"home page, JSON", b, b.jsonRequest("GET", "/", nil), 503, true, ""},
		{"home page, HTML", b, b.request("GET", "/", nil), 503, false, "Temporarily unavailable"},
		{"status", b, b.request("GET", "/auth/status", nil), 503, true, ""},
		{"extend", b, b.request("POST", "/auth/extend", url.Values{}), 503, true, ""},
		{"own sessions", b, b.jsonRequest("GET", "/auth/sessions", nil), 503, true, ""},
		{"account page", b, b.request("GET", "/account", nil), 503, false, "Temporarily unavailable"},
		{"revoke all others", b, b.jsonRequest("POST", "/auth/sessions/revoke", url.Values{"all_others": {"1"}}), 503, true, ""},
		{"sign-in", &fresh, fresh.request("POST", "/auth/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}}), 503, false, "Temporarily unavailable"},
		{"sign-in, JSON", &fresh, fresh.jsonRequest("POST", "/auth/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}}), 503, true, ""},
		{"readiness", &fresh, fresh.request("GET", "/readyz", nil), 503, false, ""},
		{"liveness", &fresh, fresh.request("GET", "/healthz", nil), 200, false, "ok"},
		{"home page without a cookie", &fresh, fresh.request("GET", "/", nil), 303, false, ""},
		{"sign-in page", &fresh, fresh.request("GET", "/auth/login", nil), 200, false, "password"},
	} {
		resp := tc.b.send(t, s, tc.req)
		if resp.status != tc.status {
			t.Errorf("%s with the store down: %d, want %d: %.300s", tc.name, resp.status, tc.status, resp.body)
			continue
		}
		if tc.json {
			if e := jsonBody[map[string]string](t, resp); e["error"] != "unavailable" || len(e) != 1 {
				t.Errorf("%s with the store down: body %s, want {\"error\":\"unavailable\"}", tc.name, resp.body)
			}
		}
		if !strings.Contains(resp.body, tc.text) {
			t.Errorf("%s with the store down: body lacks %q: %.300s", tc.name, tc.text, resp.body)
		}
		if resp.status == 503 && resp.header.Get("Retry-After") == "" && tc.name != "readiness" {
			t.Errorf("%s: 503 without Retry-After", tc.name)
		}
	}
	if fresh.cookie != "" {
		t.Error("a sign-in with the store down set a session cookie")
	}
	expectAlive(t, s)
	return took
}

// loadWhileDown sends a stream of requests that need the (dead or stalled)
// session store, 40 at a time, and checks that each is answered 503 within
// the store timeout (plus the scheduling delays of a loaded machine), that
// the server's goroutines stay bounded meanwhile, and that they return to
// about where they were once the requests stop.
func loadWhileDown(t *testing.T, s *instance, b *browser, storeTimeout time.Duration) {
	t.Helper()
	const (
		workers = 40
		rounds  = 4 // requests per worker
	)
	baseline := s.goroutines(t)
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	defer transport.CloseIdleConnections()
	load := &http.Client{Transport: transport, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		slowest  time.Duration
		errs     []error
	)
	stop := make(chan struct{})
	peak := baseline
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if n, err := goroutinesOf(s); err == nil {
				mu.Lock()
				peak = max(peak, n)
				mu.Unlock()
			}
		}
	})
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				req := b.jsonRequest("GET", "/", nil)
				req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(s.url, "http://")
				t0 := time.Now()
				resp, err := load.Do(req)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					statuses[resp.StatusCode]++
					resp.Body.Close()
				}
				slowest = max(slowest, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	elapsed := time.Since(start)
	transport.CloseIdleConnections()

	if len(errs) > 0 {
		t.Errorf("%d of %d requests failed without an answer, as %v", len(errs), workers*rounds, errs[0])
	}
	if statuses[http.StatusServiceUnavailable] != workers*rounds {
		t.Errorf("answers with the store down: %v, want %d × 503", statuses, workers*rounds)
	}
	// The bound: the store timeout, twice over for a request whose first
	// store call (the session) and second (ending it, never reached here)
	// both wait, plus ten seconds for a loaded machine.
	if limit := 2*storeTimeout + 10*time.Second; slowest > limit {
		t.Errorf("slowest answer with the store down took %v, want at most %v", slowest, limit)
	}
	// Each open connection costs the server a goroutine or two; the store's
	// pool is bounded. A leak would grow with the requests, not the workers.
	if limit := baseline + 3*workers + 50; peak > limit {
		t.Errorf("goroutines peaked at %d with %d requests in flight (baseline %d), want at most %d", peak, workers, baseline, limit)
	}
	var after int
	settled := waitFor(t, recoverTimeout, "goroutines back near the baseline", func() bool {
		after = s.goroutines(t)
		return after <= baseline+15
	})
	t.Logf("%d requests, %d at a time, with the store down: %v in %v, slowest %v; goroutines %d before, peak %d, %d after (settled in %v)",
		workers*rounds, workers, fmtStatuses(statuses), elapsed.Round(time.Millisecond), slowest.Round(time.Millisecond),
		baseline, peak, after, settled.Round(time.Millisecond))
	expectAlive(t, s)
}

// goroutinesOf is instance.goroutines for a goroutine that must not fail
// the test.
func goroutinesOf(s *instance) (int, error) {
	resp, err := tryDo(s, (&browser{}).request("GET", "/metrics", nil))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(resp.body, "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			var n float64
			_, err := fmt.Sscan(v, &n)
			return int(n), err
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics")
}

func fmtStatuses(m map[int]int) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%d×%d", m[c], c)
	}
	return strings.Join(parts, " ")
}
