package main

// Process tests of running the server in production: signals, the metrics
// listener, backups, proxies in front, and mistakes in the environment.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// TestProcessSIGHUPReloadsCertificate: SIGHUP makes the server present the
// certificate now in -tls-cert to new connections, and keeps it running; a
// reload of files that do not make a key pair keeps the certificate in use.
func TestProcessSIGHUPReloadsCertificate(t *testing.T) {
	t.Parallel()
	certFile, keyFile, firstPool := selfSignedCert(t)
	s := startServer(t, "-tls-cert", certFile, "-tls-key", keyFile)
	presented := func() *x509.Certificate {
		t.Helper()
		c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	first := presented()
	if _, err := first.Verify(x509.VerifyOptions{Roots: firstPool, DNSName: "localhost"}); err != nil {
		t.Fatalf("the server presents another certificate than -tls-cert: %v", err)
	}

	newCert, newKey, newPool := selfSignedCert(t)
	copyFile(t, newCert, certFile)
	copyFile(t, newKey, keyFile)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(regexp.MustCompile(`SIGHUP: reloaded the TLS certificate`))
	second := presented()
	if second.Equal(first) {
		t.Fatal("after SIGHUP the server still presents the old certificate")
	}
	if _, err := second.Verify(x509.VerifyOptions{Roots: newPool, DNSName: "localhost"}); err != nil {
		t.Errorf("after SIGHUP the certificate is not the new one: %v", err)
	}

	// A key that does not match: the reload fails, the certificate stays.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(regexp.MustCompile(`level=ERROR msg="SIGHUP: the TLS certificate was not reloaded; the one in use stays"`))
	if !presented().Equal(second) {
		t.Error("a failed reload changed the certificate")
	}

	httpsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: newPool}}}
	resp, err := httpsClient.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz after the reloads: %d", resp.StatusCode)
	}
	select {
	case <-s.exited:
		t.Fatalf("the server exited: %v", s.err)
	default:
	}
}

// TestProcessOperations runs a plain-HTTP server with the metrics on their
// own listener and a misspelled variable in its environment: the variable
// is named at start, /metrics answers on its listener only (with the build
// info), SIGHUP is ignored with a log line, and X-Forwarded-For from a peer
// outside -trusted-proxy is warned of once.
func TestProcessOperations(t *testing.T) {
	t.Parallel()
	s := startServerEnv(t, []string{"SESSIONGUARD_IDLE_TIMOUT=1m"}, "-metrics-addr", "127.0.0.1:0")
	s.waitLog(regexp.MustCompile(`level=WARN msg="SESSIONGUARD_IDLE_TIMOUT is set but no flag reads it: did you mean SESSIONGUARD_IDLE_TIMEOUT \(-idle-timeout\)\?"`))

	m := s.waitLog(regexp.MustCompile(`serving /metrics on its own listener.*metrics_addr=([^\s"]+)`))
	resp, body := do(t, "GET", "http://"+m[1]+"/metrics", "", nil)
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`(?m)^sessionguard_build_info\{goversion="go[^"]+",version="[^"]+"\} 1$`).MatchString(body) ||
		!strings.Contains(body, "sessionguard_sessions_started_total") {
		t.Errorf("GET /metrics on -metrics-addr: %d\n%.600s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", s.url+"/metrics", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on -addr with -metrics-addr: %d, want 404", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", "http://"+m[1]+"/auth/login", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics listener serves /auth/login: %d, want 404", resp.StatusCode)
	}

	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(regexp.MustCompile(`SIGHUP ignored`))
	if resp, _ := do(t, "GET", s.url+"/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz after SIGHUP: %d", resp.StatusCode)
	}

	for range 3 {
		do(t, "GET", s.url+"/healthz", "", nil, "X-Forwarded-For", "198.51.100.7")
	}
	s.waitLog(regexp.MustCompile(`X-Forwarded-For from a peer outside -trusted-proxy`))
	if n := strings.Count(s.log(), "X-Forwarded-For from a peer outside -trusted-proxy"); n != 1 {
		t.Errorf("the untrusted X-Forwarded-For warning was logged %d times, want once", n)
	}
}

