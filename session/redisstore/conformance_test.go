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
			storetest.Run(t, func(t *testing.T) session.Store {
				s, _ := newTestStore(t, f)
				return s
			})
		})
	}
}
