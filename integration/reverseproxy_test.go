package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Reverse-proxy mode (`sessionguard serve -upstream URL`), tested from
// outside: a real process in front of an upstream written in the test.

// TestReverseProxySignIn: a page navigation without a session is sent to
// the sign-in page with next, and signing in there lands on the page asked
// for, served by the upstream; a form POST without a session gets 303.
func TestReverseProxySignIn(t *testing.T) {
	up := newRPUpstream(t)
	s := startReverseProxy(t, up)
	b := s.browser()

	n := up.count()
	resp := b.send(t, b.navigate("GET", "/app/page?x=1", nil))
	link := s.expectSignIn(t, "GET /app/page?x=1 without a session", resp, http.StatusFound)
	if link.next != "/app/page?x=1" || link.reason != "" {
		t.Errorf("sign-in link: next %q, reason %q; want next %q and no reason", link.next, link.reason, "/app/page?x=1")
	}
	up.expectNotCalledSince(t, n, "a navigation without a session")

	resp = b.send(t, b.navigate("GET", link.uri, nil))
	if resp.status != http.StatusOK {
		t.Fatalf("the sign-in page: %d %.300s", resp.status, resp.body)
	}
	next := rpFormNext(t, resp.body)
	if next != "/app/page?x=1" {
		t.Errorf("the sign-in form's next: %q, want /app/page?x=1", next)
	}
	resp = b.send(t, b.navigate("POST", "/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "next": {next}}))
	if loc := resp.header.Get("Location"); resp.status != http.StatusSeeOther || loc != "/app/page?x=1" || b.token == "" {
		t.Fatalf("signing in: %d to %q, cookie %v; want 303 to /app/page?x=1 with a cookie", resp.status, loc, b.token != "")
	}
	resp = b.send(t, b.navigate("GET", "/app/page?x=1", nil))
	if want := rpUpstreamBody("GET", "/app/page?x=1"); resp.status != http.StatusOK || resp.body != want {
		t.Fatalf("GET /app/page?x=1 signed in: %d %.300s, want 200 %q", resp.status, resp.body, want)
	}

	anon := s.browser()
	n = up.count()
	resp = anon.send(t, anon.navigate("POST", "/app/form", url.Values{"text": {"hello"}}))
	s.expectSignIn(t, "a form POST to /app/form without a session", resp, http.StatusSeeOther)
	up.expectNotCalledSince(t, n, "a form POST without a session")
}

// TestReverseProxyUnauthenticatedFetch: a fetch without a session gets the
// 401 JSON answer, GET or POST, and never reaches the upstream.
func TestReverseProxyUnauthenticatedFetch(t *testing.T) {
	up := newRPUpstream(t)
	s := startReverseProxy(t, up)
	b := s.browser()

	n := up.count()
	resp := b.send(t, b.fetch("GET", "/api/data", nil))
	rpExpectUnauthenticated(t, "fetch GET /api/data without a session", resp, "")
	resp = b.send(t, b.fetch("POST", "/api/data", strings.NewReader(`{"a":1}`)))
	rpExpectUnauthenticated(t, "fetch POST /api/data without a session", resp, "")
	up.expectNotCalledSince(t, n, "a fetch without a session")
}

// TestReverseProxyIdentityHeaders: the upstream sees who is signed in and
// the original request, never what the client forged, and never the
// session cookie. This server keeps the default cookie, __Host-session,
// which the browser here sends over plain HTTP by hand (Go's cookie jar
// would not send a Secure cookie to http://127.0.0.1).
func TestReverseProxyIdentityHeaders(t *testing.T) {
	up := newRPUpstream(t)
	s := startReverseProxyCookie(t, up, "__Host-session")
	b := s.browser()
	b.login(t, "alice", alicePassword)

	forged := map[string]string{
		"Remote-User":      "mallory",
		"Remote-Groups":    "admin",
		"Session-Foo":      "forged-session-foo",
		"X-Forwarded-For":  "203.0.113.9",
		"X-Forwarded-Host": "evil.example",
	}
	for _, r := range []*http.Request{
		b.navigate("GET", "/whoami", nil),
		b.fetch("GET", "/api/whoami", nil),
		b.fetch("POST", "/api/whoami", strings.NewReader(`{}`)),
	} {
		what := r.Method + " " + r.URL.Path
		for name, value := range forged {
			r.Header.Set(name, value)
		}
		r.Header.Set("Cookie", "theme=dark; other=1")
		resp := b.send(t, r)
		if resp.status != http.StatusOK {
			t.Fatalf("%s signed in: %d %.300s", what, resp.status, resp.body)
		}
		got := up.last(t)
		h := got.Header
		if v := h.Values("Remote-User"); len(v) != 1 || v[0] != "alice" {
			t.Errorf("%s: the upstream saw Remote-User %q, want [alice]", what, v)
		}
		if v := h.Values("Remote-Groups"); len(v) != 1 || v[0] != "user" {
			t.Errorf("%s: the upstream saw Remote-Groups %q, want [user]", what, v)
		}
		if v := h.Values("Session-Foo"); len(v) != 0 {
			t.Errorf("%s: the upstream saw the client's Session-Foo %q", what, v)
		}
		if v := h.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
			t.Errorf("%s: the upstream saw X-Forwarded-For %q, want [127.0.0.1] (the client is no trusted proxy)", what, v)
		}
		host := strings.TrimPrefix(s.url, "http://")
		if v := h.Values("X-Forwarded-Host"); len(v) != 1 || v[0] != host {
			t.Errorf("%s: the upstream saw X-Forwarded-Host %q, want [%s]", what, v, host)
		}
		if v := h.Values("X-Forwarded-Proto"); len(v) != 1 || v[0] != "http" {
			t.Errorf("%s: the upstream saw X-Forwarded-Proto %q, want [http]", what, v)
		}
		for _, c := range []string{"theme=dark", "other=1"} {
			name, value, _ := strings.Cut(c, "=")
			if v, ok := got.cookie(name); !ok || v != value {
				t.Errorf("%s: the upstream saw cookie %s=%q (sent %v), want %q; Cookie: %q", what, name, v, ok, value, h.Values("Cookie"))
			}
		}
		rpExpectNoSessionCookie(t, what, got, b.token)
	}
}

// rpExpectNoSessionCookie fails the test if the session token reached the
// upstream in any header, under any name.
func rpExpectNoSessionCookie(t *testing.T, what string, got rpSeenRequest, token string) {
	t.Helper()
	for _, name := range []string{"__Host-session", "__Secure-session", "session"} {
		if _, ok := got.cookie(name); ok {
			t.Errorf("%s: the upstream received the cookie %s", what, name)
		}
	}
	for name, values := range got.Header {
		for _, v := range values {
			if strings.Contains(v, token) {
				t.Errorf("%s: the upstream received the session token in %s", what, name)
			}
		}
	}
}

// TestReverseProxyAllowRole: with -gate-allow-role admin a user gets 403
// and never reaches the upstream; an administrator passes.
func TestReverseProxyAllowRole(t *testing.T) {
	up := newRPUpstream(t)
	s := startReverseProxy(t, up, "-gate-allow-role", "admin")

	alice := s.browser()
	alice.login(t, "alice", alicePassword)
	n := up.count()
	for _, r := range []*http.Request{alice.navigate("GET", "/app", nil), alice.fetch("GET", "/api/data", nil)} {
		resp := alice.send(t, r)
		if resp.status != http.StatusForbidden {
			t.Errorf("%s %s as alice (user): %d %.300s, want 403", r.Method, r.URL.Path, resp.status, resp.body)
		}
	}
	up.expectNotCalledSince(t, n, "a user's request with -gate-allow-role admin")
	// Chosen where the contract is silent: the role rule guards the
	// upstream, not sessionguard's own pages, so a refused user can still
	// sign out.
	if resp := alice.send(t, alice.navigate("POST", "/auth/logout", url.Values{})); resp.status != http.StatusSeeOther {
		t.Errorf("POST /auth/logout as alice: %d, want 303", resp.status)
	}

	ada := s.browser()
	ada.login(t, "ada", adaPassword)
	resp := ada.send(t, ada.navigate("GET", "/app", nil))
	if want := rpUpstreamBody("GET", "/app"); resp.status != http.StatusOK || resp.body != want {
		t.Fatalf("GET /app as ada (admin): %d %.300s, want 200 %q", resp.status, resp.body, want)
	}
	if got := up.last(t).Header; got.Get("Remote-User") != "ada" || got.Get("Remote-Groups") != "admin" {
		t.Errorf("GET /app as ada: the upstream saw Remote-User %q, Remote-Groups %q; want ada, admin", got.Get("Remote-User"), got.Get("Remote-Groups"))
	}
}

// The short timeouts of the idle tests. Touches are at most 200ms apart,
// so a session ends between idle-200ms and idle after the last activity;
// the tests allow seconds on either side for a loaded machine.
const (
	rpTouchInterval = 200 * time.Millisecond
	rpSlack         = time.Second
)

func rpIdleArgs(idle time.Duration, extra ...string) []string {
	return append([]string{"-idle-timeout", idle.String(), "-touch-interval", rpTouchInterval.String(), "-warn-before", "0"}, extra...)
}

// TestReverseProxyIdle: a session left alone past its idle timeout ends;
// the next navigation is sent to the sign-in page with reason=idle and
// the next fetch gets 401 with reason idle, neither reaching the upstream.
func TestReverseProxyIdle(t *testing.T) {
	const idle = 4 * time.Second
	up := newRPUpstream(t)
	s := startReverseProxy(t, up, rpIdleArgs(idle)...)
	b := s.browser()
	b.login(t, "alice", alicePassword)

	lastActive := time.Now()
	if resp := b.send(t, b.navigate("GET", "/app/page", nil)); resp.status != http.StatusOK {
		t.Fatalf("GET /app/page signed in: %d %.300s", resp.status, resp.body)
	}
	// GET /auth/status is passive: it watches the session without
	// keeping it alive.
	took := waitFor(t, idle+30*time.Second, "the session to end for inactivity", func() bool {
		resp := b.send(t, b.fetch("GET", "/auth/status", nil))
		return resp.status == http.StatusUnauthorized
	})
	if ended := time.Since(lastActive); ended < idle-rpTouchInterval-rpSlack {
		t.Errorf("the session ended %v after the last navigation, before its idle timeout of %v", ended, idle)
	}
	t.Logf("the session ended %v after the last navigation (idle timeout %v)", took.Round(time.Millisecond), idle)

	token := b.token
	n := up.count()
	resp := b.send(t, b.navigate("GET", "/app/page?x=1", nil))
	link := s.expectSignIn(t, "a navigation after the idle timeout", resp, http.StatusFound)
	if link.reason != "idle" || link.next != "/app/page?x=1" {
		t.Errorf("sign-in link after the idle timeout: next %q, reason %q; want /app/page?x=1 and idle", link.next, link.reason)
	}
	b.token = token
	rpExpectUnauthenticated(t, "a fetch after the idle timeout", b.send(t, b.fetch("GET", "/api/data", nil)), "idle")
	up.expectNotCalledSince(t, n, "requests after the idle timeout")
}

// TestReverseProxyActivity: what keeps a session alive. Four browsers at
// once, each with a session of its own, send one kind of request every
// second: background polls and POSTs to a -gate-passive-path do not keep
// theirs alive; navigations and other POSTs do.
func TestReverseProxyActivity(t *testing.T) {
	const (
		idle   = 5 * time.Second
		period = time.Second
		alive  = 5 * idle / 2 // how long the kept sessions must last
	)
	up := newRPUpstream(t)
	s := startReverseProxy(t, up, rpIdleArgs(idle, "-gate-passive-path", "/api/notifications/*")...)

	// endsDespite: after one navigation, requests from next every second
	// are proxied until the session ends by its idle timeout.
	endsDespite := func(t *testing.T, next func(b *rpBrowser, i int) *http.Request) {
		b := s.browser()
		b.login(t, "alice", alicePassword)
		start := time.Now()
		if resp := b.send(t, b.navigate("GET", "/app", nil)); resp.status != http.StatusOK {
			t.Fatalf("GET /app signed in: %d %.300s", resp.status, resp.body)
		}
		for i := 0; ; i++ {
			time.Sleep(period)
			r := next(b, i)
			resp := b.send(t, r)
			elapsed := time.Since(start)
			switch {
			case resp.status == http.StatusOK:
				if elapsed > 3*idle {
					t.Fatalf("%s %s still answered 200 %v after the last navigation (idle timeout %v): it keeps the session alive", r.Method, r.URL.Path, elapsed.Round(time.Millisecond), idle)
				}
			case resp.status == http.StatusUnauthorized:
				rpExpectUnauthenticated(t, r.Method+" "+r.URL.Path+" after the idle timeout", resp, "idle")
				if elapsed < idle-rpTouchInterval-rpSlack {
					t.Errorf("the session ended %v after the last navigation, before its idle timeout of %v", elapsed, idle)
				}
				t.Logf("ended %v after the last navigation, after %d requests", elapsed.Round(time.Millisecond), i+1)
				return
			default:
				t.Fatalf("%s %s signed in: %d %.300s", r.Method, r.URL.Path, resp.status, resp.body)
			}
		}
	}
	// keptAliveBy: requests from next every second keep the session
	// alive for several idle timeouts, each one proxied.
	keptAliveBy := func(t *testing.T, next func(b *rpBrowser, i int) *http.Request) {
		b := s.browser()
		b.login(t, "alice", alicePassword)
		start := time.Now()
		for i := 0; time.Since(start) < alive; i++ {
			r := next(b, i)
			sent := time.Now()
			if resp := b.send(t, r); resp.status != http.StatusOK {
				t.Fatalf("%s %s %v after signing in (idle timeout %v): %d %.300s, want 200: it did not keep the session alive", r.Method, r.URL.Path, sent.Sub(start).Round(time.Millisecond), idle, resp.status, resp.body)
			}
			time.Sleep(period)
		}
	}

	t.Run("group", func(t *testing.T) {
		t.Run("BackgroundPolls", func(t *testing.T) {
			t.Parallel()
			endsDespite(t, func(b *rpBrowser, i int) *http.Request { return b.fetch("GET", "/api/poll", nil) })
		})
		t.Run("PassivePathPOST", func(t *testing.T) {
			t.Parallel()
			endsDespite(t, func(b *rpBrowser, i int) *http.Request {
				return b.fetch("POST", fmt.Sprintf("/api/notifications/seen-%d", i), strings.NewReader(`{"seen":true}`))
			})
		})
		t.Run("Navigations", func(t *testing.T) {
			t.Parallel()
			keptAliveBy(t, func(b *rpBrowser, i int) *http.Request { return b.navigate("GET", fmt.Sprintf("/app/page/%d", i), nil) })
		})
		t.Run("FetchPOST", func(t *testing.T) {
			t.Parallel()
			keptAliveBy(t, func(b *rpBrowser, i int) *http.Request {
				return b.fetch("POST", "/api/save", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
			})
		})
	})
}

// TestReverseProxyLargeBody: a POST body of several hundred KiB reaches
// the upstream intact.
func TestReverseProxyLargeBody(t *testing.T) {
	up := newRPUpstream(t)
	up.mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	s := startReverseProxy(t, up)
	b := s.browser()
	b.login(t, "alice", alicePassword)

	body := make([]byte, 700<<10)
	rand.Read(body)
	sum := sha256.Sum256(body)
	want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:]))
	for _, chunked := range []bool{false, true} {
		r := b.fetch("POST", "/upload", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/octet-stream")
		what := fmt.Sprintf("POST /upload of %d KiB with Content-Length", len(body)>>10)
		if chunked {
			r.ContentLength = -1 // sent chunked
			r.Body = io.NopCloser(bytes.NewReader(body))
			what = fmt.Sprintf("POST /upload of %d KiB chunked", len(body)>>10)
		}
		resp := b.send(t, r)
		if resp.status != http.StatusOK || resp.body != want {
			t.Errorf("%s: %d %.300s, want 200 %q (length and SHA-256 the upstream read)", what, resp.status, resp.body, want)
		}
	}
}

