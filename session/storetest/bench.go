package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

const (
	benchSessions = 10_000 // sessions in the store Get, Touch and SaveData pick from
	sweepBatch    = 500    // EndExpired's limit, the same for every store
)

// benchUserAgent is a browser's, the size most sessions carry.
const benchUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// Bench measures the calls a Manager makes on every request or sweep, on
// stores made by newStore (as Run's, fresh and empty, one per
// sub-benchmark):
//
//   - Get/serial and Get/parallel: a lookup by token hash among 10,000
//     sessions, as every request does.
//   - Touch: recorded activity, as a request does once per touch interval.
//   - SaveData: a compare-and-set of a session's data, as Session.Set does.
//   - CreateEnd: a login and a logout.
//   - EndExpired: a sweep batch of 500 expired sessions.
//
// Call it from a benchmark in the store's package:
//
//	func BenchmarkStore(b *testing.B) { storetest.Bench(b, newTestStore) }
func Bench(b *testing.B, newStore func(t testing.TB) session.Store) {
	b.Run("Get", func(b *testing.B) {
		s := newStore(b)
		recs := fillBench(b, s, benchSessions, time.Now())
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Get(b.Context(), recs[i%len(recs)].TokenHash); err != nil {
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
					if _, err := s.Get(b.Context(), recs[i%len(recs)].TokenHash); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
		})
	})
	b.Run("Touch", func(b *testing.B) {
		s := newStore(b)
		at := time.Now()
		recs := fillBench(b, s, benchSessions, at)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			at = at.Add(time.Microsecond)
			rec := recs[i%len(recs)]
			if err := s.Touch(b.Context(), rec.ID, at, expiry(rec.Policy, rec.AuthenticatedAt, at)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("SaveData", func(b *testing.B) {
		s := newStore(b)
		recs := fillBench(b, s, benchSessions, time.Now())
		// Each session's data flips between two values; old is the one
		// stored, as the Manager reads it.
		values := [2]map[string]string{{"cart": "3 items", "theme": "dark"}, {"cart": "4 items", "theme": "dark"}}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			n := i / len(recs)
			old := values[(n+1)%2]
			if n == 0 {
				old = nil
			}
			if err := s.SaveData(b.Context(), recs[i%len(recs)].ID, old, values[n%2]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("CreateEnd", func(b *testing.B) {
		s := newStore(b)
		now := time.Now()
		fillBench(b, s, benchSessions, now)
		e := session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(time.Hour)}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			rec := benchRecord(i, now)
			if err := s.Create(b.Context(), rec); err != nil {
				b.Fatal(err)
			}
			if _, err := s.End(b.Context(), rec.ID, e); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("EndExpired", func(b *testing.B) {
		s := newStore(b)
		now := time.Now()
		fillBench(b, s, benchSessions, now)
		later := now.Add(24 * time.Hour) // past every expiry and KeepUntil
		b.ReportAllocs()
		for b.Loop() {
			ended, err := s.EndExpired(b.Context(), later, time.Hour, sweepBatch)
			if err != nil {
				b.Fatal(err)
			}
			if len(ended) < sweepBatch {
				b.StopTimer()
				fillBench(b, s, benchSessions, now)
				b.StartTimer()
			}
		}
	})
}

// benchRecord is a session as Login makes it: its own user, IP and user
// agent (a copy, as a request parses it), no data.
func benchRecord(i int, now time.Time) session.Record {
	rec := NewRecord(fmt.Sprint("user-", i), now, session.DefaultPolicy)
	rec.IP = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	rec.UserAgent = string([]byte(benchUserAgent))
	return rec
}

// fillBench creates n sessions in s, live at now.
func fillBench(b *testing.B, s session.Store, n int, now time.Time) []session.Record {
	b.Helper()
	recs := make([]session.Record, n)
	for i := range recs {
		recs[i] = benchRecord(i, now)
		if err := s.Create(b.Context(), recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return recs
}
