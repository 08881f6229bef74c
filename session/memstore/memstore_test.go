package memstore_test

import (
	"testing"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

// newStore is a fresh Store for one test, closed when it ends.
func newStore(t testing.TB) session.Store {
	s := memstore.New()
	t.Cleanup(func() { s.Close() })
	return s
}
