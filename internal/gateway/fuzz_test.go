package gateway

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// The sessions a fuzzed request can present, chosen by its session byte
// (modulo their number); the byte's next choice (divided by their number,
// modulo 2) says whether the request's peer is a trusted proxy, whose
// X-Original-* and X-Forwarded-* headers count. The fuzzer never learns a
// live token: the harness adds it.
const (
	presentNone    = iota // no session cookie (the fuzzer may send its own)
	presentUnknown        // a well-formed token no session has
	presentEnded          // the token of a session that signed out
	presentUser           // alice's live session
	presentAdmin          // root's live session
	presentModes
)

// FuzzGateway drives the gateway in reverse-proxy mode, in front of the web
// server and an application, through a real net/http server, with
// arbitrary methods, targets, headers, cookies and bodies. For every
// request:
//
//   - no 5xx (the stores and the application never fail here), no panic;
//   - the application sees only requests with a live session, never the
//     session cookie, and the identity only the gateway vouches for;
//   - without a live session nothing changes: no session store write (but
//     the one session of a successful sign-in) and no account changed.
//
// Each input gets a fresh gateway, so that an input found by the fuzzer
// fails again on its own.
func FuzzGateway(f *testing.F) {
	for _, s := range gatewaySeeds() {
		f.Add(s.method, s.target, s.headers, s.present, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, target, headers string, present uint8, body []byte) {
		fuzzGateway(t, fuzzRequest{method: method, target: target, headers: headers, present: present, body: string(body)})
	})
}

// fuzzRequest is one fuzzed request: headers are "Name: value" lines.
type fuzzRequest struct {
	method, target, headers string
	present                 uint8
	body                    string
}

const (
	navLines   = "Accept: text/html,application/xhtml+xml\nSec-Fetch-Mode: navigate\nSec-Fetch-Dest: document\nAccept-Encoding: gzip, br"
	fetchLines = "Accept: application/json\nSec-Fetch-Mode: cors\nSec-Fetch-Dest: empty"
	formLines  = "Content-Type: application/x-www-form-urlencoded\nSec-Fetch-Site: same-origin\nOrigin: http://sg.internal:8080"
	trustedBit = presentModes // added to a present value: from a trusted proxy
)

// gatewaySeeds are realistic requests: page views, form posts, scripts'
// fetches, WebSockets, the proxies' checks, sign-in and sign-out.
func gatewaySeeds() []fuzzRequest {
	login := url.Values{"username": {"alice"}, "password": {password}, "next": {"/reports"}}.Encode()
	var seeds []fuzzRequest
	for _, present := range []uint8{presentNone, presentUnknown, presentEnded, presentUser, presentAdmin} {
		seeds = append(seeds,
			fuzzRequest{"GET", "/reports?q=1", navLines + "\nCookie: theme=dark", present, ""},
			fuzzRequest{"POST", "/api/save", "Content-Type: application/json\n" + fetchLines + "\nRemote-User: root\nSession-Activity: active", present, `{"x":1}`},
			fuzzRequest{"GET", "/ws", "Connection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", present, ""},
			fuzzRequest{"GET", AuthRequestPath, "X-Original-URL: https://app.example.com/reports?q=1\nX-Original-Method: POST\nReferer: https://app.example.com/form", present + trustedBit, ""},
			fuzzRequest{"GET", ForwardAuthPath, navLines + "\nX-Forwarded-Method: GET\nX-Forwarded-Proto: https\nX-Forwarded-Host: app.example.com\nX-Forwarded-Uri: /x?y=1", present + trustedBit, ""},
			fuzzRequest{"GET", "/page", navLines + "\nX-Forwarded-Proto: https\nX-Forwarded-Host: app.example.com\nX-Forwarded-For: 198.51.100.7", present + trustedBit, ""},
			fuzzRequest{"POST", "/auth/login", formLines, present, login},
			fuzzRequest{"POST", "/auth/logout", formLines, present, ""},
			fuzzRequest{"GET", "/auth/status", "Accept: application/json\nSession-Activity: passive", present, ""},
			fuzzRequest{"GET", "/auth/sessions", "Accept: application/json", present, ""},
		)
	}
	return append(seeds,
		fuzzRequest{"HEAD", "/healthz", "", presentNone, ""},
		fuzzRequest{"GET", "/auth", "", presentNone, ""},
		fuzzRequest{"OPTIONS", "*", "", presentUser, ""},
		fuzzRequest{"GET", "http://other.example/absolute", navLines, presentUser, ""},
	)
}

