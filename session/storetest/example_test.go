package storetest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// NewRecord makes records for tests of a store or of code that uses one.
func ExampleNewRecord() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	rec := storetest.NewRecord("alice", now, session.Policy{})
	fmt.Println(rec.UserID, rec.Policy == session.DefaultPolicy, rec.Expires.Reason, rec.Expires.At.Sub(now))
	// Output: alice true idle 30m0s
}

// A store's conformance test: Run with a fresh store per subtest.
func ExampleRun() {
	// In the store's package, as a test:
	_ = func(t *testing.T) {
		storetest.Run(t, func(t testing.TB) session.Store {
			s := memstore.New()
			t.Cleanup(func() { s.Close() })
			return s
		})
	}
}
