package pgstore

import (
	"sync"
	"testing"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// dsns remembers the DSN of every Store the suite opens, for reopening it.
var dsns sync.Map // session.Store -> string

func openSuite(t testing.TB, dsn string) session.Store {
	t.Helper()
	s := openDSN(t, dsn)
	dsns.Store(session.Store(s), dsn)
	return s
}

// TestConformance runs the suite every store passes, each subtest on a schema
// of its own; a second handle and a reopened store use a pool of their own,
// as another instance or a restarted one would.
func TestConformance(t *testing.T) {
	baseDSN(t) // one skip, not one per subtest
	again := func(t testing.TB, s session.Store) session.Store {
		dsn, ok := dsns.Load(s)
		if !ok {
			t.Fatalf("no DSN known for store %p", s)
		}
		return openSuite(t, dsn.(string))
	}
	storetest.Run(t, func(t testing.TB) session.Store { return openSuite(t, freshDSN(t)) },
		storetest.WithReopen(func(t testing.TB, s session.Store) session.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return again(t, s)
		}),
		storetest.WithSecondHandle(again))
}

func BenchmarkStore(b *testing.B) {
	baseDSN(b)
	storetest.Bench(b, func(t testing.TB) session.Store { return openSuite(t, freshDSN(t)) })
}
