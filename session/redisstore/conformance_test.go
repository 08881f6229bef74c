package redisstore

import (
	"testing"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

func TestConformance(t *testing.T) {
	testDSN(t)
	for _, f := range []form{atomicForm, clusterForm} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t testing.TB) session.Store {
				s, _ := newTestStore(t, f)
				return s
			}, storeOptions(f)...)
		})
	}
}

// storeOptions returns storetest's options for Stores of form f on the test
// server: a reopened Store, or a second one, is another client on the same
// key prefix, as a restarted or second process would be.
func storeOptions(f form) []storetest.Option {
	return []storetest.Option{
		storetest.WithReopen(func(t testing.TB, s session.Store) session.Store {
			s.Close()
			return sameKeys(t, s.(*Store), f)
		}),
		storetest.WithSecondHandle(func(t testing.TB, s session.Store) session.Store {
			return sameKeys(t, s.(*Store), f)
		}),
	}
}

// sameKeys opens another Store of form f, with a client of its own, on the
// key prefix of s, and closes it when the test ends.
func sameKeys(t testing.TB, s *Store, f form) *Store {
	t.Helper()
	other, err := Open(testDSN(t), WithKeyPrefix(s.prefix), WithGrace(s.grace))
	if err != nil {
		t.Fatal(err)
	}
	if f == clusterForm {
		other.atomic, other.mode = false, "0"
	}
	t.Cleanup(func() { other.Close() })
	return other
}

func BenchmarkStore(b *testing.B) {
	for _, f := range []form{atomicForm, clusterForm} {
		b.Run(f.String(), func(b *testing.B) {
			storetest.Bench(b, func(t testing.TB) session.Store {
				s, _ := newTestStore(t, f)
				return s
			})
		})
	}
}
