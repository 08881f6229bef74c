package audit_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

func TestThrottleEvent(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		l := newLog(t, db, sessiontest.NewClock(start))
		var obs account.ThrottleObserver = l
		obs.ThrottleEvent(t.Context(), account.ThrottleEvent{Kind: account.ThrottleLocked, Scope: account.ScopeAccount,
			User: "alice", IP: "203.0.113.5", Time: start, Until: start.Add(2 * time.Minute), Lockouts: 2})
		obs.ThrottleEvent(t.Context(), account.ThrottleEvent{Kind: account.ThrottleUnlocked, Scope: account.ScopeSession,
			User: "alice", Session: "pub-1", IP: "192.0.2.1", Time: start.Add(time.Hour)})
		got, err := l.Query(t.Context(), audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		want := []audit.Entry{
			{Time: start, Event: audit.SignInLocked, User: "alice", Reason: "account", IP: "203.0.113.5",
				Detail: "locked until 2025-03-01T09:02:00Z (lockout 2 in a row) after repeated failures"},
			{Time: start.Add(time.Hour), Event: audit.SignInUnlocked, User: "alice", Session: "pub-1", Reason: "session", IP: "192.0.2.1",
				Detail: "a success after a lockout cleared the failures"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("entries =\n%v\nwant\n%v", got, want)
		}
	})
}
