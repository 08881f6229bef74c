package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/drafts"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
)

// The sessions a fuzzed request can present, chosen by its cookie byte
// (modulo their number). The fuzzer never learns a live token: the
// harness adds it.
const (
	presentNone      = iota // no session cookie (the fuzzer may send its own)
	presentUnknown          // a well-formed token no session has
	presentEnded            // the token of a session that signed out
	presentUser             // alice's live session, signed in just now
	presentAdmin            // root's live session, signed in just now
	presentStaleUser        // alice's live session, signed in 10 minutes ago
	presentModes
)

// FuzzHandler drives the whole web handler, through a real net/http
// server, with arbitrary methods, targets, headers, cookies and bodies,
// and checks what must hold for every request:
//
//   - no 5xx (the stores never fail here) and no panic;
//   - without a live session, nothing changes: no session store write, no
//     account or draft changed, no audit entry but failed sign-ins, unless
//     the request is a successful sign-in, which creates one session;
//   - a cross-origin unsafe request changes nothing either, session or not.
//
// Each input gets a fresh Server, so that an input found by the fuzzer
// fails again on its own.
func FuzzHandler(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.method, s.target, s.headers, s.present, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, target, headers string, present uint8, body []byte) {
		fuzzOne(t, fuzzRequest{method: method, target: target, headers: headers, present: present % presentModes, body: string(body)})
	})
}

// fuzzRequest is one fuzzed request: headers are "Name: value" lines.
type fuzzRequest struct {
	method, target, headers string
	present                 uint8
	body                    string
}

const (
	formType = "Content-Type: application/x-www-form-urlencoded"
	jsonType = "Content-Type: application/json"
	sameSite = "Sec-Fetch-Site: same-origin\nOrigin: https://sessionguard.test"
	htmlNav  = "Accept: text/html,application/xhtml+xml\nSec-Fetch-Mode: navigate\nSec-Fetch-Dest: document"
)

// fuzzSeeds are realistic requests: what browsers, the timeout script and
// proxies send, with and without a session.
func fuzzSeeds() []fuzzRequest {
	login := url.Values{"username": {"alice"}, "password": {alicePassword}, "next": {"/account"}}.Encode()
	wrong := url.Values{"username": {"alice"}, "password": {"not her password at all"}}.Encode()
	var seeds []fuzzRequest
	for _, present := range []uint8{presentNone, presentUnknown, presentEnded, presentUser, presentAdmin, presentStaleUser} {
		seeds = append(seeds,
			fuzzRequest{"GET", "/", htmlNav, present, ""},
			fuzzRequest{"GET", "/auth/login?next=%2Faccount&reason=idle", htmlNav, present, ""},
			fuzzRequest{"POST", "/auth/login", formType + "\n" + sameSite, present, login},
			fuzzRequest{"POST", "/auth/login", formType + "\n" + sameSite + "\nAccept: application/json", present, wrong},
			fuzzRequest{"POST", "/auth/logout", formType + "\n" + sameSite, present, ""},
			fuzzRequest{"GET", "/auth/status", "Accept: application/json\nSession-Activity: passive", present, ""},
			fuzzRequest{"GET", "/auth/status", "Accept: application/json", present, ""},
			fuzzRequest{"POST", "/auth/extend", "Accept: application/json\n" + sameSite, present, ""},
			fuzzRequest{"GET", "/auth/sessions", "Accept: application/json", present, ""},
			fuzzRequest{"POST", "/auth/sessions/revoke", formType + "\n" + sameSite, present, "all_others=1"},
			fuzzRequest{"POST", "/auth/sessions/revoke", formType + "\n" + sameSite + "\nAccept: application/json", present, "id=AAAAAAAAAAAAAAAAAAAAAA"},
			fuzzRequest{"POST", "/auth/reauth", formType + "\n" + sameSite, present, url.Values{"password": {alicePassword}, "next": {"/account"}}.Encode()},
			fuzzRequest{"POST", "/account/password", formType + "\n" + sameSite, present,
				url.Values{"current_password": {alicePassword}, "new_password": {"a brand new passphrase here"}, "end_others": {"on"}}.Encode()},
			fuzzRequest{"POST", "/admin/users/disable", formType + "\n" + sameSite, present, "username=alice"},
			fuzzRequest{"POST", "/admin/users", formType + "\n" + sameSite, present,
				url.Values{"username": {"carol"}, "password": {bobPassword}, "role": {"user"}}.Encode()},
			fuzzRequest{"POST", "/admin/sessions/revoke", formType + "\n" + sameSite, present, "id=AAAAAAAAAAAAAAAAAAAAAA"},
			fuzzRequest{"POST", "/admin/users/password", formType + "\n" + sameSite, present,
				url.Values{"username": {"alice"}, "password": {"another fine passphrase"}}.Encode()},
			fuzzRequest{"GET", "/auth/drafts?path=%2Faccount", "Accept: application/json", present, ""},
			fuzzRequest{"POST", "/auth/drafts", jsonType + "\n" + sameSite, present,
				`{"form":"note","path":"/account","fields":{"note":"half a thought","pin":"1234"}}`},
			fuzzRequest{"DELETE", "/auth/drafts?path=%2Faccount&form=note", sameSite, present, ""},
			fuzzRequest{"POST", "/notes", formType + "\n" + sameSite, present, "note=remember+the+milk"},
			fuzzRequest{"GET", "/auth/gate/auth-request", "X-Original-URL: https://app.example.com/reports?q=1\nX-Original-Method: POST", present, ""},
			fuzzRequest{"GET", "/auth/gate/forward-auth", "X-Forwarded-Method: GET\nX-Forwarded-Proto: https\nX-Forwarded-Host: app.example.com\nX-Forwarded-Uri: /x", present, ""},
		)
	}
	seeds = append(seeds,
		fuzzRequest{"POST", "/auth/reauth", formType + "\n" + sameSite, presentAdmin, url.Values{"password": {rootPassword}}.Encode()},
		fuzzRequest{"POST", "/auth/logout", formType + "\nSec-Fetch-Site: cross-site\nOrigin: https://evil.example", presentUser, ""},
		fuzzRequest{"GET", "/admin/audit?user=alice&event=login_failed", htmlNav, presentAdmin, ""},
		fuzzRequest{"GET", "/setup?token=abc", htmlNav, presentNone, ""},
		fuzzRequest{"GET", "/metrics", "", presentNone, ""},
		fuzzRequest{"HEAD", "/auth/static/timeout.js", "", presentNone, ""},
		fuzzRequest{"PUT", "/a/../auth/login", "", presentNone, ""},
		fuzzRequest{"POST", "/auth/login", formType + "\nCookie: __Host-session=" + strings.Repeat("A", 43), presentNone, "username=%ff&password=x"},
	)
	return seeds
}

