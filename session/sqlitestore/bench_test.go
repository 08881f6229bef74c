package sqlitestore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// Run with: go test -run '^$' -bench . -benchmem ./session/sqlitestore
// The 100k-session variants fill a database first; -short skips them.

// seeded opens a store holding n sessions, all live until t0+30m, and
// returns it with the records' token hashes and IDs, so that the benchmarks
// time the store and not the making of keys.
func seeded(b *testing.B, n int) (*Store, []session.TokenHash, []string) {
	b.Helper()
	s, _ := open(b)
	insertExpired(b, s, n)
	hashes, ids := make([]session.TokenHash, n), make([]string, n)
	for i := range n {
		r := record(fmt.Sprint("expired-", i))
		hashes[i], ids[i] = r.TokenHash, r.ID
	}
	return s, hashes, ids
}

func BenchmarkGet(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			if n > 1_000 && testing.Short() {
				b.Skip("large database: not with -short")
			}
			s, hashes, _ := seeded(b, n)
			ctx := context.Background()
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := s.Get(ctx, hashes[i%n]); err != nil {
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
						if _, err := s.Get(ctx, hashes[i%n]); err != nil {
							b.Error(err)
							return
						}
						i += 7
					}
				})
			})
		})
	}
}

func BenchmarkTouch(b *testing.B) {
	s, _, ids := seeded(b, 1_000)
	ctx := context.Background()
	// Every record expires from t0+30m; touches at t0+1m..t0+10m keep
	// advancing (up to 10 ms apart), and each is a real write.
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			at := t0.Add(time.Minute + time.Duration(i)*time.Microsecond)
			if err := s.Touch(ctx, ids[i%len(ids)], at); err != nil {
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
				at := t0.Add(time.Minute + time.Duration(i)*time.Microsecond)
				if err := s.Touch(ctx, ids[i%len(ids)], at); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkMixed is the hot path as a server sees it: many goroutines, each
// doing one Touch (a write, as the touch interval lets through) per 20 Gets.
// Besides ns/op it reports the 99th percentile and worst latency of a call,
// which a write queue or the busy handler shows first.
func BenchmarkMixed(b *testing.B) {
	s, hashes, ids := seeded(b, 1_000)
	ctx := context.Background()
	var mu sync.Mutex
	var latencies []time.Duration
	b.SetParallelism(8) // 8 x GOMAXPROCS goroutines
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for i := 0; pb.Next(); i++ {
			start := time.Now()
			var err error
			if i%20 == 0 {
				err = s.Touch(ctx, ids[i%len(ids)], t0.Add(time.Minute+time.Duration(i)*time.Microsecond))
			} else {
				_, err = s.Get(ctx, hashes[i%len(hashes)])
			}
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(latencies) >= 100 {
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds()), "max-µs")
	}
}

// BenchmarkEndExpired ends expired sessions in batches of 500, the
// Manager's default, from a table of 10,000. Its allocations per op (one
// batch) are the garbage a sweep leaves for the collector, which the
// requests running beside the sweep pay for in pauses and assists.
func BenchmarkEndExpired(b *testing.B) {
	const table, batch = 10_000, 500
	s, _ := open(b)
	ctx := context.Background()
	now := t0.Add(365 * 24 * time.Hour)
	b.ReportAllocs()
	left := 0
	for b.Loop() {
		if left == 0 {
			b.StopTimer()
			insertExpired(b, s, table)
			left = table
			b.StartTimer()
		}
		ended, err := s.EndExpired(ctx, now, time.Hour, batch)
		if err != nil || len(ended) != batch {
			b.Fatalf("EndExpired = %d records, %v; want %d", len(ended), err, batch)
		}
		left -= batch
	}
}
