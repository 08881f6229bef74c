package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// The gateway rows: sessionguard in front of an application it
// knows nothing of, side by side with what the same path costs without
// it. Every row is its own processes on loopback: the upstream application
// (`bench serve -system upstream`), the proxy (nginx, sessionguard in
// reverse-proxy mode, a bare httputil.ReverseProxy) and, for the checks,
// the sessionguard command or oauth2-proxy with its mock OIDC provider.

// gatewayPath is the path the gateway rows request: an application's
// page, which sessionguard does not serve itself.
const gatewayPath = "/app/hello"

// The gate endpoint nginx's auth_request calls.
const authRequestPath = "/auth/gate/auth-request"

// oauth2-proxy, the peer: installed with go install when missing.
const (
	oauth2ProxyModule  = "github.com/oauth2-proxy/oauth2-proxy/v7"
	oauth2ProxyVersion = "v7.15.6"
)

// navigationHeader is what a browser sends loading a page: the gateway
// rows' requests count as activity (a check extends the idle clock only
// for a navigation), so a busy session's touches are what they would be.
func navigationHeader() http.Header {
	h := http.Header{}
	h.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	h.Set("Sec-Fetch-Mode", "navigate")
	h.Set("Sec-Fetch-Dest", "document")
	return h
}

func gatewaySystems() []system {
	return []system{
		{"gw-nginx", "nginx → upstream, no check", "proxy", func(ctx context.Context, e *env) (*running, error) {
			return e.startNginxRow(ctx, "gw-nginx", noCheck, nil)
		}},
		{"gw-nginx-allow", "nginx auth_request through a bare net/http handler that allows all → upstream (the ceiling of any check)", "proxy", func(ctx context.Context, e *env) (*running, error) {
			return e.startNginxRow(ctx, "gw-nginx-allow", bareCheck, nil)
		}},
		{"gw-nginx-check", "nginx auth_request through sessionguard → upstream, SQLite", "gateway", func(ctx context.Context, e *env) (*running, error) {
			return e.startNginxRow(ctx, "gw-nginx-check", sgCheck, nil)
		}},
		{"gw-reverseproxy", "bare httputil.ReverseProxy → upstream, no session", "proxy", func(ctx context.Context, e *env) (*running, error) {
			return e.startReverseProxyRow(ctx)
		}},
		{"gw-sg-proxy", "sessionguard -upstream (reverse-proxy mode) → upstream, SQLite", "gateway", func(ctx context.Context, e *env) (*running, error) {
			return e.startSGProxyRow(ctx, "gw-sg-proxy", nil)
		}},
		{"gw-oauth2-proxy", "oauth2-proxy " + oauth2ProxyVersion + " GET /oauth2/auth, cookie session (mockoidc sign-in)", "peer", func(ctx context.Context, e *env) (*running, error) {
			return e.startOAuth2ProxyRow(ctx)
		}},
		{"gw-sg-check", "sessionguard GET " + authRequestPath + ", SQLite", "gateway", func(ctx context.Context, e *env) (*running, error) {
			return e.startSGCheckRow(ctx)
		}},
	}
}

// upstreamHello is the upstream application: a small fixed answer, with
// the user the gateway passed on (none without a check).
func upstreamHello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("hello " + r.Header.Get("Remote-User") + "\n"))
}

// reverseProxyTransport is the bare ReverseProxy's transport: Go's
// default, keeping as many idle connections to the upstream as the load
// has (the default keeps 2 per host, which would make it open and close
// connections under load, as no tuned deployment does).
func reverseProxyTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	return tr
}

// mountReverseProxy serves a bare httputil.ReverseProxy to upstream: no
// session, the X-Forwarded- headers set, everything passed on.
func mountReverseProxy(mux *http.ServeMux, upstream string) (func() error, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("-upstream %q: want http://HOST:PORT", upstream)
	}
	tr := reverseProxyTransport()
	mux.Handle("/", &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: tr,
	})
	return func() error { tr.CloseIdleConnections(); return nil }, nil
}

