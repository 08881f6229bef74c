package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
)

// ThrottleEvent records a sign-in lock as SignInLocked and an unlock as
// SignInUnlocked, at the event's time, with its user, session and client
// address, what was locked as the Reason (account, ip, device or session),
// and in Detail until when. It makes *Log an account.ThrottleObserver.
// Observers cannot fail, so a write that fails is logged instead.
func (l *Log) ThrottleEvent(ctx context.Context, e account.ThrottleEvent) {
	entry := Entry{
		Time:    e.Time,
		User:    e.User,
		Session: e.Session,
		IP:      e.IP,
		Reason:  string(e.Scope),
	}
	switch e.Kind {
	case account.ThrottleLocked:
		entry.Event = SignInLocked
		entry.Detail = fmt.Sprintf("locked until %s (lockout %d in a row) after repeated failures",
			e.Until.UTC().Format(time.RFC3339), e.Lockouts)
	case account.ThrottleUnlocked:
		entry.Event = SignInUnlocked
		entry.Detail = "a success after a lockout cleared the failures"
	default:
		entry.Event = Event("signin_" + string(e.Kind)) // a kind added later: keep it
	}
	if err := l.Record(ctx, entry); err != nil {
		l.opts.Logger.ErrorContext(ctx, "audit: entry lost", "event", entry.Event, "user", entry.User,
			"reason", entry.Reason, "err", err)
	}
}

var _ account.ThrottleObserver = (*Log)(nil)
