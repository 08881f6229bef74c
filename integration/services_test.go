package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// randomName returns a name no other test run uses: prefix and 12 hex
// digits.
func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// process is a store server the test started and may stop, pause and
// start again on the same port.
type process struct {
	t      *testing.T
	name   string
	argv   []string
	dir    string
	cred   *syscall.Credential // run as this user; nil: as the test
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
}

// start starts the process and returns at once.
func (p *process) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.argv[0], p.argv[1:]...)
	p.cmd.Dir = p.dir
	// Its own process group, so that a signal meant for the test (^C)
	// is not also a crash of the store in the middle of a check.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	p.cmd.Stdout, p.cmd.Stderr = p.logf, p.logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
}

func (p *process) running() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig and, with wait, waits for the process to exit, killing
// it after a minute.
func (p *process) signal(sig syscall.Signal, wait bool) {
	p.t.Helper()
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(sig)
	if !wait {
		return
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("%s did not exit on %v within a minute; killed", p.name, sig)
	}
}

// signalAll sends sig to the process and to its children (the backends of
// PostgreSQL, which each run in a session of their own, so that no process
// group holds them all), the process first, so that it starts no new child
// meanwhile. Children are found in /proc (Linux).
func (p *process) signalAll(sig syscall.Signal) {
	p.t.Helper()
	if !p.running() {
		return
	}
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil {
		p.t.Fatalf("signalling %s: %v", p.name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		p.t.Fatalf("listing the children of %s: %v", p.name, err)
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// The fields after the command name (which may hold spaces,
		// inside parentheses): state, then the parent's pid.
		_, after, ok := strings.Cut(string(b), ") ")
		fields := strings.Fields(after)
		if !ok || len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		syscall.Kill(child, sig)
	}
}

// log returns what the process wrote, for a failing test.
func (p *process) log() string {
	b, _ := os.ReadFile(p.logf.Name())
	return string(b)
}

// privateRedis is a redis-server of the test's own, without persistence,
// on a free port.
type privateRedis struct {
	process
	port int
}

// startPrivateRedis starts a redis-server on a free port of 127.0.0.1,
// without persistence (--save "" --appendonly no), and waits until it
// answers. It is killed when the test ends.
func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		requireService(t, "SESSIONGUARD_TEST_REDIS", "no redis-server binary on the PATH (Debian: apt-get install redis-server)")
	}
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	r := &privateRedis{port: freePort(t)}
	r.process = process{t: t, name: "redis-server", dir: dir, logf: logf, argv: []string{bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
	}}
	t.Cleanup(func() {
		r.signal(syscall.SIGCONT, false) // a paused server cannot die
		r.signal(syscall.SIGKILL, true)
		if t.Failed() {
			t.Logf("redis-server log:\n%s", r.log())
		}
		logf.Close()
	})
	r.startAndWait()
	return r
}

// startAndWait starts the server (again, on the same port) and waits until
// it answers PING.
func (r *privateRedis) startAndWait() {
	r.t.Helper()
	r.start()
	waitFor(r.t, startTimeout, "redis-server answers PING", func() bool {
		if !r.running() {
			r.t.Fatalf("redis-server exited:\n%s", r.log())
		}
		return redisPing(r.port) == nil
	})
}

// dsn is the server's DSN for sessionguard's -sessions.
func (r *privateRedis) dsn() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// redisPing sends PING in RESP and checks for PONG, without a client
// library, so that the test's probe shares nothing with the server's.
func redisPing(port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// privatePostgres is a PostgreSQL server of the test's own, with its data
// in a temporary directory, on a free port.
type privatePostgres struct {
	process
	port int
}

// postgresBin finds the directory of PostgreSQL's server programs: Debian
// keeps them out of the PATH, under /usr/lib/postgresql/VERSION/bin.
func postgresBin() (string, bool) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { // the newest version first
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, true
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), true
	}
	return "", false
}

