package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
)

// withAuditedLocks gives the Server an Authenticator that records locks and
// unlocks in the env's audit log, as the sessionguard command wires it.
func withAuditedLocks(c *Config) {
	a, err := account.NewAuthenticator(c.Accounts.(*account.Store), account.AuthOptions{Observer: c.Audit.(*audit.Log)})
	if err != nil {
		panic(err)
	}
	c.Authenticator = a
}

// guessAt makes five wrong sign-ins for name, each from an address of its
// own, which locks the name for strangers.
func (e *testEnv) guessAt(name string) {
	e.t.Helper()
	for i := range 5 {
		c := e.browser()
		c.addr = fmt.Sprintf("203.0.113.%d:5000", i+1)
		res := c.post("/auth/login", url.Values{"username": {name}, "password": {"an attacker's guess"}})
		wantStatus(e.t, res, http.StatusUnauthorized)
	}
}

// strangerLocked checks that a correct password for name from a new client
// is refused while the name is locked, with words about failures.
func (e *testEnv) strangerLocked(name, password string) {
	e.t.Helper()
	c := e.browser()
	c.addr = "198.51.100.99:5000"
	res := c.post("/auth/login", url.Values{"username": {name}, "password": {password}})
	body := wantStatus(e.t, res, http.StatusTooManyRequests)
	if res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed sign-ins") {
		e.t.Errorf("stranger during the lock: Retry-After %q, body %s", res.Header.Get("Retry-After"), body)
	}
	if len(c.cookies) != 0 {
		e.t.Errorf("a throttled sign-in set cookies %v", c.cookies)
	}
}

// A name lock is no denial of service: five wrong passwords for alice from
// anywhere must not stop her live session from re-authenticating (which
// ending the attacker's sessions and changing her password need). The lock
// and the attempts show in the log and in the audit log.
func TestReauthenticationDuringNameLock(t *testing.T) {
	e := newEnv(t, withAuditedLocks)
	e.addUser("alice", alicePassword, account.RoleUser)
	alice := e.browser()
	alice.login("alice", alicePassword)
	e.clock.Advance(6 * time.Minute) // past ReauthAfter: sensitive actions ask again

	e.guessAt("alice")
	res := alice.post("/auth/reauth", url.Values{"password": {alicePassword}, "next": {"/auth/sessions"}})
	wantRedirect(t, res, "/auth/sessions")
	res = alice.post("/auth/reauth", url.Values{"password": {alicePassword}}, "Accept", "application/json")
	wantStatus(t, res, http.StatusOK)
	e.strangerLocked("alice", alicePassword)

	locks := e.auditFind(audit.SignInLocked, "alice")
	if len(locks) != 1 || locks[0].Reason != "account" || locks[0].IP != "203.0.113.5" {
		t.Errorf("audit log: %+v, want one signin_locked for alice's name", locks)
	}
	if !strings.Contains(e.logs.String(), "sign-in locked") {
		t.Errorf("no log line for the lock:\n%s", e.logs.String())
	}
}

// A thief holding alice's session can guess her password only five times
// through re-authentication; that locks the session's re-authentication,
// never her name or her other sessions.
func TestReauthenticationThrottledPerSession(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	thief, alice := e.browser(), e.browser()
	thief.login("alice", alicePassword)
	alice.login("alice", alicePassword)
	for i := range 5 {
		res := thief.post("/auth/reauth", url.Values{"password": {fmt.Sprintf("guess %d, wrong", i)}})
		wantStatus(t, res, http.StatusUnauthorized)
	}
	res := thief.post("/auth/reauth", url.Values{"password": {alicePassword}})
	body := wantStatus(t, res, http.StatusTooManyRequests)
	if !strings.Contains(body, "Too many wrong passwords") {
		t.Errorf("throttled re-authentication says: %s", body)
	}
	res = alice.post("/auth/reauth", url.Values{"password": {alicePassword}, "next": {"/account"}})
	wantRedirect(t, res, "/account")
	e.browser().login("alice", alicePassword)
}

