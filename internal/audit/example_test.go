package audit_test

import (
	"context"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
)

func openExampleLog() (*audit.Log, func()) {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite:"+filepath.Join(dir, "sessionguard.db"))
	if err != nil {
		log.Fatal(err)
	}
	l, err := audit.NewLog(ctx, db, audit.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return l, func() { db.Close(); os.RemoveAll(dir) }
}

// The web handlers record sign-ins; `sessionguard audit` reads them back.
func ExampleLog_Query() {
	l, done := openExampleLog()
	defer done()
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

	l.Record(ctx, audit.Entry{Time: t0, Event: audit.LoginFailed, User: "alice",
		Reason: audit.ReasonInvalidCredentials, IP: "192.0.2.10"})
	l.Record(ctx, audit.Entry{Time: t0.Add(5 * time.Second), Event: audit.LoginSucceeded, User: "alice",
		Session: "Jm4x9Qk2c7", IP: "192.0.2.10"})

	entries, err := l.Query(ctx, audit.Filter{Since: t0, User: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	audit.WriteTable(os.Stdout, entries)
	audit.WriteJSONLines(os.Stdout, entries[1:])
	// Output:
	// TIME                  EVENT            USER   SESSION     REASON               IP          DETAIL
	// 2025-03-01T09:00:00Z  login_failed     alice  -           invalid_credentials  192.0.2.10  -
	// 2025-03-01T09:00:05Z  login_succeeded  alice  Jm4x9Qk2c7  -                    192.0.2.10  -
	// {"time":"2025-03-01T09:00:05.000000000Z","event":"login_succeeded","user":"alice","session":"Jm4x9Qk2c7","reason":"","ip":"192.0.2.10"}
}

// A *Log observes the session Manager, so every session's start and end is
// in the log, timeouts included.
func ExampleLog_SessionEvent() {
	l, done := openExampleLog()
	defer done()
	ctx := context.Background()
	var observer session.Observer = l // as in session.Config{Observers: []session.Observer{l}}

	info := session.Info{ID: "Jm4x9Qk2c7", UserID: "alice", IP: "192.0.2.10"}
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	observer.SessionEvent(ctx, session.Event{Kind: session.EventStarted, Session: info, Time: t0})
	observer.SessionEvent(ctx, session.Event{Kind: session.EventEnded, Session: info,
		Reason: session.ReasonIdle, Time: t0.Add(30 * time.Minute)})

	entries, _ := l.Query(ctx, audit.Filter{})
	audit.WriteJSONLines(os.Stdout, entries)
	// Output:
	// {"time":"2025-03-01T09:00:00.000000000Z","event":"session_started","user":"alice","session":"Jm4x9Qk2c7","reason":"","ip":"192.0.2.10"}
	// {"time":"2025-03-01T09:30:00.000000000Z","event":"session_ended","user":"alice","session":"Jm4x9Qk2c7","reason":"idle","ip":"192.0.2.10"}
}
