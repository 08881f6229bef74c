package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/internal/testbin"
	"github.com/sessionguard/sessionguard/internal/testbrowser"
)

// The accounts every test server has, all with the same password.
var users = []string{"alice", "bob"}

const password = "correct horse battery staple"

var (
	chromium string // the browser; empty when none is installed
)

func TestMain(m *testing.M) {
	chromium = testbrowser.Find()
	code := m.Run()
	testbin.Remove()
	os.Exit(code)
}

// needBrowser skips the test when no browser is installed and fails it when
// the server did not build.
func needBrowser(t *testing.T) {
	t.Helper()
	if chromium == "" {
		t.Skip(testbrowser.SkipNoChromium)
	}
}

// server is a running sessionguard process with the accounts of users.
type server struct {
	URL string // http://127.0.0.1:PORT
	DSN string

	mu   sync.Mutex
	logs bytes.Buffer
}

// startServer starts the real server on a free port with a fresh database
// holding the accounts of users and flags, and stops it (SIGTERM) when the
// test ends; its log is shown if the test failed.
func startServer(t *testing.T, flags ...string) *server {
	t.Helper()
	return startServerWith(t, users, flags...)
}

// startServerWith is startServer with the accounts named (none: the server
// prints its setup link).
func startServerWith(t *testing.T, accounts []string, flags ...string) *server {
	t.Helper()
	needBrowser(t)
	binary := testbin.Path(t, false)
	s := &server{DSN: "sqlite:" + filepath.Join(t.TempDir(), "sessionguard.db")}
	for _, name := range accounts {
		cmd := exec.Command(binary, "user", "add", "-db", s.DSN, "-role", "user", "-password-stdin", name)
		cmd.Env = testbin.CleanEnv()
		cmd.Stdin = strings.NewReader(password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add %s: %v\n%s", name, err, out)
		}
	}

	args := append([]string{"serve", "-addr", "127.0.0.1:0", "-db", s.DSN, "-log-format", "json"}, flags...)
	cmd := exec.Command(binary, args...)
	cmd.Env = testbin.CleanEnv()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the server: %v", err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			s.logs.Write(line)
			s.logs.WriteByte('\n')
			s.mu.Unlock()
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(line, &entry) == nil && entry.Msg == "sessionguard listening" {
				listening <- entry.Addr
			}
		}
		io.Copy(io.Discard, pr)
	}()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		pw.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			s.mu.Lock()
			t.Logf("server log:\n%s", s.logs.String())
			s.mu.Unlock()
		}
	})
	select {
	case addr := <-listening:
		s.URL = "http://" + addr
	case <-exited:
		t.Fatalf("the server exited at start:\n%s", s.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not start listening within 20 seconds")
	}
	return s
}

// statusJSON is what GET /auth/status answers.
type statusJSON struct {
	Authenticated      bool    `json:"authenticated"`
	User               string  `json:"user"`
	Reason             string  `json:"reason"`
	IdleRemaining      float64 `json:"idle_remaining_s"`
	AbsoluteRemaining  float64 `json:"absolute_remaining_s"`
	WarnBefore         float64 `json:"warn_before_s"`
	AbsoluteWarnBefore float64 `json:"absolute_warn_before_s"`
}

// request sends a request to the server from the test itself, with the
// browser's cookies, and decodes a JSON answer into v (if not nil). Go's
// cookie jar would not send the Secure session cookie over http, so the
// header is set by hand.
func (s *server) request(t *testing.T, method, path, cookie string, passive bool, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "application/json")
	if passive {
		req.Header.Set("Session-Activity", "passive")
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: %d, decoding the answer: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// status asks the server, passively, how the browser's session stands.
func (s *server) status(t *testing.T, cookie string) statusJSON {
	t.Helper()
	var st statusJSON
	s.request(t, "GET", "/auth/status", cookie, true, &st)
	return st
}

// newBrowser starts a fresh headless Chromium with an empty profile for the
// test and returns the context of its first tab; it closes with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	needBrowser(t)
	return testbrowser.New(t, chromium)
}

// newTab opens another tab in the browser of ctx: same profile, same
// cookies.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tab
}

// do runs browser actions, failing the test on error; each call is bounded,
// so a hung browser fails the test instead of stalling it.
func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates js in the tab and returns its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := tryEval[T](ctx, js)
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

func tryEval[T any](ctx context.Context, js string) (T, error) {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(c, chromedp.Evaluate[T](js))
}

// waitFor polls the boolean expression js in the tab (across navigations)
// until it is true, and returns when that was; it fails the test after
// limit.
func waitFor(t *testing.T, ctx context.Context, limit time.Duration, what, js string) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for {
		ok, err := tryEval[bool](ctx, js)
		if err == nil && ok {
			return time.Now()
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			loc, _ := tryEval[string](ctx, "location.href")
			t.Fatalf("waited %v for %s; the tab is at %s (last error: %v)", limit, what, loc, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holds checks that the boolean expression js stays true for d.
func holds(t *testing.T, ctx context.Context, d time.Duration, what, js string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if ok, err := tryEval[bool](ctx, js); err == nil && !ok {
			loc, _ := tryEval[string](ctx, "location.href")
			t.Fatalf("%s no longer holds; the tab is at %s", what, loc)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// location returns the tab's URL.
func location(t *testing.T, ctx context.Context) *url.URL {
	t.Helper()
	u, err := url.Parse(eval[string](t, ctx, "location.href"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// cookies returns the browser's cookies for the server, as a Cookie header.
func cookies(t *testing.T, ctx context.Context, s *server) string {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.URL + "/"}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	var parts []string
	for _, c := range res.Cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) == 0 {
		t.Fatal("the browser has no cookie for the server")
	}
	return strings.Join(parts, "; ")
}

// signIn signs user in through the sign-in page the tab is on (or opens
// it) and waits for the page it leads to.
func signIn(t *testing.T, ctx context.Context, s *server, user string) {
	t.Helper()
	if location(t, ctx).Path != "/auth/login" {
		do(t, ctx, chromedp.Navigate(s.URL+"/auth/login"))
	}
	do(t, ctx,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), user),
		chromedp.SetValue(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")),
	)
	waitFor(t, ctx, 10*time.Second, user+"'s page after signing in",
		`location.pathname !== '/auth/login' && document.readyState === 'complete' && !!document.querySelector('form.signout')`)
}

// open navigates the tab to path on s and waits until the page is loaded
// and its script has asked the server how the session stands.
func open(t *testing.T, ctx context.Context, s *server, path string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(s.URL+path))
	waitFor(t, ctx, 10*time.Second, path+" loaded", `document.readyState === 'complete'`)
}

// The dialog of timeout.js, as the tests look for it.
const (
	dialogOpen   = `!!document.querySelector('dialog.sessionguard-dialog[open]')`
	dialogClosed = `!document.querySelector('dialog.sessionguard-dialog')`
	onLoginPage  = `location.pathname === '/auth/login'`
)

// screenshot saves the tab's viewport as docs/screenshots/name.png when
// SESSIONGUARD_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("SESSIONGUARD_SCREENSHOTS") != "1" {
		return
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// seconds converts a JSON duration in seconds.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