// TestReverseProxyLogout: after signing out, a copy of the cookie is
// refused and never reaches the upstream.
func TestReverseProxyLogout(t *testing.T) {
	up := newRPUpstream(t)
	s := startReverseProxy(t, up)
	b := s.browser()
	b.login(t, "alice", alicePassword)
	if resp := b.send(t, b.navigate("GET", "/app", nil)); resp.status != http.StatusOK {
		t.Fatalf("GET /app signed in: %d %.300s", resp.status, resp.body)
	}

	copied := &rpBrowser{s: s, token: b.token}
	resp := b.send(t, b.navigate("POST", "/auth/logout", url.Values{}))
	if loc := resp.header.Get("Location"); resp.status != http.StatusSeeOther || loc != "/auth/login?reason=logout" || b.token != "" {
		t.Fatalf("POST /auth/logout: %d to %q, cookie kept %v; want 303 to /auth/login?reason=logout, cookie cleared", resp.status, loc, b.token != "")
	}

	n := up.count()
	token := copied.token
	resp = copied.send(t, copied.navigate("GET", "/app", nil))
	if link := s.expectSignIn(t, "a navigation with a copy of the signed-out cookie", resp, http.StatusFound); link.reason != "logout" {
		t.Errorf("sign-in link with the signed-out cookie: reason %q, want logout", link.reason)
	}
	copied.token = token
	rpExpectUnauthenticated(t, "a fetch with a copy of the signed-out cookie", copied.send(t, copied.fetch("GET", "/api/data", nil)), "logout")
	up.expectNotCalledSince(t, n, "requests with the signed-out cookie")
}

