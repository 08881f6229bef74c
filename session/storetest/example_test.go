package storetest_test

import (
	"fmt"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// NewRecord makes records for tests of a store or of code that uses one.
func ExampleNewRecord() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	rec := storetest.NewRecord("alice", now, session.Policy{})
	reason, at := rec.Expiry()
	fmt.Println(rec.UserID, rec.Policy == session.DefaultPolicy, reason, at.Sub(now))
	// Output: alice true idle 30m0s
}
