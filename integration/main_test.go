package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
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

// The deadlines of a test: generous, because CI runs the whole suite with
// the race detector on two shared cores, where a process can wait seconds
// for its turn. Each wait polls and returns as soon as its condition holds.
const (
	startTimeout   = 60 * time.Second // a process to listen, a store to answer
	recoverTimeout = 60 * time.Second // service back after a store returns
	requestTimeout = 60 * time.Second // one HTTP request
)

// cli runs a sessionguard command to completion and returns its standard
// output; any failure fails the test.
func cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testbin.Path(t, false), args...)
	cmd.Env = testbin.CleanEnv()
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sessionguard %s: %v\nstdout: %s\nstderr: %s", redactArgs(args), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// redactArgs joins args for a message; DSNs are test ones, without secrets.
func redactArgs(args []string) string { return strings.Join(args, " ") }

// adminPasswordOnly lets administrators sign in with a password alone, as
// they did before a second factor was required of them: these tests are
// about sessions, stores and the gateway, and sign ada in with her password.
// The second factor is tested in cmd/sessionguard and e2e.
var adminPasswordOnly = []string{"-admin-mfa", "optional"}

// addUser creates an account with the CLI, as an operator would.
func addUser(t *testing.T, db, role, name, password string) {
	t.Helper()
	cli(t, password+"\n", "user", "add", "-db", db, "-role", role, "-password-stdin", name)
}

// auditEntry is one line of `sessionguard audit -json`.
type auditEntry struct {
	Time    string `json:"time"`
	Event   string `json:"event"`
	User    string `json:"user"`
	Session string `json:"session"`
	Reason  string `json:"reason"`
	IP      string `json:"ip"`
}

