package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/session"
)

func TestLoginSuccessSetsCookieAndRedirectsToNext(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	res := c.post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "next": {"/account?tab=1"}})
	wantRedirect(t, res, "/account?tab=1")
	if c.sessionCookie() == "" {
		t.Fatal("no session cookie after a successful login")
	}
	var ck *http.Cookie
	for _, x := range res.Cookies() {
		if x.Name == "__Host-session" {
			ck = x
		}
	}
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.Path != "/" {
		t.Fatalf("session cookie %+v: want __Host-session, Secure, HttpOnly, Path=/", ck)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("login response Cache-Control %q, want no-store", got)
	}
	wantStatus(t, c.get("/account"), http.StatusOK)
	if ev := e.auditFind(audit.LoginSucceeded, "alice"); len(ev) != 1 || ev[0].IP != "192.0.2.10" || ev[0].Session == "" {
		t.Errorf("audit login_succeeded = %+v, want one with ip and session", ev)
	}
}

func TestLoginFailureIsTheSameForUnknownUserWrongPasswordAndDisabled(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("carol", bobPassword, account.RoleUser)
	if err := e.accounts.SetDisabled(t.Context(), "carol", true); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, tc := range []struct{ user, password string }{
		{"alice", "wrong password entirely"},
		{"nobody", alicePassword},
		{"carol", bobPassword},
	} {
		c := e.browser()
		res := c.post("/auth/login", url.Values{"username": {tc.user}, "password": {tc.password}})
		body := wantStatus(t, res, http.StatusUnauthorized)
		if c.sessionCookie() != "" {
			t.Errorf("%s: a failed login set a session cookie", tc.user)
		}
		if !strings.Contains(body, failedLoginMessage) {
			t.Errorf("%s: body lacks the failure message", tc.user)
		}
		// The page repeats the typed name; take it out to compare.
		bodies = append(bodies, strings.ReplaceAll(body, `value="`+tc.user+`"`, ""))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Error("failure pages differ between wrong password, unknown user and disabled account")
	}
	if strings.Contains(strings.Join(bodies, ""), alicePassword) {
		t.Error("a failure page shows the password")
	}
	ev := e.auditFind(audit.LoginFailed, "")
	if len(ev) != 3 {
		t.Fatalf("audit login_failed: %d events, want 3", len(ev))
	}
	for _, x := range ev {
		if x.IP == "" || strings.Contains(x.Reason, "password ") {
			t.Errorf("login_failed event %+v", x)
		}
	}
	if len(e.sessionsOf("alice")) != 0 {
		t.Error("a failed login created a session")
	}
}

func (e *testEnv) sessionsOf(user string) []session.Info {
	e.t.Helper()
	list, err := e.sessions.List(e.t.Context(), user, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func TestLoginThrottledAnswers429WithRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	var res *http.Response
	for range account.DefaultAccountThrottle.Failures {
		res = c.post("/auth/login", url.Values{"username": {"alice"}, "password": {"not the password at all"}})
		wantStatus(t, res, http.StatusUnauthorized)
	}
	// Locked: even the right password waits.
	res = c.post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	body := wantStatus(t, res, http.StatusTooManyRequests)
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", res.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "Too many failed sign-ins") || c.sessionCookie() != "" {
		t.Errorf("throttled login: cookie %q, body %s", c.sessionCookie(), body)
	}
	// After the wait, the right password works.
	e.clock.Advance(time.Duration(secs) * time.Second)
	c.login("alice", alicePassword)
	if !strings.Contains(e.metricsText(), `sessionguard_logins_total{result="throttled"} 1`) {
		t.Error("metrics do not count the throttled login")
	}
}

func TestLoginBadInputIsAClientError(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	for name, form := range map[string]string{
		"empty":            "",
		"no password":      "username=alice",
		"invalid utf-8":    "username=%ff%fe&password=x",
		"nul":              "username=al%00ice&password=x",
		"bad encoding":     "username=%zz",
		"huge username":    "username=" + strings.Repeat("a", 5000) + "&password=x",
		"unicode username": "username=%E2%80%AEalice&password=" + url.QueryEscape(alicePassword),
	} {
		t.Run(name, func(t *testing.T) {
			c := e.browser()
			r := c.doBody(http.MethodPost, "/auth/login", form)
			if r.StatusCode < 400 || r.StatusCode >= 500 {
				t.Fatalf("status %d, want 4xx; body %s", r.StatusCode, readBody(r))
			}
			if c.sessionCookie() != "" {
				t.Fatal("bad input signed in")
			}
		})
	}
}

