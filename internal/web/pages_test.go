package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
)

func TestSessionsListAndRevokeOwnOnly(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("bob", bobPassword, account.RoleUser)
	laptop, phone := e.browser(), e.browser()
	phone.addr = "198.51.100.7:5555"
	phone.header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
	laptop.login("alice", alicePassword)
	phone.login("alice", alicePassword)
	bob := e.browser()
	bob.login("bob", bobPassword)

	var list struct {
		Sessions []sessionRow `json:"sessions"`
	}
	body := wantStatus(t, laptop.get("/auth/sessions", "Accept", "application/json"), http.StatusOK)
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Sessions) != 2 {
		t.Fatalf("alice sees %d sessions, want 2: %s", len(list.Sessions), body)
	}
	var phoneID string
	for _, s := range list.Sessions {
		if s.User != "alice" {
			t.Errorf("alice sees a session of %s", s.User)
		}
		switch s.Device {
		case "Chrome on Linux":
			if !s.Current || s.IP != "192.0.2.10" {
				t.Errorf("laptop row %+v", s)
			}
		case "Safari on iOS":
			if s.Current || s.IP != "198.51.100.7" {
				t.Errorf("phone row %+v", s)
			}
			phoneID = s.ID
		default:
			t.Errorf("unexpected device %q", s.Device)
		}
	}
	page := wantStatus(t, laptop.get("/auth/sessions"), http.StatusOK)
	for _, want := range []string{"Chrome on Linux", "Safari on iOS", "This device", "198.51.100.7", "Sign out all other sessions"} {
		if !strings.Contains(page, want) {
			t.Errorf("sessions page lacks %q", want)
		}
	}

	// Bob cannot end alice's session, and cannot tell it exists.
	bobID := e.sessionsOf("bob")[0].ID
	res := bob.post("/auth/sessions/revoke", url.Values{"id": {phoneID}})
	wantStatus(t, res, http.StatusNotFound)
	res = bob.post("/auth/sessions/revoke", url.Values{"id": {"no-such-session-id"}})
	wantStatus(t, res, http.StatusNotFound)
	if len(e.sessionsOf("alice")) != 2 {
		t.Fatal("bob ended a session of alice")
	}

	res = laptop.post("/auth/sessions/revoke", url.Values{"id": {phoneID}})
	wantRedirect(t, res, "/auth/sessions?done=revoked")
	wantRedirect(t, phone.get("/"), "/auth/login?next=%2F&reason=revoked")
	wantStatus(t, laptop.get("/"), http.StatusOK)
	if got := e.sessionsOf("bob"); len(got) != 1 || got[0].ID != bobID {
		t.Error("revoking alice's session touched bob's")
	}
}

func TestCrossSiteRequestsAreRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	for name, hdr := range map[string][]string{
		"sec-fetch-site cross-site": {"Sec-Fetch-Site", "cross-site", "Origin", ""},
		"sec-fetch-site same-site":  {"Sec-Fetch-Site", "same-site", "Origin", ""},
		"mismatched origin":         {"Sec-Fetch-Site", "", "Origin", "https://evil.example"},
	} {
		res := c.post("/auth/logout", nil, hdr...)
		wantStatus(t, res, http.StatusForbidden)
		res = c.post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}}, hdr...)
		wantStatus(t, res, http.StatusForbidden)
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: 403 without security headers", name)
		}
	}
	wantStatus(t, c.get("/"), http.StatusOK) // still signed in
	// A non-browser client (no Origin, no Sec-Fetch-Site) needs no token.
	wantRedirect(t, c.post("/auth/logout", nil, "Sec-Fetch-Site", "", "Origin", ""), "/auth/login?reason=logout")
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	for _, res := range []*http.Response{
		c.get("/"), c.get("/auth/login"), c.get("/auth/status"), c.get("/nope"), c.get("/auth/static/style.css"),
		c.get("/healthz"), c.get("/metrics"), c.post("/auth/extend", nil), e.browser().get("/account"),
	} {
		readBody(res)
		h := res.Header
		for k, want := range map[string]string{
			"Content-Security-Policy":    contentSecurityPolicy,
			"X-Content-Type-Options":     "nosniff",
			"X-Frame-Options":            "DENY",
			"Referrer-Policy":            "no-referrer",
			"Cross-Origin-Opener-Policy": "same-origin",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", res.Request.URL.Path, k, got, want)
			}
		}
		if h.Get("Permissions-Policy") == "" {
			t.Errorf("%s: no Permissions-Policy", res.Request.URL.Path)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS without TLS", res.Request.URL.Path)
		}
	}
	tls := newEnv(t, func(c *Config) { c.TLS = true })
	if res := tls.browser().get("/auth/login"); !strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Error("no HSTS with TLS")
	}
}

