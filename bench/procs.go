package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// env is what the systems of one run share: the scratch directory, the
// programs, and the databases' schemas and key prefixes to clean up.
type env struct {
	cfg     *config
	dir     string // scratch: databases, logs, profiles
	keepDir bool
	exe     string // this program, which is also every Go server process
	wrk     string // wrk's path; empty: the Go load generator

	sgOnce sync.Once
	sgBin  string // the sessionguard command, built from the working tree
	sgErr  error

	o2p // oauth2-proxy, installed once

	redisErr error // why Redis cannot be used; nil: it answers
	pgErr    error // the same for PostgreSQL

	mu       sync.Mutex
	schemas  []string
	prefixes []string
	seq      int
}

func newEnv(ctx context.Context, cfg *config) (*env, error) {
	e := &env{cfg: cfg}
	var err error
	if e.exe, err = os.Executable(); err != nil {
		return nil, err
	}
	if cfg.keep != "" {
		e.dir, e.keepDir = cfg.keep, true
		err = os.MkdirAll(e.dir, 0o755)
	} else {
		e.dir, err = os.MkdirTemp("", "sessionguard-bench-")
	}
	if err != nil {
		return nil, err
	}
	switch cfg.loadgen {
	case "wrk", "auto":
		if p, err := exec.LookPath("wrk"); err == nil {
			e.wrk = p
		} else if cfg.loadgen == "wrk" {
			return nil, errors.New("-loadgen wrk: wrk is not installed (apt-get install wrk)")
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e.redisErr = pingRedis(pctx, cfg.redisDSN)
	e.pgErr = pingPostgres(pctx, cfg.pgDSN)
	return e, nil
}

func pingRedis(ctx context.Context, dsn string) error {
	opt, err := goredis.ParseURL(dsn)
	if err != nil {
		return fmt.Errorf("Redis DSN: %w", err)
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("Redis at %s does not answer: %w", opt.Addr, err)
	}
	return nil
}

func pingPostgres(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("PostgreSQL does not answer: %w", err)
	}
	return conn.Close(ctx)
}

// name returns a name unique to this run for a schema, key prefix or file.
func (e *env) name(what string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return fmt.Sprintf("bench_%d_%d_%s", os.Getpid(), e.seq, strings.ReplaceAll(what, "-", "_"))
}

// newSchema creates a PostgreSQL schema of this run and returns the DSN
// whose connections use it, and the schema.
func (e *env) newSchema(ctx context.Context, what string) (string, string, error) {
	if e.pgErr != nil {
		return "", "", errSkip{e.pgErr.Error()}
	}
	schema := e.name(what)
	conn, err := pgx.Connect(ctx, e.cfg.pgDSN)
	if err != nil {
		return "", "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", "", err
	}
	e.mu.Lock()
	e.schemas = append(e.schemas, schema)
	e.mu.Unlock()
	u, err := url.Parse(e.cfg.pgDSN)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// newPrefix returns a Redis key prefix of this run.
func (e *env) newPrefix(what string) (string, error) {
	if e.redisErr != nil {
		return "", errSkip{e.redisErr.Error()}
	}
	p := strings.ReplaceAll(e.name(what), "_", ":") + ":"
	e.mu.Lock()
	e.prefixes = append(e.prefixes, p)
	e.mu.Unlock()
	return p, nil
}

// release drops a schema or deletes the keys of a prefix of this run as
// soon as its server has stopped, so that the shared databases do not
// hold millions of a finished system's sessions; cleanup catches the rest.
func (e *env) release(schema, prefix string) {
	e.mu.Lock()
	e.schemas = slices.DeleteFunc(e.schemas, func(s string) bool { return s == schema })
	e.prefixes = slices.DeleteFunc(e.prefixes, func(p string) bool { return p == prefix })
	e.mu.Unlock()
	e.drop(nil, nil, schema, prefix)
}

// cleanup drops the run's remaining schemas and Redis keys, and the
// scratch directory unless -keep named it.
func (e *env) cleanup() {
	e.mu.Lock()
	schemas, prefixes := e.schemas, e.prefixes
	e.schemas, e.prefixes = nil, nil
	e.mu.Unlock()
	e.drop(schemas, prefixes, "", "")
	if !e.keepDir {
		os.RemoveAll(e.dir)
	}
}

func (e *env) drop(schemas, prefixes []string, schema, prefix string) {
	if schema != "" {
		schemas = append(schemas, schema)
	}
	if prefix != "" {
		prefixes = append(prefixes, prefix)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if len(schemas) > 0 {
		if conn, err := pgx.Connect(ctx, e.cfg.pgDSN); err == nil {
			for _, s := range schemas {
				if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
					fmt.Fprintf(os.Stderr, "bench: dropping schema %s: %v\n", s, err)
				}
			}
			conn.Close(ctx)
		}
	}
	if len(prefixes) > 0 {
		if opt, err := goredis.ParseURL(e.cfg.redisDSN); err == nil {
			c := goredis.NewClient(opt)
			for _, p := range prefixes {
				if err := deleteKeys(ctx, c, p); err != nil {
					fmt.Fprintf(os.Stderr, "bench: deleting Redis keys %s*: %v\n", p, err)
				}
			}
			c.Close()
		}
	}
}

// deleteKeys deletes every key that starts with prefix, a batch at a time.
func deleteKeys(ctx context.Context, c *goredis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, prefix+"*", 5000).Iterator()
	batch := make([]string, 0, 5000)
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.Unlink(ctx, batch...).Err()
	}
	return nil
}