// startPrivatePostgres creates a database cluster in a temporary directory
// and starts PostgreSQL on it, on a free port of 127.0.0.1 with its Unix
// socket in that directory, and waits until it accepts connections.
// PostgreSQL refuses to run as root, so a test run as root runs it as the
// user postgres. It is stopped (immediate mode) when the test ends.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bin, ok := postgresBin()
	if !ok {
		requireService(t, "SESSIONGUARD_TEST_POSTGRES", "no PostgreSQL server programs (initdb, postgres) under /usr/lib/postgresql/*/bin or on the PATH (Debian: apt-get install postgresql)")
	}
	// The directory must belong to whoever runs the server; t.TempDir's
	// parents are private to the test's user, so it cannot be under them.
	dir, err := os.MkdirTemp("", "sessionguard-it-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			requireService(t, "SESSIONGUARD_TEST_POSTGRES", "running as root, and PostgreSQL refuses root, but there is no user postgres to run it as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		os.Chown(logf.Name(), int(cred.Uid), int(cred.Gid))
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p := &privatePostgres{port: freePort(t)}
	p.process = process{t: t, name: "postgres", dir: dir, cred: cred, logf: logf, argv: []string{
		filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(p.port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		// A test database: small, and no waiting for the disk. A fast
		// shutdown still writes everything out (a checkpoint).
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=40",
	}}
	t.Cleanup(func() {
		p.signalAll(syscall.SIGCONT)
		p.signal(syscall.SIGQUIT, true) // immediate shutdown
		if t.Failed() {
			t.Logf("postgres log:\n%s", p.log())
		}
		logf.Close()
	})
	p.startAndWait()
	return p
}

// startAndWait starts the server (again, on the same port and data) and
// waits until it accepts connections.
func (p *privatePostgres) startAndWait() {
	p.t.Helper()
	p.start()
	waitFor(p.t, startTimeout, "postgres accepts connections", func() bool {
		if !p.running() {
			p.t.Fatalf("postgres exited:\n%s", p.log())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.dsn())
		if err != nil {
			return false
		}
		c.Close(ctx)
		return true
	})
}

// stopFast stops the server as `pg_ctl stop -m fast` does (SIGINT): open
// connections are cut, everything committed is written out.
func (p *privatePostgres) stopFast() { p.signal(syscall.SIGINT, true) }

func (p *privatePostgres) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// ciPostgres returns a DSN on the PostgreSQL server of
// SESSIONGUARD_TEST_POSTGRES whose search_path is a schema of this test's
// own, dropped when the test ends; it skips the test when the variable is
// unset.
func ciPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SESSIONGUARD_TEST_POSTGRES")
	if base == "" {
		t.Skip("SESSIONGUARD_TEST_POSTGRES is unset; set it to a PostgreSQL URL (postgres://root@127.0.0.1:5432/test?sslmode=disable) to run this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("SESSIONGUARD_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	schema := randomName("sg_it_")
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return withParam(t, base, "search_path", schema)
}

// ciRedis returns a DSN on the Redis server of SESSIONGUARD_TEST_REDIS
// with a key prefix of this test's own, whose keys are deleted when the
// test ends; it skips the test when the variable is unset.
func ciRedis(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SESSIONGUARD_TEST_REDIS")
	if base == "" {
		t.Skip("SESSIONGUARD_TEST_REDIS is unset; set it to a Redis URL (redis://127.0.0.1:6379/0) to run this test")
	}
	opts, err := redis.ParseURL(base)
	if err != nil {
		t.Fatalf("SESSIONGUARD_TEST_REDIS: %v", err)
	}
	rc := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		rc.Close()
		t.Fatalf("SESSIONGUARD_TEST_REDIS: %v", err)
	}
	prefix := randomName("sg-it-") + ":"
	t.Cleanup(func() {
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		iter := rc.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("deleting the keys %s*: %v", prefix, err)
		}
	})
	return withParam(t, base, "key_prefix", prefix)
}

// withParam adds a query parameter to a DSN.
func withParam(t *testing.T, dsn, name, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("DSN: %v", err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// keysUnder counts the Redis keys under a DSN's key_prefix.
func keysUnder(t *testing.T, dsn string) int {
	t.Helper()
	u, _ := url.Parse(dsn)
	prefix := u.Query().Get("key_prefix")
	q := u.Query()
	q.Del("key_prefix")
	u.RawQuery = q.Encode()
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}
