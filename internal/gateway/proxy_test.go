package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream is an application behind the gateway that records what it got.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(r.Context()))
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "app:"+r.URL.RequestURI())
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

func proxyEnv(t *testing.T, up *upstream, configure func(*Config)) *env {
	t.Helper()
	return newEnv(t, func(c *Config) {
		c.Upstream, _ = url.Parse(up.URL)
		c.InjectScript = true
		if configure != nil {
			configure(c)
		}
	})
}

// TestProxyPassesIdentityNotSecrets: the application learns who the user
// is from headers only the gateway sets, and never sees the session token.
func TestProxyPassesIdentityNotSecrets(t *testing.T) {
	up := newUpstream(t, nil)
	e := proxyEnv(t, up, nil)
	tok := e.login("alice")
	res := e.do("GET", "/reports?q=1", tok, with(navigation, "RemoteAddr", clientAddr,
		"Remote-User", "mallory", "Remote-Groups", "admin", "Remote-Email", "m@evil", "Session-Activity", "active", "Session-Token", "x")...)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(body) != "app:/reports?q=1" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	got := up.requests()[0]
	if v := got.Header.Values("Remote-User"); len(v) != 1 || v[0] != "alice" {
		t.Errorf("upstream Remote-User %q, want alice only", v)
	}
	if v := got.Header.Values("Remote-Groups"); len(v) != 1 || v[0] != "user" {
		t.Errorf("upstream Remote-Groups %q, want user only", v)
	}
	for _, name := range []string{"Remote-Email", "Session-Activity", "Session-Token"} {
		if v := got.Header.Get(name); v != "" {
			t.Errorf("upstream got the client's %s: %q", name, v)
		}
	}
	if c := got.Header.Get("Cookie"); c != "theme=dark" {
		t.Errorf("upstream Cookie %q, want the app's own cookie only", c)
	}
	if xff := got.Header.Get("X-Forwarded-For"); xff != "192.0.2.10" {
		t.Errorf("X-Forwarded-For %q, want the client", xff)
	}
	if h, p := got.Header.Get("X-Forwarded-Host"), got.Header.Get("X-Forwarded-Proto"); h != "sg.internal:8080" || p != "http" {
		t.Errorf("X-Forwarded-Host %q, -Proto %q", h, p)
	}
}

// TestProxyRefusesWithoutSession: nobody without a session reaches the
// application: browsers go to sign in, scripts and WebSockets get 401.
func TestProxyRefusesWithoutSession(t *testing.T) {
	up := newUpstream(t, nil)
	e := proxyEnv(t, up, nil)
	for _, tc := range []struct {
		name    string
		method  string
		headers []string
		want    int
	}{
		{"navigation", "GET", navigation, http.StatusFound},
		{"form post", "POST", navigation, http.StatusSeeOther},
		{"fetch", "GET", fetchJSON, http.StatusUnauthorized},
		{"WebSocket", "GET", []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-Fetch-Mode", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusUnauthorized},
		{"forged identity", "GET", with(fetchJSON, "Remote-User", "alice"), http.StatusUnauthorized},
	} {
		res := e.do(tc.method, "/app/page?x=1", "", tc.headers...)
		if res.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.want)
		}
		if tc.want != http.StatusUnauthorized {
			if _, next, _ := loginQuery(t, res.Header.Get("Location")); next != "/app/page?x=1" {
				t.Errorf("%s: next %q", tc.name, next)
			}
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("the upstream was called %d times", n)
	}
}

