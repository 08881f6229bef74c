package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// httpClientLong calls the bench servers' endpoints that take long: a
// preload of a million sessions, a sweep, a profile.
var httpClientLong = &http.Client{Timeout: 30 * time.Minute}

func newGet(ctx context.Context, u string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
}

// writesRow is the store writes of one session kept busy for a whole idle
// period.
type writesRow struct {
	Store    string
	Requests int64
	Writes   int64
	// Simulated is the time the Manager's clock covered during the load:
	// one idle period.
	Simulated time.Duration
}

// PerThousand is the writes per 1,000 requests.
func (w writesRow) PerThousand() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Writes) * 1000 / float64(w.Requests)
}

// touchInterval is the Manager's default touch interval for the 30-minute
// idle timeout: a twentieth of it, at most a minute.
const touchInterval = min(idleTimeout/20, time.Minute)

// writesRuns loads one session for the run's duration while the Manager's
// clock jumps one touch interval forward 30 times, so that the load covers
// one whole idle period (30 minutes), and counts the store writes. It is
// the load of the main table, spread over the idle period, so that every
// write the touch throttling lets through is counted.
func (e *env) writesRuns(ctx context.Context, res *results) error {
	if !e.cfg.writes {
		return nil
	}
	stores := []string{"memory", "sqlite", "postgres", "redis"}
	if e.cfg.quick {
		stores = []string{"memory"}
	}
	steps := int(idleTimeout / touchInterval)
	every := e.cfg.duration / time.Duration(steps)
	for _, store := range stores {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w, err := e.writesRun(ctx, store, every)
		if err != nil {
			res.fail("writes "+store, err)
			continue
		}
		res.Writes = append(res.Writes, *w)
		fmt.Printf("writes %-9s %d writes in %d requests over %v simulated: %.3f per 1,000\n", store, w.Writes, w.Requests, w.Simulated, w.PerThousand())
	}
	return nil
}

func (e *env) writesRun(ctx context.Context, store string, every time.Duration) (*writesRow, error) {
	r, err := e.startBench(ctx, "sg-"+store, []string{"-clock-step", touchInterval.String(), "-clock-step-every", every.String()})
	if err != nil {
		return nil, err
	}
	defer r.stop()
	if err := r.post(ctx, "/bench/writes", nil); err != nil {
		return nil, err
	}
	lr, err := e.load(ctx, r.target, e.cfg.duration)
	if err != nil {
		return nil, err
	}
	if msg := lr.failed(); msg != "" {
		return nil, fmt.Errorf("%s", msg)
	}
	var c writeCounts
	if err := r.get(ctx, "/bench/writes", &c); err != nil {
		return nil, err
	}
	real := time.Duration(lr.Seconds * float64(time.Second))
	return &writesRow{Store: store, Requests: lr.Requests, Writes: c.Total,
		Simulated: (real + real/every*touchInterval).Round(time.Second)}, nil
}

// medianLoad loads t -rounds times in a row and returns the load with the
// median throughput.
func (e *env) medianLoad(ctx context.Context, t target) (*loadResult, error) {
	var all []*loadResult
	for range e.cfg.rounds {
		lr, err := e.load(ctx, t, e.cfg.duration)
		if err != nil {
			return nil, err
		}
		if msg := lr.failed(); msg != "" {
			return nil, fmt.Errorf("%s", msg)
		}
		all = append(all, lr)
	}
	slices.SortFunc(all, func(a, b *loadResult) int { return cmp.Compare(a.RPS(), b.RPS()) })
	return all[(len(all)-1)/2], nil
}

// scaleRow is a session check with many live sessions in the store.
type scaleRow struct {
	Store    string
	Sessions int
	Preload  time.Duration // to add the sessions since the previous step
	Result   *loadResult
	CPU      cpuUse // cores used during the loads
}

// heapRow is the heap a memory store holds per idle session.
type heapRow struct {
	System   string
	Sessions int
	Bytes    int64 // live heap growth, after garbage collection
}

// PerSession is the heap per session.
func (h heapRow) PerSession() float64 { return float64(h.Bytes) / float64(h.Sessions) }

// probes is how many sessions the scaling runs' load presents in turn, so
// that the check is not of one hot record.
func (e *env) probes() int {
	if e.cfg.quick {
		return 100
	}
	return 1000
}