func TestNextIsSanitised(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	for _, tc := range []struct{ next, want string }{
		{"", "/"},
		{"/", "/"},
		{"/account", "/account"},
		{"/admin?user=bob&event=login_failed", "/admin?user=bob&event=login_failed"},
		{"//evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"http:/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/a/%2F%2Fb", "/a/%2F%2Fb"},
		{"/ok path", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		c := e.browser()
		res := c.post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "next": {tc.next}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("next %q: status %d", tc.next, res.StatusCode)
		}
		if got := res.Header.Get("Location"); got != tc.want {
			t.Errorf("next %q: redirected to %q, want %q", tc.next, got, tc.want)
		}
	}
}

func TestLogoutEndsSessionAndTheCookieCannotBeReplayed(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	stolen := c.sessionCookie()

	res := c.post("/auth/logout", nil)
	wantRedirect(t, res, "/auth/login?reason=logout")
	if c.sessionCookie() != "" {
		t.Error("logout did not clear the cookie")
	}
	if res.Header.Get("Clear-Site-Data") == "" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("logout headers: Clear-Site-Data %q, Cache-Control %q", res.Header.Get("Clear-Site-Data"), res.Header.Get("Cache-Control"))
	}
	if got := e.events.ended("alice"); len(got) != 1 || got[0] != session.ReasonLogout {
		t.Errorf("end events %v, want one logout", got)
	}

	// The seed's flaw: the old cookie must not work after logout.
	replay := e.browser()
	replay.cookies[e.sessions.CookieName()] = stolen
	wantRedirect(t, replay.get("/"), "/auth/login?next=%2F&reason=logout")
	res = replay.get("/auth/status", "Accept", "application/json")
	body := wantStatus(t, res, http.StatusUnauthorized)
	if body != `{"authenticated":false,"reason":"logout"}`+"\n" {
		t.Errorf("status after logout: %s", body)
	}
	// The login page says why.
	body = wantStatus(t, e.browser().get("/auth/login?reason=logout"), http.StatusOK)
	if !strings.Contains(body, "You signed out.") {
		t.Error("login page does not say the user signed out")
	}
}

func TestLogoutNeedsPostAndWorksWithoutSession(t *testing.T) {
	e := newEnv(t)
	res := e.browser().get("/auth/logout")
	wantStatus(t, res, http.StatusMethodNotAllowed)
	if !strings.Contains(res.Header.Get("Allow"), "POST") {
		t.Errorf("Allow %q", res.Header.Get("Allow"))
	}
	wantRedirect(t, e.browser().post("/auth/logout", nil), "/auth/login?reason=logout")
}

func TestProtectedPageRedirectsWithNextAndReason(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)

	// Never signed in: no reason.
	wantRedirect(t, e.browser().get("/account"), "/auth/login?next=%2Faccount")
	wantRedirect(t, e.browser().get("/"), "/auth/login?next=%2F")
	// A form post without a session comes back to its page.
	wantRedirect(t, e.browser().post("/account/password", url.Values{}), "/auth/login?next=%2Faccount")
	// A malformed cookie is simply no session.
	c := e.browser()
	c.cookies[e.sessions.CookieName()] = "not-a-token%%%\x7f"
	wantRedirect(t, c.get("/account"), "/auth/login?next=%2Faccount")

	// Idle: reason=idle, and the login page names the real timeout.
	c = e.browser()
	c.login("alice", alicePassword)
	e.clock.Advance(30 * time.Minute)
	wantRedirect(t, c.get("/account?x=1"), "/auth/login?next=%2Faccount%3Fx%3D1&reason=idle")
	body := wantStatus(t, c.get("/auth/login?next=%2Faccount&reason=idle"), http.StatusOK)
	if !strings.Contains(body, "You were signed out after 30 minutes of inactivity.") {
		t.Errorf("login page lacks the idle message:\n%s", body)
	}
	if !strings.Contains(body, `name="next" value="/account"`) {
		t.Error("login page does not carry next")
	}
}

