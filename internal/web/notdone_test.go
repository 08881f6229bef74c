package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
)

// storeWriteFailures reads sessionguard_store_write_failures_total{op} from
// the env's metrics.
func (e *testEnv) storeWriteFailures(op string) string {
	e.t.Helper()
	m := regexp.MustCompile(`(?m)^sessionguard_store_write_failures_total\{op="` + op + `"\} (\S+)$`).FindStringSubmatch(e.metricsText())
	if m == nil {
		e.t.Fatalf("no sessionguard_store_write_failures_total{op=%q} in the metrics", op)
	}
	return m[1]
}

// A sign-out the session store could not record is a 503 that says so,
// never a redirect to "signed out": the cookie stays (so that the person
// can try again), the token keeps working, /readyz says 503 and the metrics
// count the failure. Once the store takes writes again, the same sign-out
// ends the session for good and /readyz is back to 200.
func TestSignOutThatFailsSaysSo(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c, api := e.browser(), e.script()
	c.login("alice", alicePassword)
	api.login("alice", alicePassword)
	token := c.sessionCookie()
	wantStatus(t, e.browser().get("/readyz"), http.StatusOK)

	e.store.failWrites.Store(true)
	res := c.post("/auth/logout", nil, "Accept", "text/html")
	body := wantStatus(t, res, http.StatusServiceUnavailable)
	if !strings.Contains(body, "You are still signed in") || !strings.Contains(body, "Try again") {
		t.Errorf("the failed sign-out's page does not say so:\n%s", body)
	}
	if !strings.Contains(body, `action="/auth/logout"`) {
		t.Error("the failed sign-out's page has no button to try again")
	}
	if v := res.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Errorf("a failed sign-out set cookies %q", v)
	}
	if v := res.Header.Get("Clear-Site-Data"); v != "" {
		t.Errorf("a failed sign-out sent Clear-Site-Data %q", v)
	}
	if c.sessionCookie() != token {
		t.Fatal("the browser lost its cookie")
	}
	body = wantStatus(t, api.post("/auth/logout", nil), http.StatusServiceUnavailable)
	if !strings.HasPrefix(body, `{"error":"unavailable","message":"You are still signed in`) {
		t.Errorf("JSON answer to a failed sign-out: %s", body)
	}
	wantStatus(t, e.browser().get("/readyz"), http.StatusServiceUnavailable)
	if n := e.storeWriteFailures("end"); n != "2" {
		t.Errorf("end failures counted: %s, want 2", n)
	}
	if !strings.Contains(e.logs.String(), "an action did not take effect") {
		t.Error("the failure was not logged")
	}

	e.store.failWrites.Store(false)
	wantStatus(t, c.get("/"), http.StatusOK) // still signed in, as the page said
	copied := e.browser()
	copied.cookies[e.sessions.CookieName()] = token
	wantRedirect(t, c.post("/auth/logout", nil), "/auth/login?reason=logout")
	if c.sessionCookie() != "" {
		t.Error("the sign-out that went through kept the cookie")
	}
	wantRedirect(t, copied.get("/"), "/auth/login?next=%2F&reason=logout")
	wantStatus(t, e.browser().get("/readyz"), http.StatusOK)
}

// Revocations, password changes and disabled accounts that the session
// store could not complete say what happened and what did not, with 503,
// never a success.
func TestRevocationsThatFailSaySo(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("bob", bobPassword, account.RoleUser)
	admin, alice, aliceElsewhere, bob := e.browser(), e.browser(), e.browser(), e.browser()
	admin.login("root", rootPassword)
	alice.login("alice", alicePassword)
	aliceElsewhere.login("alice", alicePassword)
	bob.login("bob", bobPassword)
	var otherID string
	for _, row := range sessionList(t, e, aliceElsewhere) {
		if row.Current {
			otherID = row.ID
		}
	}

	e.store.failWrites.Store(true)
	const newPassword = "lighthouse marmalade tuesday"
	for _, tc := range []struct {
		name   string
		c      *client
		path   string
		form   url.Values
		saying string
	}{
		{"own session", alice, "/auth/sessions/revoke", url.Values{"id": {otherID}}, "The session was not ended"},
		{"all other sessions", alice, "/auth/sessions/revoke", url.Values{"all_others": {"1"}}, "Your other sessions were not all ended"},
		{"password change", alice, "/account/password", url.Values{"current_password": {alicePassword}, "new_password": {newPassword}, "confirm_password": {newPassword}},
			"Your password was changed, but your other sessions could not all be ended"},
		{"admin revocation", admin, "/admin/sessions/revoke", url.Values{"id": {otherID}}, "The session was not ended"},
		{"disable", admin, "/admin/users/disable", url.Values{"username": {"bob"}}, "The user was disabled, but their sessions could not all be ended"},
		{"password reset", admin, "/admin/users/password", url.Values{"username": {"bob"}, "password": {newPassword}}, "The password was reset, but the user&#39;s sessions could not all be ended"},
	} {
		body := wantStatus(t, tc.c.post(tc.path, tc.form, "Accept", "text/html"), http.StatusServiceUnavailable)
		if !strings.Contains(body, tc.saying) || !strings.Contains(body, "Try again") {
			t.Errorf("%s: the page does not say %q and to try again:\n%s", tc.name, tc.saying, body)
		}
	}
	e.store.failWrites.Store(false)
	// Nothing was ended that the answers did not say: both of alice's
	// sessions and bob's still work (bob's account is disabled, so his
	// next request ends his session there).
	wantStatus(t, aliceElsewhere.get("/"), http.StatusOK)
	wantRedirect(t, bob.get("/"), "/auth/login?next=%2F&reason=revoked")
}

// sessionList returns the sessions c's user has, from the JSON list.
func sessionList(t *testing.T, e *testEnv, c *client) []sessionRow {
	t.Helper()
	body := wantStatus(t, c.get("/auth/sessions", "Accept", "application/json"), http.StatusOK)
	var out struct {
		Sessions []sessionRow `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out.Sessions
}
