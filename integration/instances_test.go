package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestManyInstancesPostgres runs three servers on one PostgreSQL schema
// (sessions, accounts and audit log) and checks that they are one service.
func TestManyInstancesPostgres(t *testing.T) {
	db := ciPostgres(t)
	manyInstances(t, db, "")
}

// TestManyInstancesRedis runs three servers with their sessions in one
// Redis (a key prefix of the test's own) and their accounts and audit log
// in one PostgreSQL schema, and checks that they are one service.
func TestManyInstancesRedis(t *testing.T) {
	sessions := ciRedis(t)
	db := ciPostgres(t)
	manyInstances(t, db, sessions)
}

// adminIdle is the administrators' idle timeout in these tests: short, so
// that the idle end is seen in real time; the users keep the 30-minute
// default, so that nothing else times out on a slow machine.
const adminIdle = 3 * time.Second

// manyInstances is the scenario of "many instances, one truth": three
// servers started together on the same stores (-db db, and -sessions
// sessions unless empty), and browsers whose requests go to any of them, as
// behind a load balancer without sticky sessions.
func manyInstances(t *testing.T, db, sessions string) {
	addUser(t, db, "user", "alice", alicePassword)
	addUser(t, db, "admin", "ada", adaPassword)
	args := append([]string{"-db", db, "-admin-idle-timeout", adminIdle.String()}, adminPasswordOnly...)
	var sessionsArgs []string
	if sessions != "" {
		sessionsArgs = []string{"-sessions", sessions}
	}
	args = append(args, sessionsArgs...)
	in := startInstances(t, []string{"first", "second", "third"}, args...)
	first, second, third := in[0], in[1], in[2]

	// Signed in on the first, served by the second (and the third).
	var alice browser
	alice.login(t, first, "alice", alicePassword)
	aliceSession := alice.sessionID(t, first)
	expectSignedIn(t, &alice, second, "alice")
	expectSignedIn(t, &alice, third, "alice")

	// Signed out on the third, refused at once by the first: the very next
	// request, with a copy of the cookie the sign-out cleared.
	copied := browser{cookie: alice.cookie}
	resp := alice.send(t, third, alice.request("POST", "/auth/logout", url.Values{}))
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/auth/login?reason=logout" || alice.cookie != "" {
		t.Fatalf("sign-out on the third: %d to %q, cookie kept %v", resp.status, resp.header.Get("Location"), alice.cookie != "")
	}
	expectRefused(t, &copied, first, "logout")
	expectRefused(t, &copied, second, "logout")

	// The idle timeout, enforced by the third: ada's session is used on the
	// second, then left alone past its idle timeout.
	var ada browser
	ada.login(t, first, "ada", adaPassword)
	adaSession := ada.sessionID(t, first)
	resp = ada.send(t, second, ada.jsonRequest("GET", "/auth/status", nil))
	if st := jsonBody[status](t, resp); resp.status != http.StatusOK || st.IdleRemaining <= 0 || st.IdleRemaining > adminIdle.Seconds() {
		t.Fatalf("ada on the second: %d %s, want 200 with at most %v idle left", resp.status, resp.body, adminIdle)
	}
	ada.send(t, second, ada.request("GET", "/", nil)) // activity
	lastActive := time.Now()
	time.Sleep(time.Until(lastActive.Add(adminIdle + 500*time.Millisecond)))
	expectRefused(t, &ada, third, "idle")
	t.Logf("ada's session refused for inactivity by the third %v after her last request on the second", time.Since(lastActive).Round(time.Millisecond))

	// Revoke-all on one instance, effective on all.
	var laptop, phone, tablet browser
	laptop.login(t, first, "alice", alicePassword)
	phone.login(t, second, "alice", alicePassword)
	tablet.login(t, third, "alice", alicePassword)
	laptopSession, phoneSession, tabletSession := laptop.sessionID(t, third), phone.sessionID(t, first), tablet.sessionID(t, second)
	resp = phone.send(t, second, phone.jsonRequest("POST", "/auth/sessions/revoke", url.Values{"all_others": {"1"}}))
	if n := jsonBody[map[string]int](t, resp)["revoked"]; resp.status != http.StatusOK || n != 2 {
		t.Fatalf("revoke all others on the second: %d %s, want 200 with 2 revoked", resp.status, resp.body)
	}
	for _, s := range in {
		expectRefused(t, &laptop, s, "revoked")
		expectRefused(t, &tablet, s, "revoked")
		expectSignedIn(t, &phone, s, "alice")
	}

	// An administrator disables alice from the command line, a process of
	// its own on the same stores: her last session ends everywhere.
	cli(t, "", append(append([]string{"user", "disable", "-db", db}, sessionsArgs...), "alice")...)
	for _, s := range in {
		expectRefused(t, &phone, s, "revoked")
	}

	// The audit log, written by all three: every session that ended has
	// exactly one session_ended, with its reason, whichever instance (or
	// sweeper) ended it.
	want := map[string]string{
		aliceSession:  "logout",
		adaSession:    "idle",
		laptopSession: "revoked",
		tabletSession: "revoked",
		phoneSession:  "revoked", // by user disable
	}
	var ended map[string][]string
	waitFor(t, recoverTimeout, "every ended session in the audit log", func() bool {
		ended = map[string][]string{}
		for _, e := range auditLog(t, db) {
			if e.Event == "session_ended" {
				ended[e.Session] = append(ended[e.Session], e.Reason)
			}
		}
		for id, reason := range want {
			if reason != "" && len(ended[id]) == 0 {
				return false
			}
		}
		return true
	})
	// The sweepers of all three instances run every second: give them a few
	// more rounds to end anything twice before counting.
	time.Sleep(3 * time.Second)
	ended = map[string][]string{}
	for _, e := range auditLog(t, db) {
		if e.Event == "session_ended" {
			ended[e.Session] = append(ended[e.Session], e.Reason)
		}
	}
	for id, reasons := range ended {
		if len(reasons) != 1 {
			t.Errorf("session %s ended %d times in the audit log: %v", id, len(reasons), reasons)
		}
	}
	for id, reason := range want {
		got := strings.Join(ended[id], ",")
		if got != reason {
			t.Errorf("session %s: session_ended reasons %q, want %q", id, got, reason)
		}
	}
	for _, s := range in {
		expectAlive(t, s)
	}
}