// scaleRuns measures a session check with each store holding each of the
// sizes of live sessions, and the memory stores' heap per session.
func (e *env) scaleRuns(ctx context.Context, res *results) error {
	for _, store := range e.cfg.scaleStores {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := e.scaleRun(ctx, store, res); err != nil {
			res.fail("live sessions "+store, err)
		}
	}
	for _, store := range e.cfg.scaleStores {
		if store == "memory" && ctx.Err() == nil {
			if err := e.scsHeap(ctx, res); err != nil {
				res.fail("scs memstore heap", err)
			}
		}
	}
	return nil
}

func (e *env) scaleRun(ctx context.Context, store string, res *results) error {
	r, err := e.startBench(ctx, "sg-"+store, nil)
	if err != nil {
		return err
	}
	defer r.stop()
	var before heapStats
	if store == "memory" {
		if err := r.get(ctx, "/bench/heap", &before); err != nil {
			return err
		}
	}
	probes := min(e.probes(), e.cfg.scaleSizes[0])
	cookies, err := r.login(ctx, probes)
	if err != nil {
		return err
	}
	t := r.target
	t.cookies = cookies
	have := probes + 1 // and the one startBench signed in
	for _, n := range e.cfg.scaleSizes {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sr := scaleRow{Store: store, Sessions: n}
		if add := n - have; add > 0 {
			fmt.Printf("live %-9s preloading %d sessions... ", store, add)
			start := time.Now()
			if err := r.post(ctx, fmt.Sprintf("/bench/preload?n=%d", add), nil); err != nil {
				return err
			}
			sr.Preload = time.Since(start)
			have = n
			fmt.Printf("%.1fs\n", sr.Preload.Seconds())
		}
		if err := r.post(ctx, "/bench/settle", nil); err != nil {
			return err
		}
		if _, err := goLoad(ctx, t, e.warmup(), 8); err != nil {
			return err
		}
		before := takeCPU(r.group)
		lr, err := e.medianLoad(ctx, t)
		if err != nil {
			return fmt.Errorf("%d sessions: %w", n, err)
		}
		sr.CPU = cpuBetween(before, takeCPU(r.group))
		sr.Result = lr
		res.Scale = append(res.Scale, sr)
		fmt.Printf("live %-9s %8d sessions: %9.0f req/s  p50 %-8s p99 %-8s cores: server/load/db/other %s\n", store, n, lr.RPS(), fmtDur(lr.P50), fmtDur(lr.P99), fmtCPU(sr.CPU))
	}
	if store == "memory" {
		var after heapStats
		if err := r.get(ctx, "/bench/heap", &after); err != nil {
			return err
		}
		h := heapRow{System: "sessionguard memstore", Sessions: have, Bytes: int64(after.HeapAlloc) - int64(before.HeapAlloc)}
		res.Heap = append(res.Heap, h)
		fmt.Printf("heap     sessionguard memstore: %.0f bytes per idle session (%d sessions)\n", h.PerSession(), h.Sessions)
	}
	return nil
}

// scsHeap measures scs's memstore the same way, for comparison.
func (e *env) scsHeap(ctx context.Context, res *results) error {
	r, err := e.startBench(ctx, "scs-memory", nil)
	if err != nil {
		return err
	}
	defer r.stop()
	var before, after heapStats
	if err := r.get(ctx, "/bench/heap", &before); err != nil {
		return err
	}
	n := e.cfg.scaleSizes[len(e.cfg.scaleSizes)-1]
	if err := r.post(ctx, fmt.Sprintf("/bench/preload?n=%d", n), nil); err != nil {
		return err
	}
	if err := r.get(ctx, "/bench/heap", &after); err != nil {
		return err
	}
	h := heapRow{System: "scs memstore", Sessions: n, Bytes: int64(after.HeapAlloc) - int64(before.HeapAlloc)}
	res.Heap = append(res.Heap, h)
	fmt.Printf("heap     scs memstore: %.0f bytes per idle session (%d sessions)\n", h.PerSession(), h.Sessions)
	return nil
}

