package pgstore

import (
	"testing"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// TestConformance runs the suite every store passes, each subtest on a schema
// of its own.
func TestConformance(t *testing.T) {
	baseDSN(t) // one skip, not one per subtest
	storetest.Run(t, func(t *testing.T) session.Store {
		s, err := Open(t.Context(), freshDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