// sessionID returns the public ID of b's session, from GET /auth/sessions
// on s.
func (b *browser) sessionID(t *testing.T, s *instance) string {
	t.Helper()
	resp := b.send(t, s, b.jsonRequest("GET", "/auth/sessions", nil))
	if resp.status != http.StatusOK {
		t.Fatalf("GET /auth/sessions on %s: %d %.300s", s.name, resp.status, resp.body)
	}
	list := jsonBody[struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}](t, resp)
	for _, s := range list.Sessions {
		if s.Current {
			return s.ID
		}
	}
	t.Fatalf("GET /auth/sessions on %s lists no current session: %s", s.name, resp.body)
	return ""
}

// expectRefused checks that b's session is refused by s for reason: 401
// JSON with the reason, and a 303 to the sign-in page that says why.
func expectRefused(t *testing.T, b *browser, s *instance, reason string) {
	t.Helper()
	token := b.cookie
	resp := b.send(t, s, b.jsonRequest("GET", "/", nil))
	if e := jsonBody[map[string]string](t, resp); resp.status != http.StatusUnauthorized || e["error"] != "unauthenticated" || e["reason"] != reason {
		t.Errorf("GET / (JSON) on %s: %d %s, want 401 unauthenticated with reason %q", s.name, resp.status, resp.body, reason)
	}
	again := browser{cookie: token}
	resp = again.send(t, s, again.request("GET", "/", nil))
	if want := "/auth/login?next=%2F&reason=" + reason; resp.status != http.StatusSeeOther || resp.header.Get("Location") != want {
		t.Errorf("GET / on %s: %d to %q, want 303 to %q", s.name, resp.status, resp.header.Get("Location"), want)
	}
}
