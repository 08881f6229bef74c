package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

var start = time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.UTC)

func newLog(t *testing.T, db *sqldb.DB, clock *sessiontest.Clock) *audit.Log {
	t.Helper()
	l, err := audit.NewLog(t.Context(), db, audit.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRecordAndQuery(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		l := newLog(t, db, clock)
		entries := []audit.Entry{
			{Time: start, Event: audit.LoginFailed, User: "alice", Reason: audit.ReasonInvalidCredentials, IP: "192.0.2.1"},
			{Time: start.Add(time.Second), Event: audit.LoginSucceeded, User: "alice", Session: "sid-1", IP: "192.0.2.1"},
			{Time: start.Add(time.Second), Event: audit.SessionStarted, User: "alice", Session: "sid-1", IP: "192.0.2.1"}, // same instant: kept in order
			{Time: start.Add(time.Minute + 1), Event: audit.LoginSucceeded, User: "bob", Session: "sid-2", IP: "2001:db8::1"},
			{Time: start.Add(time.Hour), Event: audit.SessionEnded, User: "alice", Session: "sid-1", Reason: "idle"},
			{Time: start.Add(2 * time.Hour), Event: audit.UserDisabled, User: "bob", Detail: "by alice"},
		}
		// Recorded out of order: Query orders by time.
		for _, i := range []int{3, 0, 1, 2, 5, 4} {
			if err := l.Record(ctx, entries[i]); err != nil {
				t.Fatal(err)
			}
		}
		check := func(f audit.Filter, want ...int) {
			t.Helper()
			got, err := l.Query(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var wantEntries []audit.Entry
			for _, i := range want {
				wantEntries = append(wantEntries, entries[i])
			}
			if !reflect.DeepEqual(got, wantEntries) {
				t.Errorf("Query(%+v) =\n%v\nwant\n%v", f, got, wantEntries)
			}
		}
		check(audit.Filter{}, 0, 1, 2, 3, 4, 5)
		check(audit.Filter{Since: start.Add(time.Second)}, 1, 2, 3, 4, 5)
		check(audit.Filter{Since: start.Add(time.Second + 1)}, 3, 4, 5)
		check(audit.Filter{Until: start.Add(time.Hour)}, 0, 1, 2, 3)
		check(audit.Filter{Since: start.Add(time.Minute), Until: start.Add(time.Hour + 1)}, 3, 4)
		check(audit.Filter{User: "alice"}, 0, 1, 2, 4)
		check(audit.Filter{User: "ALICE"}) // exact match
		check(audit.Filter{Event: audit.LoginSucceeded}, 1, 3)
		check(audit.Filter{User: "alice", Event: audit.LoginSucceeded}, 1)
		// Limit keeps the newest, still oldest first.
		check(audit.Filter{Limit: 2}, 4, 5)
		check(audit.Filter{Limit: 3, User: "alice"}, 1, 2, 4)
		check(audit.Filter{Limit: 100}, 0, 1, 2, 3, 4, 5)
		check(audit.Filter{User: "nobody"})
	})
}

func TestRecordDefaults(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	clock := sessiontest.NewClock(start)
	l := newLog(t, db, clock)
	if err := l.Record(t.Context(), audit.Entry{User: "alice"}); err == nil {
		t.Error("an entry without an event was recorded")
	}
	if err := l.Record(t.Context(), audit.Entry{Event: audit.UserCreated, User: "alice"}); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Query(t.Context(), audit.Filter{})
	if len(got) != 1 || !got[0].Time.Equal(start) {
		t.Fatalf("entry without a time: %+v, want the clock's time %v", got, start)
	}
}

// A client that hangs up must not erase the trace of what it did.
func TestRecordSurvivesCancelledContext(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	l := newLog(t, db, sessiontest.NewClock(start))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.Record(ctx, audit.Entry{Event: audit.LoginFailed, User: "mallory"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Query(t.Context(), audit.Filter{}); len(got) != 1 {
		t.Fatalf("%d entries, want 1", len(got))
	}
}

// Typed user names and addresses are outside input: whatever they hold, the
// entry is kept (PostgreSQL would refuse invalid UTF-8 or NUL in text).
func TestRecordCleansInput(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		l := newLog(t, db, sessiontest.NewClock(start))
		long := strings.Repeat("é", 1000) // 2000 bytes
		err := l.Record(t.Context(), audit.Entry{
			Event:  audit.LoginFailed,
			User:   "bad\xff\xfeutf8\x00nul",
			IP:     long,
			Detail: strings.Repeat("x", 10000),
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Query(t.Context(), audit.Filter{})
		if err != nil || len(got) != 1 {
			t.Fatalf("Query = %v, %v", got, err)
		}
		e := got[0]
		if e.User != "bad\uFFFDutf8\uFFFDnul" {
			t.Errorf("User = %q", e.User)
		}
		if len(e.IP) > 256 || !strings.HasSuffix(e.IP, "…") || !strings.HasPrefix(e.IP, "éé") || strings.ContainsRune(e.IP, '\uFFFD') {
			t.Errorf("IP not cut cleanly: %d bytes, %q...", len(e.IP), e.IP[len(e.IP)-8:])
		}
		if len(e.Detail) > 4096 {
			t.Errorf("Detail is %d bytes", len(e.Detail))
		}
	})
}

func TestSessionEvent(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		l := newLog(t, db, sessiontest.NewClock(start))
		var obs session.Observer = l
		info := session.Info{ID: "pub-1", UserID: "alice", IP: "192.0.2.1", CreatedAt: start}
		events := []session.Event{
			{Kind: session.EventStarted, Session: info, Time: start, IP: "192.0.2.1"},
			{Kind: session.EventRenewed, Session: info, Time: start.Add(time.Minute), IP: "192.0.2.2"},
			// A timeout found by the sweeper: no request, so the session's address.
			{Kind: session.EventEnded, Session: info, Reason: session.ReasonIdle, Time: start.Add(31 * time.Minute)},
		}
		for _, e := range events {
			obs.SessionEvent(t.Context(), e)
		}
		got, err := l.Query(t.Context(), audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		want := []audit.Entry{
			{Time: start, Event: audit.SessionStarted, User: "alice", Session: "pub-1", IP: "192.0.2.1"},
			{Time: start.Add(time.Minute), Event: audit.SessionRenewed, User: "alice", Session: "pub-1", IP: "192.0.2.2"},
			{Time: start.Add(31 * time.Minute), Event: audit.SessionEnded, User: "alice", Session: "pub-1", Reason: "idle", IP: "192.0.2.1"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("entries =\n%v\nwant\n%v", got, want)
		}
	})
}

// Observers cannot fail: a lost entry goes to the log, with what it was.
func TestSessionEventLogsFailure(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	var logs bytes.Buffer
	l, err := audit.NewLog(t.Context(), db, audit.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	l.SessionEvent(t.Context(), session.Event{Kind: session.EventEnded, Reason: session.ReasonRevoked,
		Session: session.Info{ID: "pub-9", UserID: "bob"}, Time: start})
	for _, want := range []string{"level=ERROR", "session_ended", "bob", "pub-9", "revoked"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
}

func TestEntryJSON(t *testing.T) {
	e := audit.Entry{
		Time:  time.Date(2025, 3, 1, 10, 0, 0, 5, time.FixedZone("CET", 3600)),
		Event: audit.SessionEnded, User: "alice", Session: "pub-1", Reason: "idle", IP: "192.0.2.1",
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"time":"2025-03-01T09:00:00.000000005Z","event":"session_ended","user":"alice","session":"pub-1","reason":"idle","ip":"192.0.2.1"}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
	var back audit.Entry
	if err := json.Unmarshal(b, &back); err != nil || !back.Time.Equal(e.Time) || back.User != "alice" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	e.Detail = "by admin"
	b, _ = json.Marshal(e)
	if !strings.HasSuffix(string(b), `,"detail":"by admin"}`) {
		t.Errorf("JSON with detail = %s", b)
	}
	if err := json.Unmarshal([]byte(`{"time":"yesterday"}`), &back); err == nil {
		t.Error("a bad time was accepted")
	}
}

func TestWriteJSONLines(t *testing.T) {
	var b bytes.Buffer
	err := audit.WriteJSONLines(&b, []audit.Entry{
		{Time: start, Event: audit.LoginFailed, User: "<script>", IP: "192.0.2.1", Reason: audit.ReasonThrottled},
		{Time: start.Add(time.Second), Event: audit.LoginSucceeded, User: "alice", Session: "pub-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), b.String())
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for _, k := range []string{"time", "event", "user", "session", "reason", "ip"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q lacks key %q", line, k)
			}
		}
		if len(m) != 6 {
			t.Errorf("line %q has keys beyond the contract", line)
		}
	}
	// Not escaped for HTML: the reader is a terminal or a program.
	if !strings.Contains(lines[0], `"user":"<script>"`) {
		t.Errorf("line %q", lines[0])
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	err := audit.WriteTable(&b, []audit.Entry{
		{Time: start, Event: audit.LoginFailed, User: "evil\x1b[31mred\tname", IP: "192.0.2.1", Reason: audit.ReasonInvalidCredentials},
		{Time: start.Add(time.Hour), Event: audit.SessionEnded, User: "alice", Session: "pub-1", Reason: "idle", Detail: "two words"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `TIME                  EVENT          USER                     SESSION  REASON               IP         DETAIL
2025-03-01T09:00:00Z  login_failed   "evil\x1b[31mred\tname"  -        invalid_credentials  192.0.2.1  -
2025-03-01T10:00:00Z  session_ended  alice                    pub-1    idle                 -          two words
`
	if b.String() != want {
		t.Errorf("table =\n%s\nwant\n%s", b.String(), want)
	}
}