// sessionguardBinary builds the sessionguard command from the working tree
// once, and returns its path.
func (e *env) sessionguardBinary(ctx context.Context) (string, error) {
	e.sgOnce.Do(func() {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/sessionguard/sessionguard")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			e.sgErr = fmt.Errorf("finding the sessionguard module: %v: %s", err, out.String())
			return
		}
		root := strings.TrimSpace(out.String())
		bin := filepath.Join(e.dir, "sessionguard")
		out.Reset()
		cmd = exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sessionguard")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			e.sgErr = fmt.Errorf("building cmd/sessionguard: %v: %s", err, out.String())
			return
		}
		e.sgBin = bin
	})
	return e.sgBin, e.sgErr
}

// proc is a server process of the run.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // its standard error (and output, for other programs)
	done chan struct{}
	err  error // how it exited, once done is closed
}

// startProc starts bin with args. Its standard error goes to a log file
// in the scratch directory. With waitReady, it waits for the line
// "ready ADDR" on standard output and returns ADDR.
func (e *env) startProc(ctx context.Context, name, bin string, args, extraEnv []string, waitReady bool) (*proc, string, error) {
	logPath := filepath.Join(e.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(childEnv(), extraEnv...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = procAttr()
	var stdout io.ReadCloser
	if waitReady {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logFile.Close()
			return nil, "", err
		}
	} else {
		cmd.Stdout = logFile
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		if stdout != nil {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				default:
				}
			}
		}
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	if !waitReady {
		return p, "", nil
	}
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	for {
		select {
		case l := <-lines:
			if addr, ok := strings.CutPrefix(l, "ready "); ok {
				return p, addr, nil
			}
		case <-p.done:
			return nil, "", fmt.Errorf("%s exited before it was ready (%v): %s", name, p.err, tail(logPath))
		case <-timer.C:
			p.stop()
			return nil, "", fmt.Errorf("%s was not ready within a minute: %s", name, tail(logPath))
		case <-ctx.Done():
			p.stop()
			return nil, "", ctx.Err()
		}
	}
}

// stop ends the process (and its process group: gunicorn's workers) with
// SIGTERM, then SIGKILL after 10 seconds.
func (p *proc) stop() {
	if p == nil {
		return
	}
	signalGroup(p.cmd, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	signalGroup(p.cmd, syscall.SIGKILL)
	<-p.done
}

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// childEnv is this process's environment without SESSIONGUARD_ variables,
// which the sessionguard command would read as flags.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIONGUARD_") {
			out = append(out, kv)
		}
	}
	return out
}

// tail returns the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty log)"
	}
	return s
}

// freePort returns a loopback address with a port free right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// waitHTTP waits until GET url answers with any status.
func waitHTTP(ctx context.Context, p *proc, u string) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, tail(p.log))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer at %s: %v", p.name, u, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