// TestReverseProxyUpstreamDown: when the upstream does not answer,
// sessionguard answers 502 with its own error page at once, and logs it.
func TestReverseProxyUpstreamDown(t *testing.T) {
	up := newRPUpstream(t)
	s := startReverseProxy(t, up)
	b := s.browser()
	b.login(t, "alice", alicePassword)
	up.Close()

	const bound = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	defer cancel()
	logged := rpProblemLines(s.log())
	start := time.Now()
	resp, err := b.trySend(b.navigate("GET", "/app/page", nil).WithContext(ctx))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("GET /app/page with the upstream down: %v after %v, want 502", err, took.Round(time.Millisecond))
	}
	if took > bound {
		t.Errorf("GET /app/page with the upstream down took %v, want an answer within %v", took.Round(time.Millisecond), bound)
	}
	if resp.status != http.StatusBadGateway || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/html") || !strings.Contains(resp.body, "sessionguard") {
		t.Errorf("GET /app/page with the upstream down: %d %q %.500s, want 502 with sessionguard's HTML error page", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	t.Logf("502 after %v", took.Round(time.Millisecond))
	resp, err = b.trySend(b.fetch("GET", "/api/data", nil).WithContext(ctx))
	if err != nil || resp.status != http.StatusBadGateway {
		t.Errorf("fetch GET /api/data with the upstream down: %d, %v; want 502", resp.status, err)
	}
	waitFor(t, 10*time.Second, "a warning or error in the log about the unreachable upstream", func() bool {
		return rpProblemLines(s.log()) > logged
	})
	if !s.alive() {
		t.Error("sessionguard exited")
	}
}

