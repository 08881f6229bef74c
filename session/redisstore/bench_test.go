package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

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
		})
	}
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
