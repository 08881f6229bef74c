package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured: what the document is made of.
type results struct {
	Started, Finished  time.Time
	Machine            machine
	LoadStart, LoadEnd string // /proc/loadavg when the run started and ended
	// Stolen is the share of the run's time the hypervisor gave to other
	// machines while this one wanted to run (/proc/stat's steal).
	Stolen       float64
	Quick        bool
	Duration     time.Duration
	Connections  int
	Threads      int
	Rounds       int
	Generator    string
	NginxWorkers string // nginx's worker_processes in the gateway rows

	Rows     []row
	Profiles []profile
	Scale    []scaleRow
	Heap     []heapRow
	Sweep    []sweepRow
	Writes   []writesRow
	Flood    *floodRow
	// GatewayWrites are the store writes of a busy session's requests
	// through a gateway.
	GatewayWrites []writesRow

	// Failures are the measurements that failed (not those skipped for
	// want of a program or service): the run exits with an error.
	Failures []string
}

// fail records a failed measurement, or a skipped one when err is an
// errSkip, and says so.
func (res *results) fail(what string, err error) {
	var skip errSkip
	if errors.As(err, &skip) {
		fmt.Printf("%s: skipped: %s\n", what, skip.why)
		return
	}
	fmt.Printf("%s: failed: %v\n", what, err)
	res.Failures = append(res.Failures, what+": "+err.Error())
}

// row is one system of the main table.
type row struct {
	Name, Label, Kind string
	Result            *loadResult
	// WritesPer1000 is the store writes per 1,000 requests during the
	// load; negative when the system has no store to count.
	WritesPer1000 float64
	Skip          string // why it was not measured
	Rounds        int    // how many rounds measured it; the row is the median one
	// RoundRPS is the throughput of each round in the order they ran, 0
	// for a round that did not measure it: the spread is the noise, and
	// two systems' ratio round by round is that of loads run one right
	// after the other.
	RoundRPS []float64
	CPU      cpuUse // cores used during the load
}

// profile is the top of a CPU profile taken under load.
type profile struct {
	System string
	Top    string // by the functions' own time
	Cum    string // by cumulative time
}