// serveMockOIDC runs mockoidc, the mock OpenID Connect provider, with the
// given client and long-lived tokens (a run's sessions must not expire
// during it), until SIGTERM. Every sign-in is its default user.
func serveMockOIDC(ctx context.Context, o serveOptions) error {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return err
	}
	if o.clientID != "" {
		m.ClientID = o.clientID
	}
	if o.secret != "" {
		m.ClientSecret = o.secret
	}
	m.AccessTTL, m.RefreshTTL = 12*time.Hour, 24*time.Hour
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	if err := m.Start(ln, nil); err != nil {
		return err
	}
	fmt.Printf("ready %s\n", ln.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Server.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// startServe starts this program as `bench serve -system system` and
// returns the process and its URL.
func (e *env) startServe(ctx context.Context, system string, args ...string) (*proc, string, error) {
	p, addr, err := e.startProc(ctx, e.name(system), e.exe, append([]string{"serve", "-system", system, "-addr", "127.0.0.1:0"}, args...), nil, true)
	if err != nil {
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// stack stops the processes of a row in reverse order of their start.
type stack []func()

func (s *stack) push(f func()) { *s = append(*s, f) }

func (s stack) stop() {
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}

// gatewayFeature says why this build of the sessionguard command cannot
// run a gateway row, from its flags: a build without them predates the
// gateway, which is a skip, not a failure.
func (e *env) gatewayFeature(ctx context.Context, flag string) error {
	bin, err := e.sessionguardBinary(ctx)
	if err != nil {
		return err
	}
	out, _ := exec.CommandContext(ctx, bin, "serve", "-h").CombinedOutput()
	if !strings.Contains(string(out), "-"+flag+" ") {
		return errSkip{fmt.Sprintf("this sessionguard command has no -%s flag (the gateway of issue 10 is not in this build)", flag)}
	}
	return nil
}

// startGatewayServer starts the sessionguard command for a gateway row,
// with the harness's counter of its session store's writes.
func (e *env) startGatewayServer(ctx context.Context, name string, args ...string) (*sgServer, func(context.Context) (int64, error), error) {
	s, err := e.startServer(ctx, name, args...)
	if err != nil {
		return nil, nil, err
	}
	writes, err := countSQLiteWrites(ctx, s.dbFile)
	if err != nil {
		s.proc.stop()
		return nil, nil, err
	}
	return s, writes, nil
}

// countSQLiteWrites adds triggers to a sessionguard server's SQLite
// database that count every UPDATE and DELETE of a session record (a
// touch, a renewal, saved data, an end: each is one statement on the
// session's row), and returns the function that reads the count. The
// server keeps its sessions in that database (-db sqlite:..., no
// -sessions), so what is counted is what the store really wrote.
func countSQLiteWrites(ctx context.Context, dbFile string) (func(context.Context) (int64, error), error) {
	dsn := "file:" + dbFile + "?_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS bench_writes (n INTEGER NOT NULL)`,
		`INSERT INTO bench_writes (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM bench_writes)`,
		`CREATE TRIGGER IF NOT EXISTS bench_count_update AFTER UPDATE ON session_records BEGIN UPDATE bench_writes SET n = n + 1; END`,
		`CREATE TRIGGER IF NOT EXISTS bench_count_delete AFTER DELETE ON session_records BEGIN UPDATE bench_writes SET n = n + 1; END`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("adding the write counter to %s: %w", dbFile, err)
		}
	}
	return func(ctx context.Context) (int64, error) {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		var n int64
		err = db.QueryRowContext(ctx, `SELECT n FROM bench_writes`).Scan(&n)
		return n, err
	}, nil
}

// findNginx returns nginx's path: -nginx, on the PATH, or Debian's
// /usr/sbin (not on every user's PATH); "" when it is not installed.
func findNginx(cfg *config) string {
	if cfg.nginx != "" {
		return cfg.nginx
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// nginxBinary finds nginx, or says the row cannot run.
func (e *env) nginxBinary() (string, error) {
	if p := findNginx(e.cfg); p != "" {
		return p, nil
	}
	return "", errSkip{"nginx is not installed (apt-get install nginx)"}
}

// nginxConf is what nginxConfig needs.
type nginxConf struct {
	Dir      string // the nginx prefix: pid, temp files
	Listen   string // HOST:PORT
	Upstream string // the application, HOST:PORT
	Auth     string // sessionguard, HOST:PORT; "": no check
	Workers  string // worker_processes
}

// nginxTemplate is the configuration of both nginx rows. It is the same
// with and without the check but for the auth_request lines: -nginx-workers
// worker processes (default auto: one per core, as in Debian's own
// configuration), no access log, keep-alive connections to the application
// and to sessionguard (keepalive 32, HTTP/1.1, the Connection header
// cleared), as a tuned deployment has.
var nginxTemplate = template.Must(template.New("nginx").Parse(`# Written by the sessionguard benchmark harness.
daemon off;
master_process on;
worker_processes {{.Workers}};
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path {{.Dir}}/tmp/body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;

    upstream app {
        server {{.Upstream}};
        keepalive 32;
    }
{{- if .Auth}}
    upstream sessionguard {
        server {{.Auth}};
        keepalive 32;
    }
{{- end}}

    server {
        listen {{.Listen}};

        location / {
{{- if .Auth}}
            auth_request /_sessionguard_check;
            auth_request_set $user $upstream_http_remote_user;
            proxy_set_header Remote-User $user;
{{- end}}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_pass http://app;
        }
{{- if .Auth}}

        location = /_sessionguard_check {
            internal;
            proxy_pass http://sessionguard{{.AuthPath}};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
{{- end}}
    }
}
`))

// nginxConfig returns nginx's configuration file for c.
func nginxConfig(c nginxConf) (string, error) {
	var b strings.Builder
	err := nginxTemplate.Execute(&b, struct {
		nginxConf
		AuthPath string
	}{c, authRequestPath})
	return b.String(), err
}

// startNginx writes a configuration into a directory of its own and starts
// nginx on it, in the foreground.
func (e *env) startNginx(ctx context.Context, name, upstream, auth string) (*proc, string, error) {
	bin, err := e.nginxBinary()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(e.dir, e.name(name))
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, "", err
	}
	addr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	conf, err := nginxConfig(nginxConf{Dir: dir, Listen: addr, Upstream: hostPort(upstream), Auth: hostPort(auth), Workers: e.cfg.nginxWorkers})
	if err != nil {
		return nil, "", err
	}
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	p, _, err := e.startProc(ctx, e.name(name), bin, []string{"-p", dir, "-c", file, "-e", filepath.Join(dir, "error.log")}, nil, false)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := waitHTTP(ctx, p, base+"/nginx-ready"); err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%w: %s", err, tail(filepath.Join(dir, "error.log")))
	}
	return p, base, nil
}

// hostPort returns the HOST:PORT of a URL, or "" for "".
func hostPort(u string) string {
	if u == "" {
		return ""
	}
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

// The checks nginx's auth_request can call in the nginx rows.
const (
	noCheck   = ""
	sgCheck   = "sessionguard"
	bareCheck = "bare" // `bench serve -system allow`: 200 and a Remote-User, no session
)

// startNginxRow is nginx in front of the upstream, with no check, with
// sessionguard's auth_request check, or with the same auth_request to a
// bare net/http handler that allows everything (what the check's round
// trip costs nginx, whatever answers it). extra are more flags of the
// sessionguard command.
func (e *env) startNginxRow(ctx context.Context, name, check string, extra []string) (r *running, err error) {
	var stops stack
	defer func() {
		if err != nil {
			stops.stop()
		}
	}()
	if check == sgCheck {
		if err := e.gatewayFeature(ctx, "gate-activity"); err != nil {
			return nil, err
		}
	}
	up, upBase, err := e.startServe(ctx, "upstream")
	if err != nil {
		return nil, err
	}
	stops.push(up.stop)
	r = &running{open: check != sgCheck, wantBody: "hello ", target: target{header: navigationHeader()}}
	auth := ""
	var s *sgServer
	switch check {
	case sgCheck:
		var writes func(context.Context) (int64, error)
		s, writes, err = e.startGatewayServer(ctx, name, append([]string{"-trusted-proxy", "127.0.0.1"}, extra...)...)
		if err != nil {
			return nil, err
		}
		stops.push(s.proc.stop)
		auth = s.base
		r.pprof, r.writes = s.debug, writes
		r.moreGroups = append(r.moreGroups, s.proc.cmd.Process.Pid)
	case bareCheck:
		a, base, err := e.startServe(ctx, "allow")
		if err != nil {
			return nil, err
		}
		stops.push(a.stop)
		auth = base
		r.wantBody = "hello " + serverUser + "\n"
		r.moreGroups = append(r.moreGroups, a.cmd.Process.Pid)
	}
	ng, base, err := e.startNginx(ctx, name, upBase, auth)
	if err != nil {
		return nil, err
	}
	stops.push(ng.stop)
	r.group = ng.cmd.Process.Pid
	r.moreGroups = append(r.moreGroups, up.cmd.Process.Pid)
	r.target.url = base + gatewayPath
	if check == sgCheck {
		// Signed in last, so that a short idle timeout (the writes run)
		// starts with the load.
		cookie, err := s.login(ctx)
		if err != nil {
			return nil, err
		}
		r.target.header.Set("Cookie", cookie)
		r.wantBody = "hello " + serverUser + "\n"
	} else {
		r.target.header.Set("Cookie", "__Host-session="+strings.Repeat("x", 43))
	}
	r.stopProc = stops.stop
	return r, nil
}

// allowAll is the bare check: every request allowed, as the bench user.
func allowAll(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Remote-User", serverUser)
	w.WriteHeader(http.StatusOK)
}

// startReverseProxyRow is a bare httputil.ReverseProxy in front of the
// upstream.
func (e *env) startReverseProxyRow(ctx context.Context) (r *running, err error) {
	var stops stack
	defer func() {
		if err != nil {
			stops.stop()
		}
	}()
	up, upBase, err := e.startServe(ctx, "upstream")
	if err != nil {
		return nil, err
	}
	stops.push(up.stop)
	rp, base, err := e.startServe(ctx, "reverseproxy", "-upstream", upBase)
	if err != nil {
		return nil, err
	}
	stops.push(rp.stop)
	h := navigationHeader()
	h.Set("Cookie", "__Host-session="+strings.Repeat("x", 43))
	return &running{target: target{url: base + gatewayPath, header: h}, base: base, pprof: base, open: true, wantBody: "hello ",
		group: rp.cmd.Process.Pid, moreGroups: []int{up.cmd.Process.Pid}, stopProc: stops.stop}, nil
}

// startSGProxyRow is the sessionguard command in reverse-proxy mode in
// front of the upstream. extra are more flags of the command.
func (e *env) startSGProxyRow(ctx context.Context, name string, extra []string) (r *running, err error) {
	if err := e.gatewayFeature(ctx, "upstream"); err != nil {
		return nil, err
	}
	var stops stack
	defer func() {
		if err != nil {
			stops.stop()
		}
	}()
	up, upBase, err := e.startServe(ctx, "upstream")
	if err != nil {
		return nil, err
	}
	stops.push(up.stop)
	s, writes, err := e.startGatewayServer(ctx, name, append([]string{"-upstream", upBase}, extra...)...)
	if err != nil {
		return nil, err
	}
	stops.push(s.proc.stop)
	cookie, err := s.login(ctx)
	if err != nil {
		return nil, err
	}
	h := navigationHeader()
	h.Set("Cookie", cookie)
	return &running{target: target{url: s.base + gatewayPath, header: h}, pprof: s.debug, writes: writes,
		wantBody: "hello " + serverUser + "\n", group: s.proc.cmd.Process.Pid, moreGroups: []int{up.cmd.Process.Pid}, stopProc: stops.stop}, nil
}

// startSGCheckRow is the sessionguard command's auth_request check loaded
// directly, with the headers nginx would send it.
func (e *env) startSGCheckRow(ctx context.Context) (r *running, err error) {
	if err := e.gatewayFeature(ctx, "gate-activity"); err != nil {
		return nil, err
	}
	s, writes, err := e.startGatewayServer(ctx, "gw-sg-check", "-trusted-proxy", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	cookie, err := s.login(ctx)
	if err != nil {
		s.proc.stop()
		return nil, err
	}
	return &running{target: target{url: s.base + authRequestPath, header: checkHeader(cookie)}, pprof: s.debug, writes: writes,
		group: s.proc.cmd.Process.Pid, stopProc: s.proc.stop}, nil
}

// checkHeader is the request of both checks loaded directly (sessionguard's
// and oauth2-proxy's): what nginx's auth_request sends for a browser's
// page load, with the session cookie.
func checkHeader(cookie string) http.Header {
	h := navigationHeader()
	h.Set("Cookie", cookie)
	h.Set("X-Original-Method", http.MethodGet)
	h.Set("X-Original-URL", "http://app.example"+gatewayPath)
	return h
}

// oauth2ProxyBinary returns oauth2-proxy's path: -oauth2-proxy, or the
// one installed with go install into the user's cache directory, which it
// installs the first time.
func (e *env) oauth2ProxyBinary(ctx context.Context) (string, error) {
	e.o2pOnce.Do(func() {
		if e.cfg.oauth2Proxy != "" {
			e.o2pBin = e.cfg.oauth2Proxy
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = e.dir
		}
		dir := filepath.Join(cache, "sessionguard-bench", "oauth2-proxy-"+oauth2ProxyVersion)
		bin := filepath.Join(dir, "oauth2-proxy")
		if _, err := os.Stat(bin); err == nil {
			e.o2pBin = bin
			return
		}
		fmt.Printf("(installing oauth2-proxy %s into %s with go install) ", oauth2ProxyVersion, dir)
		cmd := exec.CommandContext(ctx, "go", "install", oauth2ProxyModule+"@"+oauth2ProxyVersion)
		cmd.Dir = os.TempDir() // outside any module
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			e.o2pErr = errSkip{fmt.Sprintf("oauth2-proxy could not be installed (go install %s@%s: %v: %s)", oauth2ProxyModule, oauth2ProxyVersion, err, lastLines(string(out), 3))}
			return
		}
		e.o2pBin = bin
	})
	return e.o2pBin, e.o2pErr
}

// lastLines returns the last n lines of s, on one line.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startOAuth2ProxyRow is oauth2-proxy with the OIDC provider mockoidc,
// signed in through the provider as a browser would be, and its
// auth_request endpoint GET /oauth2/auth with the session cookie.
func (e *env) startOAuth2ProxyRow(ctx context.Context) (r *running, err error) {
	bin, err := e.oauth2ProxyBinary(ctx)
	if err != nil {
		return nil, err
	}
	var stops stack
	defer func() {
		if err != nil {
			stops.stop()
		}
	}()
	clientID, secret := "bench-"+randomHex(8), randomHex(16)
	oidc, oidcBase, err := e.startServe(ctx, "mockoidc", "-client-id", clientID, "-client-secret", secret)
	if err != nil {
		return nil, err
	}
	stops.push(oidc.stop)
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	cookieSecret := make([]byte, 32)
	rand.Read(cookieSecret)
	args := []string{
		"--http-address=" + addr,
		"--provider=oidc",
		"--oidc-issuer-url=" + oidcBase + mockoidc.IssuerBase,
		"--client-id=" + clientID,
		"--client-secret=" + secret,
		"--cookie-secret=" + base64.URLEncoding.EncodeToString(cookieSecret),
		"--cookie-secure=false", // plain HTTP on loopback
		"--redirect-url=" + base + "/oauth2/callback",
		"--email-domain=*",
		"--upstream=static://200",
		// As deployed behind nginx's auth_request: the answer names the
		// user (X-Auth-Request-User, -Email), as sessionguard's does.
		"--reverse-proxy=true",
		"--set-xauthrequest=true",
		// No log line per request, like sessionguard at -log-level warn.
		"--request-logging=false",
		"--auth-logging=false",
	}
	p, _, err := e.startProc(ctx, e.name("gw-oauth2-proxy"), bin, args, nil, false)
	if err != nil {
		return nil, err
	}
	stops.push(p.stop)
	if err := waitHTTP(ctx, p, base+"/ping"); err != nil {
		return nil, err
	}
	cookie, err := oauth2ProxyLogin(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("signing in to oauth2-proxy: %w (log: %s)", err, tail(p.log))
	}
	return &running{target: target{url: base + "/oauth2/auth", header: checkHeader(cookie)}, okStatus: http.StatusAccepted,
		group: p.cmd.Process.Pid, moreGroups: []int{oidc.cmd.Process.Pid}, stopProc: stops.stop}, nil
}

// oauth2ProxyLogin signs in to oauth2-proxy as a browser does, following
// its redirects with a cookie jar: /oauth2/start, the provider's
// authorization endpoint, /oauth2/callback (where oauth2-proxy redeems the
// code and sets its session cookie), and back. It returns the session's
// Cookie header value.
func oauth2ProxyLogin(ctx context.Context, base string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/oauth2/start?rd="+url.QueryEscape("/"), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the sign-in ended at %s with %s: %.300s", resp.Request.URL, resp.Status, body)
	}
	u, _ := url.Parse(base)
	var parts []string
	for _, c := range jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "_oauth2_proxy") && !strings.Contains(c.Name, "csrf") {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		return "", errors.New("the sign-in set no _oauth2_proxy cookie")
	}
	return strings.Join(parts, "; "), nil
}

