package main

import (
	"cmp"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// system is one row of the main table.
type system struct {
	name  string
	label string
	kind  string // "ceiling", "sessionguard" (middleware), "server", "peer", "seed", "proxy" (a gateway without a session) or "gateway" (sessionguard as a gateway)
	start func(ctx context.Context, e *env) (*running, error)
}

// running is a started system.
type running struct {
	target target
	base   string // a bench server process's URL, for /bench/ and /debug/pprof/; else ""
	pprof  string // the URL under which the process serves /debug/pprof/; "" if it does not
	open   bool   // answers 200 without a session (the bare handler)
	group  int    // the server's process group, for its CPU time
	// more process groups whose CPU time is the system's: a gateway row's
	// proxy, sessionguard and upstream are each their own process.
	moreGroups []int
	okStatus   int    // the measured request's status when allowed; 0: 200
	wantBody   string // when set, the allowed answer's body must contain it
	// writes, when set, counts the store writes so far (the main table
	// reports them per 1,000 requests of the load).
	writes   func(ctx context.Context) (int64, error)
	stopProc func()
}

// groups returns the process groups of the system's processes.
func (r *running) groups() []int {
	return append([]int{r.group}, r.moreGroups...)
}

func (r *running) stop() {
	if r != nil && r.stopProc != nil {
		r.stopProc()
	}
}

// The path and Accept header of the sessionguard server's measured
// requests: the JSON list of the user's own sessions, and the account
// page. Both need a session, look the user's account up and count as
// activity (neither is passive like GET /auth/status).
const (
	serverJSONPath = "/auth/sessions"
	serverPagePath = "/account"
)

func mainSystems() []system {
	sg := func(store, label string) system {
		name := "sg-" + store
		return system{name, "sessionguard middleware, " + label, "sessionguard", func(ctx context.Context, e *env) (*running, error) {
			return e.startBench(ctx, name, nil)
		}}
	}
	scs := func(store, label string) system {
		name := "scs-" + store
		return system{name, "alexedwards/scs v2.9.0, " + label + ", 30 min idle timeout", "peer", func(ctx context.Context, e *env) (*running, error) {
			return e.startBench(ctx, name, nil)
		}}
	}
	return append([]system{
		{"bare", "bare net/http handler, no session (the ceiling)", "ceiling", func(ctx context.Context, e *env) (*running, error) {
			return e.startBench(ctx, "bare", nil)
		}},
		sg("memory", "memory store"),
		sg("sqlite", "SQLite store"),
		sg("redis", "Redis store"),
		{"bare-redis-get", "bare net/http handler, one Redis GET per request, the same go-redis client as the Redis store's (its ceiling)", "ceiling", func(ctx context.Context, e *env) (*running, error) {
			return e.startBench(ctx, "bare-redis-get", nil)
		}},
		sg("postgres", "PostgreSQL store"),
		{"bare-pg-select", "bare net/http handler, one primary-key SELECT per request, the same pgx pool as the PostgreSQL store's (its ceiling)", "ceiling", func(ctx context.Context, e *env) (*running, error) {
			return e.startBench(ctx, "bare-pg-select", nil)
		}},
		{"server-json", "sessionguard server, GET " + serverJSONPath + " (JSON), SQLite", "server", func(ctx context.Context, e *env) (*running, error) {
			return e.startServerSystem(ctx, "server-json", serverJSONPath, "application/json")
		}},
		{"server-page", "sessionguard server, GET " + serverPagePath + " (HTML page), SQLite", "server", func(ctx context.Context, e *env) (*running, error) {
			return e.startServerSystem(ctx, "server-page", serverPagePath, "text/html")
		}},
		scs("memory", "memstore"),
		scs("redis", "redisstore"),
		scs("postgres", "postgresstore"),
		{"gorilla", "gorilla/sessions v1.4.0 cookie store, re-saved for a sliding expiry", "peer", func(ctx context.Context, e *env) (*running, error) {
			return e.startBench(ctx, "gorilla", nil)
		}},
		{"flask", "the seed's Flask program (Flask, gunicorn, 2 workers)", "seed", func(ctx context.Context, e *env) (*running, error) {
			return e.startFlask(ctx)
		}},
	}, gatewaySystems()...)
}

// storeOf returns the database a bench server system keeps its sessions
// (or its bare rows and keys) in: sqlite, redis, postgres, or "" for none
// outside the process.
func storeOf(system string) string {
	switch {
	case strings.HasSuffix(system, "-sqlite"):
		return "sqlite"
	case strings.HasSuffix(system, "-redis"), system == "bare-redis-get":
		return "redis"
	case strings.HasSuffix(system, "-postgres"), system == "bare-pg-select":
		return "postgres"
	}
	return ""
}

// startBench starts this program as the server of one system (see
// serveMain), with its own database, schema or key prefix, and signs one
// session in.
func (e *env) startBench(ctx context.Context, system string, extra []string) (*running, error) {
	args := []string{"serve", "-system", system, "-addr", "127.0.0.1:0"}
	var schema, prefix, dbFile string
	var err error
	switch storeOf(system) {
	case "sqlite":
		dbFile = filepath.Join(e.dir, e.name(system)+".db")
		args = append(args, "-sqlite", dbFile)
	case "redis":
		if prefix, err = e.newPrefix(system); err != nil {
			return nil, err
		}
		args = append(args, "-redis", e.cfg.redisDSN, "-prefix", prefix)
	case "postgres":
		var dsn string
		if dsn, schema, err = e.newSchema(ctx, system); err != nil {
			return nil, err
		}
		args = append(args, "-postgres", dsn)
	}
	args = append(args, extra...)
	// Once the server stops, its sessions go: the databases are shared.
	release := func() {
		if schema != "" || prefix != "" {
			e.release(schema, prefix)
		}
		if dbFile != "" && !e.keepDir {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(dbFile + suffix)
			}
		}
	}
	p, addr, err := e.startProc(ctx, e.name(system), e.exe, args, nil, true)
	if err != nil {
		release()
		return nil, err
	}
	r := &running{base: "http://" + addr, open: system == "bare", group: p.cmd.Process.Pid,
		stopProc: func() { p.stop(); release() }}
	r.pprof = r.base
	r.target = target{url: r.base + "/", header: http.Header{}}
	if hasWriteCounter(system) {
		r.writes = func(ctx context.Context) (int64, error) {
			var c writeCounts
			err := r.get(ctx, "/bench/writes", &c)
			return c.Total, err
		}
	}
	if system == "bare" {
		// The same request as the others: a session cookie of the usual size.
		r.target.header.Set("Cookie", "__Host-session="+strings.Repeat("x", 43))
		return r, nil
	}
	cookies, err := r.login(ctx, 1)
	if err != nil {
		r.stop()
		return nil, err
	}
	r.target.header.Set("Cookie", cookies[0])
	return r, nil
}

