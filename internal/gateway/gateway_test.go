package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/web"
)

// TestAuthRequestNeverRedirects: nginx turns any answer but 2xx, 401 and
// 403 into a 500, so the nginx endpoint tells a browser where to sign in
// with a 401 and a Location header, never a 3xx.
func TestAuthRequestNeverRedirects(t *testing.T) {
	e := newEnv(t, nil)
	for _, hs := range [][]string{navigation, fetchJSON, oldBrowser, nil} {
		res := e.do("GET", AuthRequestPath, "", with(hs, "X-Original-Method", "GET",
			"X-Original-URL", "https://app.example.com/reports?q=1")...)
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("headers %q: status %d, want 401", hs, res.StatusCode)
		}
		base, next, _ := loginQuery(t, res.Header.Get("Location"))
		if base != "https://app.example.com" || next != "/reports?q=1" {
			t.Errorf("headers %q: Location %q, want the sign-in page on the app's host returning to /reports?q=1", hs, res.Header.Get("Location"))
		}
		var body struct{ Error, Reason string }
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error != "unauthenticated" {
			t.Errorf("headers %q: body %+v (%v), want error unauthenticated", hs, body, err)
		}
	}
}

// TestAllowedCheck: a live session passes with who the user is and how
// long the session has left, and the check never sets a cookie.
func TestAllowedCheck(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice")
	e.clock.Set(t0.Add(10 * time.Minute))
	for _, path := range []string{AuthRequestPath, ForwardAuthPath} {
		for _, method := range []string{"GET", "HEAD"} {
			res := e.do(method, path, tok, with(navigation, "X-Original-URL", "https://app.example.com/")...)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %d", method, path, res.StatusCode)
			}
			h := res.Header
			if h.Get("Remote-User") != "alice" || h.Get("Remote-Groups") != "user" {
				t.Errorf("%s %s: Remote-User %q, Remote-Groups %q", method, path, h.Get("Remote-User"), h.Get("Remote-Groups"))
			}
			// The navigation at 10m moved the idle deadline to 40m.
			if h.Get("Session-Idle-Remaining") != "1800" || h.Get("Session-Absolute-Remaining") != "42600" {
				t.Errorf("%s %s: remaining idle %q, absolute %q; want 1800 and 42600", method, path,
					h.Get("Session-Idle-Remaining"), h.Get("Session-Absolute-Remaining"))
			}
			if c := h.Values("Set-Cookie"); len(c) > 0 {
				t.Errorf("%s %s: an allowed check set cookies %q", method, path, c)
			}
		}
	}
}

// TestForwardAuthStatus: the Caddy/Traefik endpoint redirects page
// navigations (302, or 303 after a form post) and answers everything else
// 401 JSON; "not a navigation" is decided first.
func TestForwardAuthStatus(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name    string
		method  string
		headers []string
		want    int
	}{
		{"page navigation", "GET", navigation, http.StatusFound},
		{"HEAD navigation", "HEAD", navigation, http.StatusFound},
		{"old browser", "GET", oldBrowser, http.StatusFound},
		{"form post", "POST", navigation, http.StatusSeeOther},
		{"form PUT", "PUT", navigation, http.StatusSeeOther},
		{"fetch GET", "GET", fetchJSON, http.StatusUnauthorized},
		{"fetch POST", "POST", with([]string{"Accept", "*/*", "Sec-Fetch-Mode", "cors"}), http.StatusUnauthorized},
		{"image", "GET", image, http.StatusUnauthorized},
		{"HTML asked by a script", "GET", []string{"Accept", "text/html", "Sec-Fetch-Mode", "cors"}, http.StatusUnauthorized},
		{"no Accept", "GET", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do("GET", ForwardAuthPath, "", with(tc.headers, "X-Forwarded-Method", tc.method,
				"X-Forwarded-Proto", "https", "X-Forwarded-Host", "wiki.example.com", "X-Forwarded-Uri", "/page/1")...)
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized {
				if loc := res.Header.Get("Location"); loc != "" {
					t.Errorf("a 401 for a script carries Location %q", loc)
				}
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type %q, want JSON", ct)
				}
				return
			}
			base, next, _ := loginQuery(t, res.Header.Get("Location"))
			if base != "https://wiki.example.com" || next != "/page/1" {
				t.Errorf("Location %q", res.Header.Get("Location"))
			}
		})
	}
}