// sweepRow is the sweep of many expired sessions while requests flow.
type sweepRow struct {
	Store       string
	Expired     int
	Ended       int
	Events      int64
	Took        time.Duration
	Rate        int // requests per second sampled
	QuietN      int
	QuietBad    int
	QuietP50    time.Duration
	QuietP99    time.Duration
	BeforeP99   time.Duration // of the quiet seconds before the sweep's first block only
	DuringN     int
	DuringBad   int
	DuringP50   time.Duration
	DuringP99   time.Duration
	Preload     time.Duration
	SampleConns int
	Blocks      int // the sweep's blocks, each followed by a quiet one
	// The shares of the quiet and of the sweep's time that the hypervisor
	// gave to other machines.
	QuietStolen, DuringStolen float64
	Profile                   string      // top of a CPU profile of the sweep's first seconds
	Mutex                     string      // top of the lock contention in the same seconds
	GC                        sweepAnswer // the server's garbage collection during the sweep
}

// sweepProfileSeconds is the length of the CPU profile taken as a sweep
// starts.
const sweepProfileSeconds = 4

// profileTop returns the top of a downloaded profile (`go tool pprof -top`
// with args), or "" if there is none or pprof fails. The sweep runs it only
// once the sweep is over: pprof is a CPU-heavy process of its own, and the
// machine it would run on is the one being measured.
func profileTop(ctx context.Context, file string, args ...string) string {
	if _, err := os.Stat(file); err != nil {
		return ""
	}
	out, err := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof", "-top"}, args...), file)...).CombinedOutput()
	if err != nil {
		return ""
	}
	return pprofTop(string(out))
}

// sweepRuns fills each store with expired sessions and sweeps them while
// an open-loop load of one live session is sampled.
func (e *env) sweepRuns(ctx context.Context, res *results) error {
	for _, store := range e.cfg.sweepStores {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sr, err := e.sweepRun(ctx, store)
		if err != nil {
			res.fail("sweep "+store, err)
			continue
		}
		res.Sweep = append(res.Sweep, *sr)
	}
	return nil
}

