package storetest

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

const (
	racers = 16 // goroutines that race for one record
	rounds = 5  // races run per rule, each on a fresh record
)

// race runs f(i) for i in [0, n) on n goroutines released together, and
// waits for them all.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// The concurrency rules, each run on the subtest's store alone (the
// Concurrency group) and again with the racers split between two handles on
// one database (the SecondHandle group). stores[i%len(stores)] is racer i's.

func endsRace(h *harness, stores []session.Store) {
	for round := range rounds {
		rec := h.create(h.record("alice"))
		got := make([]session.Record, racers)
		errs := make([]error, racers)
		endings := make([]session.Ending, racers)
		for i := range endings {
			// Each racer ends at its own instant, so Ended tells who won.
			endings[i] = session.Ending{Reason: session.ReasonRevoked, At: h.now.Add(time.Duration(i)), KeepUntil: h.now.Add(time.Hour)}
		}
		race(racers, func(i int) { got[i], errs[i] = stores[i%len(stores)].End(h.ctx, rec.ID, endings[i]) })
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				h.Errorf("round %d: End succeeded for racers %d and %d, want exactly one", round, winner, i)
			case err == nil:
				winner = i
				if d := diff(got[i], rec); d != "" {
					h.Errorf("round %d: the winning End returned a different record:\n%s", round, d)
				}
			case !errors.Is(err, session.ErrNotFound):
				h.Errorf("round %d: a losing End returned %v, want ErrNotFound", round, err)
			}
		}
		if winner < 0 {
			h.Fatalf("round %d: none of %d concurrent Ends succeeded", round, racers)
		}
		for _, s := range stores {
			h.on(s).wantEnded(rec.TokenHash, endings[winner])
			h.on(s).wantGone(rec.TokenHash, "after concurrent Ends")
		}
	}
}

func endRacesEndExpired(h *harness, stores []session.Store) {
	sweepAt := h.now.Add(time.Hour)
	const keep = 2 * time.Hour
	for round := range rounds {
		rec := h.create(h.record("alice")) // expires now+30m
		expiry := sweptEnding(rec, keep)
		// Kept past sweepAt, so the racing sweeps must not forget it.
		logout := session.Ending{Reason: session.ReasonLogout, At: h.now.Add(time.Minute), KeepUntil: sweepAt.Add(time.Hour)}
		var wins atomic.Int32
		var sweptBy atomic.Bool
		race(racers, func(i int) {
			s := stores[(i/2)%len(stores)]
			if i%2 == 0 {
				got, err := s.End(h.ctx, rec.ID, logout)
				switch {
				case err == nil:
					wins.Add(1)
					if d := diff(got, rec); d != "" {
						h.Errorf("round %d: the winning End returned a different record:\n%s", round, d)
					}
				case !errors.Is(err, session.ErrNotFound):
					h.Errorf("round %d: a losing End returned %v, want ErrNotFound", round, err)
				}
				return
			}
			ended, err := s.EndExpired(h.ctx, sweepAt, keep, 10)
			if err != nil {
				h.Errorf("round %d: EndExpired: %v", round, err)
			}
			for _, e := range ended {
				if e.ID != rec.ID {
					h.Errorf("round %d: EndExpired ended %s, an unexpected record", round, e.ID)
					continue
				}
				wins.Add(1)
				sweptBy.Store(true)
				if d := diffEnding(e.Ending, expiry); d != "" {
					h.Errorf("round %d: EndExpired's ending is wrong:\n%s", round, d)
				}
			}
		})
		if n := wins.Load(); n != 1 {
			h.Fatalf("round %d: %d calls ended the session, want exactly 1", round, n)
		}
		want := logout
		if sweptBy.Load() {
			want = expiry
		}
		for _, s := range stores {
			h.on(s).wantEnded(rec.TokenHash, want)
			h.on(s).wantGone(rec.TokenHash, "after End raced EndExpired")
		}
	}
}

