package integration

import (
	"bytes"
	"crypto/rand"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/testproxy"
)

// The gateway behind real proxies: each test runs once behind nginx
// (auth_request to /auth/gate/auth-request) and once behind Caddy
// (forward_auth to /auth/gate/forward-auth), both at once.

// forEachProxy runs test as a parallel subtest per proxy.
func forEachProxy(t *testing.T, test func(t *testing.T, kind testproxy.Kind)) {
	for _, kind := range testproxy.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			// Without the proxy, skipped at once, not after waiting for
			// a parallel slot.
			testproxy.Binary(t, kind)
			t.Parallel()
			test(t, kind)
		})
	}
}

// redirectStatus is how the proxy sends a navigation without a session to
// the sign-in page: nginx as its configuration says (always 302), Caddy as
// sessionguard's forward-auth answers (302 for GET, 303 for other methods).
func redirectStatus(kind testproxy.Kind, method string) int {
	if kind == testproxy.Caddy && method != "GET" && method != "HEAD" {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// timeoutScriptTag is the tag nginx's sub_filter inserts into the
// application's pages.
const timeoutScriptTag = `<script src="/auth/timeout.js" defer></script></head>`

// expectFromApp checks that resp is the application's page, and that the
// application got it as a request for uri by user with role.
func expectFromApp(t *testing.T, g *gateway, what string, resp response, uri, user, role string) {
	t.Helper()
	if resp.status != http.StatusOK || !strings.Contains(resp.body, "The app's own page.") {
		t.Fatalf("%s: %d %.300s, want 200 with the application's page", what, resp.status, resp.body)
	}
	got := g.app.last(t)
	if got.URI != uri {
		t.Errorf("%s: the application got %s, want %s", what, got.URI, uri)
	}
	if u, r := got.Header.Values("Remote-User"), got.Header.Values("Remote-Groups"); !slices.Equal(u, []string{user}) || !slices.Equal(r, []string{role}) {
		t.Errorf("%s: the application got Remote-User %q and Remote-Groups %q, want %q and %q", what, u, r, user, role)
	}
}

// expectNotCalled fails the test if the application got a request after
// its first n.
func expectNotCalled(t *testing.T, g *gateway, n int, what string) {
	t.Helper()
	if calls := g.app.calls(); calls != n {
		t.Errorf("%s: the application got %d requests, want none", what, calls-n)
	}
}

// No session: a page navigation ends on the sign-in page on the app's own
// origin, with next the original path and query; signing in there returns
// to it, and the application serves it (behind nginx with the timeout
// script inserted).
func TestGatewaySignInReturnsToOriginalURL(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind)
		v := g.visitor()
		const original = "/app/report?year=2026&q=two%20words"

		resp := v.get(t, pageNavigation, original)
		if want := redirectStatus(kind, "GET"); resp.status != want {
			t.Errorf("navigation without a session: %d, want %d", resp.status, want)
		}
		login := v.signInURL(t, "navigation without a session", resp)
		if next := login.Query().Get("next"); next != original {
			t.Errorf("sent to %s: next %q, want %q", login, next, original)
		}
		expectNotCalled(t, g, 0, "navigation without a session")

		page := v.get(t, pageNavigation, login.RequestURI())
		if page.status != http.StatusOK || !strings.Contains(page.body, `name="username"`) {
			t.Fatalf("GET %s through %s: %d %.300s, want the sign-in page", login.RequestURI(), kind, page.status, page.body)
		}
		if !strings.Contains(page.body, html.EscapeString(original)) {
			t.Errorf("the sign-in page does not carry next %q: %.1000s", original, page.body)
		}

		v.signIn(t, "alice", alicePassword, original)
		resp = v.get(t, pageNavigation, original)
		expectFromApp(t, g, "the original URL after signing in", resp, original, "alice", "user")
		if injected := strings.Contains(resp.body, timeoutScriptTag); injected != (kind == testproxy.Nginx) {
			t.Errorf("timeout script in the page: %v, want it only behind nginx (sub_filter): %.300s", injected, resp.body)
		}
	})
}