// login signs n new sessions in through a bench server's /bench/login and
// returns their Cookie header values.
func (r *running) login(ctx context.Context, n int) ([]string, error) {
	var ans loginAnswer
	if err := r.post(ctx, fmt.Sprintf("/bench/login?n=%d", n), &ans); err != nil {
		return nil, err
	}
	if len(ans.Cookies) != n {
		return nil, fmt.Errorf("/bench/login gave %d cookies, want %d", len(ans.Cookies), n)
	}
	return ans.Cookies, nil
}

// post sends POST base+path and decodes the JSON answer into v.
func (r *running) post(ctx context.Context, path string, v any) error {
	return benchCall(ctx, http.MethodPost, r.base+path, v)
}

func (r *running) get(ctx context.Context, path string, v any) error {
	return benchCall(ctx, http.MethodGet, r.base+path, v)
}

func benchCall(ctx context.Context, method, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(body)))
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

// verify checks that the system answers the measured request with 200 and
// a body, and, unless it is open, refuses the same request without its
// cookie: proof that what is measured is a real session check.
func (r *running) verify(ctx context.Context) error {
	client := newClient(1)
	defer client.CloseIdleConnections()
	want := cmp.Or(r.okStatus, http.StatusOK)
	resp, err := client.Do(r.target.request(ctx, 0))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("the measured request got %d, want %d: %.200s", resp.StatusCode, want, body)
	}
	if r.wantBody != "" && !strings.Contains(string(body), r.wantBody) {
		return fmt.Errorf("the measured request's answer %.200q lacks %q", body, r.wantBody)
	}
	if r.open {
		return nil
	}
	t := r.target
	t.header = t.header.Clone()
	t.header.Del("Cookie")
	t.cookies = nil
	status, err := do(client, t.request(ctx, 0))
	if err != nil {
		return err
	}
	if status < 300 {
		return fmt.Errorf("the measured request without its cookie got %d: the session is not checked", status)
	}
	return nil
}

// The sessionguard server's account for the measured sessions.
const (
	serverUser     = "bench-user"
	serverPassword = "bench password long enough 42"
)

// sgServer is a running sessionguard server.
type sgServer struct {
	proc   *proc
	base   string
	debug  string // its -debug-addr, serving /debug/pprof/
	dbFile string // its SQLite database, which holds its sessions too
}