// gatewayWritesRun is the store writes of one busy session's requests
// through a gateway over a whole idle period.
type gatewayWritesRun struct {
	name  string // of the row whose setup it uses
	label string
	start func(ctx context.Context, e *env, extra []string) (*running, error)
}

var gatewayWritesRuns = []gatewayWritesRun{
	{"gw-nginx-check", "nginx auth_request", func(ctx context.Context, e *env, extra []string) (*running, error) {
		return e.startNginxRow(ctx, "gw-nginx-check", sgCheck, extra)
	}},
	{"gw-sg-proxy", "reverse-proxy mode", func(ctx context.Context, e *env, extra []string) (*running, error) {
		return e.startSGProxyRow(ctx, "gw-sg-proxy", extra)
	}},
}

// gatewayIdle is the idle timeout of the gateway writes runs: one whole
// idle period (20 touch intervals by default) within one load.
func (e *env) gatewayIdle() time.Duration {
	return max(e.cfg.duration, 4*time.Second)
}

// gatewayWrites loads one signed-in session through each gateway for one
// whole idle period, the sessionguard command running with -idle-timeout
// set to the load's length (its default touch interval is a twentieth of
// that), and counts the store's writes with the SQLite triggers. The real
// 30 minutes would spread the same writes over 1800/idle times as many
// requests: the figure is an upper bound of the default's.
func (e *env) gatewayWrites(ctx context.Context, res *results) error {
	if !e.cfg.writes {
		return nil
	}
	want := map[string]bool{}
	for _, n := range e.cfg.systems {
		want[n] = true
	}
	idle := e.gatewayIdle()
	for _, g := range gatewayWritesRuns {
		if len(want) > 0 && !want[g.name] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w, err := e.gatewayWritesOne(ctx, g, idle)
		if err != nil {
			res.fail("gateway writes "+g.label, err)
			continue
		}
		res.GatewayWrites = append(res.GatewayWrites, *w)
		fmt.Printf("writes %-20s %d writes in %d requests over one idle period (%v): %.3f per 1,000\n", g.label, w.Writes, w.Requests, w.Simulated, w.PerThousand())
	}
	return nil
}

func (e *env) gatewayWritesOne(ctx context.Context, g gatewayWritesRun, idle time.Duration) (*writesRow, error) {
	r, err := g.start(ctx, e, []string{"-idle-timeout", idle.String()})
	if err != nil {
		return nil, err
	}
	defer r.stop()
	before, err := r.writes(ctx)
	if err != nil {
		return nil, err
	}
	lr, err := e.load(ctx, r.target, idle)
	if err != nil {
		return nil, err
	}
	if msg := lr.failed(); msg != "" {
		return nil, errors.New(msg)
	}
	after, err := r.writes(ctx)
	if err != nil {
		return nil, err
	}
	// The session lasted the whole idle period: the checks kept it alive.
	if err := r.verify(ctx); err != nil {
		return nil, fmt.Errorf("after the load: %w", err)
	}
	return &writesRow{Store: g.label, Requests: lr.Requests, Writes: after - before, Simulated: idle}, nil
}

// o2p is the state of the oauth2-proxy install, in env.
type o2p struct {
	o2pOnce sync.Once
	o2pBin  string
	o2pErr  error
}
