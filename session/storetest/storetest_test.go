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
		if rec.UserID != "alice" || rec.Policy != p || rec.Data != nil || rec.Persistent ||
			rec.Expires != (session.Expiry{At: now.Add(time.Minute), Reason: session.ReasonIdle}) ||
			!rec.CreatedAt.Equal(now) || !rec.AuthenticatedAt.Equal(now) || !rec.LastActivity.Equal(now) {
			t.Fatalf("NewRecord(alice, now, p) = %+v", rec)
		}
	}
}

func TestNewRecordExpiry(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, c := range []struct {
		name   string
		p      session.Policy
		after  time.Duration
		reason session.EndReason
	}{
		{"idle first", session.Policy{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour}, time.Minute, session.ReasonIdle},
		{"absolute first", session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Minute}, time.Minute, session.ReasonAbsolute},
		{"a tie is absolute", session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour}, time.Hour, session.ReasonAbsolute},
		{"zero policy is the default", session.Policy{}, session.DefaultPolicy.IdleTimeout, session.ReasonIdle},
	} {
		rec := storetest.NewRecord("alice", now, c.p)
		if want := (session.Expiry{At: now.Add(c.after), Reason: c.reason}); rec.Expires != want {
			t.Errorf("%s: Expires = %+v, want %+v", c.name, rec.Expires, want)
		}
	}
}
