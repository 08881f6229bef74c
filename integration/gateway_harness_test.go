package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/testproxy"
)

// gateway is one deployment of the gateway under test: an application,
// sessionguard, and nginx or Caddy in front of both.
type gateway struct {
	kind  testproxy.Kind
	sg    *instance
	app   *protectedApp
	proxy *testproxy.Proxy
}

// startGateway starts the application, sessionguard (with alice, a user,
// and ada, an administrator; sessions in memory; nginx and Caddy on
// 127.0.0.1 trusted) with flags, and the proxy of kind in front. The proxy
// is checked first, so that a missing one skips the test at once.
func startGateway(t *testing.T, kind testproxy.Kind, flags ...string) *gateway {
	t.Helper()
	testproxy.Binary(t, kind)
	db := "sqlite:" + filepath.Join(t.TempDir(), "sg.db")
	addUser(t, db, "user", "alice", alicePassword)
	addUser(t, db, "admin", "ada", adaPassword)
	g := &gateway{kind: kind, app: startProtectedApp(t)}
	args := append([]string{"-db", db, "-sessions", "memory", "-trusted-proxy", "127.0.0.1/32"}, adminPasswordOnly...)
	args = append(args, flags...)
	g.sg = startInstance(t, "sessionguard", args...)
	g.proxy = testproxy.Start(t, kind, testproxy.Backends{
		SessionGuard: strings.TrimPrefix(g.sg.url, "http://"),
		App:          strings.TrimPrefix(g.app.URL, "http://"),
	})
	return g
}

// visitor returns a new visitor of the protected application, with no
// session.
func (g *gateway) visitor() *appVisitor { return &appVisitor{base: g.proxy.URL} }

// kill stops sessionguard as a crash would (SIGKILL) and waits for it.
func (g *gateway) kill(t *testing.T) {
	t.Helper()
	g.sg.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-g.sg.exited:
	case <-time.After(startTimeout):
		t.Fatal("sessionguard did not exit on SIGKILL")
	}
}

// protectedApp is the application behind the proxy: it records every
// request it gets and answers with a small HTML page.
type protectedApp struct {
	*httptest.Server

	mu   sync.Mutex
	seen []appRequest
}

// appRequest is a request as the application got it.
type appRequest struct {
	Method string
	URI    string
	Header http.Header
	Body   []byte
	Err    error // from reading the body
}

// protectedPage is what the application answers: HTML with a head, for the
// proxy to insert the timeout script into.
const protectedPage = "<!doctype html><html><head><title>The app</title></head><body><p>The app's own page.</p></body></html>"

func startProtectedApp(t *testing.T) *protectedApp {
	t.Helper()
	u := &protectedApp{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, appRequest{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body, Err: err})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, protectedPage)
	}))
	t.Cleanup(u.Close)
	return u
}

// calls returns how many requests the application got so far.
func (u *protectedApp) calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// last returns the latest request the application got; the test fails if
// there was none.
func (u *protectedApp) last(t *testing.T) appRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the application got no request")
	}
	return u.seen[len(u.seen)-1]
}

// appVisitor is a person's browser in front of the proxy. The session cookie
// is the default __Host-session with Secure, kept by hand: Go's cookie jar
// does not send Secure cookies over http://, but browsers do to 127.0.0.1,
// which they treat as a secure origin. So sessionguard runs with its
// production cookie settings, not -insecure-cookie.
type appVisitor struct {
	base   string // the proxy: http://127.0.0.1:PORT
	cookie string // the session token, "" when none
}

// fetchKind is how a request is made: by a person (a page navigation) or by a script
// of the page (fetch or XHR, in the background).
type fetchKind int

const (
	pageNavigation fetchKind = iota
	scriptFetch
)