// TestProxyOwnPaths: sessionguard answers its own paths itself.
func TestProxyOwnPaths(t *testing.T) {
	up := newUpstream(t, nil)
	e := proxyEnv(t, up, nil)
	tok := e.login("alice")
	for _, p := range []string{"/auth/status", "/auth/login", "/healthz", "/auth/static/style.css", "/auth/timeout.js"} {
		e.do("GET", p, tok, navigation...)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("sessionguard's own paths reached the upstream %d times", n)
	}
	for _, p := range []string{"/", "/static/app.css", "/account", "/admin"} {
		if res := e.do("GET", p, tok, navigation...); res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	if n := len(up.requests()); n != 4 {
		t.Errorf("the application's paths reached the upstream %d times, want 4", n)
	}
}

// TestProxyUpstreamDown: an application that does not answer gets the
// server's own 502 page at once, never a hang.
func TestProxyUpstreamDown(t *testing.T) {
	up := newUpstream(t, nil)
	e := proxyEnv(t, up, nil)
	up.Close()
	tok := e.login("alice")
	start := time.Now()
	res := e.do("GET", "/x", tok, navigation...)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "not answering") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("the 502 page lacks the server's security headers")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	if !strings.Contains(e.logs.String(), "the upstream did not answer") {
		t.Error("the failure was not logged")
	}
	res = e.do("GET", "/x", tok, fetchJSON...)
	if res.StatusCode != http.StatusBadGateway || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("a script got %d %q, want a JSON 502", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// TestProxyInjectsIntoDocumentsOnly: the timeout script goes into pages the
// browser navigates to, not into HTML a script fetches, and not when
// turned off.
func TestProxyInjectsIntoDocumentsOnly(t *testing.T) {
	const page = "<!doctype html><html><head><title>App</title></head><body>hi</body></html>"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	withScript := strings.Replace(page, "</head>", string(timeoutScript)+"</head>", 1)
	for _, tc := range []struct {
		name    string
		inject  bool
		headers []string
		want    string
	}{
		{"document", true, navigation, withScript},
		{"old browser's navigation", true, oldBrowser, withScript},
		{"fragment fetched by a script", true, []string{"Accept", "text/html", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"}, page},
		{"iframe", true, with(navigation[:4], "Sec-Fetch-Dest", "iframe"), page},
		{"turned off", false, navigation, page},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := proxyEnv(t, up, func(c *Config) { c.InjectScript = tc.inject })
			res := e.do("GET", "/", e.login("alice"), tc.headers...)
			body, _ := io.ReadAll(res.Body)
			if string(body) != tc.want {
				t.Errorf("got %q\nwant %q", body, tc.want)
			}
		})
	}
}

// TestProxyUpstreamTooSlow: an application that takes the connection but
// does not answer gets 504 after the upstream timeout, not a hang.
func TestProxyUpstreamTooSlow(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	e := proxyEnv(t, up, func(c *Config) { c.UpstreamTimeout = 100 * time.Millisecond })
	res := e.do("GET", "/slow", e.login("alice"), navigation...)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "took too long") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}

// TestProxyInjectsIntoPostedPages: the page a form post returns is a
// document the browser shows, and gets the script too.
func TestProxyInjectsIntoPostedPages(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><head></head><body>saved</body></html>")
	})
	e := proxyEnv(t, up, nil)
	res := e.do("POST", "/notes", e.login("alice"), navigation...)
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), string(timeoutScript)) {
		t.Errorf("the page of a form post lacks the script: %s", body)
	}
}

func TestRemoveCookie(t *testing.T) {
	const name = "__Host-session"
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"a=1; __Host-session=tok; b=2"}, []string{"a=1; b=2"}},
		{[]string{"__Host-session=tok"}, nil},
		{[]string{"__Host-session=tok", "c=3"}, []string{"c=3"}},
		{[]string{"note=__Host-session"}, []string{"note=__Host-session"}},
		{[]string{"x__Host-session=1;__Host-session=tok"}, []string{"x__Host-session=1"}},
		{[]string{"a=1"}, []string{"a=1"}},
	} {
		h := http.Header{"Cookie": tc.in}
		removeCookie(h, name)
		if got := h["Cookie"]; strings.Join(got, "|") != strings.Join(tc.want, "|") || (tc.want == nil && got != nil) {
			t.Errorf("removeCookie(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
