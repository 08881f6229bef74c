package redisstore

import (
	"context"
	"fmt"
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
// for 30 minutes, with their token hashes and IDs.
func seeded(b *testing.B, fm form, n int) (*Store, []session.TokenHash, []string) {
	b.Helper()
	s, _ := newTestStore(b, fm)
	ctx := context.Background()
	hashes, ids := make([]session.TokenHash, n), make([]string, n)
	now := time.Now()
	for i := range n {
		rec := storetest.NewRecord(fmt.Sprint("user-", i%100), now, session.Policy{})
		rec.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
		if err := s.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
		hashes[i], ids[i] = rec.TokenHash, rec.ID
	}
	return s, hashes, ids
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

func BenchmarkGet(b *testing.B) {
	for _, fm := range []form{atomicForm, clusterForm} {
		b.Run(fm.String(), func(b *testing.B) {
			s, hashes, _ := seeded(b, fm, 1000)
			ctx := context.Background()
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := s.Get(ctx, hashes[i%len(hashes)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
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
			})
			// As many callers as the harness's 32 connections, the case
			// Gets share round trips in; with the CPU time each Get costs
			// this process and Redis, which a busy machine does not skew
			// as it skews ns/op.
			b.Run("callers=32", func(b *testing.B) {
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

func BenchmarkTouch(b *testing.B) {
	for _, fm := range []form{atomicForm, clusterForm} {
		b.Run(fm.String(), func(b *testing.B) {
			s, _, ids := seeded(b, fm, 1000)
			ctx := context.Background()
			start := time.Now()
			// Every touch is later than the last, so each one writes.
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := s.Touch(ctx, ids[i%len(ids)], start.Add(time.Duration(i)*time.Microsecond)); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if err := s.Touch(ctx, ids[i%len(ids)], start.Add(time.Minute+time.Duration(i)*time.Microsecond)); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
		})
	}
}

func BenchmarkCreateEnd(b *testing.B) {
	for _, fm := range []form{atomicForm, clusterForm} {
		b.Run(fm.String(), func(b *testing.B) {
			s, _ := newTestStore(b, fm)
			ctx := context.Background()
			now := time.Now()
			e := session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(time.Minute)}
			b.ReportAllocs()
			for b.Loop() {
				rec := storetest.NewRecord("user", now, session.Policy{})
				if err := s.Create(ctx, rec); err != nil {
					b.Fatal(err)
				}
				if _, err := s.End(ctx, rec.ID, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSweep times one EndExpired batch of the Manager's default size,
// 500 expired sessions: on one server its first script holds Redis for the
// whole search and end.
func BenchmarkSweep(b *testing.B) {
	const batch = 500
	for _, fm := range []form{atomicForm, clusterForm} {
		b.Run(fm.String(), func(b *testing.B) {
			s, _ := newTestStore(b, fm)
			ctx := context.Background()
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range batch {
					rec := storetest.NewRecord(fmt.Sprint("user-", i%50), now, session.Policy{})
					if err := s.Create(ctx, rec); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				ended, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, batch)
				if err != nil || len(ended) != batch {
					b.Fatalf("EndExpired ended %d of %d: %v", len(ended), batch, err)
				}
			}
		})
	}
}

// BenchmarkGetDuringSweep measures how long a Get waits while the sweeper
// ends expired sessions back to back, the Manager's batches of 500: every
// script or transaction of the sweep holds Redis, and a Get that arrives
// meanwhile waits for it. It reports the Gets' 99th percentile and worst
// latency during the sweep, and the mean server time of the sweep's
// transactions (EXEC) and scripts (EVALSHA, Gets' included) from INFO
// commandstats. Run it with -benchtime 1x.
func BenchmarkGetDuringSweep(b *testing.B) {
	const expired, batch = 20_000, 500
	s, _ := newTestStore(b, atomicForm)
	ctx := context.Background()
	now := time.Now()
	live := storetest.NewRecord("prober", now, session.Policy{IdleTimeout: 24 * time.Hour, AbsoluteTimeout: 48 * time.Hour})
	if err := s.Create(ctx, live); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := w; i < expired; i += 16 {
					rec := storetest.NewRecord(fmt.Sprint("user-", i), now, session.Policy{})
					if err := s.Create(ctx, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		before := commandStats(b, s.c)
		stop := make(chan struct{})
		latencies := make(chan []time.Duration)
		go func() {
			var ds []time.Duration
			for {
				select {
				case <-stop:
					latencies <- ds
					return
				default:
				}
				t := time.Now()
				if _, err := s.Get(ctx, live.TokenHash); err != nil {
					b.Error(err)
				}
				ds = append(ds, time.Since(t))
				time.Sleep(time.Millisecond)
			}
		}()
		b.StartTimer()
		total := 0
		for {
			ended, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, batch)
			if err != nil {
				b.Fatal(err)
			}
			total += len(ended)
			if len(ended) < batch {
				break
			}
		}
		b.StopTimer()
		close(stop)
		ds := <-latencies
		after := commandStats(b, s.c)
		if total != expired {
			b.Fatalf("the sweep ended %d sessions, want %d", total, expired)
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "get-p99-µs")
		b.ReportMetric(float64(ds[len(ds)-1].Microseconds()), "get-max-µs")
		for _, cmd := range []string{"exec", "evalsha"} {
			calls, usec := after[cmd][0]-before[cmd][0], after[cmd][1]-before[cmd][1]
			if calls > 0 {
				b.ReportMetric(float64(usec)/float64(calls), cmd+"-µs/call")
			}
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
