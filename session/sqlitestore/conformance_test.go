package sqlitestore

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// paths remembers the file of every Store the tests open, for reopening it.
var paths sync.Map // session.Store -> string

// openTest opens a Store on path, closed when the test ends.
func openTest(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	paths.Store(session.Store(s), path)
	t.Cleanup(func() { s.Close() })
	return s
}

// suiteOptions give storetest a way to reopen a Store's file and to open a
// second handle on it, as a restarted or a second process would.
func suiteOptions(opts ...Option) []storetest.Option {
	again := func(t testing.TB, s session.Store) session.Store {
		path, ok := paths.Load(s)
		if !ok {
			t.Fatalf("no file known for store %p", s)
		}
		return openTest(t, path.(string), opts...)
	}
	return []storetest.Option{
		storetest.WithReopen(func(t testing.TB, s session.Store) session.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return again(t, s)
		}),
		storetest.WithSecondHandle(again),
	}
}

func TestConformance(t *testing.T) {
	for name, opts := range map[string][]Option{
		"cached":   nil,
		"uncached": {WithCache(0, 0)},
	} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t testing.TB) session.Store {
				return openTest(t, filepath.Join(t.TempDir(), "sessions.db"), opts...)
			}, suiteOptions(opts...)...)
		})
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) session.Store {
		return openTest(t, filepath.Join(t.TempDir(), "sessions.db"))
	})
}