// No session: a script's request gets 401 JSON, whatever its method; a
// form POST is sent to the sign-in page.
func TestGatewayUnauthenticatedFetch(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind)
		v := g.visitor()

		expectGatewayUnauthenticated(t, "fetch GET without a session", v.get(t, scriptFetch, "/api/items"), "")
		post := v.newRequest(t, scriptFetch, "POST", "/api/items", strings.NewReader(`{"name":"x"}`))
		post.Header.Set("Content-Type", "application/json")
		expectGatewayUnauthenticated(t, "fetch POST without a session", v.send(t, post), "")

		resp := v.postForm(t, "/app/form", url.Values{"a": {"1"}})
		if want := redirectStatus(kind, "POST"); resp.status != want {
			t.Errorf("form POST without a session: %d, want %d", resp.status, want)
		}
		v.signInURL(t, "form POST without a session", resp)
		expectNotCalled(t, g, 0, "requests without a session")
	})
}

// Signed in: the application gets the user's name and role from
// sessionguard, and never the client's own Remote-User or Remote-Groups,
// with a session or without.
func TestGatewayIdentityHeaders(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind)
		forge := func(r *http.Request) *http.Request {
			r.Header.Set("Remote-User", "mallory")
			r.Header.Add("Remote-User", "root")
			r.Header.Set("Remote-Groups", "admin")
			return r
		}

		anonymous := g.visitor()
		anonymous.send(t, forge(anonymous.newRequest(t, pageNavigation, "GET", "/app/", nil)))
		anonymous.send(t, forge(anonymous.newRequest(t, scriptFetch, "GET", "/api/me", nil)))
		expectNotCalled(t, g, 0, "forged identity without a session")

		v := g.visitor()
		v.signIn(t, "alice", alicePassword, "/app/")
		expectFromApp(t, g, "navigation with a forged identity",
			v.send(t, forge(v.newRequest(t, pageNavigation, "GET", "/app/", nil))), "/app/", "alice", "user")
		expectFromApp(t, g, "fetch with a forged identity",
			v.send(t, forge(v.newRequest(t, scriptFetch, "GET", "/api/me", nil))), "/api/me", "alice", "user")
	})
}

// -gate-allow-role admin: a user is refused with 403 and the application
// is not called; an administrator passes.
func TestGatewayAllowRole(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind, "-gate-allow-role", "admin")

		alice := g.visitor()
		alice.signIn(t, "alice", alicePassword, "/")
		for _, k := range []fetchKind{pageNavigation, scriptFetch} {
			if resp := alice.get(t, k, "/admin/"); resp.status != http.StatusForbidden {
				t.Errorf("a user's request (kind %d) with only admin allowed: %d %.300s, want 403", k, resp.status, resp.body)
			}
		}
		expectNotCalled(t, g, 0, "a user's requests with only admin allowed")

		ada := g.visitor()
		ada.signIn(t, "ada", adaPassword, "/")
		expectFromApp(t, g, "an administrator's navigation", ada.get(t, pageNavigation, "/admin/"), "/admin/", "ada", "admin")
	})
}

// idleFlags are the timeouts of the idle tests: short, with margins that
// hold on a loaded two-core machine, and a touch interval small enough that
// throttling does not blur when the session was last active.
func idleFlags(idle time.Duration) []string {
	return []string{"-idle-timeout", idle.String(), "-absolute-timeout", "1h", "-warn-before", "0", "-touch-interval", "200ms"}
}

