package sqlitestore

import (
	"path/filepath"
	"testing"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

func TestConformance(t *testing.T) {
	for name, opts := range map[string][]Option{
		"cached":   nil,
		"uncached": {WithCache(0, 0)},
	} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) session.Store {
				s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), opts...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
