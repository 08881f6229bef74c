package main

// Tests of the built binary, run as a real process: what a user and the
// deployment scripts meet. The binary is built once, on first use.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Remove()
	os.Exit(code)
}

// result is what a finished command printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs the binary to completion in dir with stdin as its input.
func runCLI(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(testbin.Path(t, raceEnabled), args...)
	cmd.Dir = dir
	cmd.Env = testbin.CleanEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustCLI runs the binary and fails the test unless it exits 0.
func mustCLI(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	r := runCLI(t, dir, stdin, nil, args...)
	if r.code != 0 {
		t.Fatalf("sessionguard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// server is a running `sessionguard serve`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	dir  string
	db   string // the -db DSN
	url  string // http://127.0.0.1:PORT
	addr string

	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// listeningRE finds the address in the start-up line, text or JSON.
var listeningRE = regexp.MustCompile(`msg"?[=:]"sessionguard listening"[ ,]"?addr"?[=:]"?([^\s"]+)`)

// startServer starts serve on a free port of 127.0.0.1 with a fresh SQLite
// database and waits until it listens. The process is killed when the test
// ends, if it is still running.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// startServerEnv is startServer with the variables env ("NAME=value") in
// the server's environment.
func startServerEnv(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, dir: dir, db: "sqlite:" + filepath.Join(dir, "sg.db"), exited: make(chan struct{})}
	if !slices.Contains(args, "-db") {
		args = append([]string{"-db", s.db}, args...)
	}
	args = append([]string{"serve", "-addr", "127.0.0.1:0"}, args...)
	s.cmd = exec.Command(testbin.Path(t, raceEnabled), args...)
	s.cmd.Dir = dir
	s.cmd.Env = testbin.CleanEnv(env...)
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			select {
			case lines <- sc.Text():
			default:
			}
		}
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("server stderr:\n%s", s.log())
		}
	})
	deadline := time.After(30 * time.Second)
	for s.addr == "" {
		select {
		case line := <-lines:
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				s.addr = m[1]
			}
		case <-s.exited:
			t.Fatalf("the server exited before listening: %v\n%s", s.err, s.log())
		case <-deadline:
			t.Fatalf("the server did not log its address within 30s:\n%s", s.log())
		}
	}
	s.url = "http://" + s.addr
	if slices.Contains(args, "-tls-cert") {
		s.url = "https://" + s.addr
	}
	return s
}

