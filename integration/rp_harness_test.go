package integration

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The harness of the reverse-proxy tests: `sessionguard serve -upstream`
// in front of an application written in the test, and a browser that
// sends what a real one would.

// rpUpstream is the protected application: an httptest.Server that records
// the head of every request it receives, then answers from its mux. By
// default it answers "upstream: METHOD URI" as text/plain, so a test knows
// a response came from it and for which request.
type rpUpstream struct {
	*httptest.Server
	mux *http.ServeMux

	mu   sync.Mutex
	seen []rpSeenRequest
}

// rpSeenRequest is the head of a request as the upstream received it.
type rpSeenRequest struct {
	Method string
	URI    string // as sent on the wire: path and query
	Header http.Header
}

// cookie returns the value of the cookie named name, and whether it was
// sent.
func (r rpSeenRequest) cookie(name string) (string, bool) {
	c, err := (&http.Request{Header: r.Header}).Cookie(name)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

func newRPUpstream(t *testing.T) *rpUpstream {
	t.Helper()
	up := &rpUpstream{mux: http.NewServeMux()}
	up.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, rpUpstreamBody(r.Method, r.RequestURI))
	})
	up.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		up.seen = append(up.seen, rpSeenRequest{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone()})
		up.mu.Unlock()
		up.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	return up
}

// rpUpstreamBody is what the upstream's default handler answers.
func rpUpstreamBody(method, uri string) string { return "upstream: " + method + " " + uri }

// count is how many requests the upstream has received.
func (up *rpUpstream) count() int {
	up.mu.Lock()
	defer up.mu.Unlock()
	return len(up.seen)
}

// last is the last request the upstream received; the test fails if there
// was none.
func (up *rpUpstream) last(t *testing.T) rpSeenRequest {
	t.Helper()
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.seen) == 0 {
		t.Fatal("the upstream received no request")
	}
	return up.seen[len(up.seen)-1]
}

// expectNotCalledSince fails the test if the upstream received a request
// after the first n; what says which request should not have reached it.
// The upstream records a request before it answers, and sessionguard
// answers only after the upstream has, so checking after the response is
// enough.
func (up *rpUpstream) expectNotCalledSince(t *testing.T, n int, what string) {
	t.Helper()
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, r := range up.seen[n:] {
		t.Errorf("%s: the upstream received %s %s", what, r.Method, r.URI)
	}
}

// rpServer is a `sessionguard serve -upstream` with the accounts alice
// (user) and ada (admin).
type rpServer struct {
	*instance
	up     *rpUpstream
	db     string
	cookie string // the session cookie's name
}

// startReverseProxy starts sessionguard in reverse-proxy mode in front of
// up with -insecure-cookie and args. The tests talk plain HTTP to
// 127.0.0.1; the default cookie, __Host-session, is Secure, so a browser
// (which treats loopback as secure) would send it, but Go's cookie jar
// would not. With -insecure-cookie the cookie is named "session" and
// carries no Secure. Either way the browser here keeps the cookie by hand.
func startReverseProxy(t *testing.T, up *rpUpstream, args ...string) *rpServer {
	t.Helper()
	return startReverseProxyCookie(t, up, "session", append([]string{"-insecure-cookie"}, args...)...)
}

// startReverseProxyCookie is startReverseProxy without -insecure-cookie:
// the caller passes the flags that decide the cookie's name, and the name.
func startReverseProxyCookie(t *testing.T, up *rpUpstream, cookie string, args ...string) *rpServer {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "sg.db")
	addUser(t, db, "user", "alice", alicePassword)
	addUser(t, db, "admin", "ada", adaPassword)
	base := append([]string{"-upstream", up.URL, "-sessions", "memory", "-db", db}, adminPasswordOnly...)
	s := startInstance(t, "sessionguard", append(base, args...)...)
	return &rpServer{instance: s, up: up, db: db, cookie: cookie}
}

