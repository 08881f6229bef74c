package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/session"
)

func TestAdminAreaIsForAdminsOnly(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	for _, p := range []string{"/admin", "/admin/audit"} {
		body := wantStatus(t, c.get(p), http.StatusForbidden)
		if !strings.Contains(body, "for administrators") || !strings.Contains(body, "Sign out") {
			t.Errorf("%s 403 page: %s", p, body)
		}
	}
	for _, p := range []string{"/admin/users", "/admin/users/disable", "/admin/users/password", "/admin/sessions/revoke"} {
		res := c.post(p, url.Values{"username": {"alice"}, "password": {"some new password 123"}, "role": {"admin"}}, "Accept", "application/json")
		if body := wantStatus(t, res, http.StatusForbidden); body != `{"error":"forbidden"}`+"\n" {
			t.Errorf("%s: %s", p, body)
		}
	}
	if u, _ := e.accounts.Get(t.Context(), "alice"); u.Role != account.RoleUser || u.Disabled {
		t.Errorf("a user changed through the admin area: %+v", u)
	}
}

func TestReauthRequiredAfterReauthAfter(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	other := e.browser()
	other.login("alice", alicePassword)

	e.clock.Advance(5 * time.Minute)
	// JSON clients are told; nothing is revoked.
	res := c.post("/auth/sessions/revoke", url.Values{"all_others": {"1"}}, "Accept", "application/json")
	if body := wantStatus(t, res, http.StatusForbidden); body != `{"error":"reauthentication_required"}`+"\n" {
		t.Errorf("body %s", body)
	}
	// Browsers go to the password prompt, which brings them back.
	wantRedirect(t, c.post("/auth/sessions/revoke", url.Values{"all_others": {"1"}}), "/auth/reauth?next=%2Fauth%2Fsessions")
	if len(e.sessionsOf("alice")) != 2 {
		t.Fatal("a stale session ended sessions without re-authenticating")
	}
	body := wantStatus(t, c.get("/auth/reauth?next=%2Fauth%2Fsessions"), http.StatusOK)
	if !strings.Contains(body, `name="next" value="/auth/sessions"`) {
		t.Error("reauth page lacks next")
	}
	wantStatus(t, c.post("/auth/reauth", url.Values{"password": {"not my password!!"}, "next": {"/auth/sessions"}}), http.StatusUnauthorized)
	before := c.sessionCookie()
	wantRedirect(t, c.post("/auth/reauth", url.Values{"password": {alicePassword}, "next": {"/auth/sessions"}}), "/auth/sessions")
	if c.sessionCookie() == before {
		t.Error("re-authentication did not renew the token")
	}
	// The old token is dead at once.
	old := e.browser()
	old.cookies[e.sessions.CookieName()] = before
	if res := old.get("/"); res.StatusCode == http.StatusOK {
		t.Error("the token from before re-authentication still works")
	}
	wantRedirect(t, c.post("/auth/sessions/revoke", url.Values{"all_others": {"1"}}), "/auth/sessions?done=others")
	if got := e.sessionsOf("alice"); len(got) != 1 {
		t.Fatalf("%d sessions left, want 1", len(got))
	}
	// Re-authentication restarted the absolute clock (NIST 800-63B-4 §5.2).
	sb := decodeStatus(t, c.get("/auth/status"), http.StatusOK)
	if *sb.AbsoluteRemaining != 12*3600 {
		t.Errorf("absolute_remaining_s %v after re-authentication, want 43200", *sb.AbsoluteRemaining)
	}
	if len(e.auditFind(audit.LoginFailed, "alice")) != 1 {
		t.Error("the failed re-authentication was not audited")
	}
}