// sweepersEndEachOnce runs a sweeper per store, as the Manager does on every
// instance, while Ends on every store sign every fifth session out.
func sweepersEndEachOnce(h *harness, stores []session.Store) {
	const records, limit, keep = 60, 4, time.Hour
	now := h.now.Add(time.Hour)
	byID := make(map[string]session.Record)
	var recs []session.Record
	for i := range records {
		rec := h.create(NewRecord(fmt.Sprintf("user-%d", i%5), h.now.Add(time.Duration(i)*time.Millisecond), policy))
		byID[rec.ID] = rec
		recs = append(recs, rec)
	}
	logout := session.Ending{Reason: session.ReasonLogout, At: h.now.Add(time.Minute), KeepUntil: now.Add(keep)}
	var mu sync.Mutex
	swept := make(map[string]int)
	byEnd := make(map[string]int)
	sweepers := max(4, 2*len(stores))
	race(2*sweepers, func(w int) {
		s := stores[w%len(stores)]
		if w >= sweepers {
			// Every End worker tries every fifth session, each starting
			// at its own place, so Ends race each other too.
			for k := range records / 5 {
				i := 5 * ((k + w) % (records / 5))
				_, err := s.End(h.ctx, recs[i].ID, logout)
				switch {
				case err == nil:
					mu.Lock()
					byEnd[recs[i].ID]++
					mu.Unlock()
				case !errors.Is(err, session.ErrNotFound):
					h.Errorf("End racing the sweepers: %v", err)
				}
			}
			return
		}
		// Like the Manager, sweep until a call finds nothing to end.
		for {
			ended, err := s.EndExpired(h.ctx, now, keep, limit)
			if err != nil {
				h.Errorf("EndExpired: %v", err)
				return
			}
			if len(ended) > limit {
				h.Errorf("EndExpired returned %d records, limit %d", len(ended), limit)
			}
			mu.Lock()
			for _, e := range ended {
				swept[e.ID]++
				if d := diff(e.Record, byID[e.ID]); d != "" {
					h.Errorf("EndExpired returned a record for %s that differs from the stored one:\n%s", e.ID, d)
				}
				if d := diffEnding(e.Ending, sweptEnding(byID[e.ID], keep)); d != "" {
					h.Errorf("EndExpired ended %s with the wrong ending:\n%s", e.ID, d)
				}
			}
			mu.Unlock()
			if len(ended) == 0 {
				return
			}
		}
	})
	for i, rec := range recs {
		if n := swept[rec.ID] + byEnd[rec.ID]; n != 1 {
			h.Errorf("%s ended by %d sweeps and %d Ends, want exactly one in all", rec.ID, swept[rec.ID], byEnd[rec.ID])
			continue
		}
		want := logout
		if swept[rec.ID] == 1 {
			want = sweptEnding(rec, keep)
		}
		h.on(stores[i%len(stores)]).wantEnded(rec.TokenHash, want)
	}
	if left := h.endExpired(now, keep, records); len(left) != 0 {
		h.Errorf("after the sweepers stopped, EndExpired still ended %d records", len(left))
	}
}

// setKey sets key to value in the data of rec through s, as the Manager
// does: read the record, write its data with the change, and on ErrStale
// read again. It gives up after maxTries ErrStale answers.
func setKey(h *harness, s session.Store, rec session.Record, key, value string, maxTries int) error {
	for range maxTries {
		got, err := s.Get(h.ctx, rec.TokenHash)
		if err != nil {
			return fmt.Errorf("Get: %w", err)
		}
		data := maps.Clone(got.Data)
		if data == nil {
			data = make(map[string]string)
		}
		data[key] = value
		err = s.SaveData(h.ctx, rec.ID, got.Data, data)
		if !errors.Is(err, session.ErrStale) {
			return err
		}
	}
	return fmt.Errorf("SaveData answered ErrStale %d times in a row: does Get return data older than what SaveData compares with?", maxTries)
}

// concurrentKeysSurvive has writers on every store set keys of one session
// at once, each with the read, compare-and-set, retry loop: every key must
// be there at the end. A store whose SaveData replaced the data without
// comparing loses some.
func concurrentKeysSurvive(h *harness, stores []session.Store) {
	const writers, keysEach = 8, 10
	rec := h.record("alice")
	rec.Data = map[string]string{"before": "kept"}
	h.create(rec)
	want := maps.Clone(rec.Data)
	for w := range writers {
		for k := range keysEach {
			want[fmt.Sprintf("w%d-k%d", w, k)] = fmt.Sprint(k)
		}
	}
	// Each ErrStale means another write won, so no loop needs more tries
	// than there are writes.
	maxTries := writers*keysEach + 1
	race(writers, func(w int) {
		s := stores[w%len(stores)]
		for k := range keysEach {
			if err := setKey(h, s, rec, fmt.Sprintf("w%d-k%d", w, k), fmt.Sprint(k), maxTries); err != nil {
				h.Errorf("writer %d, key %d: %v", w, k, err)
				return
			}
		}
	})
	for _, s := range stores {
		got := h.on(s).get(rec.TokenHash)
		for k, v := range want {
			if gv, ok := got.Data[k]; !ok || gv != v {
				h.Errorf("key %q after concurrent writes: %q (present: %v), want %q", k, gv, ok, v)
			}
		}
		if len(got.Data) != len(want) {
			h.Errorf("after concurrent writes the data has %d keys, want %d", len(got.Data), len(want))
		}
	}
}