// upstreamLog is what the application behind the gateway received.
type upstreamLog struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (u *upstreamLog) taken() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}

// writeCounter counts the calls that change a session.
type writeCounter struct {
	session.Store
	creates, others atomic.Int64
}

func (s *writeCounter) Create(ctx context.Context, rec session.Record) error {
	s.creates.Add(1)
	return s.Store.Create(ctx, rec)
}

func (s *writeCounter) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	s.others.Add(1)
	return s.Store.Touch(ctx, id, at, exp)
}

func (s *writeCounter) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	s.others.Add(1)
	return s.Store.SaveData(ctx, id, old, data)
}

func (s *writeCounter) Renew(ctx context.Context, id string, old, new session.TokenHash, r session.Renewal) error {
	s.others.Add(1)
	return s.Store.Renew(ctx, id, old, new, r)
}

func (s *writeCounter) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	s.others.Add(1)
	return s.Store.End(ctx, id, e)
}

const page = "<!doctype html><html><head><title>App</title></head><body>hello</body></html>"

func fuzzGateway(t *testing.T, in fuzzRequest) {
	mode := in.present % presentModes
	trusted := in.present/presentModes%2 == 1
	app := &upstreamLog{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.mu.Lock()
		app.reqs = append(app.reqs, r.Clone(context.Background()))
		app.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, page)
			zw.Close()
			return
		}
		io.WriteString(w, page)
	}))
	defer up.Close()
	e := newEnv(t, func(c *Config) {
		c.Upstream, _ = url.Parse(up.URL)
		c.InjectScript = true
		c.DefaultBaseURL = "http://sg.internal:8080"
		if trusted {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		}
	})
	counter := &writeCounter{Store: e.store.Store}
	e.store.Store = counter

	cookie := e.sessions.CookieName()
	var token, user string
	switch mode {
	case presentUnknown:
		token = strings.Repeat("Q", 42) + "A" // well formed, never issued
	case presentEnded:
		token = e.login("alice")
		r := httptest.NewRequest("POST", "/auth/logout", nil)
		r.Header.Set("Cookie", cookie+"="+token)
		if err := e.sessions.Logout(httptest.NewRecorder(), r); err != nil {
			t.Fatal(err)
		}
	case presentUser:
		token, user = e.login("alice"), "alice"
	case presentAdmin:
		token, user = e.login("root"), "root"
	}
	live := user != ""
	// Past the touch interval, so that activity is written; a change now
	// is told apart from the accounts' creation.
	e.clock.Advance(2 * time.Minute)

	usersBefore := e.fuzzUsers(t)
	creates, others := counter.creates.Load(), counter.others.Load()
	var seen atomic.Pointer[http.Request]
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		seen.Store(r.Clone(context.Background()))
		e.handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	raw := in.raw(cookie, token)
	res, err := fuzzRoundTrip(srv.Listener.Addr().String(), raw, in.method)
	if seen.Load() == nil {
		return // net/http refused it before any handler ran
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the handler did not return within 30s\nrequest:\n%q", raw)
	}
	if err != nil {
		t.Fatalf("no answer: %v\nrequest:\n%q\nlog:\n%s", err, raw, e.logs.String())
	}
	report := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	if res.status >= 500 {
		report("status %d; body:\n%.2000s", res.status, res.body)
	}
	if strings.Contains(e.logs.String(), "panic while serving") {
		report("a panic while serving (status %d)", res.status)
	}
	for _, got := range app.taken() {
		if !live {
			report("the application got %s %s without a live session", got.Method, got.URL)
			continue
		}
		if v := got.Header.Values("Remote-User"); len(v) != 1 || v[0] != user {
			report("the application got Remote-User %q, want %q only", v, user)
		}
		for _, c := range got.Cookies() {
			if c.Name == cookie {
				report("the application got the session cookie")
			}
		}
	}
	safe := seen.Load().Method == http.MethodGet || seen.Load().Method == http.MethodHead
	if live && safe && markedPassive(seen.Load()) && counter.others.Load() != others {
		report("%d session store writes for a passive request", counter.others.Load()-others)
	}
	if !live {
		// A successful sign-in is the only write: the session it creates.
		signIn := res.setsCookie(cookie) && seen.Load().URL.Path == "/auth/login"
		wantCreates := int64(0)
		if signIn {
			wantCreates = 1
		}
		if n := counter.creates.Load() - creates; n != wantCreates {
			report("%d sessions created without a live session (a sign-in: %v), want %d", n, signIn, wantCreates)
		}
		if n := counter.others.Load() - others; n != 0 {
			report("%d session store writes without a live session", n)
		}
		if after := e.fuzzUsers(t); !slices.Equal(after, usersBefore) {
			report("accounts changed without a live session:\nbefore %v\nafter  %v", usersBefore, after)
		}
	}
	if t.Failed() {
		t.Logf("status %d, trusted peer %v\nrequest:\n%q\nlog:\n%s", res.status, trusted, raw, e.logs.String())
	}
}