// log returns everything the server wrote to stderr so far.
func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// waitLog waits until the server's stderr matches re, and returns the match.
func (s *server) waitLog(re *regexp.Regexp) []string {
	s.t.Helper()
	var m []string
	eventually(s.t, 30*time.Second, func() bool {
		if m = re.FindStringSubmatch(s.log()); m != nil {
			return true
		}
		select {
		case <-s.exited:
			s.t.Fatalf("the server exited (%v) before its log matched %s", s.err, re)
		default:
		}
		return false
	}, "the server's log to match "+re.String())
	return m
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client is an HTTP client that follows no redirects and keeps no cookies:
// the session cookie is Secure, which Go's cookie jar does not send over
// http://, so the tests carry it by hand as a browser on localhost would.
var client = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends a request with the session cookie (if any) and returns the
// response with its body read.
func do(t *testing.T, method, u, cookie string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return resp, string(b)
}

// testPassword passes the account package's password policy.
const testPassword = "correct horse battery staple"

// login signs user in and returns the Cookie header value that carries the
// session.
func login(t *testing.T, s *server, user, password string) string {
	t.Helper()
	resp, body := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {user}, "password": {password}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d Location %q, want 303 to /\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" && c.Value != "" {
			if !c.Secure || !c.HttpOnly {
				t.Errorf("session cookie Secure=%v HttpOnly=%v, want both", c.Secure, c.HttpOnly)
			}
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("login set no __Host-session cookie: %v", resp.Header["Set-Cookie"])
	return ""
}

// auditEvent is one line of `sessionguard audit -json`.
type auditEvent struct {
	Time    string `json:"time"`
	Event   string `json:"event"`
	User    string `json:"user"`
	Session string `json:"session"`
	Reason  string `json:"reason"`
	IP      string `json:"ip"`
}

// readAudit reads the audit log through the CLI, checking that every line
// is a JSON object with exactly the contract's keys.
func readAudit(t *testing.T, s *server) []auditEvent {
	t.Helper()
	out := mustCLI(t, s.dir, "", "audit", "-db", s.db, "-json")
	var events []auditEvent
	for line := range strings.Lines(out) {
		var keys map[string]any
		if err := json.Unmarshal([]byte(line), &keys); err != nil {
			t.Fatalf("audit -json line %q: %v", line, err)
		}
		for _, k := range []string{"time", "event", "user", "session", "reason", "ip"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("audit -json line %q lacks the key %q", line, k)
			}
		}
		var e auditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit -json line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

// sessionOf returns the public session ID of the last login_succeeded of user.
func sessionOf(t *testing.T, events []auditEvent, user string) string {
	t.Helper()
	id := ""
	for _, e := range events {
		if e.Event == "login_succeeded" && e.User == user {
			id = e.Session
		}
	}
	if id == "" {
		t.Fatalf("no login_succeeded of %s in the audit log: %+v", user, events)
	}
	return id
}

// endings returns the session_ended events of session id.
func endings(events []auditEvent, id string) []auditEvent {
	var out []auditEvent
	for _, e := range events {
		if e.Event == "session_ended" && e.Session == id {
			out = append(out, e)
		}
	}
	return out
}

var setupLinkRE = regexp.MustCompile(`(http://\S+/setup\?token=[A-Za-z0-9_-]{43})\s`)

// TestProcessSignInAndOut walks the first minutes of a new installation:
// setup link printed, a user added from the command line, sign-in, the home
// page, /auth/status, sign-out, and the old cookie refused.
func TestProcessSignInAndOut(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	// The link names localhost, where browsers accept the Secure cookie
	// over plain HTTP; the server listens on its loopback address.
	link := s.waitLog(setupLinkRE)[1]
	_, port, _ := net.SplitHostPort(s.addr)
	path, ok := strings.CutPrefix(link, "http://localhost:"+port)
	if !ok {
		t.Fatalf("setup link %q is not http://localhost:%s/...", link, port)
	}
	if resp, _ := do(t, "GET", s.url+path, "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET the setup link: %d, want 200", resp.StatusCode)
	}
	// The token is printed for the person at the terminal, never logged.
	token := link[strings.Index(link, "token=")+len("token="):]
	for line := range strings.Lines(s.log()) {
		if strings.HasPrefix(line, "time=") && strings.Contains(line, token) {
			t.Errorf("a log line holds the setup token: %s", line)
		}
	}
	s.waitLog(regexp.MustCompile(`level=INFO msg="no account yet: printed a one-time setup link.*expires=`))

	out := mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", "Alice")
	if !strings.Contains(out, "alice") {
		t.Errorf("user add printed %q", out)
	}
	list := mustCLI(t, s.dir, "", "user", "list", "-db", s.db)
	if !regexp.MustCompile(`(?m)^alice\s+user\s+false\s+\d{4}-`).MatchString(list) {
		t.Errorf("user list:\n%s", list)
	}

	// A wrong password gets 401 and no session.
	resp, _ := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {"alice"}, "password": {"not the password at all"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", resp.StatusCode)
	}

	cookie := login(t, s, "alice", testPassword)

	resp, body := do(t, "GET", s.url+"/", cookie, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice") {
		t.Errorf("home page: %d, mentions alice: %v", resp.StatusCode, strings.Contains(body, "alice"))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("home page Cache-Control %q, want no-store", cc)
	}

	resp, body = do(t, "GET", s.url+"/auth/status", cookie, nil)
	var status struct {
		Authenticated bool     `json:"authenticated"`
		User          string   `json:"user"`
		Idle          *float64 `json:"idle_remaining_s"`
		Absolute      *float64 `json:"absolute_remaining_s"`
	}
	if err := json.Unmarshal([]byte(body), &status); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/auth/status: %d %q: %v", resp.StatusCode, body, err)
	}
	if !status.Authenticated || status.User != "alice" || status.Idle == nil || status.Absolute == nil ||
		*status.Idle <= 0 || *status.Idle > 30*60 || *status.Absolute <= 29*60 || *status.Absolute > 12*3600 {
		t.Errorf("/auth/status = %s", body)
	}

	resp, _ = do(t, "POST", s.url+"/auth/logout", cookie, url.Values{})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/login?reason=logout" {
		t.Errorf("logout: %d to %q, want 303 to /auth/login?reason=logout", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The old cookie, replayed, is refused: the session ended on the server.
	resp, _ = do(t, "GET", s.url+"/account", cookie, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/auth/login" ||
		loc.Query().Get("reason") != "logout" || loc.Query().Get("next") != "/account" {
		t.Errorf("replayed cookie: %d to %q, want 303 to /auth/login?next=/account&reason=logout", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = do(t, "GET", s.url+"/auth/status", cookie, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"authenticated":false`) {
		t.Errorf("replayed cookie /auth/status: %d %s", resp.StatusCode, body)
	}

	events := readAudit(t, s)
	id := sessionOf(t, events, "alice")
	if e := endings(events, id); len(e) != 1 || e[0].Reason != "logout" || e[0].User != "alice" {
		t.Errorf("session_ended events of %s: %+v, want one with reason logout", id, e)
	}
	if strings.Contains(s.log(), strings.TrimPrefix(cookie, "__Host-session=")) {
		t.Error("the server logged the session token")
	}
	if strings.Contains(s.log(), "DATA RACE") {
		t.Error("the race detector found a race in the server")
	}
}

// TestProcessIdleTimeout runs the server with a 2-second idle timeout and
// checks that a session nobody uses ends for inactivity, recorded once by
// the sweeper without any request, and that the browser is told why.
func TestProcessIdleTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-idle-timeout", "2s", "-absolute-timeout", "1m", "-warn-before", "1s")
	mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", "bob")
	cookie := login(t, s, "bob", testPassword)
	id := sessionOf(t, readAudit(t, s), "bob")

	// No request: the sweeper alone must end the session and audit it.
	var events []auditEvent
	eventually(t, 30*time.Second, func() bool {
		events = readAudit(t, s)
		return len(endings(events, id)) > 0
	}, "the idle session's session_ended event")

	resp, _ := do(t, "GET", s.url+"/", cookie, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/auth/login" || loc.Query().Get("reason") != "idle" {
		t.Errorf("after the idle timeout: %d to %q, want 303 to /auth/login?...reason=idle", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := do(t, "GET", s.url+"/auth/status", cookie, nil, "Accept", "application/json")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"reason":"idle"`) {
		t.Errorf("/auth/status after the idle timeout: %d %s", resp.StatusCode, body)
	}

	events = readAudit(t, s)
	e := endings(events, id)
	if len(e) != 1 || e[0].Reason != "idle" || e[0].User != "bob" {
		t.Errorf("session_ended events of %s: %+v, want exactly one, reason idle", id, e)
	}
}

// TestProcessUserDisable checks that disabling a user from the command line
// ends the sessions the running server holds, and is audited.
func TestProcessUserDisable(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", "carol")
	cookie := login(t, s, "carol", testPassword)

	out := mustCLI(t, s.dir, "", "user", "disable", "-db", s.db, "carol")
	if !strings.Contains(out, "ended 1 session") {
		t.Errorf("user disable printed %q", out)
	}
	resp, _ := do(t, "GET", s.url+"/", cookie, nil)
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("reason") != "revoked" {
		t.Errorf("after user disable: %d to %q, want 303 with reason=revoked", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {"carol"}, "password": {testPassword}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("disabled user's login: %d, want 401", resp.StatusCode)
	}
	if list := mustCLI(t, s.dir, "", "user", "list", "-db", s.db); !regexp.MustCompile(`(?m)^carol\s+user\s+true\s`).MatchString(list) {
		t.Errorf("user list after disable:\n%s", list)
	}

	events := readAudit(t, s)
	id := sessionOf(t, events, "carol")
	if e := endings(events, id); len(e) != 1 || e[0].Reason != "revoked" {
		t.Errorf("session_ended events of %s: %+v, want one with reason revoked", id, e)
	}
	disabled := 0
	for _, e := range events {
		if e.Event == "user_disabled" && e.User == "carol" {
			disabled++
		}
	}
	if disabled != 1 {
		t.Errorf("%d user_disabled events for carol, want 1", disabled)
	}

	mustCLI(t, s.dir, "", "user", "enable", "-db", s.db, "carol")
	login(t, s, "carol", testPassword)

	// The filters of the audit command.
	out = mustCLI(t, s.dir, "", "audit", "-db", s.db, "-json", "-user", "carol", "-event", "user_disabled")
	if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, `"event":"user_disabled"`) {
		t.Errorf("audit -user carol -event user_disabled:\n%s", out)
	}
	out = mustCLI(t, s.dir, "", "audit", "-db", s.db, "-since", "1h")
	if !strings.Contains(out, "user_disabled") || !strings.Contains(out, "carol") {
		t.Errorf("audit -since 1h (text):\n%s", out)
	}
}

// TestProcessPasswd checks that `user passwd` changes the password, ends the
// user's sessions and is audited.
func TestProcessPasswd(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", "dave")
	cookie := login(t, s, "dave", testPassword)
	const newPassword = "a much better passphrase, surely"
	mustCLI(t, s.dir, newPassword+"\n", "user", "passwd", "-db", s.db, "-password-stdin", "dave")

	if resp, _ := do(t, "GET", s.url+"/", cookie, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("old session after passwd: %d, want 303", resp.StatusCode)
	}
	if resp, _ := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {"dave"}, "password": {testPassword}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old password after passwd: %d, want 401", resp.StatusCode)
	}
	login(t, s, "dave", newPassword)
	found := false
	for _, e := range readAudit(t, s) {
		found = found || (e.Event == "password_changed" && e.User == "dave")
	}
	if !found {
		t.Error("no password_changed event for dave")
	}
}

// TestProcessGracefulShutdown sends SIGTERM while a request is in flight:
// the server stops accepting connections, finishes the request, and exits 0.
func TestProcessGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	// A sign-in whose body has not arrived is in flight until it has. With
	// "Expect: 100-continue" the server says when its handler has started
	// reading the body, so the signal surely comes with the request in
	// flight, not before the server accepted the connection.
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	body := url.Values{"username": {"nobody"}, "password": {"some wrong password"}}.Encode()
	fmt.Fprintf(conn, "POST /auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", s.addr, len(body))
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v %v", resp, err)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the listener is closed.
	eventually(t, 30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "the server to stop accepting connections")
	select {
	case <-s.exited:
		t.Fatal("the server exited with a request in flight")
	default:
	}

	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("in-flight sign-in: %d, want 401", resp.StatusCode)
	}

	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit within 30s of SIGTERM")
	}
	if s.err != nil {
		t.Errorf("exit: %v, want status 0\n%s", s.err, s.log())
	}
}

