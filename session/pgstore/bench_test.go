package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// Run with:
//
//	SESSIONGUARD_TEST_POSTGRES=postgres://root@127.0.0.1:5432/test \
//		go test -run '^$' -bench . -benchmem ./session/pgstore
//
// The 100k-session variant fills a table first; -short skips it. The numbers
// include the round trip to the server, which on one machine is most of
// them.

// seeded opens a store holding n sessions, all live until t0+30m, and
// returns it with the records' token hashes and IDs, so that the benchmarks
// time the store and not the making of keys.
func seeded(b *testing.B, n int) (*Store, []session.TokenHash, []string) {
	b.Helper()
	s, _ := open(b)
	recs := make([]session.Record, n)
	hashes, ids := make([]session.TokenHash, n), make([]string, n)
	for i := range recs {
		recs[i] = record(fmt.Sprint("bench-", i))
		hashes[i], ids[i] = recs[i].TokenHash, recs[i].ID
	}
	insertRecords(b, s, recs)
	if _, err := s.pool.Exec(context.Background(), `ANALYZE session_records`); err != nil {
		b.Fatal(err)
	}
	return s, hashes, ids
}

// BenchmarkGetBatched has as many callers as the harness's 32 connections,
// the case Gets share queries in, and reports the CPU time each Get costs
// this process and PostgreSQL, which a busy machine does not skew as it
// skews ns/op. BenchmarkStore (conformance_test.go) runs the benchmarks
// every store has.
func BenchmarkGetBatched(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			if n > 1_000 && testing.Short() {
				b.Skip("large table: not with -short")
			}
			s, hashes, _ := seeded(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			self, server := processCPU(b), serverCPU(b)
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
			self, server = processCPU(b)-self, serverCPU(b)-server
			b.ReportMetric(float64(self.Nanoseconds())/float64(b.N), "client-cpu-ns/op")
			b.ReportMetric(float64(server.Nanoseconds())/float64(b.N), "postgres-cpu-ns/op")
		})
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the CPU time of every process named postgres (Linux /proc),
// other clients' backends included: the server's whole use.
func serverCPU(b *testing.B) time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	var ticks int64
	for _, d := range dirs {
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // not a process, or gone
		}
		// pid (comm) state ppid ... utime stime: fields 14 and 15.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open || string(stat[open+1:end]) != "postgres" {
			continue
		}
		f := strings.Fields(string(stat[end+2:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}