var concurrencyCases = []testCase{
	{"of concurrent Ends exactly one wins", func(h *harness) { endsRace(h, []session.Store{h.s}) }},
	{"of End racing EndExpired exactly one wins", func(h *harness) { endRacesEndExpired(h, []session.Store{h.s}) }},
	{"concurrent sweeps end each record once", func(h *harness) { sweepersEndEachOnce(h, []session.Store{h.s}) }},
	{"a slow write of one key and a fast write of another both survive", func(h *harness) {
		// The lost update, step by step: a slow request reads the data,
		// a fast one sets its key meanwhile, then the slow one writes.
		rec := h.create(h.record("alice"))
		slowRead := h.get(rec.TokenHash)
		if err := setKey(h, h.s, rec, "fast", "b", 2); err != nil {
			h.Fatalf("fast write: %v", err)
		}
		slowData := map[string]string{"slow": "a"}
		err := h.s.SaveData(h.ctx, rec.ID, slowRead.Data, slowData)
		h.wantErr(err, session.ErrStale, "the slow write from data read before the fast write")
		if err := setKey(h, h.s, rec, "slow", "a", 2); err != nil {
			h.Fatalf("slow write, retried: %v", err)
		}
		rec.Data = map[string]string{"fast": "b", "slow": "a"}
		h.wantRecord(rec)
	}},
	{"concurrent writes of different keys all survive", func(h *harness) { concurrentKeysSurvive(h, []session.Store{h.s}) }},
	{"activity racing End never brings the session back", func(h *harness) {
		const workers, ops = 8, 24
		rec := h.create(h.record("alice"))
		e := h.ending(session.ReasonRevoked)
		var ended atomic.Bool // set once End has returned
		halfway := make(chan struct{})
		var once sync.Once
		race(workers+1, func(w int) {
			if w == workers {
				<-halfway
				if _, err := h.s.End(h.ctx, rec.ID, e); err != nil {
					h.Errorf("End: %v", err)
				}
				ended.Store(true)
				return
			}
			for i := range ops {
				if i == ops/2 {
					once.Do(func() { close(halfway) })
				}
				after := ended.Load()
				var op string
				var err error
				switch i % 3 {
				case 0:
					at := h.now.Add(time.Duration(w*ops+i) * time.Millisecond)
					op, err = "Touch", h.s.Touch(h.ctx, rec.ID, at, expiry(policy, rec.AuthenticatedAt, at))
				case 1:
					op, err = "SaveData", setKey(h, h.s, rec, fmt.Sprint("worker-", w), fmt.Sprint(i), workers*ops+1)
				default:
					op = "Get"
					_, err = h.s.Get(h.ctx, rec.TokenHash)
				}
				switch {
				case err != nil && !errors.Is(err, session.ErrNotFound):
					h.Errorf("%s racing End: %v, want nil or ErrNotFound", op, err)
				case err == nil && after:
					h.Errorf("%s succeeded after End had returned", op)
				}
			}
		})
		h.wantGone(rec.TokenHash, "after activity raced End")
		h.wantList("", 0)
		h.wantEnded(rec.TokenHash, e)
		exp := session.Expiry{At: h.now.Add(time.Hour), Reason: session.ReasonIdle}
		h.wantErr(h.s.Touch(h.ctx, rec.ID, h.now.Add(time.Minute), exp), session.ErrNotFound, "Touch after the race")
		h.wantErr(h.s.SaveData(h.ctx, rec.ID, nil, nil), session.ErrNotFound, "SaveData after the race")
	}},
	{"Renew racing End never brings the session back", func(h *harness) {
		for round := range rounds {
			rec := h.create(h.record("alice"))
			e := h.ending(session.ReasonLogout)
			r := renewal(policy, h.now.Add(time.Minute))
			hashes := make([]session.TokenHash, racers)
			renewErrs := make([]error, racers)
			var endRec session.Record
			var endErr error
			race(racers+1, func(i int) {
				if i == racers {
					endRec, endErr = h.s.End(h.ctx, rec.ID, e)
					return
				}
				hashes[i] = randomHash()
				renewErrs[i] = h.s.Renew(h.ctx, rec.ID, rec.TokenHash, hashes[i], r)
			})
			if endErr != nil {
				h.Fatalf("round %d: End racing Renew: %v", round, endErr)
			}
			renewedCount := 0
			for i, err := range renewErrs {
				switch {
				case err == nil:
					renewedCount++
					if endRec.TokenHash != hashes[i] {
						h.Errorf("round %d: Renew to hash %d succeeded but End removed a record with another hash", round, i)
					}
				case !errors.Is(err, session.ErrNotFound):
					h.Errorf("round %d: Renew racing End: %v, want nil or ErrNotFound", round, err)
				}
				h.wantGone(hashes[i], "of a renewal's hash after End")
			}
			if renewedCount > 1 {
				h.Errorf("round %d: %d renewals from one hash succeeded, want at most 1", round, renewedCount)
			}
			if renewedCount == 0 && endRec.TokenHash != rec.TokenHash {
				h.Errorf("round %d: no Renew succeeded but End removed a record with another hash", round)
			}
			h.wantGone(rec.TokenHash, "of the original hash after End")
			h.wantEnded(endRec.TokenHash, e)
			h.wantList("", 0)
		}
	}},
	{"a large sweep in batches leaves a live session served", func(h *harness) { sweepWhileServing(h, h.s) }},
}