func TestPasswordChangeRevokesOtherSessions(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c, other := e.browser(), e.browser()
	c.login("alice", alicePassword)
	other.login("alice", alicePassword)
	e.clock.Advance(20 * time.Minute) // past ReauthAfter: the current password is the re-authentication
	const newPassword = "lighthouse marmalade tuesday"

	form := url.Values{"current_password": {"wrong password here"}, "new_password": {newPassword}, "confirm_password": {newPassword}, "end_others": {"1"}}
	wantStatus(t, c.post("/account/password", form), http.StatusUnauthorized)
	form.Set("current_password", alicePassword)
	form.Set("confirm_password", "something else entirely")
	wantStatus(t, c.post("/account/password", form), http.StatusBadRequest)
	form.Set("confirm_password", "short")
	form.Set("new_password", "short")
	if body := wantStatus(t, c.post("/account/password", form), http.StatusBadRequest); !strings.Contains(body, "at least 15 characters") {
		t.Errorf("weak password page does not say why: %s", body)
	}
	form.Set("new_password", newPassword)
	form.Set("confirm_password", newPassword)
	before := c.sessionCookie()
	wantRedirect(t, c.post("/account/password", form), "/account?done=password")
	if c.sessionCookie() == before {
		t.Error("the session was not renewed")
	}
	if body := wantStatus(t, c.get("/account?done=password"), http.StatusOK); !strings.Contains(body, "Your password was changed, and your other sessions were ended.") {
		t.Error("no confirmation")
	} else if strings.Contains(body, "end_others") {
		t.Error("the form still offers to keep the other sessions")
	}
	wantRedirect(t, other.get("/"), "/auth/login?next=%2F&reason=revoked")
	if ev := e.auditFind(audit.PasswordChanged, "alice"); len(ev) != 1 {
		t.Errorf("audit password_changed: %+v", ev)
	}
	if _, err := e.authn.Authenticate(t.Context(), account.Attempt{Name: "alice", Password: newPassword}); err != nil {
		t.Errorf("new password does not work: %v", err)
	}

	// Through the JSON API, without end_others, the other sessions end
	// all the same: always.
	other.login("alice", newPassword)
	api := e.script()
	api.login("alice", newPassword)
	form = url.Values{"current_password": {newPassword}, "new_password": {alicePassword}}
	if body := wantStatus(t, api.post("/account/password", form), http.StatusOK); strings.TrimSpace(body) != `{"changed":true,"revoked":2}` {
		t.Errorf("password change over the API: %s, want 2 other sessions revoked", body)
	}
	wantRedirect(t, other.get("/"), "/auth/login?next=%2F&reason=revoked")
	wantRedirect(t, c.get("/"), "/auth/login?next=%2F&reason=revoked")
	wantStatus(t, api.get("/auth/status"), http.StatusOK)
}

func TestAdminDisableRevokesAllSessions(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	e.addUser("alice", alicePassword, account.RoleUser)
	admin, a1, a2 := e.browser(), e.browser(), e.browser()
	admin.login("root", rootPassword)
	a1.login("alice", alicePassword)
	a2.login("alice", alicePassword)

	wantRedirect(t, admin.post("/admin/users/disable", url.Values{"username": {"alice"}}), "/admin?done=disabled")
	wantRedirect(t, a1.get("/"), "/auth/login?next=%2F&reason=revoked")
	wantRedirect(t, a2.get("/"), "/auth/login?next=%2F&reason=revoked")
	wantStatus(t, e.browser().post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}}), http.StatusUnauthorized)
	if ev := e.auditFind(audit.UserDisabled, "alice"); len(ev) != 1 {
		t.Errorf("audit user_disabled: %+v", ev)
	}
	if got := e.events.ended("alice"); len(got) != 2 || got[0] != session.ReasonRevoked {
		t.Errorf("end events %v", got)
	}
	// The admin cannot disable themselves.
	wantStatus(t, admin.post("/admin/users/disable", url.Values{"username": {"root"}}), http.StatusBadRequest)
	wantStatus(t, admin.post("/admin/users/disable", url.Values{"username": {"nobody"}}), http.StatusNotFound)

	wantRedirect(t, admin.post("/admin/users/enable", url.Values{"username": {"alice"}}), "/admin?done=enabled")
	a1.login("alice", alicePassword)
}

