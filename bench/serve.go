package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// serveOptions configure one server process (`bench serve`).
type serveOptions struct {
	system     string
	addr       string
	sqlitePath string
	redisDSN   string
	prefix     string        // Redis key prefix
	pgDSN      string        // with the search_path of the system's own schema
	clockStep  time.Duration // jump of the Manager's clock; 0: the real clock
	stepEvery  time.Duration // real time between two jumps
	sweep      bool
	mutexProf  bool
	upstream   string // reverseproxy: the URL it proxies to
	clientID   string // mockoidc: the OAuth client's ID and secret
	secret     string
}

// serveMain runs one system's server until SIGTERM. It prints
// "ready ADDR" on standard output once it accepts connections.
func serveMain(args []string) error {
	var o serveOptions
	fs := flag.NewFlagSet("bench serve", flag.ContinueOnError)
	fs.StringVar(&o.system, "system", "", "bare, sg-memory, sg-sqlite, sg-redis, sg-postgres, bare-redis-get, bare-pg-select, scs-memory, scs-redis, scs-postgres, gorilla, upstream, allow, reverseproxy or mockoidc")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "address to listen on")
	fs.StringVar(&o.sqlitePath, "sqlite", "", "SQLite file of sg-sqlite")
	fs.StringVar(&o.redisDSN, "redis", "", "Redis DSN of the Redis systems")
	fs.StringVar(&o.prefix, "prefix", "", "Redis key prefix")
	fs.StringVar(&o.pgDSN, "postgres", "", "PostgreSQL DSN of the PostgreSQL systems")
	fs.DurationVar(&o.clockStep, "clock-step", 0, "sessionguard systems: move the Manager's clock forward this much every -clock-step-every (0: the real clock)")
	fs.DurationVar(&o.stepEvery, "clock-step-every", time.Second, "real time between two jumps of -clock-step")
	fs.BoolVar(&o.sweep, "sweep", true, "sessionguard systems: run the background sweeper (off: only POST /bench/sweep sweeps)")
	fs.BoolVar(&o.mutexProf, "mutex-profile", false, "record lock contention for /debug/pprof/mutex")
	fs.StringVar(&o.upstream, "upstream", "", "reverseproxy: the URL to proxy every request to")
	fs.StringVar(&o.clientID, "client-id", "", "mockoidc: the OAuth client ID it accepts")
	fs.StringVar(&o.secret, "client-secret", "", "mockoidc: the OAuth client secret it accepts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.clockStep < 0 || o.stepEvery <= 0 {
		return fmt.Errorf("-clock-step must not be negative and -clock-step-every must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.mutexProf {
		runtime.SetMutexProfileFraction(5)
	}
	if o.system == "mockoidc" {
		return serveMockOIDC(ctx, o)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /bench/heap", serveHeap)
	var closeSystem func() error
	var err error
	switch o.system {
	case "bare":
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("hello\n"))
		})
		closeSystem = func() error { return nil }
	case "sg-memory", "sg-sqlite", "sg-redis", "sg-postgres":
		closeSystem, err = mountSessionguard(ctx, mux, o)
	case "bare-redis-get":
		closeSystem, err = mountBareRedis(ctx, mux, o)
	case "bare-pg-select":
		closeSystem, err = mountBarePG(ctx, mux, o)
	case "scs-memory", "scs-redis", "scs-postgres":
		closeSystem, err = mountSCS(ctx, mux, o)
	case "gorilla":
		closeSystem, err = mountGorilla(mux)
	case "upstream":
		mux.HandleFunc("/", upstreamHello)
		closeSystem = func() error { return nil }
	case "allow":
		mux.HandleFunc("/", allowAll)
		closeSystem = func() error { return nil }
	case "reverseproxy":
		closeSystem, err = mountReverseProxy(mux, o.upstream)
	default:
		return fmt.Errorf("unknown -system %q", o.system)
	}
	if err != nil {
		return err
	}
	defer closeSystem()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("ready %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// checkedHello answers a request whose session belongs to user: the
// trivial handler every session system runs.
func checkedHello(w http.ResponseWriter, user string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("hello " + user + "\n"))
}

// heapStats is the answer of GET /bench/heap.
type heapStats struct {
	HeapAlloc uint64 `json:"heap_alloc"`
	HeapInuse uint64 `json:"heap_inuse"`
}

// serveHeap collects garbage, twice so that finalizers' frees count, and
// reports the live heap.
func serveHeap(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, heapStats{HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Error("writing JSON", "err", err)
	}
}

func httpError(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// loginAnswer is the answer of POST /bench/login: Cookie header values
// ("name=value") of new sessions.
type loginAnswer struct {
	Cookies []string `json:"cookies"`
}
