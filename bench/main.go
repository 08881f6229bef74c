// Command bench measures sessionguard side by side with what a user would
// pick instead (scs, gorilla/sessions, the seed's Flask program) and with a
// bare net/http handler, and writes docs/benchmarks.md and its chart.
//
// Every system runs as a separate process on loopback; wrk (or, without
// it, a Go load generator in this process) sends each the same
// authenticated GET in turn. Run it from this directory:
//
//	go run .                       the full run, printed (about 40 minutes on 2 cores)
//	go run . -write-docs ../docs   the same, and regenerate the document and chart
//	go run . -quick                every system, short runs, small scale runs (< 1 minute)
//	go run . -soak 10m             the soak alone: every store at once under steady use (soak.go)
//
// The same program is also each server process: `bench serve -system NAME`
// (started by the harness, not by hand).
//
// This module is separate from sessionguard's (its go.mod replaces
// sessionguard with the working tree) so that the peers never enter
// sessionguard's dependencies.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serveMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench serve: %v\n", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Output piped into a program that stops reading (| head) must not
	// kill the run before it removes its schemas and keys.
	signal.Ignore(syscall.SIGPIPE)
	runner := run
	if cfg.soak > 0 {
		runner = runSoak
	}
	if err := runner(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// config is what the command line asks of a run.
type config struct {
	quick        bool
	duration     time.Duration // of each measured load
	connections  int
	threads      int
	rounds       int
	loadgen      string // auto, wrk or go
	systems      []string
	writeDocs    string // directory of benchmarks.md; empty: write nothing
	scale        bool
	scaleSizes   []int
	scaleStores  []string
	sweepSize    int
	sweepStores  []string
	sweepRate    int
	flood        bool
	floodConns   int
	writes       bool
	profile      bool
	redisDSN     string
	pgDSN        string
	keep         string // directory to keep logs and profiles in; empty: a temporary one
	nginx        string // nginx's path; empty: found on the PATH
	nginxWorkers string // nginx's worker_processes
	oauth2Proxy  string // oauth2-proxy's path; empty: installed with go install when missing

	// The soak (soak.go): instead of the benchmark when soak is set.
	soak       time.Duration
	soakStores []string
	soakUsers  int           // virtual users per server
	soakIdle   time.Duration // the servers' idle timeout
	soakThink  time.Duration // a user's time between two steps, give or take half
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run . [flags]\n\nMeasures sessionguard against bare net/http, scs, gorilla/sessions and the seed's\nFlask program, each as its own process on loopback. Flags:\n\n")
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.quick, "quick", false, "short runs and small scale runs, under a minute: proves the harness works, measures little")
	fs.DurationVar(&c.duration, "duration", 0, "length of each measured load (default 8s, 1s with -quick)")
	fs.IntVar(&c.connections, "connections", 32, "keep-alive connections of the load generator")
	fs.IntVar(&c.threads, "threads", 1, "wrk threads")
	fs.IntVar(&c.rounds, "rounds", 0, "times the main table is run, interleaved; each system's median round is kept (default 3, 1 with -quick)")
	fs.StringVar(&c.loadgen, "loadgen", "auto", "load generator: wrk, go (in this process), or auto (wrk when installed)")
	systems := fs.String("systems", "", "comma-separated names of the systems of the main table to run (default all; see -list)")
	list := fs.Bool("list", false, "list the systems and exit")
	fs.StringVar(&c.writeDocs, "write-docs", "", "write benchmarks.md and benchmarks.png into this directory (../docs regenerates the project's)")
	fs.BoolVar(&c.scale, "scale", true, "run the scaling runs (live sessions, heap, sweep, login flood, store writes)")
	sizes := fs.String("scale-sizes", "", "live sessions per scaling step (default 1000,100000,1000000; 1000,20000 with -quick)")
	stores := fs.String("scale-stores", "", "stores of the scaling runs (default memory,sqlite,postgres,redis; memory,sqlite with -quick)")
	fs.IntVar(&c.sweepSize, "sweep-size", 0, "expired sessions to sweep (default 1000000; 20000 with -quick)")
	sweepStores := fs.String("sweep-stores", "", "stores of the sweep run (default memory,sqlite,postgres,redis; memory with -quick)")
	fs.IntVar(&c.sweepRate, "sweep-rate", 1000, "requests per second sampled (open loop) before and during the sweep")
	fs.BoolVar(&c.flood, "flood", true, "run the login flood against the sessionguard server")
	fs.IntVar(&c.floodConns, "flood-clients", 50, "concurrent clients of the login flood, each from its own loopback address")
	fs.BoolVar(&c.writes, "writes", true, "count store writes of one session busy for a whole idle period")
	fs.BoolVar(&c.profile, "profile", true, "take a CPU profile of each sessionguard middleware system under load (off with -quick unless given)")
	fs.StringVar(&c.redisDSN, "redis", envOr("SESSIONGUARD_TEST_REDIS", "redis://127.0.0.1:6379/0"), "Redis for the Redis systems (default $SESSIONGUARD_TEST_REDIS)")
	fs.StringVar(&c.pgDSN, "postgres", envOr("SESSIONGUARD_TEST_POSTGRES", "postgres://root@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL for the PostgreSQL systems (default $SESSIONGUARD_TEST_POSTGRES)")
	fs.StringVar(&c.keep, "keep", "", "keep the servers' logs, the CPU profiles, and each sweep's latency samples (CSV: due time, latency in µs) and 2-second execution trace in this directory")
	fs.StringVar(&c.nginx, "nginx", "", "nginx for the gateway rows (default: nginx on the PATH, or /usr/sbin/nginx)")
	fs.StringVar(&c.nginxWorkers, "nginx-workers", "auto", "nginx's worker_processes in the gateway rows (auto: one per core)")
	fs.StringVar(&c.oauth2Proxy, "oauth2-proxy", "", "oauth2-proxy for its gateway row (default: the one go install put into the user cache directory, installed the first time)")
	fs.Var(soakFlag{&c.soak}, "soak", "run the soak instead of the benchmark, for this long (-soak alone: "+fmtFlagDuration(defaultSoak)+"): the sessionguard command with each store at once, users signing in, browsing, polling, signing out and timing out; fails if a session is lost or ends twice, or heap, goroutines, open files or p99 grow")
	soakStores := fs.String("soak-stores", "memory,sqlite,redis,postgres", "stores of the soak's servers")
	fs.IntVar(&c.soakUsers, "soak-users", 20, "virtual users per server in the soak")
	fs.DurationVar(&c.soakIdle, "soak-idle", 20*time.Second, "idle timeout of the soak's servers, short so that sessions time out all the while")
	fs.DurationVar(&c.soakThink, "soak-think", time.Second, "a soak user's time between two steps, give or take half")
	if err := fs.Parse(soakArgs(args)); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if *list {
		for _, s := range mainSystems() {
			fmt.Printf("%-16s %s\n", s.name, s.label)
		}
		os.Exit(0)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	pick := func(full, quick string) string {
		if c.quick {
			return quick
		}
		return full
	}
	if c.duration == 0 {
		c.duration = 8 * time.Second
		if c.quick {
			c.duration = time.Second
		}
	}
	if c.rounds == 0 {
		c.rounds = 3
		if c.quick {
			c.rounds = 1
		}
	}
	if c.rounds < 1 {
		return nil, fmt.Errorf("-rounds %d: at least 1", c.rounds)
	}
	if c.duration < time.Second {
		return nil, fmt.Errorf("-duration %v: at least 1s", c.duration)
	}
	if c.connections < 1 || c.threads < 1 || c.threads > c.connections {
		return nil, fmt.Errorf("-connections and -threads must be positive, threads <= connections")
	}
	switch c.loadgen {
	case "auto", "wrk", "go":
	default:
		return nil, fmt.Errorf("-loadgen %q: want auto, wrk or go", c.loadgen)
	}
	if *systems != "" {
		known := map[string]bool{}
		for _, s := range mainSystems() {
			known[s.name] = true
		}
		for _, n := range splitList(*systems) {
			if !known[n] {
				return nil, fmt.Errorf("-systems: unknown system %q (see -list)", n)
			}
			c.systems = append(c.systems, n)
		}
	}
	if *sizes == "" {
		*sizes = pick("1000,100000,1000000", "1000,20000")
	}
	for _, s := range splitList(*sizes) {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			return nil, fmt.Errorf("-scale-sizes: %q is not a positive number", s)
		}
		c.scaleSizes = append(c.scaleSizes, n)
	}
	var err error
	if c.scaleStores, err = storeList("-scale-stores", *stores, pick("memory,sqlite,postgres,redis", "memory,sqlite")); err != nil {
		return nil, err
	}
	if c.sweepStores, err = storeList("-sweep-stores", *sweepStores, pick("memory,sqlite,postgres,redis", "memory")); err != nil {
		return nil, err
	}
	if c.sweepSize == 0 {
		c.sweepSize = 1_000_000
		if c.quick {
			c.sweepSize = 20_000
		}
	}
	if c.soakStores, err = storeList("-soak-stores", *soakStores, ""); err != nil {
		return nil, err
	}
	if c.soak < 0 || (c.soak > 0 && c.soak < 30*time.Second) {
		return nil, fmt.Errorf("-soak %v: at least 30s (the users need a few idle timeouts)", c.soak)
	}
	if c.soakUsers < 1 || c.soakIdle < 5*time.Second || c.soakThink <= 0 || c.soakThink >= c.soakIdle/4 {
		return nil, fmt.Errorf("-soak-users must be positive, -soak-idle at least 5s, and -soak-think positive and under a quarter of -soak-idle")
	}
	if c.quick && !set["profile"] {
		c.profile = false
	}
	if c.quick && !set["flood"] {
		c.flood = true
	}
	return c, nil
}

func storeList(flagName, v, def string) ([]string, error) {
	if v == "" {
		v = def
	}
	if v == "none" {
		return nil, nil
	}
	var out []string
	for _, s := range splitList(v) {
		switch s {
		case "memory", "sqlite", "postgres", "redis":
			out = append(out, s)
		default:
			return nil, fmt.Errorf("%s: unknown store %q (memory, sqlite, postgres, redis or none)", flagName, s)
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// soakFlag is -soak: a duration, defaultSoak when given alone.
type soakFlag struct{ d *time.Duration }

func (f soakFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "0"
	}
	return f.d.String()
}

func (f soakFlag) Set(v string) error {
	if v == "true" {
		*f.d = defaultSoak
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration such as 10m")
	}
	*f.d = d
	return nil
}

func (soakFlag) IsBoolFlag() bool { return true }

// soakArgs joins "-soak 10m" into "-soak=10m": -soak is also a flag alone
// (a boolean flag to the flag package), which would take "10m" for an
// argument.
func soakArgs(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(out); i++ {
		if out[i] != "-soak" && out[i] != "--soak" {
			continue
		}
		if _, err := time.ParseDuration(out[i+1]); err == nil {
			out = slices.Replace(out, i, i+2, out[i]+"="+out[i+1])
		}
	}
	return out
}
