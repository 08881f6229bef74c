package storetest_test

import (
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

func TestNewRecordIsRandomAndComplete(t *testing.T) {
	now := time.Now()
	p := session.Policy{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour}
	seenID := make(map[string]bool)
	seenHash := make(map[session.TokenHash]bool)
	for range 100 {
		rec := storetest.NewRecord("alice", now, p)
		if seenID[rec.ID] || seenHash[rec.TokenHash] {
			t.Fatalf("NewRecord repeated an ID or token hash: %s", rec.ID)
		}
		seenID[rec.ID], seenHash[rec.TokenHash] = true, true
		if len(rec.ID) != 22 || rec.TokenHash == (session.TokenHash{}) {
			t.Errorf("NewRecord made ID %q and hash %v, want 22 characters and a non-zero hash", rec.ID, rec.TokenHash)
		}
		if rec.UserID != "alice" || rec.Policy != p || rec.Data != nil ||
			!rec.CreatedAt.Equal(now) || !rec.AuthenticatedAt.Equal(now) || !rec.LastActivity.Equal(now) {
			t.Fatalf("NewRecord(alice, now, p) = %+v", rec)
		}
	}
}