// sweepWhileServing sweeps expired sessions in batches through h.s while
// Get, Touch and SaveData of a live session keep succeeding through serve.
func sweepWhileServing(h *harness, serve session.Store) {
	const expired, limit, keep = 1000, 100, time.Hour
	for i := range expired {
		h.create(NewRecord(fmt.Sprint("expired-", i%50), h.now.Add(time.Duration(i)*time.Millisecond), policy))
	}
	live := h.create(h.expiresAt(h.record("live"), 2*time.Hour, session.ReasonIdle))
	now := h.now.Add(time.Hour)

	var stop atomic.Bool
	started := make(chan struct{})
	var startOnce sync.Once
	var ops atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				if _, err := serve.Get(h.ctx, live.TokenHash); err != nil {
					h.Errorf("Get of a live session during the sweep: %v", err)
					return
				}
				if w == 0 && n%10 == 0 {
					at := h.now.Add(time.Duration(n) * time.Millisecond)
					exp := session.Expiry{At: at.Add(2 * time.Hour), Reason: session.ReasonIdle}
					if err := serve.Touch(h.ctx, live.ID, at, exp); err != nil {
						h.Errorf("Touch of a live session during the sweep: %v", err)
						return
					}
				}
				if w == 1 && n%10 == 0 {
					if err := setKey(h, serve, live, "n", fmt.Sprint(n), 100); err != nil {
						h.Errorf("SaveData of a live session during the sweep: %v", err)
						return
					}
				}
				ops.Add(1)
				startOnce.Do(func() { close(started) })
			}
		})
	}
	<-started
	seen := make(map[string]bool)
	batches := 0
	for {
		ended, err := h.s.EndExpired(h.ctx, now, keep, limit)
		if err != nil {
			stop.Store(true)
			wg.Wait()
			h.Fatalf("EndExpired: %v", err)
		}
		if len(ended) > limit {
			h.Errorf("batch of %d, limit %d", len(ended), limit)
		}
		for _, e := range ended {
			if seen[e.ID] || e.ID == live.ID {
				h.Errorf("EndExpired ended %s twice, or the live session", e.ID)
			}
			seen[e.ID] = true
		}
		batches++
		if len(ended) < limit {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(seen) != expired {
		h.Errorf("the sweep ended %d sessions in %d batches, want %d", len(seen), batches, expired)
	}
	h.Logf("%d sessions swept in %d batches; %d requests served meanwhile", len(seen), batches, ops.Load())
	if _, err := serve.Get(h.ctx, live.TokenHash); err != nil {
		h.Errorf("the live session after the sweep: %v", err)
	}
}
