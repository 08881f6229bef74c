package redisstore

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// Run with:
//
//	SESSIONGUARD_TEST_REDIS=redis://127.0.0.1:6379/0 go test -run '^$' -bench . -benchmem ./session/redisstore
//
// Both forms run against one server: "cluster form" measures the extra round
// trips a Cluster costs, not a Cluster's speed.

// seeded returns a store in form fm holding n sessions of 100 users, live
// for 30 minutes, with their token hashes.
func seeded(b *testing.B, fm form, n int) (*Store, []session.TokenHash) {
	b.Helper()
	s, _ := newTestStore(b, fm)
	ctx := context.Background()
	hashes := make([]session.TokenHash, n)
	now := time.Now()
	for i := range n {
		rec := storetest.NewRecord(fmt.Sprint("user-", i%100), now, session.Policy{})
		rec.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
		if err := s.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
		hashes[i] = rec.TokenHash
	}
	return s, hashes
}

// BenchmarkPing is the floor of every other number here: one round trip of
// the same client to the same server.
func BenchmarkPing(b *testing.B) {
	s, _ := newTestStore(b, atomicForm)
	ctx := context.Background()
	for b.Loop() {
		if err := s.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetGathered runs Gets from as many callers as the harness's 32
// connections, the case Gets share round trips in, and reports the CPU time
// each Get costs this process and Redis, which a busy machine does not skew
// as it skews ns/op. storetest.Bench (BenchmarkStore) has the serial and
// parallel Gets.
func BenchmarkGetGathered(b *testing.B) {
	for _, fm := range []form{atomicForm, clusterForm} {
		b.Run(fm.String(), func(b *testing.B) {
			s, hashes := seeded(b, fm, 1000)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			cpu := startCPU(b, s.c)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.Get(ctx, hashes[i%len(hashes)]); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
			cpu.report(b)
		})
	}
}

// cpuMeter measures the CPU time of this process and of the Redis server
// over a benchmark.
type cpuMeter struct {
	c            redis.UniversalClient
	self, server time.Duration
}

func startCPU(b *testing.B, c redis.UniversalClient) *cpuMeter {
	m := &cpuMeter{c: c}
	m.self, m.server = processCPU(b), serverCPU(b, c)
	return m
}

// report adds the CPU time per operation of this process and of Redis.
func (m *cpuMeter) report(b *testing.B) {
	self, server := processCPU(b)-m.self, serverCPU(b, m.c)-m.server
	b.ReportMetric(float64(self.Nanoseconds())/float64(b.N), "client-cpu-ns/op")
	b.ReportMetric(float64(server.Nanoseconds())/float64(b.N), "redis-cpu-ns/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the CPU time Redis has used, from INFO cpu: the server's
// whole use, other clients' included.
func serverCPU(b *testing.B, c redis.UniversalClient) time.Duration {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			total += time.Duration(sec * float64(time.Second))
		}
	}
	return total
}

// BenchmarkGetDuringSweep measures what a sweep costs a live user: it
// fills the store with expired sessions (SESSIONGUARD_SWEEP_SIZE of them,
// 20,000 by default; the harness sweeps 1,000,000), samples Gets of one
// live session at 1,000 a second from 8 goroutines, open loop (latency
// counted from when each Get was due), first on the quiet store and then
// while a sweep ends them all as the Manager's sweeper does (batches of
// 500, pausing after each three times as long as it took). It reports the Gets' 99th
// percentile quiet and during the sweep, their ratio, the sweep's rate, and
// the mean server time of the sweep's scripts (INFO commandstats). Run it
// with -benchtime 1x.
func BenchmarkGetDuringSweep(b *testing.B) {
	expired := 20_000
	if v := os.Getenv("SESSIONGUARD_SWEEP_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		expired = n
	}
	const batch = 500
	s, _ := newTestStore(b, atomicForm)
	ctx := context.Background()
	live := storetest.NewRecord("prober", time.Now(), session.Policy{IdleTimeout: 24 * time.Hour, AbsoluteTimeout: 48 * time.Hour})
	if err := s.Create(ctx, live); err != nil {
		b.Fatal(err)
	}
	sample := func(stop <-chan struct{}, d time.Duration) []time.Duration {
		const workers, rate = 8, 1000
		var mu sync.Mutex
		var ds []time.Duration
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Go(func() {
				for i := 0; ; i++ {
					due := start.Add(time.Duration(i*workers+w) * time.Second / rate)
					if d > 0 && due.Sub(start) > d {
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Until(due)):
					}
					if _, err := s.Get(ctx, live.TokenHash); err != nil {
						b.Error(err)
						return
					}
					lat := time.Since(due)
					mu.Lock()
					ds = append(ds, lat)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(ds)
		return ds
	}
	p99 := func(ds []time.Duration) time.Duration { return ds[len(ds)*99/100] }
	for b.Loop() {
		b.StopTimer()
		// Expired a minute ago, kept by Redis for the grace.
		last := time.Now().Add(-31 * time.Minute)
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for i := w; i < expired; i += 32 {
					rec := storetest.NewRecord(fmt.Sprint("user-", i), last, session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour})
					if err := s.Create(ctx, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		quiet := sample(nil, 10*time.Second)
		before := commandStats(b, s.c)
		stop := make(chan struct{})
		during := make(chan []time.Duration)
		go func() { during <- sample(stop, 0) }()
		b.StartTimer()
		began := time.Now()
		total := 0
		for {
			t := time.Now()
			ended, err := s.EndExpired(ctx, time.Now(), time.Hour, batch)
			if err != nil {
				b.Fatal(err)
			}
			total += len(ended)
			if len(ended) < batch {
				break
			}
			time.Sleep(3 * time.Since(t))
		}
		took := time.Since(began)
		b.StopTimer()
		close(stop)
		ds := <-during
		after := commandStats(b, s.c)
		if total != expired {
			b.Fatalf("the sweep ended %d sessions, want %d", total, expired)
		}
		b.ReportMetric(float64(p99(quiet).Microseconds()), "quiet-p99-µs")
		b.ReportMetric(float64(p99(ds).Microseconds()), "sweep-p99-µs")
		b.ReportMetric(float64(p99(ds))/float64(p99(quiet)), "p99-ratio")
		b.ReportMetric(float64(ds[len(ds)-1].Microseconds()), "sweep-max-µs")
		b.ReportMetric(took.Seconds(), "sweep-s")
		b.ReportMetric(float64(total)/took.Seconds(), "ended/s")
		calls, usec := after["evalsha"][0]-before["evalsha"][0], after["evalsha"][1]-before["evalsha"][1]
		if calls > 0 {
			b.ReportMetric(float64(usec)/float64(calls), "evalsha-µs/call")
		}
		b.StartTimer()
	}
}

// commandStats returns the calls and microseconds of each command so far,
// from INFO commandstats: the server's whole use, other clients' included.
func commandStats(b *testing.B, c redis.UniversalClient) map[string][2]int64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	stats := make(map[string][2]int64)
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var v [2]int64
		for field := range strings.SplitSeq(rest, ",") {
			k, val, _ := strings.Cut(field, "=")
			switch k {
			case "calls":
				v[0], _ = strconv.ParseInt(val, 10, 64)
			case "usec":
				v[1], _ = strconv.ParseInt(val, 10, 64)
			}
		}
		stats[strings.TrimPrefix(name, "cmdstat_")] = v
	}
	return stats
}
