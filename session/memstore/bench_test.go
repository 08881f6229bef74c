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

// filled returns a Store of n idle sessions and their records.
func filled(b *testing.B, n int) (*memstore.Store, []session.Record) {
	s := memstore.New()
	b.Cleanup(func() { s.Close() })
	now := time.Now()
	recs := make([]session.Record, n)
	for i := range recs {
		recs[i] = idleSession(i, now)
		if err := s.Create(b.Context(), recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return s, recs
}

// BenchmarkGet looks sessions up by token hash, as every request does.
func BenchmarkGet(b *testing.B) {
	s, recs := filled(b, 100_000)
	ctx := b.Context()
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, recs[i%len(recs)].TokenHash); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Get(ctx, recs[i%len(recs)].TokenHash); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
}

// BenchmarkTouch records activity, as a request does once per touch interval.
func BenchmarkTouch(b *testing.B) {
	s, recs := filled(b, 100_000)
	ctx := b.Context()
	at := time.Now()
	i := 0
	for b.Loop() {
		at = at.Add(time.Microsecond)
		if err := s.Touch(ctx, recs[i%len(recs)].ID, at); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEndExpired sweeps batches of 500 from a store of expired sessions,
// refilled outside the timer.
func BenchmarkEndExpired(b *testing.B) {
	s, _ := filled(b, 100_000)
	ctx := b.Context()
	later := time.Now().Add(24 * time.Hour)
	for b.Loop() {
		ended, err := s.EndExpired(ctx, later, time.Hour, 500)
		if err != nil {
			b.Fatal(err)
		}
		if len(ended) < 500 {
			b.StopTimer()
			s, _ = filled(b, 100_000)
			b.StartTimer()
		}
	}
}

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