// TestEndReasonIsTold: after the idle timeout the check says why, in
// Session-Reason and in the sign-in URL, for both endpoints.
func TestEndReasonIsTold(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice")
	e.clock.Set(t0.Add(idle))
	for _, path := range []string{AuthRequestPath, ForwardAuthPath} {
		res := e.do("GET", path, tok, with(navigation, "X-Original-URL", "https://app.example.com/a")...)
		if res.Header.Get("Session-Reason") != "idle" {
			t.Errorf("%s: Session-Reason %q, want idle", path, res.Header.Get("Session-Reason"))
		}
		if _, _, reason := loginQuery(t, res.Header.Get("Location")); reason != "idle" {
			t.Errorf("%s: sign-in URL %q lacks reason=idle", path, res.Header.Get("Location"))
		}
	}
}

// TestRoleNotAllowed: -gate-allow-role turns away the other roles with
// 403, without counting the request as activity.
func TestRoleNotAllowed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowRoles = []string{"admin"} })
	user, admin := e.login("alice"), e.login("root")
	e.clock.Set(t0.Add(2 * time.Minute)) // past the touch interval
	for _, path := range []string{AuthRequestPath, ForwardAuthPath} {
		res := e.do("GET", path, user, navigation...)
		if res.StatusCode != http.StatusForbidden || res.Header.Get("Session-Reason") != "role_not_allowed" {
			t.Errorf("%s as a user: %d, Session-Reason %q; want 403 role_not_allowed", path, res.StatusCode, res.Header.Get("Session-Reason"))
		}
		if res := e.do("GET", path, admin, navigation...); res.StatusCode != http.StatusOK {
			t.Errorf("%s as an admin: %d, want 200", path, res.StatusCode)
		}
	}
	if n := e.store.touches.Load(); n != 1 {
		t.Errorf("%d activity writes; want 1, the admin's first navigation", n)
	}
}

// TestActivity is the rule nobody gets right: only what a person did
// extends the session.
func TestActivity(t *testing.T) {
	for _, tc := range []struct {
		name     string
		activity Activity
		headers  []string
		extends  bool
	}{
		{"page navigation", "", with(navigation, "X-Original-Method", "GET"), true},
		{"old browser's navigation", "", oldBrowser, true},
		{"form post", "", with(navigation, "X-Original-Method", "POST"), true},
		{"fetch POST", "", with(fetchJSON, "X-Original-Method", "POST"), true},
		{"fetch PATCH (Caddy)", "", with(fetchJSON, "X-Forwarded-Method", "PATCH"), true},
		{"fetch DELETE", "", with(fetchJSON, "X-Original-Method", "DELETE"), true},
		{"fetch GET", "", with(fetchJSON, "X-Original-Method", "GET"), false},
		{"image", "", image, false},
		{"script", "", []string{"Accept", "*/*", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "script"}, false},
		{"OPTIONS preflight", "", with(fetchJSON, "X-Original-Method", "OPTIONS"), false},
		{"no headers", "", nil, false},
		{"navigation marked passive", "", with(navigation, "Session-Activity", "passive"), false},
		{"prefetch", "", with(navigation, "Sec-Purpose", "prefetch"), false},
		{"prerender", "", with(navigation, "Sec-Purpose", "prefetch;prerender"), false},
		{"navigation to a passive path", "", with(navigation, "X-Original-URL", "https://app.example.com/api/notifications/42"), false},
		{"post to a passive path", "", with(navigation, "X-Original-Method", "POST", "X-Forwarded-Uri", "/api/notifications/read"), false},
		{"navigation near a passive path", "", with(navigation, "X-Original-URL", "https://app.example.com/api/notifications"), true},
		{"all: fetch GET", ActivityAll, with(fetchJSON, "X-Original-Method", "GET"), true},
		{"all: marked passive", ActivityAll, with(fetchJSON, "Session-Activity", "passive"), false},
		{"all: passive path", ActivityAll, with(fetchJSON, "X-Original-URL", "https://app.example.com/api/notifications/1"), false},
		// From a peer outside -trusted-proxy the original method is
		// unknown: a fetch is a GET like the check itself.
		{"untrusted peer's fetch POST", "", with(fetchJSON, "X-Original-Method", "POST", "RemoteAddr", clientAddr), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Activity = tc.activity
				c.PassivePaths = []string{"/api/notifications/*"}
			})
			tok := e.login("alice")
			e.clock.Set(t0.Add(20 * time.Minute))
			for _, path := range []string{AuthRequestPath, ForwardAuthPath} {
				if res := e.do("GET", path, tok, tc.headers...); res.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d", path, res.StatusCode)
				}
			}
			e.clock.Set(t0.Add(idle))
			if got := e.signedIn(tok); got != tc.extends {
				t.Errorf("signed in at the original idle deadline: %v, want %v", got, tc.extends)
			}
		})
	}
}