func TestAuthenticatedPagesAreNotStored(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	c := e.browser()
	c.login("root", rootPassword)
	for _, p := range []string{"/", "/account", "/auth/sessions", "/admin", "/admin/audit", "/auth/status", "/auth/login"} {
		res := c.get(p)
		readBody(res)
		if res.StatusCode != http.StatusOK && p != "/auth/login" {
			t.Errorf("%s: status %d", p, res.StatusCode)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", p, got)
		}
	}
}

func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", rootPassword, account.RoleAdmin)
	c := e.browser()
	c.login("root", rootPassword)
	for _, p := range []string{"/", "/account", "/auth/sessions", "/admin", "/admin/audit", "/auth/reauth"} {
		body := wantStatus(t, c.get(p), http.StatusOK)
		for _, bad := range []string{"<script>", "style=", "<style", "onclick", "onload", "javascript:"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		for _, want := range []string{`<main id="main"`, `action="/auth/logout"`, "Sign out", `lang="en"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", p, want)
			}
		}
	}
	home := wantStatus(t, c.get("/"), http.StatusOK)
	for _, want := range []string{"data-sessionguard-preserve", "15 minutes without activity", "12-hour limit"} {
		if !strings.Contains(home, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	huge := "username=alice&password=" + strings.Repeat("x", 70<<10)
	res := c.doBody(http.MethodPost, "/auth/login", huge)
	body := wantStatus(t, res, http.StatusRequestEntityTooLarge)
	if !strings.Contains(body, "64 KiB") {
		t.Errorf("413 page does not say the limit: %s", body)
	}
	// Without a Content-Length (chunked), the limit holds while reading.
	c.login("alice", alicePassword)
	r := httptest.NewRequest(http.MethodPost, "https://sessionguard.test/notes", strings.NewReader("note="+strings.Repeat("y", 70<<10)))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", e.sessions.CookieName()+"="+c.sessionCookie())
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, r)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked huge body: status %d, want 413", rec.Code)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	body := wantStatus(t, c.get("/no/such/page"), http.StatusNotFound)
	if !strings.Contains(body, "There is no page at this address.") {
		t.Errorf("404 page: %s", body)
	}
	body = wantStatus(t, c.get("/no/such/page", "Accept", "application/json"), http.StatusNotFound)
	if body != `{"error":"not_found"}`+"\n" {
		t.Errorf("404 JSON: %s", body)
	}
	res := c.do(http.MethodDelete, "/auth/login", nil)
	wantStatus(t, res, http.StatusMethodNotAllowed)
	if allow := res.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q", allow)
	}
	// Odd paths: a client error or a redirect, never a server error.
	for _, p := range []string{"/%00", "/..%2f..%2fetc/passwd", "/auth/static/../../go.mod", "/auth/static/%2e%2e/x", "/auth//login", "/%ff%fe"} {
		r := httptest.NewRequest(http.MethodGet, "https://sessionguard.test/", nil)
		r.URL.RawPath, r.URL.Path = p, mustUnescape(t, p)
		r.RequestURI = p
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, r)
		if rec.Code >= 500 || rec.Code == http.StatusOK {
			t.Errorf("%s: status %d", p, rec.Code)
		}
	}
}

func mustUnescape(t *testing.T, p string) string {
	t.Helper()
	u, err := url.PathUnescape(p)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPanicGives500WithReferenceAndNoDetail(t *testing.T) {
	e := newEnv(t)
	e.srv.handle("GET /boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal detail")
	}))
	res := e.browser().get("/boom")
	body := wantStatus(t, res, http.StatusInternalServerError)
	if strings.Contains(body, "secret internal detail") || strings.Contains(body, "goroutine") {
		t.Fatal("the 500 page shows the panic")
	}
	i := strings.Index(body, "(reference ")
	if i < 0 {
		t.Fatalf("no reference on the 500 page: %s", body)
	}
	ref := body[i+len("(reference ") : i+len("(reference ")+12]
	if !strings.Contains(e.logs.String(), "ref="+ref) || !strings.Contains(e.logs.String(), "secret internal detail") {
		t.Errorf("the log lacks the panic with reference %s", ref)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("500 without security headers")
	}
}

func TestStoreFailureIsNeverSignedIn(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	wantStatus(t, c.get("/readyz"), http.StatusOK)

	e.store.fail.Store(true)
	body := wantStatus(t, c.get("/"), http.StatusServiceUnavailable)
	if strings.Contains(body, "internal detail") || strings.Contains(body, "alice") {
		t.Errorf("503 page leaks: %s", body)
	}
	body = wantStatus(t, c.get("/account", "Accept", "application/json"), http.StatusServiceUnavailable)
	if body != `{"error":"unavailable"}`+"\n" {
		t.Errorf("503 JSON: %s", body)
	}
	wantStatus(t, c.get("/auth/status"), http.StatusServiceUnavailable)
	res := c.get("/readyz")
	if body := wantStatus(t, res, http.StatusServiceUnavailable); strings.Contains(body, "internal detail") {
		t.Error("readyz shows the error")
	}
	// A login cannot create a session: 503, not a 5xx with details.
	body = wantStatus(t, e.browser().post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}}), http.StatusServiceUnavailable)
	if strings.Contains(body, "internal detail") {
		t.Error("login 503 leaks")
	}
	wantStatus(t, c.get("/healthz"), http.StatusOK) // the process is alive

	e.store.fail.Store(false)
	wantStatus(t, c.get("/"), http.StatusOK)
}

func TestReadyzUsesConfiguredCheck(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Ready = func(context.Context) error { return errStoreDown }
	})
	wantStatus(t, e.browser().get("/readyz"), http.StatusServiceUnavailable)
}

func TestMetricsExposeCounters(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	wantStatus(t, e.browser().post("/auth/login", url.Values{"username": {"alice"}, "password": {"wrong wrong wrong"}}), http.StatusUnauthorized)
	c.get("/")
	c.post("/auth/logout", nil)
	m := e.metricsText()
	for _, want := range []string{
		`sessionguard_logins_total{result="success"} 1`,
		`sessionguard_logins_total{result="failure"} 1`,
		`sessionguard_logins_total{result="throttled"} 0`,
		`sessionguard_sessions_started_total 1`,
		`sessionguard_sessions_ended_total{reason="logout"} 1`,
		`sessionguard_sessions_ended_total{reason="idle"} 0`,
		`sessionguard_sessions_active 0`,
		`sessionguard_http_request_duration_seconds_count{code="2xx",route="GET /{$}"} 1`,
		`sessionguard_http_request_duration_seconds_count{code="3xx",route="POST /auth/login"} 1`,
		`sessionguard_http_request_duration_seconds_count{code="4xx",route="POST /auth/login"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, `route="/`) {
		t.Error("a route label is a raw path")
	}
}

func TestRealTLSServerWithCookieJar(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	ts := httptest.NewTLSServer(e.handler)
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	cl := ts.Client()
	cl.Jar = jar
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	res, err := cl.PostForm(ts.URL+"/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "next": {"/account"}})
	if err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, res, "/account")
	res, err = cl.Get(ts.URL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, http.StatusOK)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/auth/status", nil)
	req.Header.Set("Accept", "application/json")
	res, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := wantStatus(t, res, http.StatusOK); !strings.Contains(body, `"user":"alice"`) {
		t.Errorf("status over TLS: %s", body)
	}
	res, err = cl.PostForm(ts.URL+"/auth/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, res, "/auth/login?reason=logout")
	res, err = cl.Get(ts.URL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	// The jar dropped the cookie: no reason is known.
	wantRedirect(t, res, "/auth/login?next=%2Faccount")
}

func TestNoteIsKeptWithTheSession(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	wantRedirect(t, c.post("/notes", url.Values{"note": {"buy <milk> & eggs\nthen call"}}), "/?done=note")
	body := wantStatus(t, c.get("/?done=note"), http.StatusOK)
	if !strings.Contains(body, "buy &lt;milk&gt; &amp; eggs\nthen call</textarea>") || !strings.Contains(body, "Your note was saved.") {
		t.Errorf("home page does not show the escaped note:\n%s", body)
	}
	wantStatus(t, c.post("/notes", url.Values{"note": {strings.Repeat("é", maxNoteLen+1)}}), http.StatusRequestEntityTooLarge)
}