// A browser that signed in before keeps a device cookie, and signs in
// during a lock on its name from any address; a stranger does not.
func TestKnownDeviceSignsInDuringNameLock(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	alice := e.browser()
	res := alice.post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	wantStatus(t, res, http.StatusSeeOther)
	var device *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Secure-sessionguard-device" {
			device = c
		}
	}
	if device == nil || !device.Secure || !device.HttpOnly || device.SameSite != http.SameSiteStrictMode ||
		device.Path != "/auth/login" || device.MaxAge != int(account.KnownClientTTL/time.Second) || len(device.Value) != 43 {
		t.Fatalf("device cookie = %+v", device)
	}
	delete(alice.cookies, e.sessions.CookieName()) // her session ended
	alice.addr = "198.51.100.20:4000"              // and she is elsewhere now

	e.guessAt("alice")
	e.strangerLocked("alice", alicePassword)
	alice.login("alice", alicePassword)
	if alice.cookies["__Secure-sessionguard-device"] != device.Value {
		t.Errorf("a known device got a new token")
	}
}

// A sign-out clears every cookie (Clear-Site-Data), the device cookie too:
// the address alice signed in from is known as well.
func TestKnownAddressSignsInDuringNameLock(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	alice := e.browser()
	alice.login("alice", alicePassword)
	res := alice.post("/auth/logout", nil)
	if !strings.Contains(res.Header.Get("Clear-Site-Data"), `"cookies"`) {
		t.Fatalf("logout sends Clear-Site-Data %q; this test assumes it clears cookies", res.Header.Get("Clear-Site-Data"))
	}
	clear(alice.cookies)

	e.guessAt("alice")
	e.strangerLocked("alice", alicePassword)
	alice.login("alice", alicePassword)
}

// Only failures count. A hundred correct sign-ins of one user at once are
// all signed in; none is told that it failed.
func TestParallelCorrectSignIns(t *testing.T) {
	e := newEnv(t) // fastParams
	e.addUser("alice", alicePassword, account.RoleUser)
	var wg sync.WaitGroup
	statuses := make([]int, 100)
	bodies := make([]string, 100)
	for i := range statuses {
		wg.Go(func() {
			res := e.browser().post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
			statuses[i], bodies[i] = res.StatusCode, readBody(res)
		})
	}
	wg.Wait()
	for i, status := range statuses {
		if status != http.StatusSeeOther {
			t.Errorf("sign-in %d: %d %s", i+1, status, bodies[i])
		}
	}
	if n := len(e.auditFind(audit.LoginFailed, "alice")); n != 0 {
		t.Errorf("%d login_failed entries for correct sign-ins", n)
	}
}

// busyAuthenticator checks nothing: too many sign-ins are in progress.
type busyAuthenticator struct{ Authenticator }

var errBusy = &account.ThrottledError{RetryAfter: time.Second, Scope: account.ScopeBusy}

func (busyAuthenticator) Authenticate(context.Context, account.Attempt) (account.User, error) {
	return account.User{}, errBusy
}

func (busyAuthenticator) Verify(context.Context, account.Attempt) error { return errBusy }

// A sign-in refused because the server is busy says so: nothing failed, so
// it says nothing about failures, and the audit log has no failure.
func TestBusyIsNotAFailure(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Authenticator = busyAuthenticator{c.Authenticator} })
	e.addUser("alice", alicePassword, account.RoleUser)
	res := e.browser().post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	body := wantStatus(t, res, http.StatusTooManyRequests)
	if !strings.Contains(body, "busy") || strings.Contains(body, "failed") || res.Header.Get("Retry-After") != "1" {
		t.Errorf("busy sign-in: Retry-After %q, body %s", res.Header.Get("Retry-After"), body)
	}
	res = e.script().post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	if body := wantStatus(t, res, http.StatusTooManyRequests); strings.TrimSpace(body) != `{"error":"busy"}` {
		t.Errorf("JSON: %s", body)
	}
	if n := len(e.auditFind(audit.LoginFailed, "")); n != 0 {
		t.Errorf("%d login_failed entries for busy refusals", n)
	}
}