// TestProcessBehindProxy: behind a TLS-terminating proxy that rewrites
// Host (here the test, at 127.0.0.1, which -trusted-proxy names), a
// sign-in whose Origin is the public host passes the cross-origin check.
func TestProcessBehindProxy(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-trusted-proxy", "127.0.0.1", "-base-url", "https://sg.example.com")
	mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", "frank")
	signIn := func(origin string) *http.Response {
		resp, _ := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {"frank"}, "password": {testPassword}},
			"Origin", origin, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "sg.example.com", "X-Forwarded-For", "198.51.100.7")
		return resp
	}
	if resp := signIn("https://sg.example.com"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in through the proxy: %d, want 303", resp.StatusCode)
	}
	if resp := signIn("https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in from another origin through the proxy: %d, want 403", resp.StatusCode)
	}
	if strings.Contains(s.log(), "X-Forwarded-For from a peer outside") {
		t.Error("the trusted proxy's X-Forwarded-For was warned of")
	}
	var found bool
	for _, e := range readAudit(t, s) {
		found = found || (e.Event == "login_succeeded" && e.User == "frank" && e.IP == "198.51.100.7")
	}
	if !found {
		t.Error("the audit log has no sign-in of frank from the forwarded address 198.51.100.7")
	}
}

// TestProcessBackup copies the database of a server that is writing to it
// (sign-ins, sign-outs, failed sign-ins) all the while: the copy opens,
// has the users and the audit log and no sessions, a server starts on it
// and signs its users in, and a second backup to the same file is refused.
func TestProcessBackup(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	names := []string{"gina", "hugo", "ines"}
	for _, n := range names {
		mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", n)
	}
	login(t, s, "gina", testPassword)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writes atomic.Int64
	for _, name := range names {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := signInAndOut(s, name); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				writes.Add(1)
			}
		})
	}
	eventually(t, 30*time.Second, func() bool { return writes.Load() >= 3 }, "the writers to start")

	out := filepath.Join(t.TempDir(), "copy.db")
	r := runCLI(t, s.dir, "", nil, "backup", "-db", s.db, out)
	before := writes.Load()
	eventually(t, 30*time.Second, func() bool { return writes.Load() > before }, "the server to keep writing after the backup")
	cancel()
	wg.Wait()
	if r.code != 0 || !strings.Contains(r.stdout, "3 account(s)") {
		t.Fatalf("backup: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy: %v, mode %v; want 0600, it holds password hashes", err, fi.Mode().Perm())
	}

	list := mustCLI(t, s.dir, "", "user", "list", "-db", "sqlite:"+out)
	for _, n := range names {
		if !strings.Contains(list, n) {
			t.Errorf("the copy lacks user %s:\n%s", n, list)
		}
	}
	if audit := mustCLI(t, s.dir, "", "audit", "-db", "sqlite:"+out, "-event", "login_succeeded"); !strings.Contains(audit, "gina") {
		t.Errorf("the copy's audit log lacks gina's sign-in:\n%s", audit)
	}
	db, err := sqldb.Open(context.Background(), "sqlite:"+out)
	if err != nil {
		t.Fatal(err)
	}
	var sessions int
	if err := db.QueryRow(`SELECT count(*) FROM session_records`).Scan(&sessions); err != nil || sessions != 0 {
		t.Errorf("the copy holds %d sessions (%v), want none", sessions, err)
	}
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check of the copy: %q %v", check, err)
	}
	db.Close()

	// Restored, the copy serves: a server on it signs its users in.
	restored := startServer(t, "-db", "sqlite:"+out)
	login(t, restored, "hugo", testPassword)

	r = runCLI(t, s.dir, "", nil, "backup", "-db", s.db, out)
	if r.code != exitFailure || !strings.Contains(r.stderr, "exists already") {
		t.Errorf("backup over an existing file: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, s.dir, "", nil, "backup", "-db", s.db); r.code != exitUsage || !strings.Contains(r.stderr, "needs exactly one OUT") {
		t.Errorf("backup without OUT: exit %d, stderr %q", r.code, r.stderr)
	}
}

// signInAndOut signs user in with testPassword and out again: a few writes
// to the server's database. Unlike login, it may run on a goroutine of its
// own.
func signInAndOut(s *server, user string) error {
	post := func(path, cookie string, form url.Values) (*http.Response, error) {
		req, err := http.NewRequest("POST", s.url+path, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp, nil
	}
	resp, err := post("/auth/login", "", url.Values{"username": {user}, "password": {testPassword}})
	if err != nil {
		return err
	}
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" && c.Value != "" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == "" {
		return fmt.Errorf("sign-in: %d, no session cookie", resp.StatusCode)
	}
	if resp, err = post("/auth/logout", cookie, url.Values{}); err != nil || resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign-out: %v %v", resp, err)
	}
	return nil
}