// rpProblemLines counts the warnings and errors in a JSON log.
func rpProblemLines(log string) int {
	return strings.Count(log, `"level":"ERROR"`) + strings.Count(log, `"level":"WARN"`)
}

// TestReverseProxyOwnPaths: sessionguard answers its own paths itself,
// signed in or not, and proxies everything else of a signed-in user,
// including paths its own pages used before (/, /static/, /account).
func TestReverseProxyOwnPaths(t *testing.T) {
	up := newRPUpstream(t)
	s := startReverseProxy(t, up)
	b := s.browser()
	b.login(t, "alice", alicePassword)

	n := up.count()
	own := []struct {
		r      *http.Request
		status int
		check  func(rpResponse) bool
		want   string
	}{
		{b.navigate("GET", "/auth/login", nil), http.StatusSeeOther, func(r rpResponse) bool { return r.header.Get("Location") == "/" }, "303 to / (signed in already)"},
		{b.fetch("GET", "/auth/status", nil), http.StatusOK, func(r rpResponse) bool { return strings.Contains(r.body, `"user":"alice"`) }, `JSON with "user":"alice"`},
		{b.newRequest("GET", "/healthz", nil), http.StatusOK, func(r rpResponse) bool { return r.body == "ok\n" }, "ok"},
		{b.newRequest("GET", "/readyz", nil), http.StatusOK, func(rpResponse) bool { return true }, "200"},
		{b.newRequest("GET", "/metrics", nil), http.StatusOK, func(r rpResponse) bool { return strings.Contains(r.body, "# HELP ") }, "Prometheus metrics"},
		{b.newRequest("GET", "/auth/timeout.js", nil), http.StatusOK, func(r rpResponse) bool { return strings.Contains(r.header.Get("Content-Type"), "javascript") }, "JavaScript"},
		{b.newRequest("GET", "/auth/static/style.css", nil), http.StatusOK, func(r rpResponse) bool { return strings.HasPrefix(r.header.Get("Content-Type"), "text/css") }, "CSS"},
		// Chosen where the contract is silent: sessionguard serves
		// all of /auth/, so an unknown path there is its own 404.
		{b.navigate("GET", "/auth/no-such-page", nil), http.StatusNotFound, func(rpResponse) bool { return true }, "404"},
	}
	for _, c := range own {
		what := c.r.Method + " " + c.r.URL.Path
		if resp := b.send(t, c.r); resp.status != c.status || !c.check(resp) {
			t.Errorf("%s signed in: %d %.200s, want %d, %s", what, resp.status, resp.body, c.status, c.want)
		}
	}
	anon := s.browser()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp := anon.send(t, anon.newRequest("GET", path, nil)); resp.status != http.StatusOK {
			t.Errorf("GET %s without a session: %d, want 200", path, resp.status)
		}
	}
	if resp := anon.send(t, anon.navigate("GET", "/auth/login", nil)); resp.status != http.StatusOK || !strings.Contains(resp.body, `action="/auth/login"`) {
		t.Errorf("GET /auth/login without a session: %d %.200s, want the sign-in page", resp.status, resp.body)
	}
	up.expectNotCalledSince(t, n, "sessionguard's own paths")

	for _, path := range []string{"/", "/static/x.css", "/account", "/admin", "/notes"} {
		resp := b.send(t, b.navigate("GET", path, nil))
		if want := rpUpstreamBody("GET", path); resp.status != http.StatusOK || resp.body != want {
			t.Errorf("GET %s signed in: %d %.200s, want the upstream's %q", path, resp.status, resp.body, want)
		}
	}
}