// auditLog reads the whole audit log of db with the CLI.
func auditLog(t *testing.T, db string) []auditEntry {
	t.Helper()
	var out []auditEntry
	for line := range strings.SplitSeq(strings.TrimSpace(cli(t, "", "audit", "-db", db, "-json")), "\n") {
		if line == "" {
			continue
		}
		var e auditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// instance is a running `sessionguard serve`.
type instance struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:PORT

	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// startInstance starts `sessionguard serve` on a free port of 127.0.0.1
// with args, in its own working directory, and waits until it listens.
// The process is stopped when the test ends; its log is shown if the test
// failed.
func startInstance(t *testing.T, name string, args ...string) *instance {
	t.Helper()
	s, err := launchInstance(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startInstances starts one instance per name, all at once, as an
// orchestrator rolls out a deployment: their migrations race.
func startInstances(t *testing.T, names []string, args ...string) []*instance {
	t.Helper()
	testbin.Path(t, false) // built (or skipped) here, not in the goroutines
	out := make([]*instance, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { out[i], errs[i] = launchInstance(t, name, args...) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// launchInstance is startInstance without t.Fatal, so that several can
// start from goroutines.
func launchInstance(t *testing.T, name string, args ...string) (*instance, error) {
	s := &instance{t: t, name: name, exited: make(chan struct{})}
	args = append([]string{"serve", "-addr", "127.0.0.1:0", "-log-format", "json"}, args...)
	s.cmd = exec.Command(testbin.Path(t, false), args...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Env = testbin.CleanEnv()
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "sessionguard listening" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, pipe)
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("log of %s:\n%s", s.name, s.log())
		}
	})
	select {
	case a := <-addr:
		s.url = "http://" + a
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("%s exited before listening: %v\n%s", name, s.err, s.log())
	case <-time.After(startTimeout):
		return nil, fmt.Errorf("%s did not listen within %v:\n%s", name, startTimeout, s.log())
	}
}

func (s *instance) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// alive reports whether the process is still running.
func (s *instance) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop ends the process as an orchestrator would, with SIGTERM, and kills
// it if it has not exited within the shutdown timeout.
func (s *instance) stop() {
	if !s.alive() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// goroutines reads the server's goroutine count from GET /metrics.
func (s *instance) goroutines(t *testing.T) int {
	t.Helper()
	n, err := goroutinesOf(s)
	if err != nil {
		t.Fatalf("goroutines of %s: %v", s.name, err)
	}
	return n
}

// sessionCookie is the name of the session cookie over plain HTTP to
// 127.0.0.1: Secure and __Host-, since browsers treat loopback as secure.
// Go's cookie jar does not send Secure cookies over http://, so a browser
// keeps the cookie by hand.
const sessionCookie = "__Host-session"

// browser is one browser: its session cookie, sent to whichever instance a
// request goes to, as behind a load balancer without sticky sessions.
type browser struct {
	cookie string // the session token, "" when none
}

// client is shared by every browser: redirects are not followed, so tests
// see the 303s of the contract.
var client = &http.Client{
	Timeout: requestTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   string
}

// request builds a request for path on no instance yet; do sends it. A
// non-nil form makes it a form POST.
func (b *browser) request(method, path string, form url.Values) *http.Request {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequest(method, "http://placeholder"+path, body)
	if err != nil {
		panic(err) // the tests' own paths are valid
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.cookie != "" {
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: b.cookie})
	}
	return r
}

// jsonRequest is request with Accept: application/json.
func (b *browser) jsonRequest(method, path string, form url.Values) *http.Request {
	r := b.request(method, path, form)
	r.Header.Set("Accept", "application/json")
	return r
}

// send sends r to s and keeps the session cookie the response sets or
// clears.
func (b *browser) send(t *testing.T, s *instance, r *http.Request) response {
	t.Helper()
	resp := do(t, s, r)
	for _, c := range (&http.Response{Header: resp.header}).Cookies() {
		if c.Name != sessionCookie {
			continue
		}
		if c.Value == "" || c.MaxAge < 0 {
			b.cookie = ""
		} else {
			b.cookie = c.Value
		}
	}
	return resp
}

// do sends r to instance s; a transport error fails the test, since the
// server must answer whatever its stores do.
func do(t *testing.T, s *instance, r *http.Request) response {
	t.Helper()
	resp, err := tryDo(s, r)
	if err != nil {
		t.Fatalf("%s %s on %s: %v (process alive: %v)", r.Method, r.URL.Path, s.name, err, s.alive())
	}
	return resp
}

func tryDo(s *instance, r *http.Request) (response, error) {
	u, err := url.Parse(s.url)
	if err != nil {
		return response{}, err
	}
	r = r.Clone(context.Background())
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, u.Host
	if r.GetBody != nil {
		if r.Body, err = r.GetBody(); err != nil {
			return response{}, err
		}
	}
	resp, err := client.Do(r)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}, nil
}

// login signs b in on s and fails the test unless it works.
func (b *browser) login(t *testing.T, s *instance, user, password string) {
	t.Helper()
	b.cookie = ""
	resp := b.send(t, s, b.request("POST", "/auth/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}}))
	if resp.status != http.StatusSeeOther || b.cookie == "" {
		t.Fatalf("sign-in of %s on %s: %d, cookie %v, body %.300s", user, s.name, resp.status, b.cookie != "", resp.body)
	}
}

// status is the body of GET /auth/status.
type status struct {
	Authenticated bool    `json:"authenticated"`
	User          string  `json:"user"`
	Reason        string  `json:"reason"`
	Error         string  `json:"error"`
	IdleRemaining float64 `json:"idle_remaining_s"`
}

// jsonBody decodes a JSON response body; a body that is no JSON fails the
// test.
func jsonBody[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %.300s", r.status, err, r.body)
	}
	return v
}

// waitFor polls cond every 100ms until it returns true, and fails the test
// with what if it does not within timeout. It returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// requireService skips the test for want of something only a service
// brings, or fails it when envVar is set: CI sets SESSIONGUARD_TEST_REDIS
// and SESSIONGUARD_TEST_POSTGRES, and there a missing service is a fault.
func requireService(t *testing.T, envVar, why string) {
	t.Helper()
	if os.Getenv(envVar) != "" {
		t.Fatalf("%s, but %s is set, so this test must run", why, envVar)
	}
	t.Skipf("%s; skipped (set %s to make this a failure, as CI does)", why, envVar)
}