func TestAdminAddResetAndRevoke(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	admin := e.browser()
	admin.login("root", rootPassword)

	wantRedirect(t, admin.post("/admin/users", url.Values{"username": {"Bob"}, "password": {bobPassword}, "role": {"user"}}), "/admin?done=created")
	wantStatus(t, admin.post("/admin/users", url.Values{"username": {"bob"}, "password": {bobPassword}}), http.StatusConflict)
	wantStatus(t, admin.post("/admin/users", url.Values{"username": {"-x"}, "password": {bobPassword}}), http.StatusBadRequest)
	wantStatus(t, admin.post("/admin/users", url.Values{"username": {"eve"}, "password": {bobPassword}, "role": {"root"}}), http.StatusBadRequest)
	bob := e.browser()
	bob.login("bob", bobPassword)

	var list struct {
		Sessions []sessionRow `json:"sessions"`
	}
	body := wantStatus(t, admin.get("/admin", "Accept", "application/json"), http.StatusOK)
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Sessions) != 2 {
		t.Fatalf("admin sees %s", body)
	}
	page := wantStatus(t, admin.get("/admin"), http.StatusOK)
	if !strings.Contains(page, "bob") || !strings.Contains(page, "Reset password") {
		t.Error("admin page lacks the users")
	}
	var bobID string
	for _, s := range list.Sessions {
		if s.User == "bob" {
			bobID = s.ID
		}
	}
	wantRedirect(t, admin.post("/admin/sessions/revoke", url.Values{"id": {bobID}}), "/admin?done=revoked")
	wantRedirect(t, bob.get("/"), "/auth/login?next=%2F&reason=revoked")
	wantStatus(t, admin.post("/admin/sessions/revoke", url.Values{"id": {bobID}}), http.StatusNotFound)

	bob.login("bob", bobPassword)
	const reset = "pelican umbrella seventeen"
	wantRedirect(t, admin.post("/admin/users/password", url.Values{"username": {"bob"}, "password": {reset}}), "/admin?done=password")
	wantRedirect(t, bob.get("/"), "/auth/login?next=%2F&reason=revoked")
	bob.login("bob", reset)
	if ev := e.auditFind(audit.PasswordChanged, "bob"); len(ev) != 1 {
		t.Errorf("audit password_changed: %+v", ev)
	}

	// Admin actions need a recent sign-in too.
	e.clock.Advance(6 * time.Minute)
	admin.get("/") // stay active
	wantRedirect(t, admin.get("/admin"), "/auth/reauth?next=%2Fadmin")
	wantRedirect(t, admin.post("/admin/users/disable", url.Values{"username": {"bob"}}), "/auth/reauth?next=%2Fadmin")
	if u, _ := e.accounts.Get(t.Context(), "bob"); u.Disabled {
		t.Error("a stale admin session disabled a user")
	}
}

