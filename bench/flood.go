package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floodRow is a signed-in user's throughput before and during a login
// flood.
type floodRow struct {
	Clients               int
	Path                  string
	Normal                *loadResult
	Flooded               *loadResult
	Attempts              int64         // flood requests answered during the measured load
	ByStatus              map[int]int64 // their statuses
	Failures              int64         // flood requests that got no answer
	PerSecond             float64       // flood answers per second
	Sources               string        // the flood's source addresses
	NormalCPU, FloodedCPU cpuUse
}

// Ratio is the flooded throughput over the normal one.
func (f *floodRow) Ratio() float64 {
	if f == nil || f.Normal.RPS() == 0 {
		return 0
	}
	return f.Flooded.RPS() / f.Normal.RPS()
}

// floodRun measures the sessionguard server's signed-in throughput, then
// measures it again while flood clients sign in with wrong passwords as
// fast as the server answers them.
//
// The server throttles failed sign-ins per client address, so clients all
// on 127.0.0.1 would share one budget, lock it within a second and be
// refused cheaply from then on: the flood would measure the throttle, not
// the password checks. Each flood client therefore connects from its own
// loopback address (127.0.0.2, 127.0.0.3, ...; Linux routes all of
// 127.0.0.0/8 to lo), as 50 machines of a botnet would, and each attempt
// names a different account that does not exist, which costs the server
// the same password hash as a real account and never locks a name.
func (e *env) floodRun(ctx context.Context, res *results) error {
	if !e.cfg.flood {
		return nil
	}
	s, err := e.startServer(ctx, "server-flood")
	if err != nil {
		return err
	}
	defer s.proc.stop()
	cookie, err := s.login(ctx)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Cookie", cookie)
	h.Set("Accept", "application/json")
	t := target{url: s.base + serverJSONPath, header: h}
	if _, err := goLoad(ctx, t, e.warmup(), 8); err != nil {
		return err
	}
	f := &floodRow{Clients: e.cfg.floodConns, Path: serverJSONPath, ByStatus: map[int]int64{},
		Sources: fmt.Sprintf("127.0.0.2 to 127.0.0.%d", 1+e.cfg.floodConns)}
	group := s.proc.cmd.Process.Pid
	before := takeCPU(group)
	if f.Normal, err = e.load(ctx, t, e.cfg.duration); err != nil {
		return err
	}
	f.NormalCPU = cpuBetween(before, takeCPU(group))
	if msg := f.Normal.failed(); msg != "" {
		return fmt.Errorf("before the flood: %s", msg)
	}
	fmt.Printf("flood    before: %9.0f req/s  p50 %-8s p99 %s\n", f.Normal.RPS(), fmtDur(f.Normal.P50), fmtDur(f.Normal.P99))

	fl := startFlood(ctx, s.base, e.cfg.floodConns)
	time.Sleep(time.Second) // every client is in a password check or queued for one
	fl.reset()
	start := time.Now()
	before = takeCPU(group)
	f.Flooded, err = e.load(ctx, t, e.cfg.duration)
	f.FloodedCPU = cpuBetween(before, takeCPU(group))
	took := time.Since(start)
	f.Attempts, f.ByStatus, f.Failures = fl.counts()
	fl.stop()
	if err != nil {
		return err
	}
	if msg := f.Flooded.failed(); msg != "" {
		return fmt.Errorf("during the flood: %s", msg)
	}
	f.PerSecond = float64(f.Attempts) / took.Seconds()
	res.Flood = f
	fmt.Printf("flood    during: %9.0f req/s  p50 %-8s p99 %s  (%.2f of normal; flood answers %.0f/s: %v, %d failed)\n",
		f.Flooded.RPS(), fmtDur(f.Flooded.P50), fmtDur(f.Flooded.P99), f.Ratio(), f.PerSecond, f.ByStatus, f.Failures)
	return nil
}

// flood is the running flood clients.
type flood struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	byStatus map[int]int64
	answered atomic.Int64
	failed   atomic.Int64
}

func startFlood(ctx context.Context, base string, clients int) *flood {
	ctx, cancel := context.WithCancel(ctx)
	f := &flood{cancel: cancel, byStatus: map[int]int64{}}
	for i := range clients {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, byte((i+2)>>8), byte((i+2)&255))}
		dialer := &net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
		tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1, DisableCompression: true}
		client := &http.Client{Transport: tr, Timeout: 60 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		f.wg.Go(func() {
			defer tr.CloseIdleConnections()
			for n := 0; ctx.Err() == nil; n++ {
				form := url.Values{"username": {fmt.Sprintf("flood-%d-%d", i, n)}, "password": {"wrong password, long enough"}}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/auth/login", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				status, err := do(client, req)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					f.failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				f.answered.Add(1)
				f.mu.Lock()
				f.byStatus[status]++
				f.mu.Unlock()
			}
		})
	}
	return f
}

func (f *flood) reset() {
	f.mu.Lock()
	clear(f.byStatus)
	f.mu.Unlock()
	f.answered.Store(0)
	f.failed.Store(0)
}

func (f *flood) counts() (int64, map[int]int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[int]int64, len(f.byStatus))
	for k, v := range f.byStatus {
		m[k] = v
	}
	return f.answered.Load(), m, f.failed.Load()
}

func (f *flood) stop() {
	f.cancel()
	f.wg.Wait()
}