func TestAbsoluteAndRevokedReasons(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	// Active every 20 minutes until the 12-hour limit.
	for range 12 * 3 {
		e.clock.Advance(20 * time.Minute)
		res := c.get("/")
		if res.StatusCode != http.StatusOK {
			wantRedirect(t, res, "/auth/login?next=%2F&reason=absolute")
			break
		}
	}
	if got := e.events.ended("alice"); len(got) != 1 || got[0] != session.ReasonAbsolute {
		t.Fatalf("end events %v, want absolute", got)
	}
	body := wantStatus(t, c.get("/auth/login?reason=absolute"), http.StatusOK)
	if !strings.Contains(body, "Your session reached its 12-hour limit") {
		t.Error("login page lacks the absolute message")
	}

	c.login("alice", alicePassword)
	other := e.browser()
	other.login("alice", alicePassword)
	res := other.post("/auth/sessions/revoke", url.Values{"all_others": {"1"}})
	wantRedirect(t, res, "/auth/sessions?done=others")
	wantRedirect(t, c.get("/"), "/auth/login?next=%2F&reason=revoked")
	body = wantStatus(t, c.get("/auth/login?reason=revoked"), http.StatusOK)
	if !strings.Contains(body, "Your session was ended from another device.") {
		t.Error("login page lacks the revoked message")
	}
}