// Left idle past the limit, the session ends: the next navigation goes to
// the sign-in page with reason=idle, a script gets 401 with reason idle, and
// the check itself says Session-Reason: idle.
func TestGatewayIdle(t *testing.T) {
	const idle = 4 * time.Second
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind, idleFlags(idle)...)
		v := g.visitor()
		// Taken before the sign-in: the session's last activity is at or
		// after it, whether or not the navigation below is throttled.
		lastActive := time.Now()
		v.signIn(t, "alice", alicePassword, "/app/")
		expectFromApp(t, g, "navigation after signing in", v.get(t, pageNavigation, "/app/"), "/app/", "alice", "user")

		// Passive checks, straight to sessionguard, until the session ends.
		waitFor(t, idle+requestTimeout, "the session to end for idleness", func() bool {
			return g.check(t, v, "/app/").status == http.StatusUnauthorized
		})
		if early := time.Until(lastActive.Add(idle)); early > 0 {
			t.Errorf("the session ended %v before its idle timeout", early)
		}
		calls := g.app.calls()

		resp := v.get(t, pageNavigation, "/app/next?page=2")
		login := v.signInURL(t, "navigation after the idle timeout", resp)
		if q := login.Query(); q.Get("reason") != "idle" || q.Get("next") != "/app/next?page=2" {
			t.Errorf("sent to %s, want reason=idle and next=/app/next?page=2", login)
		}
		expectGatewayUnauthenticated(t, "fetch after the idle timeout", v.get(t, scriptFetch, "/api/items"), "idle")
		if check := g.check(t, v, "/app/"); check.header.Get("Session-Reason") != "idle" {
			t.Errorf("the check after the idle timeout: %d with Session-Reason %q, want idle", check.status, check.header.Get("Session-Reason"))
		}
		expectNotCalled(t, g, calls, "requests after the idle timeout")
	})
}

// A script polling every second does not keep its session alive: it ends at
// the idle limit. A person navigating every third of the idle timeout is
// kept signed in past twice the idle timeout.
func TestGatewayPollsDoNotKeepSessionAlive(t *testing.T) {
	const idle = 6 * time.Second
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind, idleFlags(idle)...)
		poller, navigator := g.visitor(), g.visitor()
		pollerSignedIn := time.Now()
		poller.signIn(t, "alice", alicePassword, "/app/")
		navigator.signIn(t, "alice", alicePassword, "/app/")
		start := time.Now()

		var polled int            // polls answered 200
		var pollerEnded time.Time // when a poll was first refused
		lastNavigation := time.Time{}
		for time.Since(start) < 2*idle+2*time.Second {
			if pollerEnded.IsZero() {
				resp := poller.get(t, scriptFetch, "/api/notifications")
				switch resp.status {
				case http.StatusOK:
					polled++
				case http.StatusUnauthorized:
					pollerEnded = time.Now()
					expectGatewayUnauthenticated(t, "the poll after the idle timeout", resp, "idle")
				default:
					t.Fatalf("poll: %d %.300s", resp.status, resp.body)
				}
			}
			if time.Since(lastNavigation) >= idle/3 {
				lastNavigation = time.Now()
				resp := navigator.get(t, pageNavigation, "/app/page")
				if resp.status != http.StatusOK {
					t.Fatalf("navigation %v after signing in (every %v, idle timeout %v): %d %.300s, want 200",
						time.Since(start).Round(time.Millisecond), idle/3, idle, resp.status, resp.body)
				}
			}
			time.Sleep(time.Second)
		}

		switch {
		case pollerEnded.IsZero():
			t.Errorf("polling every second for %v kept the session alive (idle timeout %v)", time.Since(start).Round(time.Second), idle)
		case pollerEnded.Before(pollerSignedIn.Add(idle)):
			t.Errorf("the polled session ended %v after signing in, before its idle timeout of %v", pollerEnded.Sub(pollerSignedIn), idle)
		case polled < 3:
			t.Errorf("only %d polls passed before the session ended", polled)
		}
		if resp := navigator.get(t, pageNavigation, "/app/last"); resp.status != http.StatusOK {
			t.Errorf("the navigated session, %v after signing in: %d, want 200", time.Since(start).Round(time.Millisecond), resp.status)
		}
	})
}