// TestBusySessionWritesOncePerInterval: a thousand navigations within a
// touch interval cost one write.
func TestBusySessionWritesOncePerInterval(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice")
	for i := range 1000 {
		e.clock.Set(t0.Add(2*time.Minute + time.Duration(i)*50*time.Millisecond))
		if res := e.do("GET", AuthRequestPath, tok, navigation...); res.StatusCode != http.StatusOK {
			t.Fatalf("check %d: %d", i, res.StatusCode)
		}
	}
	if n := e.store.touches.Load(); n != 1 {
		t.Errorf("1,000 checks in 50 s wrote activity %d times, want 1 (touch interval 1m)", n)
	}
}

// TestSignInReturnAddress: where the sign-in page sends the browser
// afterwards: a path on the sign-in page's own host, an absolute URL only
// for the allowed hosts, "/" for anything else, and nothing the proxy did
// not vouch for.
func TestSignInReturnAddress(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		headers   []string
		base      string // the sign-in page's origin
		next      string
	}{
		{"behind one nginx", nil,
			[]string{"X-Original-URL", "https://app.example.com/r?q=1&x=%2F"}, "https://app.example.com", "/r?q=1&x=%2F"},
		{"Caddy's headers", nil,
			[]string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", "/r?q=1"}, "https://app.example.com", "/r?q=1"},
		{"nginx with a path only", nil,
			[]string{"X-Original-URL", "/r?q=1"}, "https://sg.internal:8080", "/r?q=1"},
		{"sign-in elsewhere, host not listed", func(c *Config) { c.BaseURL = "https://sso.example.com" },
			[]string{"X-Original-URL", "https://app.example.com/r"}, "https://sso.example.com", "/"},
		{"sign-in elsewhere, host listed", func(c *Config) {
			c.BaseURL = "https://sso.example.com"
			c.RedirectHosts = mustRedirectHosts(t, []string{"app.example.com"}, "")
		}, []string{"X-Original-URL", "https://app.example.com/r?q=1"}, "https://sso.example.com", "https://app.example.com/r?q=1"},
		{"sign-in elsewhere, cookie domain", func(c *Config) {
			c.BaseURL = "https://sso.example.com"
			c.RedirectHosts = mustRedirectHosts(t, nil, "example.com")
		}, []string{"X-Original-URL", "https://grafana.example.com/d/1"}, "https://sso.example.com", "https://grafana.example.com/d/1"},
		{"cookie domain is no wildcard", func(c *Config) {
			c.BaseURL = "https://sso.example.com"
			c.RedirectHosts = mustRedirectHosts(t, nil, "example.com")
		}, []string{"X-Original-URL", "https://example.com.evil.net/x"}, "https://sso.example.com", "/"},
		{"form post returns to its page", nil,
			[]string{"X-Original-Method", "POST", "X-Original-URL", "https://app.example.com/notes/save", "Referer", "https://app.example.com/notes?id=3"},
			"https://app.example.com", "/notes?id=3"},
		{"form post from another site", nil,
			[]string{"X-Original-Method", "POST", "X-Original-URL", "https://app.example.com/notes/save", "Referer", "https://evil.example.net/"},
			"https://app.example.com", "/notes/save"},
		{"untrusted peer", nil,
			[]string{"RemoteAddr", clientAddr, "X-Original-URL", "https://evil.example.net/x"}, "https://sg.internal:8080", ""},
		{"script URL", nil, []string{"X-Original-URL", "javascript:alert(1)"}, "https://sg.internal:8080", ""},
		{"user in URL", nil, []string{"X-Original-URL", "https://app.example.com@evil.example.net/"}, "https://sg.internal:8080", ""},
		{"not a URL", nil, []string{"X-Original-URL", "%zz"}, "https://sg.internal:8080", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.configure)
			res := e.do("GET", AuthRequestPath, "", tc.headers...)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d", res.StatusCode)
			}
			base, next, _ := loginQuery(t, res.Header.Get("Location"))
			if base != tc.base || next != tc.next {
				t.Errorf("Location %q: sign-in at %q returning to %q; want %q and %q",
					res.Header.Get("Location"), base, next, tc.base, tc.next)
			}
		})
	}
}