// TestProcessBadFlag checks what a mistyped flag or variable gives: exit 2
// and one line naming the flag, before anything is opened.
func TestProcessBadFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"-idle-timeout", "abc"}, nil, `sessionguard: invalid value "abc" for -idle-timeout: time: invalid duration "abc"` + "\n"},
		{[]string{"serve"}, []string{"SESSIONGUARD_IDLE_TIMEOUT=abc"},
			`sessionguard: invalid value "abc" for -idle-timeout (from SESSIONGUARD_IDLE_TIMEOUT): time: invalid duration "abc"` + "\n"},
		{[]string{"serve", "-sessions", "redis://localhost:6379/0?pool_sise=5"}, nil,
			"sessionguard: invalid value for -sessions: redisstore: invalid DSN: redis: unexpected option: pool_sise\n"},
		{[]string{"user", "add", "-db", "sqlite:x.db", "erin"}, nil,
			"sessionguard: standard input is not a terminal, so the password cannot be typed: pass it as one line on standard input with -password-stdin\n"},
		{[]string{"-addr", "127.0.0.1:99999"}, nil,
			`sessionguard: invalid value "127.0.0.1:99999" for -addr: port "99999" is not a number from 0 to 65535` + "\n"},
		{[]string{"-touch-interval", "1h", "-idle-timeout", "15s"}, nil,
			"sessionguard: -touch-interval 1h is not shorter than half of -idle-timeout 15s: an active user's session would end up to 1h early, between two writes of their activity\n"},
		{[]string{"serve", "-admin-idle-timeout", "1h"}, nil,
			"sessionguard: -admin-idle-timeout 1h is longer than the users' idle timeout 30m (-idle-timeout): administrators' sessions must not be looser than users'\n"},
		{[]string{"-warn-before", "3m"}, []string{"SESSIONGUARD_IDLE_TIMEOUT=2m"},
			"sessionguard: -warn-before 3m is not shorter than -idle-timeout (from SESSIONGUARD_IDLE_TIMEOUT) 2m: the warning would show all the time (0: no warning)\n"},
		{[]string{"backup", "-db", "postgres://sg@db.internal/sg", "out.db"}, nil,
			"sessionguard: backup copies SQLite databases; back up PostgreSQL with pg_dump, as in pg_dump --format=custom --file=OUT DATABASE (see docs/deployment.md)\n"},
	} {
		r := runCLI(t, dir, "", tc.env, tc.args...)
		if r.code != 2 || r.stderr != tc.want || r.stdout != "" {
			t.Errorf("%v %v: exit %d\nstderr %q\nwant   %q\nstdout %q", tc.env, tc.args, r.code, r.stderr, tc.want, r.stdout)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused command created files: %v", entries)
	}

	for _, v := range []string{"version", "-version"} {
		r := runCLI(t, dir, "", nil, v)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "sessionguard ") {
			t.Errorf("%s: exit %d, %q", v, r.code, r.stdout)
		}
	}
	r := runCLI(t, dir, "", nil, "serve", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "-idle-timeout DURATION") {
		t.Errorf("serve -h: exit %d, %q", r.code, r.stdout)
	}
}