// newRequest builds a request to path (with its query) on the proxy, with
// the headers a browser sends for kind and the session cookie.
func (v *appVisitor) newRequest(t *testing.T, kind fetchKind, method, path string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, v.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch kind {
	case pageNavigation:
		r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		r.Header.Set("Sec-Fetch-Dest", "document")
	case scriptFetch:
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Sec-Fetch-Mode", "cors")
		r.Header.Set("Sec-Fetch-Dest", "empty")
	}
	if v.cookie != "" {
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: v.cookie})
	}
	return r
}

// send sends r, keeps the session cookie the response sets or clears, and
// fails the test on a transport error.
func (v *appVisitor) send(t *testing.T, r *http.Request) response {
	t.Helper()
	resp, err := client.Do(r.WithContext(context.Background()))
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", r.Method, r.URL, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name != sessionCookie {
			continue
		}
		if c.Value == "" || c.MaxAge < 0 {
			v.cookie = ""
		} else {
			v.cookie = c.Value
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// get sends a GET of kind for path.
func (v *appVisitor) get(t *testing.T, kind fetchKind, path string) response {
	t.Helper()
	return v.send(t, v.newRequest(t, kind, "GET", path, nil))
}

// postForm submits a form to path as a page does.
func (v *appVisitor) postForm(t *testing.T, path string, form url.Values) response {
	t.Helper()
	r := v.newRequest(t, pageNavigation, "POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.send(t, r)
}

// signIn submits the sign-in form through the proxy with next, and fails
// the test unless it answers 303 to next with a session cookie.
func (v *appVisitor) signIn(t *testing.T, user, password, next string) {
	t.Helper()
	v.cookie = ""
	resp := v.postForm(t, "/auth/login", url.Values{"username": {user}, "password": {password}, "next": {next}})
	if resp.status != http.StatusSeeOther || v.cookie == "" || resp.header.Get("Location") != next {
		t.Fatalf("sign-in of %s through the proxy: %d to %q, cookie %v, want 303 to %q with a cookie; body %.300s",
			user, resp.status, resp.header.Get("Location"), v.cookie != "", next, resp.body)
	}
}

// signInURL checks that resp sends a navigation to the sign-in page on the
// proxy's own origin and returns that URL.
func (v *appVisitor) signInURL(t *testing.T, what string, resp response) *url.URL {
	t.Helper()
	if resp.status != http.StatusFound && resp.status != http.StatusSeeOther {
		t.Fatalf("%s: %d %.300s, want a redirect to the sign-in page", what, resp.status, resp.body)
	}
	loc, err := url.Parse(resp.header.Get("Location"))
	if err != nil {
		t.Fatalf("%s: Location %q: %v", what, resp.header.Get("Location"), err)
	}
	base, _ := url.Parse(v.base)
	if loc.Path != "/auth/login" || (loc.Host != "" && loc.Host != base.Host) {
		t.Fatalf("%s: redirected to %s, want %s/auth/login", what, loc, v.base)
	}
	return loc
}

// expectGatewayUnauthenticated checks that resp is the 401 JSON a script gets
// without a session, with reason, and that the application got nothing.
func expectGatewayUnauthenticated(t *testing.T, what string, resp response, reason string) {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); resp.status != http.StatusUnauthorized || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: %d %q %.300s, want 401 JSON", what, resp.status, ct, resp.body)
	}
	e := jsonBody[map[string]string](t, resp)
	if e["error"] != "unauthenticated" || e["reason"] != reason {
		t.Errorf("%s: 401 with %s, want error unauthenticated and reason %q", what, resp.body, reason)
	}
}

// check asks sessionguard's auth-request endpoint directly (as nginx does,
// from a trusted address) about the visitor's session, for a navigation to
// path.
func (g *gateway) check(t *testing.T, v *appVisitor, path string) response {
	t.Helper()
	r, err := http.NewRequest("GET", g.sg.url+"/auth/gate/auth-request", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Original-URL", v.base+path)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Session-Activity", "passive")
	if v.cookie != "" {
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: v.cookie})
	}
	return (&appVisitor{}).send(t, r)
}
