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
// BenchmarkStore (conformance_test.go) runs the benchmarks every store has.

// BenchmarkMixed is the hot path as a server sees it: many goroutines, each
// doing one Touch (a write, as the touch interval lets through) per 20 Gets.
// Besides ns/op it reports the 99th percentile and worst latency of a call,
// which a write queue or the busy handler shows first.
func BenchmarkMixed(b *testing.B) {
	s, _ := open(b)
	const n = 1_000
	insertExpired(b, s, n)
	hashes, ids := make([]session.TokenHash, n), make([]string, n)
	for i := range n {
		r := record(fmt.Sprint("expired-", i))
		hashes[i], ids[i] = r.TokenHash, r.ID
	}
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
				at := t0.Add(time.Minute + time.Duration(i)*time.Microsecond)
				err = s.Touch(ctx, ids[i%len(ids)], at, session.Expiry{At: at.Add(policy.IdleTimeout), Reason: session.ReasonIdle})
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