func TestJSONClientsGet401WithReason(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	s := e.script()
	res := s.get("/account")
	body := wantStatus(t, res, http.StatusUnauthorized)
	if body != `{"error":"unauthenticated","reason":""}`+"\n" {
		t.Errorf("body %s", body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	s.login("alice", alicePassword)
	e.clock.Advance(31 * time.Minute)
	body = wantStatus(t, s.get("/"), http.StatusUnauthorized)
	if body != `{"error":"unauthenticated","reason":"idle"}`+"\n" {
		t.Errorf("body %s", body)
	}
}

type statusBody struct {
	Authenticated      bool     `json:"authenticated"`
	User               string   `json:"user"`
	Reason             *string  `json:"reason"`
	IdleRemaining      *float64 `json:"idle_remaining_s"`
	AbsoluteRemaining  *float64 `json:"absolute_remaining_s"`
	IdleTimeout        float64  `json:"idle_timeout_s"`
	AbsoluteTimeout    float64  `json:"absolute_timeout_s"`
	WarnBefore         float64  `json:"warn_before_s"`
	AbsoluteWarnBefore float64  `json:"absolute_warn_before_s"`
	TouchInterval      float64  `json:"touch_interval_s"`
}

func decodeStatus(t *testing.T, res *http.Response, want int) statusBody {
	t.Helper()
	body := wantStatus(t, res, want)
	var sb statusBody
	if err := json.Unmarshal([]byte(body), &sb); err != nil {
		t.Fatalf("status body %q: %v", body, err)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("status Cache-Control %q, want no-store", got)
	}
	return sb
}

func TestStatusIsPassiveAndIdleStillEnds(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)

	sb := decodeStatus(t, c.get("/auth/status"), http.StatusOK)
	if !sb.Authenticated || sb.User != "alice" || sb.IdleRemaining == nil || *sb.IdleRemaining != 1800 ||
		*sb.AbsoluteRemaining != 12*3600 || sb.IdleTimeout != 1800 || sb.AbsoluteTimeout != 12*3600 ||
		sb.WarnBefore != 120 || sb.AbsoluteWarnBefore != 300 || sb.TouchInterval != 60 || sb.Reason != nil {
		t.Fatalf("status %+v", sb)
	}
	// Poll every minute: the idle clock keeps running.
	for i := 1; i < 30; i++ {
		e.clock.Advance(time.Minute)
		sb = decodeStatus(t, c.get("/auth/status"), http.StatusOK)
		if want := float64(1800 - 60*i); *sb.IdleRemaining != want {
			t.Fatalf("after %d minutes of polling: idle_remaining_s %v, want %v", i, *sb.IdleRemaining, want)
		}
	}
	e.clock.Advance(time.Minute)
	sb = decodeStatus(t, c.get("/auth/status"), http.StatusUnauthorized)
	if sb.Authenticated || sb.Reason == nil || *sb.Reason != "idle" {
		t.Fatalf("status after the idle timeout %+v", sb)
	}
	wantRedirect(t, c.get("/"), "/auth/login?next=%2F&reason=idle")
}

func TestPassiveHeaderDoesNotCountAsActivity(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	e.clock.Advance(20 * time.Minute)
	wantStatus(t, c.get("/auth/sessions", "Session-Activity", "passive"), http.StatusOK)
	e.clock.Advance(10 * time.Minute)
	wantRedirect(t, c.get("/"), "/auth/login?next=%2F&reason=idle")
}

func TestExtendCountsAsActivity(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	e.clock.Advance(29 * time.Minute)
	// Even marked passive, an explicit extension is activity.
	sb := decodeStatus(t, c.post("/auth/extend", nil, "Accept", "application/json", "Session-Activity", "passive"), http.StatusOK)
	if !sb.Authenticated || *sb.IdleRemaining != 1800 || *sb.AbsoluteRemaining != 12*3600-29*60 {
		t.Fatalf("extend answered %+v", sb)
	}
	e.clock.Advance(29 * time.Minute)
	sb = decodeStatus(t, c.get("/auth/status"), http.StatusOK)
	if *sb.IdleRemaining != 60 {
		t.Fatalf("idle_remaining_s %v after extend and 29 minutes, want 60", *sb.IdleRemaining)
	}
	// Extending cannot pass the absolute limit.
	decodeStatus(t, c.post("/auth/extend", nil), http.StatusOK)
	for range 30 {
		e.clock.Advance(25 * time.Minute)
		res := c.post("/auth/extend", nil)
		if res.StatusCode == http.StatusUnauthorized {
			sb = decodeStatus(t, res, http.StatusUnauthorized)
			if *sb.Reason != "absolute" {
				t.Fatalf("extend ended with reason %q, want absolute", *sb.Reason)
			}
			return
		}
		sb = decodeStatus(t, res, http.StatusOK)
		if *sb.IdleRemaining > *sb.AbsoluteRemaining+1800 {
			t.Fatalf("extend %+v", sb)
		}
	}
	t.Fatal("extend kept the session beyond its absolute limit")
}

func TestExtendAndStatusWithoutSession(t *testing.T) {
	e := newEnv(t)
	for _, res := range []*http.Response{e.browser().get("/auth/status"), e.browser().post("/auth/extend", nil)} {
		body := wantStatus(t, res, http.StatusUnauthorized)
		if body != `{"authenticated":false,"reason":""}`+"\n" {
			t.Errorf("%s: %s", res.Request.URL.Path, body)
		}
	}
}

func TestLoginPageMessagesFollowTheUserPolicy(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policies["user"] = session.Policy{IdleTimeout: 20 * time.Minute, AbsoluteTimeout: 8 * time.Hour}
	})
	c := e.browser()
	if body := wantStatus(t, c.get("/auth/login?reason=idle"), 200); !strings.Contains(body, "after 20 minutes of inactivity") {
		t.Error("idle message does not use the user policy")
	}
	if body := wantStatus(t, c.get("/auth/login?reason=absolute"), 200); !strings.Contains(body, "its 8-hour limit") {
		t.Error("absolute message does not use the user policy")
	}
	if body := wantStatus(t, c.get("/auth/login?reason=%3Cscript%3E"), 200); strings.Contains(body, "<script>") {
		t.Error("an unknown reason is reflected")
	}
}

func TestRoleSpecificPolicy(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	c := e.browser()
	c.login("root", rootPassword)
	sb := decodeStatus(t, c.get("/auth/status"), http.StatusOK)
	if sb.IdleTimeout != 15*60 {
		t.Fatalf("admin idle timeout %v, want 900", sb.IdleTimeout)
	}
}