func TestSetupCreatesFirstAdminOnce(t *testing.T) {
	var secret string
	e := newEnv(t, func(c *Config) {
		tok, s, err := c.Accounts.(*account.Store).NewSetupToken(t.Context(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c.Setup, secret = tok, s
	})
	c := e.browser()
	wantStatus(t, c.get("/setup"), http.StatusNotFound)
	wantStatus(t, c.get("/setup?token=wrong"), http.StatusNotFound)
	body := wantStatus(t, c.get("/setup?token="+secret), http.StatusOK)
	if !strings.Contains(body, "Create the first administrator") {
		t.Fatal("no setup form")
	}
	form := url.Values{"token": {secret}, "username": {"root"}, "password": {"short"}, "confirm_password": {"short"}}
	wantStatus(t, c.post("/setup", form), http.StatusBadRequest)
	form.Set("password", rootPassword)
	form.Set("confirm_password", rootPassword)
	wantRedirect(t, c.post("/setup", form), "/")
	wantStatus(t, c.get("/admin"), http.StatusOK)
	// One-time.
	wantStatus(t, e.browser().get("/setup?token="+secret), http.StatusGone)
	wantStatus(t, e.browser().post("/setup", form), http.StatusGone)

	noSetup := newEnv(t)
	wantStatus(t, noSetup.browser().get("/setup?token="+secret), http.StatusNotFound)
}

func TestAuditPageAndOneSessionEndedEntryPerSession(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	e.addUser("alice", alicePassword, account.RoleUser)
	admin, a1, a2 := e.browser(), e.browser(), e.browser()
	admin.login("root", rootPassword)
	a1.login("alice", alicePassword)
	a2.login("alice", alicePassword)
	wantStatus(t, e.browser().post("/auth/login", url.Values{"username": {"alice"}, "password": {"<b>guess</b> nope nope"}}), http.StatusUnauthorized)
	a1.post("/auth/logout", nil)
	wantRedirect(t, admin.post("/admin/users/disable", url.Values{"username": {"alice"}}), "/admin?done=disabled")

	ended := e.auditFind(audit.SessionEnded, "alice")
	if len(ended) != 2 || ended[0].Reason != "logout" || ended[1].Reason != "revoked" {
		t.Fatalf("session_ended entries for alice: %+v, want logout then revoked", ended)
	}
	if rv := e.auditFind(audit.SessionsRevoked, "alice"); len(rv) != 1 || !strings.Contains(rv[0].Detail, "by root: 1 session") {
		t.Errorf("sessions_revoked: %+v", rv)
	}

	page := wantStatus(t, admin.get("/admin/audit?user=Alice&event=login_failed&since=24h"), http.StatusOK)
	if !strings.Contains(page, "login_failed") || strings.Contains(page, "<td>login_succeeded</td>") {
		t.Errorf("filtered audit page:\n%s", page)
	}
	if strings.Contains(page, "<b>guess") {
		t.Error("the audit page does not escape")
	}
	var out struct {
		Entries []audit.Entry `json:"entries"`
	}
	body := wantStatus(t, admin.get("/admin/audit?user=alice", "Accept", "application/json"), http.StatusOK)
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Entries) == 0 || out.Entries[0].Event != audit.UserDisabled && out.Entries[0].Event != audit.SessionEnded && out.Entries[0].Event != audit.SessionsRevoked {
		t.Errorf("newest entry first? %+v", out.Entries)
	}
	for i := 1; i < len(out.Entries); i++ {
		if out.Entries[i].Time.After(out.Entries[i-1].Time) {
			t.Fatalf("entries not newest first: %+v", out.Entries)
		}
	}
	// Old entries drop out of a short period.
	e.clock.Advance(2 * time.Hour)
	admin.login("root", rootPassword)
	body = wantStatus(t, admin.get("/admin/audit?user=alice&since=1h", "Accept", "application/json"), http.StatusOK)
	if strings.Contains(body, `"user":"alice"`) {
		t.Errorf("since=1h shows old entries: %s", body)
	}
	wantStatus(t, admin.get("/admin/audit?since=yesterday"), http.StatusBadRequest)
	wantStatus(t, admin.get("/admin/audit?event=nope"), http.StatusBadRequest)
}

func TestSessionOfAccountDisabledElsewhereIsEnded(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	// Disabled from the command line, whose revocation failed.
	if err := e.accounts.SetDisabled(t.Context(), "alice", true); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, c.get("/account"), "/auth/login?next=%2Faccount&reason=revoked")
	if len(e.sessionsOf("alice")) != 0 {
		t.Error("the session of a disabled account lives on")
	}
}

// Where administrators need a second factor, the setup link does not sign
// the first one in with the password alone: enrolment comes first.
func TestSetupEnrolsTheFirstAdmin(t *testing.T) {
	var secret string
	e := newEnv(t, withMFA(account.MFAOptional, account.MFARequired), func(c *Config) {
		tok, s, err := c.Accounts.(*account.Store).NewSetupToken(t.Context(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c.Setup, secret = tok, s
	})
	c := e.browser()
	form := url.Values{"token": {secret}, "username": {"root"}, "password": {rootPassword}, "confirm_password": {rootPassword}}
	wantRedirect(t, c.post("/setup", form), "/auth/mfa/enrol")
	if got := c.signedInAs(); got != "" {
		t.Errorf("signed in as %q before enrolling a second factor", got)
	}
	if res := c.get("/admin"); res.StatusCode == http.StatusOK {
		t.Error("the admin page opened before enrolment")
	}
}