func (e *env) sweepRun(ctx context.Context, store string) (*sweepRow, error) {
	// The background sweeper is off, so that the sessions wait for the
	// sweep the harness starts; it is the sweeper's own function.
	args := []string{"-sweep=false"}
	if e.cfg.profile {
		args = append(args, "-mutex-profile")
	}
	r, err := e.startBench(ctx, "sg-"+store, args)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	n := e.cfg.sweepSize
	sr := &sweepRow{Store: store, Expired: n, Rate: e.cfg.sweepRate, SampleConns: 8}
	fmt.Printf("sweep %-9s preloading %d expired sessions... ", store, n)
	start := time.Now()
	if err := r.post(ctx, fmt.Sprintf("/bench/preload?n=%d&expired=1", n), nil); err != nil {
		return nil, err
	}
	sr.Preload = time.Since(start)
	fmt.Printf("%.1fs\n", sr.Preload.Seconds())
	if err := r.post(ctx, "/bench/settle", nil); err != nil {
		return nil, err
	}
	if _, err := goLoad(ctx, r.target, e.warmup(), 8); err != nil {
		return nil, err
	}

	// The sweep runs in blocks of sweepBlock, each followed by a quiet
	// block, and the live session is sampled all the while: quiet and
	// sweeping alternate every few seconds, so both see the same machine.
	// A virtual machine's host takes its share in bursts minutes long;
	// quiet seconds measured only before a sweep of minutes compared the
	// sweep with whatever the host did in those seconds.
	stop := make(chan struct{})
	done := make(chan []sample, 1)
	go func() { done <- openLoop(ctx, r.target, sr.Rate, sr.SampleConns, stop) }()
	var quiet, sweeping []span
	var quietTicks, sweepTicks cpuSnapshot // the sums of the blocks' steal and all
	tally := func(sum *cpuSnapshot, a, b cpuSnapshot) {
		sum.steal += b.steal - a.steal
		sum.all += b.all - a.all
	}
	quietFor := func(d time.Duration) {
		// Requests the sweep held up finish first: they are the sweep's.
		time.Sleep(sweepSettle)
		a := machineTicks()
		time.Sleep(d)
		b := machineTicks()
		quiet = append(quiet, span{a.at, b.at})
		tally(&quietTicks, a, b)
	}
	quietFor(min(e.cfg.duration, 5*time.Second))

	// The CPU profile of the sweep's first seconds, and the lock contention
	// of the same seconds only, not the preload's; read once the sweep is
	// over (profileTop).
	cpuFile := filepath.Join(e.dir, "sweep-"+store+".pprof")
	mutexFile := filepath.Join(e.dir, "sweep-mutex-"+store+".pprof")
	var profiles sync.WaitGroup
	if e.cfg.profile {
		profiles.Go(func() {
			downloadTo(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", r.base, sweepProfileSeconds), cpuFile)
		})
		profiles.Go(func() {
			downloadTo(ctx, fmt.Sprintf("%s/debug/pprof/mutex?seconds=%d", r.base, sweepProfileSeconds), mutexFile)
		})
	}
	if e.keepDir {
		go downloadTo(ctx, r.base+"/debug/pprof/trace?seconds=2", filepath.Join(e.dir, "sweep-trace-"+store+".out"))
	}
	for ctx.Err() == nil {
		var ans sweepAnswer
		a := machineTicks()
		err = r.post(ctx, fmt.Sprintf("/bench/sweep?for=%s", sweepBlock), &ans)
		b := machineTicks()
		if err != nil {
			break
		}
		sweeping = append(sweeping, span{a.at, b.at})
		tally(&sweepTicks, a, b)
		if len(sweeping) == 1 {
			sr.GC.HeapBefore = ans.HeapBefore
		}
		sr.Ended += ans.Ended
		sr.Events += ans.Events
		sr.Took += b.at.Sub(a.at)
		sr.GC.GCs += ans.GCs
		sr.GC.GCPause += ans.GCPause
		sr.GC.Allocated += ans.Allocated
		if ans.Done {
			break
		}
		quietFor(sweepQuietBlock)
	}
	if err == nil {
		quietFor(sweepQuietBlock)
	}
	close(stop)
	samples := <-done
	profiles.Wait()
	if e.cfg.profile {
		sr.Profile = profileTop(ctx, cpuFile, "-cum", "-nodecount=30")
		sr.Mutex = profileTop(ctx, mutexFile, "-nodecount=12")
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	sr.Blocks = len(sweeping)
	sr.QuietStolen = stolen(cpuSnapshot{}, quietTicks)
	sr.DuringStolen = stolen(cpuSnapshot{}, sweepTicks)
	sr.QuietN, sr.QuietBad, sr.QuietP50, sr.QuietP99 = latenciesIn(samples, quiet)
	_, _, _, sr.BeforeP99 = latenciesIn(samples, quiet[:1])
	sr.DuringN, sr.DuringBad, sr.DuringP50, sr.DuringP99 = latenciesIn(samples, sweeping)
	if e.keepDir {
		dumpSamples(filepath.Join(e.dir, "samples-"+store+".csv"), samples)
	}
	fmt.Printf("sweep %-9s ended %d (events %d) in %.1fs, %d blocks; p99 quiet %s (%d samples, %.1f%% stolen; %s in the first seconds), during the sweep %s (%d samples, %.1f%% stolen); %d GCs, %v paused, %d MB allocated\n",
		store, sr.Ended, sr.Events, sr.Took.Seconds(), sr.Blocks, fmtDur(sr.QuietP99), sr.QuietN, 100*sr.QuietStolen, fmtDur(sr.BeforeP99), fmtDur(sr.DuringP99), sr.DuringN, 100*sr.DuringStolen,
		sr.GC.GCs, sr.GC.GCPause, sr.GC.Allocated>>20)
	return sr, nil
}

// The sweep's blocks: sweepBlock of sweeping, then sweepQuietBlock of
// quiet after sweepSettle, in turn. The quiet blocks take a fifth of the
// time, and a sweep of minutes gets as many quiet samples as a whole quiet
// minute.
const (
	sweepBlock      = 8 * time.Second
	sweepQuietBlock = 2 * time.Second
	sweepSettle     = 200 * time.Millisecond
)

// dumpSamples writes samples as CSV lines of the due time (Unix µs) and the
// latency (µs), for a look at when the slow ones came: in bursts (a stall
// of the whole machine) or spread out.
func dumpSamples(file string, samples []sample) {
	var b strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&b, "%d,%d\n", s.due.UnixMicro(), s.took.Microseconds())
	}
	os.WriteFile(file, []byte(b.String()), 0o644)
}