// rpClient sends every request of these tests. It follows no redirect, so
// that tests see each answer, and it neither asks for nor decodes
// compressed bodies by itself (DisableCompression), so that tests see the
// bytes on the wire.
var rpClient = &http.Client{
	Timeout: requestTimeout,
	Transport: &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// rpBrowser is one browser of s: the session token it holds, "" when none.
type rpBrowser struct {
	s     *rpServer
	token string
}

func (s *rpServer) browser() *rpBrowser { return &rpBrowser{s: s} }

// rpResponse is what a request got.
type rpResponse struct {
	status int
	header http.Header
	body   string
}

// newRequest builds a request for path (with its query) on b's server.
func (b *rpBrowser) newRequest(method, path string, body io.Reader) *http.Request {
	r, err := http.NewRequest(method, b.s.url+path, body)
	if err != nil {
		panic(err) // the tests' own paths are valid
	}
	if method != "GET" && method != "HEAD" {
		// A browser's same-origin unsafe request; http.CrossOriginProtection
		// lets it through.
		r.Header.Set("Origin", b.s.url)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return r
}

// navigate is a page navigation, as a browser sends it when the user
// follows a link or submits a form (form non-nil: a form POST).
func (b *rpBrowser) navigate(method, path string, form url.Values) *http.Request {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := b.newRequest(method, path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	r.Header.Set("Sec-Fetch-Dest", "document")
	r.Header.Set("Sec-Fetch-User", "?1")
	if r.Header.Get("Sec-Fetch-Site") == "" {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return r
}

// fetch is a fetch() or XHR of the page's script asking for JSON; a
// non-nil body is sent as JSON.
func (b *rpBrowser) fetch(method, path string, body io.Reader) *http.Request {
	r := b.newRequest(method, path, body)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Sec-Fetch-Mode", "cors")
	r.Header.Set("Sec-Fetch-Dest", "empty")
	if r.Header.Get("Sec-Fetch-Site") == "" {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return r
}

// send sends r with b's session cookie (added to any Cookie header r
// already has) and keeps the cookie a response sets or clears.
func (b *rpBrowser) send(t *testing.T, r *http.Request) rpResponse {
	t.Helper()
	resp, err := b.trySend(r)
	if err != nil {
		t.Fatalf("%s %s: %v (sessionguard alive: %v)", r.Method, r.URL.RequestURI(), err, b.s.alive())
	}
	return resp
}

func (b *rpBrowser) trySend(r *http.Request) (rpResponse, error) {
	if b.token != "" {
		r.AddCookie(&http.Cookie{Name: b.s.cookie, Value: b.token})
	}
	resp, err := rpClient.Do(r)
	if err != nil {
		return rpResponse{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rpResponse{}, err
	}
	for _, c := range resp.Cookies() {
		if c.Name != b.s.cookie {
			continue
		}
		if c.Value == "" || c.MaxAge < 0 {
			b.token = ""
		} else {
			b.token = c.Value
		}
	}
	return rpResponse{status: resp.StatusCode, header: resp.Header, body: string(body)}, nil
}

// login signs b in with the sign-in form, as a browser submits it.
func (b *rpBrowser) login(t *testing.T, user, password string) {
	t.Helper()
	b.token = ""
	resp := b.send(t, b.navigate("POST", "/auth/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}}))
	if resp.status != http.StatusSeeOther || b.token == "" {
		t.Fatalf("sign-in of %s: %d, cookie %v, body %.300s", user, resp.status, b.token != "", resp.body)
	}
}

// rpSignInLink is a sign-in URL that sessionguard sent a browser to.
type rpSignInLink struct {
	uri          string // path and query, to follow on s
	next, reason string
}

// expectSignIn checks that resp is a redirect with status (302 or 303) to
// s's sign-in page, absolute or relative, and returns its next and reason.
func (s *rpServer) expectSignIn(t *testing.T, what string, resp rpResponse, status int) rpSignInLink {
	t.Helper()
	loc := resp.header.Get("Location")
	if resp.status != status {
		t.Fatalf("%s: %d (Location %q) %.300s, want %d to the sign-in page", what, resp.status, loc, resp.body, status)
	}
	base, _ := url.Parse(s.url + "/")
	u, err := base.Parse(loc)
	if err != nil || u.Scheme+"://"+u.Host != s.url || u.Path != "/auth/login" {
		t.Fatalf("%s: Location %q, want the sign-in page %s/auth/login", what, loc, s.url)
	}
	q := u.Query()
	return rpSignInLink{uri: u.RequestURI(), next: q.Get("next"), reason: q.Get("reason")}
}

// rpExpectUnauthenticated checks that resp is the 401 JSON answer of the
// contract, {"error":"unauthenticated","reason":...}, with reason.
func rpExpectUnauthenticated(t *testing.T, what string, resp rpResponse, reason string) {
	t.Helper()
	if resp.status != http.StatusUnauthorized || !strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: %d %q %.300s, want 401 JSON", what, resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	e := jsonBody[map[string]any](t, response{status: resp.status, body: resp.body})
	if got, ok := e["reason"]; e["error"] != "unauthenticated" || !ok || got != reason {
		t.Errorf("%s: body %s, want error \"unauthenticated\" and reason %q", what, resp.body, reason)
	}
}

var rpNextField = regexp.MustCompile(`name="next" value="([^"]*)"`)

// rpFormNext is the value of the sign-in form's hidden next field.
func rpFormNext(t *testing.T, page string) string {
	t.Helper()
	m := rpNextField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the sign-in page has no next field: %.500s", page)
	}
	return html.UnescapeString(m[1])
}

// rpWithTimeout runs f and fails the test if f fails or does not return
// within d; for reads that would otherwise block a broken test for the
// whole run. f must stop by itself once the test ends (a context the test
// cancels, a deadline).
func rpWithTimeout(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}