func mustRedirectHosts(t *testing.T, hosts []string, domain string) web.RedirectHosts {
	t.Helper()
	rh, err := web.NewRedirectHosts(hosts, domain)
	if err != nil {
		t.Fatal(err)
	}
	return rh
}

// TestUntrustedPeerWarnsOnce: headers from outside -trusted-proxy are
// ignored and the misconfiguration is logged once, not per request.
func TestUntrustedPeerWarnsOnce(t *testing.T) {
	e := newEnv(t, nil)
	for range 3 {
		e.do("GET", AuthRequestPath, "", "RemoteAddr", clientAddr, "X-Original-URL", "https://app.example.com/")
	}
	if n := strings.Count(e.logs.String(), "ignoring X-Original-*"); n != 1 {
		t.Errorf("the untrusted-peer warning was logged %d times, want once:\n%s", n, e.logs)
	}
}

// TestDisabledAccountIsSignedOut: a session whose account was disabled
// meanwhile is ended at the next check, with reason revoked.
func TestDisabledAccountIsSignedOut(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice")
	if err := e.accounts.SetDisabled(context.Background(), "alice", true); err != nil {
		t.Fatal(err)
	}
	res := e.do("GET", AuthRequestPath, tok, navigation...)
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Session-Reason") != "revoked" {
		t.Fatalf("check of a disabled user: %d, Session-Reason %q; want 401 revoked", res.StatusCode, res.Header.Get("Session-Reason"))
	}
	if err := e.accounts.SetDisabled(context.Background(), "alice", false); err != nil {
		t.Fatal(err)
	}
	if e.signedIn(tok) {
		t.Error("the session came back when the account was enabled again")
	}
}

// TestStoreFailureFailsClosed: when the session store does not answer,
// nobody passes and the answer says to try again.
func TestStoreFailureFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("alice")
	e.store.failing.Store(true)
	for _, path := range []string{AuthRequestPath, ForwardAuthPath} {
		res := e.do("GET", path, tok, navigation...)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s with the store down: %d, Retry-After %q; want 503 with Retry-After", path, res.StatusCode, res.Header.Get("Retry-After"))
		}
		if res.Header.Get("Remote-User") != "" {
			t.Errorf("%s with the store down named a user", path)
		}
	}
}