// TestProcessTLS serves HTTPS from -tls-cert and -tls-key, with JSON logs:
// the setup link is https, and responses carry HSTS.
func TestProcessTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSignedCert(t)
	s := startServer(t, "-tls-cert", certFile, "-tls-key", keyFile, "-log-format", "json")

	var line map[string]any
	for l := range strings.Lines(s.log()) {
		if strings.Contains(l, `"msg":"sessionguard listening"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("start-up line %q is not JSON: %v", l, err)
			}
		}
	}
	if line["tls"] != true || line["idle_timeout"] != "30m" || line["sessions"] == nil {
		t.Errorf("start-up line: %v", line)
	}
	link := s.waitLog(regexp.MustCompile(`(https://localhost:\d+/setup\?token=[A-Za-z0-9_-]{43})\s`))[1]
	if link == "" {
		t.Fatal("no https setup link")
	}
	token := link[strings.Index(link, "token=")+len("token="):]
	for l := range strings.Lines(s.log()) {
		if strings.HasPrefix(l, "{") && strings.Contains(l, token) {
			t.Errorf("a JSON log line holds the setup token: %s", l)
		}
	}

	tlsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := tlsClient.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("GET /healthz over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and localhost and its
// key to PEM files, and returns them with a pool that trusts the
// certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "sessionguard test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// -debug-addr serves the runtime profiles on a listener of its own: there,
// and never on the application's address.
func TestProcessDebugAddr(t *testing.T) {
	s := startServer(t, "-debug-addr", "127.0.0.1:0")
	m := s.waitLog(regexp.MustCompile(`serving runtime profiles.*debug_addr"?[=:]"?([^\s"]+)`))
	resp, err := client.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("debug listener: %s\n%.200s", resp.Status, body)
	}
	resp, err = client.Get(s.url + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the application's address answered /debug/pprof/ with %s, want 404", resp.Status)
	}
}