func run(ctx context.Context, cfg *config) error {
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.cleanup()
	ticks := machineTicks()
	res := &results{
		Started:      time.Now(),
		Machine:      describeMachine(ctx, cfg),
		LoadStart:    loadAverage(),
		Quick:        cfg.quick,
		Duration:     cfg.duration,
		Connections:  cfg.connections,
		Threads:      cfg.threads,
		Rounds:       cfg.rounds,
		Generator:    "wrk",
		NginxWorkers: cfg.nginxWorkers,
	}
	if e.wrk == "" {
		res.Generator = "go"
		fmt.Println("wrk is not installed: loading with the Go load generator (apt-get install wrk for the issue's method)")
	}
	fmt.Printf("%s; %d cores, %s; %s; load average %s\n", res.Started.Format(time.RFC3339), res.Machine.CPUs, res.Machine.CPUModel, res.Machine.GoVersion, res.LoadStart)
	fmt.Printf("each system: %s of %s, %d connections; scratch directory %s\n\n", cfg.duration, res.Generator, cfg.connections, e.dir)

	if err := e.mainTable(ctx, res); err != nil {
		return err
	}
	if ctx.Err() == nil {
		if err := e.gatewayWrites(ctx, res); err != nil && ctx.Err() == nil {
			res.fail("store writes through a gateway", err)
		}
	}
	fmt.Println()
	printTable(os.Stdout, res)

	if cfg.scale {
		steps := []struct {
			name string
			fn   func(context.Context, *results) error
		}{
			{"store writes of a busy session", e.writesRuns},
			{"live sessions", e.scaleRuns},
			{"sweep", e.sweepRuns},
			{"login flood", e.floodRun},
		}
		for _, s := range steps {
			if ctx.Err() != nil {
				break
			}
			if err := s.fn(ctx, res); err != nil {
				if ctx.Err() != nil {
					break
				}
				res.fail(s.name, err)
			}
		}
		fmt.Println()
		printScaling(os.Stdout, res)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	res.Finished = time.Now()
	res.LoadEnd = loadAverage()
	res.Stolen = stolen(ticks, machineTicks())
	fmt.Println()
	printTargets(os.Stdout, res)
	fmt.Printf("\nfinished %s, load average %s, %.1f%% of the time stolen by the hypervisor\n", res.Finished.Format(time.RFC3339), res.LoadEnd, 100*res.Stolen)
	if cfg.writeDocs != "" {
		if err := writeDocs(cfg.writeDocs, res); err != nil {
			return err
		}
		fmt.Printf("wrote %s and its chart\n", filepath.Join(cfg.writeDocs, "benchmarks.md"))
	}
	if len(res.Failures) > 0 {
		return fmt.Errorf("%d measurements failed:\n  %s", len(res.Failures), strings.Join(res.Failures, "\n  "))
	}
	return nil
}

// mainTable loads each system in turn, -rounds times over, and keeps
// each system's median round (by requests per second): interleaved rounds
// spread the machine's other load over every system alike.
func (e *env) mainTable(ctx context.Context, res *results) error {
	want := map[string]bool{}
	for _, n := range e.cfg.systems {
		want[n] = true
	}
	var systems []system
	for _, s := range mainSystems() {
		if len(want) == 0 || want[s.name] {
			systems = append(systems, s)
		}
	}
	rounds := make([][]row, len(systems))
	for round := 1; round <= e.cfg.rounds; round++ {
		for i, s := range systems {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if round > 1 && rounds[i][0].Skip != "" && strings.HasPrefix(rounds[i][0].Skip, "skipped") {
				continue // it cannot run here; said once
			}
			rw := row{Name: s.name, Label: s.label, Kind: s.kind, WritesPer1000: -1}
			if e.cfg.rounds > 1 {
				fmt.Printf("%d/%d ", round, e.cfg.rounds)
			}
			fmt.Printf("%-14s ", s.name)
			r, err := s.start(ctx, e)
			if err == nil {
				err = e.measure(ctx, s, r, &rw, res, round == e.cfg.rounds)
				r.stop()
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				var skip errSkip
				if errors.As(err, &skip) {
					rw.Skip = "skipped: " + skip.why
				} else {
					rw.Skip = "failed: " + err.Error()
				}
				rw.Result = nil
				fmt.Println(rw.Skip)
			} else {
				fmt.Printf("%9.0f req/s  p50 %-8s p99 %-8s cores: server/load/db/other %s\n", rw.Result.RPS(), fmtDur(rw.Result.P50), fmtDur(rw.Result.P99), fmtCPU(rw.CPU))
			}
			rounds[i] = append(rounds[i], rw)
		}
	}
	for _, rs := range rounds {
		m := medianRow(rs)
		for _, r := range rs {
			m.RoundRPS = append(m.RoundRPS, r.Result.RPS())
		}
		if strings.HasPrefix(m.Skip, "failed") {
			res.Failures = append(res.Failures, m.Name+": "+m.Skip)
		}
		res.Rows = append(res.Rows, m)
	}
	return nil
}

// medianRow returns the round with the median throughput among those that
// were measured (the lower middle one of an even number), or the first
// round's failure if none was.
func medianRow(rs []row) row {
	var ok []row
	for _, r := range rs {
		if r.Result != nil {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0]
	}
	slices.SortFunc(ok, func(a, b row) int { return cmp.Compare(a.Result.RPS(), b.Result.RPS()) })
	m := ok[(len(ok)-1)/2]
	m.Rounds = len(ok)
	return m
}

// hasWriteCounter reports whether a bench server process of a system
// counts its store writes at /bench/writes.
func hasWriteCounter(name string) bool {
	return strings.HasPrefix(name, "sg-") || strings.HasPrefix(name, "scs-")
}

func (e *env) measure(ctx context.Context, s system, r *running, rw *row, res *results, last bool) error {
	if err := r.verify(ctx); err != nil {
		return err
	}
	if _, err := goLoad(ctx, r.target, e.warmup(), 8); err != nil {
		return err
	}
	var writesBefore int64
	if r.writes != nil {
		var err error
		if writesBefore, err = r.writes(ctx); err != nil {
			return err
		}
	}
	before := takeCPU(r.groups()...)
	lr, err := e.load(ctx, r.target, e.cfg.duration)
	if err != nil {
		return err
	}
	rw.CPU = cpuBetween(before, takeCPU(r.groups()...))
	if msg := lr.failed(); msg != "" {
		return errors.New(msg)
	}
	if r.writes != nil {
		after, err := r.writes(ctx)
		if err != nil {
			return err
		}
		rw.WritesPer1000 = float64(after-writesBefore) * 1000 / float64(lr.Requests)
	}
	// The session must have lasted the whole load.
	if err := r.verify(ctx); err != nil {
		return fmt.Errorf("after the load: %w", err)
	}
	rw.Result = lr
	if last && e.cfg.profile && r.pprof != "" && (s.kind == "sessionguard" || s.kind == "server" || s.kind == "gateway") {
		p, err := e.profile(ctx, r, s.name)
		if err != nil {
			fmt.Printf("(profile of %s failed: %v) ", s.name, err)
		} else {
			res.Profiles = append(res.Profiles, *p)
		}
	}
	return nil
}

// warmup is how long each system is loaded before it is measured.
func (e *env) warmup() time.Duration {
	if e.cfg.quick {
		return 300 * time.Millisecond
	}
	return time.Second
}

// profile loads r again while taking a CPU profile of its process, and
// returns the tops of `go tool pprof -top`, flat and cumulative.
func (e *env) profile(ctx context.Context, r *running, name string) (*profile, error) {
	secs := max(2, int(e.cfg.duration/time.Second)-1)
	file := filepath.Join(e.dir, name+".pprof")
	errc := make(chan error, 1)
	go func() {
		_, err := e.load(ctx, r.target, time.Duration(secs+1)*time.Second)
		errc <- err
	}()
	time.Sleep(500 * time.Millisecond) // the load is on
	err := downloadTo(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", r.pprof, secs), file)
	if lerr := <-errc; err == nil {
		err = lerr
	}
	if err != nil {
		return nil, err
	}
	p := &profile{System: name}
	for _, v := range []struct {
		dst  *string
		args []string
	}{
		{&p.Top, []string{"-top", "-nodecount=20"}},
		{&p.Cum, []string{"-top", "-cum", "-nodecount=40"}},
	} {
		out, err := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, v.args...), file)...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof: %v: %s", err, out)
		}
		*v.dst = pprofTop(string(out))
	}
	return p, nil
}

// pprofTop keeps the summary and table of `go tool pprof -top`, without
// the file and build lines that only concern this machine.
func pprofTop(out string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func downloadTo(ctx context.Context, u, file string) error {
	req, err := newGet(ctx, u)
	if err != nil {
		return err
	}
	resp, err := httpClientLong.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
