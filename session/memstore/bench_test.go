package memstore_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/storetest"
)

const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// idleSession is a session as Login makes it: its own user, IP and (freshly
// parsed, so unshared) user agent, no data.
func idleSession(i int, now time.Time) session.Record {
	rec := storetest.NewRecord(fmt.Sprintf("user-%d", i), now, session.DefaultPolicy)
	rec.IP = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	rec.UserAgent = strings.Clone(userAgent)
	return rec
}

// BenchmarkStore is the benchmarks every store runs: Get, Touch, SaveData,
// Create and End, and sweep batches.
func BenchmarkStore(b *testing.B) { storetest.Bench(b, newStore) }

// BenchmarkIdleSessionMemory reports the heap an idle session costs
// (B/session), strings and indexes included, as the benchmark harness
// measures it (bench/scale.go): the live heap before and after Create adds
// a million sessions, each its own user's.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		before := heapInUse()
		s := memstore.New()
		now := time.Now()
		for i := range n {
			if err := s.Create(b.Context(), idleSession(i, now)); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "B/session")
		runtime.KeepAlive(s)
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