func fuzzOne(t *testing.T, in fuzzRequest) {
	var draftsDB *sqldb.DB
	e := newEnv(t, func(cfg *Config) {
		var err error
		if draftsDB, err = sqldb.Open(context.Background(), "sqlite:"+t.TempDir()+"/drafts.db"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { draftsDB.Close() })
		if cfg.Drafts, err = drafts.NewStore(context.Background(), draftsDB, drafts.Options{Clock: cfg.Clock.Now}); err != nil {
			t.Fatal(err)
		}
	})
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("root", rootPassword, account.RoleAdmin)
	cookie := e.sessions.CookieName()
	var token string
	switch in.present {
	case presentUnknown:
		token = strings.Repeat("Q", 42) + "A" // well formed, never issued
	case presentEnded:
		token = e.fuzzLogin(t, "alice", "user")
		if err := e.sessions.Logout(httptest.NewRecorder(), fuzzCookieRequest(cookie, token)); err != nil {
			t.Fatal(err)
		}
	case presentUser:
		token = e.fuzzLogin(t, "alice", "user")
	case presentAdmin:
		token = e.fuzzLogin(t, "root", "admin")
	case presentStaleUser:
		token = e.fuzzLogin(t, "alice", "user")
		e.clock.Advance(10 * time.Minute)
	}
	live := in.present == presentUser || in.present == presentAdmin || in.present == presentStaleUser
	// A change made now is told apart from the accounts' creation.
	e.clock.Advance(time.Second)

	before := e.fuzzState(t, draftsDB)
	// The server records the request it parsed (the harness may have sent
	// something net/http refuses before any handler runs) and says when
	// the handler is done, so the state is read after every write.
	var seenAtomic atomic.Pointer[http.Request]
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		seenAtomic.Store(r.Clone(context.Background()))
		e.handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	raw := in.raw(cookie, token)
	status, respBody, err := roundTrip(srv.Listener.Addr().String(), raw, in.method)
	seen := seenAtomic.Load()
	if seen == nil {
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
	if status >= 500 {
		t.Fatalf("status %d\nrequest:\n%q\nbody:\n%.2000s\nlog:\n%s", status, raw, respBody, e.logs.String())
	}
	if strings.Contains(e.logs.String(), "panic while serving") {
		t.Fatalf("a panic while serving (status %d)\nrequest:\n%q\nlog:\n%s", status, raw, e.logs.String())
	}
	after := e.fuzzState(t, draftsDB)

	crossOrigin := http.NewCrossOriginProtection().Check(seen) != nil
	if live && !crossOrigin {
		// A signed-in user may change things, but a passive read (a
		// poll, a prefetch) never even records activity.
		safe := seen.Method == http.MethodGet || seen.Method == http.MethodHead
		if w := after.writes - before.writes; safe && (markedPassive(seen) || seen.URL.Path == "/auth/status") && w != 0 {
			t.Errorf("%d session store writes for a passive %s %s\nrequest:\n%q", w, seen.Method, seen.URL, raw)
		}
		return
	}
	// A successful sign-in creates its session (and says so in the audit
	// log); nothing else may change.
	signIn := !live && !crossOrigin && after.audit[audit.LoginSucceeded] == before.audit[audit.LoginSucceeded]+1
	wantWrites := int64(0)
	if signIn {
		wantWrites = 1
	}
	why := "without a live session"
	if live {
		why = "from another origin"
	}
	if w := after.writes - before.writes; w != wantWrites {
		t.Errorf("%d session store writes %s (a sign-in: %v), want %d", w, why, signIn, wantWrites)
	}
	if !slices.Equal(after.users, before.users) {
		t.Errorf("accounts changed %s:\nbefore %v\nafter  %v", why, before.users, after.users)
	}
	if after.drafts != before.drafts {
		t.Errorf("drafts changed %s: %s, then %s", why, before.drafts, after.drafts)
	}
	for ev, n := range after.audit {
		allowed := ev == audit.LoginFailed && !crossOrigin ||
			signIn && (ev == audit.LoginSucceeded || ev == audit.SessionStarted) && n == before.audit[ev]+1
		if n != before.audit[ev] && !allowed {
			t.Errorf("audit %s: %d entries, then %d %s", ev, before.audit[ev], n, why)
		}
	}
	if t.Failed() {
		t.Logf("status %d\nrequest:\n%q\nlog:\n%s", status, raw, e.logs.String())
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

// fuzzLogin signs user in directly and returns the session's token.
func (e *testEnv) fuzzLogin(t *testing.T, user, role string) string {
	t.Helper()
	w := httptest.NewRecorder()
	if _, err := e.sessions.Login(w, httptest.NewRequest("POST", "/auth/login", nil), user, session.LoginOptions{Policy: e.srv.policyFor(role)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == e.sessions.CookieName() {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func fuzzCookieRequest(name, token string) *http.Request {
	r := httptest.NewRequest("POST", "/auth/logout", nil)
	r.Header.Set("Cookie", name+"="+token)
	return r
}

// fuzzState is what a request without a session must leave alone.
type fuzzState struct {
	writes int64
	users  []string
	drafts string
	audit  map[audit.Event]int
}

func (e *testEnv) fuzzState(t *testing.T, draftsDB *sqldb.DB) fuzzState {
	t.Helper()
	ctx := context.Background()
	st := fuzzState{writes: e.store.writes.Load(), audit: map[audit.Event]int{}}
	users, err := e.accounts.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		st.users = append(st.users, fmt.Sprintf("%s/%s/disabled=%v/password=%s", u.Name, u.Role, u.Disabled, u.PasswordChangedAt.Format(time.RFC3339Nano)))
	}
	entries, err := e.audit.Query(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range entries {
		st.audit[x.Event]++
	}
	rows, err := draftsDB.QueryContext(ctx, "SELECT user_name, path, form, fields, saved_at FROM drafts ORDER BY user_name, path, form")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var user, path, form, fields string
		var savedAt int64
		if err := rows.Scan(&user, &path, &form, &fields, &savedAt); err != nil {
			t.Fatal(err)
		}
		st.drafts += fmt.Sprintf("%s %q %q %s %d; ", user, path, form, fields, savedAt)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return st
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
		case "content-length", "transfer-encoding", "connection":
			continue
		case "host":
			host = true
		}
		b.WriteString(line + "\r\n")
	}
	if !host {
		b.WriteString("Host: sessionguard.test\r\n")
	}
	if token != "" {
		b.WriteString("Cookie: " + cookieName + "=" + token + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(in.body))
	b.WriteString(in.body)
	return b.String()
}

// roundTrip sends raw to addr and returns the response's status and (the
// start of) its body.
func roundTrip(addr, raw, method string) (int, string, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return 0, "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.ToUpper(method)})
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, string(body), nil
}
