package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// TestConcurrentSweepersEndEachSessionOnce is the multi-instance rule: four
// Stores, each with its own pool, as four server instances would be, sweep
// 5,000 expired sessions at once while each also ends every tenth session
// with End (racing the sweepers and each other). Every session must be ended
// by exactly one call, with the ending Record.Expiry gives it when swept, and
// that ending is the one kept.
func TestConcurrentSweepersEndEachSessionOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := freshDSN(t)
	const instances, n, limit = 4, 5000, 100
	stores := make([]*Store, instances)
	for i := range stores {
		stores[i] = openDSN(t, dsn)
	}
	recs := expiredRecords(n)
	insertRecords(t, stores[0], recs)
	live := record("live")
	live.LastActivity = t0.Add(time.Hour)
	mustCreate(t, stores[0], live)
	byID := make(map[string]session.Record, n)
	for _, r := range recs {
		byID[r.ID] = r
	}
	now := t0.Add(time.Hour)
	const keep = 2 * time.Hour
	logout := session.Ending{Reason: session.ReasonLogout, At: t0.Add(time.Minute), KeepUntil: now.Add(keep)}

	var (
		mu      sync.Mutex
		swept   = make(map[string][]session.Ended)
		byEnd   = make(map[string]int)
		batches atomic.Int64
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	errc := make(chan error, 2*instances)
	for i, s := range stores {
		wg.Go(func() { // this instance's sweeper, as the Manager runs it
			<-start
			for {
				ended, err := s.EndExpired(ctx, now, keep, limit)
				if err != nil {
					errc <- fmt.Errorf("instance %d: EndExpired: %w", i, err)
					return
				}
				if len(ended) > limit {
					errc <- fmt.Errorf("instance %d: a batch of %d, limit %d", i, len(ended), limit)
				}
				batches.Add(1)
				mu.Lock()
				for _, e := range ended {
					swept[e.ID] = append(swept[e.ID], e)
				}
				mu.Unlock()
				if len(ended) == 0 {
					return
				}
			}
		})
		wg.Go(func() { // requests on this instance signing every tenth session out
			<-start
			order := rand.Perm(n / 10)
			for _, k := range order {
				id := recs[10*k].ID
				rec, err := s.End(ctx, id, logout)
				switch {
				case err == nil:
					if !equalRecords(rec, byID[id]) {
						errc <- fmt.Errorf("instance %d: End(%s) returned %+v", i, id, rec)
					}
					mu.Lock()
					byEnd[id]++
					mu.Unlock()
				case !errors.Is(err, session.ErrNotFound):
					errc <- fmt.Errorf("instance %d: End: %w", i, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	bySweep := 0
	for _, r := range recs {
		sweeps, ends := swept[r.ID], byEnd[r.ID]
		if len(sweeps)+ends != 1 {
			t.Errorf("%s ended by %d sweeps and %d Ends, want exactly one in all", r.ID, len(sweeps), ends)
			continue
		}
		want := logout
		if len(sweeps) == 1 {
			bySweep++
			reason, at := r.Expiry()
			want = session.Ending{Reason: reason, At: at, KeepUntil: at.Add(keep)}
			if got := sweeps[0]; !equalEndings(got.Ending, want) || !equalRecords(got.Record, r) {
				t.Errorf("%s swept as %+v, want record %+v ending %+v", r.ID, got, r, want)
			}
		}
		if got, err := stores[int(r.TokenHash[0])%instances].Ended(ctx, r.TokenHash); err != nil || !equalEndings(got, want) {
			t.Errorf("Ended(%s) = %+v, %v; want %+v", r.ID, got, err, want)
		}
	}
	if len(swept) != bySweep {
		t.Errorf("the sweepers returned %d sessions, %d of them expected", len(swept), bySweep)
	}
	if bySweep < n*9/10 {
		t.Errorf("the sweepers ended %d sessions, want at least the %d that no End asked for", bySweep, n*9/10)
	}
	t.Logf("%d sessions: %d swept in %d calls on %d instances, %d ended by End", n, bySweep, batches.Load(), instances, n-bySweep)
	if got := count(t, stores[0], "session_records"); got != 1 {
		t.Errorf("%d records left, want only the live one", got)
	}
	if got := count(t, stores[0], "session_ended"); got != n {
		t.Errorf("%d ended-token rows, want %d", got, n)
	}
	if _, err := stores[3].Get(ctx, live.TokenHash); err != nil {
		t.Errorf("the live session after the sweeps: %v", err)
	}
}

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
	mustCreate(t, s, r)
	return r
}

// TestEndExpiredBatchesWhileServing sweeps 10,000 expired records in bounded
// batches while Get and Touch on a live session keep succeeding, then purges
// their ended-token rows, also in bounded batches.
func TestEndExpiredBatchesWhileServing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	const expired, limit = 10_000, 500
	insertRecords(t, s, expiredRecords(expired))
	live := record("live") // lives until t0+3h30m, past both sweeps
	live.AuthenticatedAt, live.LastActivity = t0.Add(time.Hour), t0.Add(3*time.Hour)
	mustCreate(t, s, live)
	now := t0.Add(time.Hour)

	stop := make(chan struct{})
	var gets atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for i := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Get(ctx, live.TokenHash); err != nil {
					errc <- fmt.Errorf("Get during sweep: %w", err)
					return
				}
				if i == 0 && n%10 == 0 {
					if err := s.Touch(ctx, live.ID, now); err != nil {
						errc <- fmt.Errorf("Touch during sweep: %w", err)
						return
					}
				}
				gets.Add(1)
			}
		})
	}
	batches, total := 0, 0
	var last time.Time
	for {
		e, err := s.EndExpired(ctx, now, time.Hour, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(e) > limit {
			t.Fatalf("batch of %d, limit %d", len(e), limit)
		}
		for _, x := range e {
			if x.At.Before(last) {
				t.Fatalf("ended at %v after one ended at %v: not oldest first", x.At, last)
			}
			last = x.At
		}
		batches++
		total += len(e)
		if len(e) < limit {
			break
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if total != expired || batches != expired/limit+1 {
		t.Errorf("ended %d records in %d batches, want %d in %d", total, batches, expired, expired/limit+1)
	}
	if gets.Load() == 0 {
		t.Error("no Get completed during the sweep")
	}

	purged := 0
	for range expired/limit + 1 {
		if _, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, limit); err != nil {
			t.Fatal(err)
		}
		left := count(t, s, "session_ended")
		if expired-left-purged > limit {
			t.Fatalf("one call purged %d ended-token rows, limit %d", expired-left-purged, limit)
		}
		purged = expired - left
	}
	if purged != expired {
		t.Errorf("purged %d ended-token rows, want %d", purged, expired)
	}
	if _, err := s.Get(ctx, live.TokenHash); err != nil {
		t.Errorf("live session after the sweeps: %v", err)
	}
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
		r := recs[i] // deadlines are in index order
		reason, at := r.Expiry()
		want := session.Ending{Reason: reason, At: at, KeepUntil: at.Add(time.Hour)}
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