// TestCheckDoesNotWaitForABody: nginx forwards the original request's
// Content-Length with no body unless told otherwise; the check answers at
// once instead of waiting for bytes that never come.
func TestCheckDoesNotWaitForABody(t *testing.T) {
	e := newEnv(t, nil)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, "GET "+AuthRequestPath+" HTTP/1.1\r\nHost: sg\r\nContent-Length: 100000\r\nContent-Type: application/octet-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the announced body never came: %v", err)
	}
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", res.StatusCode)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the answer took %v", took)
	}
}

// TestCheckTakesGETOnly: the endpoints are for proxies, which send GET.
func TestCheckTakesGETOnly(t *testing.T) {
	e := newEnv(t, nil)
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if res := e.do(m, AuthRequestPath, ""); res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", m, res.StatusCode)
		}
	}
}

// TestOwnPaths: in reverse-proxy mode sessionguard keeps its own paths.
func TestOwnPaths(t *testing.T) {
	for path, own := range map[string]bool{
		"/auth/login": true, "/auth/status": true, "/auth/static/style.css": true, "/auth": true,
		"/setup": true, "/healthz": true, "/readyz": true, "/metrics": true,
		"/": false, "/authx": false, "/static/app.css": false, "/account": false, "/admin": false, "/setup/x": false, "/metrics/x": false,
	} {
		if Own(path) != own {
			t.Errorf("Own(%q) = %v, want %v", path, !own, own)
		}
	}
}

// FuzzCheck drives both endpoints with arbitrary headers from a trusted
// proxy: never a 5xx (the store works), never a panic, never a user named
// without a session, and a redirect only to the sign-in page.
func FuzzCheck(f *testing.F) {
	f.Add("GET", "https://app.example.com/x?y=1", "text/html", "navigate", "", "/p", "app.example.com", "https")
	f.Add("POST", "/only/a/path", "*/*", "cors", "passive", "", "", "")
	f.Add("", "http://[::1", "text/html", "", "", "//evil/%zz", "a,b", "ftp")
	f.Fuzz(func(t *testing.T, method, originalURL, accept, fetchMode, activity, fwdURI, fwdHost, fwdProto string) {
		e := fuzzEnv(t)
		for _, path := range []string{AuthRequestPath, ForwardAuthPath} {
			r := httptest.NewRequest("GET", "http://sg.internal:8080"+path, nil)
			r.RemoteAddr = proxyAddr
			for k, v := range map[string]string{"X-Original-Method": method, "X-Original-URL": originalURL, "Accept": accept,
				"Sec-Fetch-Mode": fetchMode, "Session-Activity": activity, "X-Forwarded-Uri": fwdURI,
				"X-Forwarded-Host": fwdHost, "X-Forwarded-Proto": fwdProto, "X-Forwarded-Method": method} {
				r.Header[k] = []string{v}
			}
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, r)
			switch w.Code {
			case http.StatusUnauthorized:
			case http.StatusFound, http.StatusSeeOther:
				if path == AuthRequestPath {
					t.Fatalf("the nginx endpoint redirected (%d)", w.Code)
				}
			default:
				t.Fatalf("%s: status %d", path, w.Code)
			}
			if w.Header().Get("Remote-User") != "" {
				t.Fatal("a user was named without a session")
			}
			if loc := w.Header().Get("Location"); loc != "" {
				u, err := url.Parse(loc)
				if err != nil || u.Path != "/auth/login" {
					t.Fatalf("Location %q is not the sign-in page", loc)
				}
			}
		}
	})
}

// fuzzEnv returns an env for one fuzz input; building one per input is
// slow but keeps inputs independent.
func fuzzEnv(t *testing.T) *env { return newEnv(t, nil) }
