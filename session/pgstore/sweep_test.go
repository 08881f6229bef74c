package pgstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// TestSweepSkipsLockedRows shows that a sweep neither waits for nor takes a
// row another transaction holds (an End, a Touch or another instance's sweep
// in progress), for records and ended-token rows alike, and that Get does not
// wait for it either.
func TestSweepSkipsLockedRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	a, b := record("a"), record("b")
	mustCreate(t, s, a, b)
	// c ends with its ending kept until t0 only: the sweep purges it.
	if _, err := s.End(ctx, createLive(t, s, "c").ID, session.Ending{Reason: session.ReasonRevoked, At: t0, KeepUntil: t0}); err != nil {
		t.Fatal(err)
	}
	holdTx := func(query string, args ...any) (release func()) {
		t.Helper()
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, query, args...); err != nil {
			t.Fatal(err)
		}
		return func() { tx.Rollback(ctx) }
	}
	c := hashOf("c")
	release := holdTx(`SELECT 1 FROM session_records WHERE id = $1 FOR UPDATE`, a.ID)
	releaseEnded := holdTx(`SELECT 1 FROM session_ended WHERE token_hash = $1 FOR UPDATE`, c[:])

	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	begin := time.Now()
	ended, err := s.EndExpired(quick, t0.Add(time.Hour), time.Hour, 10)
	if err != nil {
		t.Fatalf("EndExpired beside locked rows: %v", err)
	}
	if len(ended) != 1 || ended[0].ID != b.ID {
		t.Fatalf("EndExpired beside a locked record ended %d records, want only %s", len(ended), b.ID)
	}
	if _, err := s.Get(quick, a.TokenHash); err != nil {
		t.Fatalf("Get of a locked record: %v", err)
	}
	if _, err := s.Ended(quick, hashOf("c")); err != nil {
		t.Fatalf("the locked ended-token row was purged: %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("calls beside locked rows took %v; they must not wait for the locks", d)
	}

	release()
	releaseEnded()
	ended, err = s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, 10)
	if err != nil || len(ended) != 1 || ended[0].ID != a.ID {
		t.Fatalf("EndExpired after the lock was released = %d records, %v; want %s", len(ended), err, a.ID)
	}
	if _, err := s.Ended(ctx, hashOf("c")); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("ended-token row past KeepUntil after the lock was released: err = %v, want ErrNotFound", err)
	}
}

// createLive creates record(name), active until t0+2h30m.
func createLive(t *testing.T, s *Store, name string) session.Record {
	t.Helper()
	r := record(name)
	r.LastActivity = t0.Add(2 * time.Hour)
	r.Expires = expiryOf(r.Policy, r.AuthenticatedAt, r.LastActivity)
	mustCreate(t, s, r)
	return r
}

// TestEndExpiredReasons checks the reason and time of each kind of expiry
// and that the ending kept is the one returned.
func TestEndExpiredReasons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	recs := expiredRecords(21)
	insertRecords(t, s, recs)
	ended, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, 100)
	if err != nil || len(ended) != len(recs) {
		t.Fatalf("EndExpired = %d records, %v; want %d", len(ended), err, len(recs))
	}
	reasons := map[session.EndReason]int{}
	for i, e := range ended {
		r := recs[i] // expiries are in index order
		want := session.Ending{Reason: r.Expires.Reason, At: r.Expires.At, KeepUntil: r.Expires.At.Add(time.Hour)}
		if e.ID != r.ID || !equalEndings(e.Ending, want) {
			t.Errorf("ended[%d] = %s %+v, want %s %+v", i, e.ID, e.Ending, r.ID, want)
		}
		if got, err := s.Ended(ctx, r.TokenHash); err != nil || !equalEndings(got, want) {
			t.Errorf("Ended(%s) = %+v, %v; want %+v", r.ID, got, err, want)
		}
		reasons[e.Reason]++
	}
	// 0,3,...,18 absolute first; 7 and 14 tied (absolute); the rest idle.
	if reasons[session.ReasonAbsolute] != 9 || reasons[session.ReasonIdle] != 12 {
		t.Errorf("reasons = %v, want 9 absolute and 12 idle", reasons)
	}

	// A keep so long that KeepUntil would pass the year 2262 is capped.
	r := record("forever")
	mustCreate(t, s, r)
	ended, err = s.EndExpired(ctx, t0.Add(time.Hour), time.Duration(1<<63-1), 10)
	if err != nil || len(ended) != 1 || !ended[0].KeepUntil.Equal(session.MaxStoreTime) {
		t.Fatalf("EndExpired with an endless keep = %+v, %v; want KeepUntil %v", ended, err, session.MaxStoreTime)
	}
}

// TestSweepResumesAfterItsLastFullBatch shows the sweep's cursor: a call
// after a full batch starts after that batch's last record instead of at
// the oldest expired one, and a record the cursor left behind (a Touch
// held it while its batch passed) is swept once a call comes back short.
func TestSweepResumesAfterItsLastFullBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	recs := expiredRecords(5) // expiries in index order
	insertRecords(t, s, recs)
	now := t0.Add(time.Hour)
	sweep := func(want ...int) {
		t.Helper()
		ended, err := s.EndExpired(ctx, now, time.Hour, 2)
		if err != nil {
			t.Fatal(err)
		}
		var got, wantIDs []string
		for _, e := range ended {
			got = append(got, e.ID)
		}
		for _, i := range want {
			wantIDs = append(wantIDs, recs[i].ID)
		}
		if !slices.Equal(got, wantIDs) {
			t.Fatalf("EndExpired(limit 2) ended %v, want %v", got, wantIDs)
		}
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM session_records WHERE id = $1 FOR UPDATE`, recs[1].ID); err != nil {
		t.Fatal(err)
	}
	sweep(0, 2) // past the held record
	tx.Rollback(ctx)
	sweep(3, 4) // after 2, where the last full batch ended
	sweep()     // nothing after 4: short, the cursor goes back to the start
	sweep(1)    // the record left behind
	if got, err := s.EndExpired(ctx, now, time.Hour, 2); err != nil || len(got) != 0 {
		t.Fatalf("EndExpired once all were swept = %d records, %v; want none", len(got), err)
	}
}