// A POST body reaches the application intact, and neither the check nor a
// refusal waits for the body: both answer well within any read timeout.
func TestGatewayPostBody(t *testing.T) {
	const quick = 5 * time.Second // nginx and sessionguard wait 60s for a body
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind)
		body := make([]byte, 100<<10)
		rand.Read(body)
		upload := func(v *appVisitor) (response, time.Duration) {
			r := v.newRequest(t, scriptFetch, "POST", "/api/upload", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/octet-stream")
			start := time.Now()
			resp := v.send(t, r)
			return resp, time.Since(start)
		}

		resp, took := upload(g.visitor())
		expectGatewayUnauthenticated(t, "upload without a session", resp, "")
		if took > quick {
			t.Errorf("the refusal of an upload took %v", took)
		}
		expectNotCalled(t, g, 0, "upload without a session")

		v := g.visitor()
		v.signIn(t, "alice", alicePassword, "/")
		resp, took = upload(v)
		if resp.status != http.StatusOK {
			t.Fatalf("upload: %d %.300s, want 200", resp.status, resp.body)
		}
		if took > quick {
			t.Errorf("an upload of %d KiB took %v: something waited for the body", len(body)>>10, took)
		}
		got := g.app.last(t)
		if got.Method != "POST" || got.Err != nil || !bytes.Equal(got.Body, body) {
			t.Errorf("the application got %s with %d bytes (error %v), want POST with the %d bytes sent", got.Method, len(got.Body), got.Err, len(body))
		}

		form := url.Values{"title": {"Q3 report"}, "text": {strings.Repeat("draft ", 2000)}}
		if resp := v.postForm(t, "/app/save", form); resp.status != http.StatusOK {
			t.Fatalf("form POST: %d %.300s, want 200", resp.status, resp.body)
		}
		if got := g.app.last(t); string(got.Body) != form.Encode() {
			t.Errorf("the application got the form %.100q, want %.100q", got.Body, form.Encode())
		}
	})
}

// After signing out, a copy of the cookie taken before is refused through
// the proxy, with reason logout.
func TestGatewayLogoutRefusesCopiedCookie(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind)
		v := g.visitor()
		v.signIn(t, "alice", alicePassword, "/app/")
		copied := &appVisitor{base: v.base, cookie: v.cookie}
		expectFromApp(t, g, "the copied cookie before signing out", copied.get(t, pageNavigation, "/app/"), "/app/", "alice", "user")

		if resp := v.postForm(t, "/auth/logout", url.Values{}); resp.status != http.StatusSeeOther || v.cookie != "" {
			t.Fatalf("POST /auth/logout through %s: %d, cookie kept %v, want 303 clearing the cookie", kind, resp.status, v.cookie != "")
		}
		calls := g.app.calls()
		login := copied.signInURL(t, "navigation with the copied cookie", copied.get(t, pageNavigation, "/app/"))
		if reason := login.Query().Get("reason"); reason != "logout" {
			t.Errorf("sent to %s, want reason=logout", login)
		}
		expectGatewayUnauthenticated(t, "fetch with the copied cookie", copied.get(t, scriptFetch, "/api/items"), "logout")
		expectNotCalled(t, g, calls, "requests with the copied cookie")
	})
}

// With sessionguard gone, the proxy fails closed: every request gets a 5xx
// and none reaches the application.
func TestGatewayFailsClosed(t *testing.T) {
	forEachProxy(t, func(t *testing.T, kind testproxy.Kind) {
		g := startGateway(t, kind)
		v := g.visitor()
		v.signIn(t, "alice", alicePassword, "/app/")
		expectFromApp(t, g, "navigation before sessionguard stops", v.get(t, pageNavigation, "/app/"), "/app/", "alice", "user")
		calls := g.app.calls()

		g.kill(t)
		for _, r := range []*http.Request{
			v.newRequest(t, pageNavigation, "GET", "/app/", nil),
			v.newRequest(t, scriptFetch, "GET", "/api/items", nil),
			v.newRequest(t, scriptFetch, "POST", "/api/items", strings.NewReader(`{}`)),
			(&appVisitor{base: v.base}).newRequest(t, pageNavigation, "GET", "/app/", nil),
		} {
			if resp := v.send(t, r); resp.status < 500 || resp.status > 599 {
				t.Errorf("%s %s with sessionguard stopped: %d %.300s, want 5xx", r.Method, r.URL.Path, resp.status, resp.body)
			}
		}
		expectNotCalled(t, g, calls, "requests with sessionguard stopped")
	})
}
