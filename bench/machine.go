package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// machine describes where a run took place.
type machine struct {
	CPUs       int
	CPUModel   string
	Memory     string
	Kernel     string
	GoVersion  string
	Wrk        string
	Flask      string
	Gunicorn   string
	PostgreSQL string
	Redis      string
	Nginx      string
}

func describeMachine(ctx context.Context, cfg *config) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown"}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPUModel = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		m.Memory = v
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	first := func(name string, args ...string) string {
		out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	if _, err := exec.LookPath("wrk"); err == nil {
		// wrk -v prints its version and exits non-zero.
		m.Wrk = first("wrk", "-v")
	}
	if nginx := findNginx(cfg); nginx != "" {
		// nginx -v prints "nginx version: nginx/1.22.1" on standard error.
		m.Nginx = strings.TrimPrefix(first(nginx, "-v"), "nginx version: ")
	}
	if gunicorn, python, err := flaskRuntime(ctx); err == nil {
		m.Gunicorn = first(gunicorn, "--version")
		m.Flask = "Flask " + first(python, "-c", "import importlib.metadata as m; print(m.version('flask'))")
	}
	if conn, err := pgx.Connect(ctx, cfg.pgDSN); err == nil {
		var v string
		if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
			m.PostgreSQL = "PostgreSQL " + v
		}
		conn.Close(ctx)
	}
	if opt, err := goredis.ParseURL(cfg.redisDSN); err == nil {
		c := goredis.NewClient(opt)
		if info, err := c.Info(ctx, "server").Result(); err == nil {
			for _, l := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
					m.Redis = "Redis " + v
				}
			}
		}
		c.Close()
	}
	return m
}

// procField returns the value of the first "key : value" line of a /proc
// file with that key.
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