// markedPassive reports whether r says it is no activity, by the headers
// session.Passive's documentation names.
func markedPassive(r *http.Request) bool {
	if v := r.Header["Session-Activity"]; len(v) > 0 && strings.EqualFold(v[0], "passive") {
		return true
	}
	if v := r.Header["Sec-Purpose"]; len(v) > 0 && strings.HasPrefix(strings.TrimSpace(v[0]), "prefetch") {
		return true
	}
	v := r.Header["Purpose"]
	return len(v) > 0 && strings.EqualFold(v[0], "prefetch")
}

// fuzzUsers describes every account, password changes included.
func (e *env) fuzzUsers(t *testing.T) []string {
	t.Helper()
	users, err := e.accounts.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range users {
		out = append(out, fmt.Sprintf("%s/%s/disabled=%v/password=%s", u.Name, u.Role, u.Disabled, u.PasswordChangedAt.Format(time.RFC3339Nano)))
	}
	return out
}

// raw is the request as bytes on the wire. The harness frames it: one
// request line, the fuzzer's header lines (no line breaks of their own,
// no framing headers), the session cookie, and a body of Content-Length
// bytes, so that exactly one request reaches the server.
func (in fuzzRequest) raw(cookieName, token string) string {
	strip := strings.NewReplacer("\r", "", "\n", "")
	method := strip.Replace(in.method)
	if method == "" {
		method = "GET"
	}
	target := strip.Replace(in.target)
	if target == "" {
		target = "/"
	}
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\n")
	host := false
	for line := range strings.SplitSeq(in.headers, "\n") {
		line = strings.ReplaceAll(line, "\r", "")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length", "transfer-encoding":
			continue
		case "host":
			host = true
		}
		b.WriteString(line + "\r\n")
	}
	if !host {
		b.WriteString("Host: sg.internal:8080\r\n")
	}
	if token != "" {
		b.WriteString("Cookie: " + cookieName + "=" + token + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(in.body))
	b.WriteString(in.body)
	return b.String()
}

// fuzzResponse is what the harness keeps of an answer.
type fuzzResponse struct {
	status  int
	body    string
	cookies []*http.Cookie
}

func (r fuzzResponse) setsCookie(name string) bool {
	for _, c := range r.cookies {
		if c.Name == name && c.Value != "" && c.MaxAge >= 0 {
			return true
		}
	}
	return false
}

// fuzzRoundTrip sends raw to addr and reads the answer.
func fuzzRoundTrip(addr, raw, method string) (fuzzResponse, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fuzzResponse{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return fuzzResponse{}, err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.ToUpper(method)})
	if err != nil {
		return fuzzResponse{}, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return fuzzResponse{status: res.StatusCode, body: string(body), cookies: res.Cookies()}, nil
}

// TestProxyRefusesInvalidUpgrade: a signed-in browser asking to switch to a
// protocol whose name is not printable ASCII gets 400, not the 502 and the
// "upstream did not answer" error that httputil.ReverseProxy's refusal
// would give (FuzzGateway found it).
func TestProxyRefusesInvalidUpgrade(t *testing.T) {
	up := newUpstream(t, nil)
	e := proxyEnv(t, up, nil)
	tok := e.login("alice")
	res := e.do("GET", "/ws", tok, "Connection", "Upgrade", "Upgrade", "\x910")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", res.StatusCode)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
	if strings.Contains(e.logs.String(), "did not answer") {
		t.Errorf("logged as the upstream's failure:\n%s", e.logs.String())
	}
	// A valid upgrade still goes through.
	res = e.do("GET", "/ws", tok, "Connection", "keep-alive, Upgrade", "Upgrade", "websocket")
	if res.StatusCode != http.StatusOK {
		t.Errorf("a valid Upgrade: status %d, want the application's 200", res.StatusCode)
	}
}