// startServer builds (once) and starts the sessionguard command with its
// own SQLite database holding one account. extra are more flags of
// `sessionguard serve`.
func (e *env) startServer(ctx context.Context, name string, extra ...string) (*sgServer, error) {
	bin, err := e.sessionguardBinary(ctx)
	if err != nil {
		return nil, err
	}
	dbFile := filepath.Join(e.dir, e.name(name)+".db")
	db := "sqlite:" + dbFile
	add := exec.CommandContext(ctx, bin, "user", "add", "-db", db, "-password-stdin", serverUser)
	add.Env = childEnv()
	add.Stdin = strings.NewReader(serverPassword + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sessionguard user add: %v: %s", err, out)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	debug, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "-addr", addr, "-db", db, "-log-level", "warn", "-debug-addr", debug}, extra...)
	p, _, err := e.startProc(ctx, e.name(name), bin, args, nil, false)
	if err != nil {
		return nil, err
	}
	s := &sgServer{proc: p, base: "http://" + addr, debug: "http://" + debug, dbFile: dbFile}
	if err := waitHTTP(ctx, p, s.base+"/healthz"); err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

// login signs the bench account in and returns the session's Cookie
// header value. The cookie is Secure (__Host-), so it is sent by hand.
func (s *sgServer) login(ctx context.Context) (string, error) {
	client := newClient(1)
	defer client.CloseIdleConnections()
	form := url.Values{"username": {serverUser}, "password": {serverPassword}, "next": {"/"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/auth/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("sessionguard sign-in answered %s, want 303", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" && c.Value != "" {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", errors.New("sessionguard sign-in set no __Host-session cookie")
}

func (e *env) startServerSystem(ctx context.Context, name, path, accept string) (*running, error) {
	s, err := e.startServer(ctx, name)
	if err != nil {
		return nil, err
	}
	cookie, err := s.login(ctx)
	if err != nil {
		s.proc.stop()
		return nil, err
	}
	h := http.Header{}
	h.Set("Cookie", cookie)
	h.Set("Accept", accept)
	return &running{target: target{url: s.base + path, header: h}, pprof: s.debug, stopProc: s.proc.stop, group: s.proc.cmd.Process.Pid}, nil
}

//go:embed flask/app.py
var flaskApp []byte

// flaskRuntime finds gunicorn and checks that its Python has Flask. It
// returns gunicorn's path, or why the Flask program cannot run.
func flaskRuntime(ctx context.Context) (gunicorn, python string, err error) {
	gunicorn, err = exec.LookPath("gunicorn")
	if err != nil {
		return "", "", errors.New("gunicorn is not installed (apt-get install python3-flask gunicorn)")
	}
	// gunicorn runs on the Python of its #! line: that one needs Flask.
	python = "python3"
	if b, err := os.ReadFile(gunicorn); err == nil {
		if line, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(line, "#!") {
			if f := strings.Fields(strings.TrimPrefix(line, "#!")); len(f) > 0 && !strings.HasSuffix(f[0], "/env") {
				python = f[0]
			}
		}
	}
	if out, err := exec.CommandContext(ctx, python, "-c", "import flask").CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("Flask is not installed for %s (apt-get install python3-flask): %s", python, strings.TrimSpace(string(out)))
	}
	return gunicorn, python, nil
}

// startFlask writes the seed's program into the scratch directory and
// serves it with gunicorn and 2 workers, as its deployment would.
func (e *env) startFlask(ctx context.Context) (*running, error) {
	gunicorn, _, err := flaskRuntime(ctx)
	if err != nil {
		return nil, errSkip{err.Error()}
	}
	dir := filepath.Join(e.dir, "flask")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "app.py"), flaskApp, 0o644); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	p, _, err := e.startProc(ctx, e.name("flask"), gunicorn,
		[]string{"--workers", "2", "--bind", addr, "--chdir", dir, "--log-level", "warning", "app:app"},
		[]string{"BENCH_FLASK_SECRET=" + hex.EncodeToString(secret)}, false)
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	if err := waitHTTP(ctx, p, base+"/"); err != nil {
		p.stop()
		return nil, err
	}
	client := newClient(1)
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader("username=alice"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		p.stop()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		p.stop()
		return nil, fmt.Errorf("the Flask program's login answered %s without a session cookie", resp.Status)
	}
	h := http.Header{}
	h.Set("Cookie", cookie)
	return &running{target: target{url: base + "/", header: h}, stopProc: p.stop, group: p.cmd.Process.Pid}, nil
}

// errSkip is a system that cannot run on this machine, for a reason the
// table notes; not a failure of the harness.
type errSkip struct{ why string }

func (e errSkip) Error() string { return e.why }
