package storetest

import (
	"errors"
	"fmt"
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

var concurrencyCases = []testCase{
	{"of concurrent Ends exactly one wins", func(h *harness) {
		for round := range rounds {
			rec := h.create(h.record("alice"))
			got := make([]session.Record, racers)
			errs := make([]error, racers)
			endings := make([]session.Ending, racers)
			for i := range endings {
				// Each racer ends at its own instant, so Ended tells who won.
				endings[i] = session.Ending{Reason: session.ReasonRevoked, At: h.now.Add(time.Duration(i)), KeepUntil: h.now.Add(time.Hour)}
			}
			race(racers, func(i int) { got[i], errs[i] = h.s.End(h.ctx, rec.ID, endings[i]) })
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
			h.wantEnded(rec.TokenHash, endings[winner])
			h.wantGone(rec.TokenHash, "after concurrent Ends")
		}
	}},
	{"of End racing EndExpired exactly one wins", func(h *harness) {
		sweepAt := h.now.Add(time.Hour)
		const keep = 2 * time.Hour
		for round := range rounds {
			rec := h.create(h.record("alice")) // expires now+30m
			reason, expiredAt := rec.Expiry()
			expiry := session.Ending{Reason: reason, At: expiredAt, KeepUntil: expiredAt.Add(keep)}
			// Kept past sweepAt, so the racing sweeps must not forget it.
			logout := session.Ending{Reason: session.ReasonLogout, At: h.now.Add(time.Minute), KeepUntil: sweepAt.Add(time.Hour)}
			var wins atomic.Int32
			var sweptBy atomic.Bool
			race(racers, func(i int) {
				if i%2 == 0 {
					got, err := h.s.End(h.ctx, rec.ID, logout)
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
				ended, err := h.s.EndExpired(h.ctx, sweepAt, keep, 10)
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
			if sweptBy.Load() {
				h.wantEnded(rec.TokenHash, expiry)
			} else {
				h.wantEnded(rec.TokenHash, logout)
			}
			h.wantGone(rec.TokenHash, "after End raced EndExpired")
		}
	}},
	{"concurrent sweeps end each record once", func(h *harness) {
		const records, sweepers, limit = 30, 4, 4
		want := make(map[string]session.Record)
		endings := make(map[string]session.Ending)
		for i := range records {
			rec := h.create(NewRecord(fmt.Sprintf("user-%d", i%5), h.now.Add(time.Duration(i)*time.Millisecond), policy))
			want[rec.ID] = rec
			reason, at := rec.Expiry()
			endings[rec.ID] = session.Ending{Reason: reason, At: at, KeepUntil: at.Add(time.Hour)}
		}
		var mu sync.Mutex
		var all []session.Ended
		race(sweepers, func(int) {
			// Like the Manager, sweep until a call finds nothing to end.
			for {
				ended, err := h.s.EndExpired(h.ctx, h.now.Add(time.Hour), time.Hour, limit)
				if err != nil {
					h.Errorf("EndExpired: %v", err)
					return
				}
				mu.Lock()
				all = append(all, ended...)
				mu.Unlock()
				if len(ended) == 0 {
					return
				}
			}
		})
		h.wantEndedBatch(all, want, endings)
		if left := h.endExpired(h.now.Add(time.Hour), time.Hour, records); len(left) != 0 {
			h.Errorf("after the sweepers stopped, EndExpired still ended %d records", len(left))
		}
	}},
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
					op, err = "Touch", h.s.Touch(h.ctx, rec.ID, h.now.Add(time.Duration(w*ops+i)*time.Millisecond))
				case 1:
					op, err = "SaveData", h.s.SaveData(h.ctx, rec.ID, map[string]string{"worker": fmt.Sprint(w), "op": fmt.Sprint(i)})
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
		h.wantErr(h.s.Touch(h.ctx, rec.ID, h.now.Add(time.Minute)), session.ErrNotFound, "Touch after the race")
		h.wantErr(h.s.SaveData(h.ctx, rec.ID, nil), session.ErrNotFound, "SaveData after the race")
	}},
	{"Renew racing End never brings the session back", func(h *harness) {
		for round := range rounds {
			rec := h.create(h.record("alice"))
			e := h.ending(session.ReasonLogout)
			at := h.now.Add(time.Minute)
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
				renewErrs[i] = h.s.Renew(h.ctx, rec.ID, rec.TokenHash, hashes[i], at, at)
			})
			if endErr != nil {
				h.Fatalf("round %d: End racing Renew: %v", round, endErr)
			}
			renewed := 0
			for i, err := range renewErrs {
				switch {
				case err == nil:
					renewed++
					if endRec.TokenHash != hashes[i] {
						h.Errorf("round %d: Renew to hash %d succeeded but End removed a record with another hash", round, i)
					}
				case !errors.Is(err, session.ErrNotFound):
					h.Errorf("round %d: Renew racing End: %v, want nil or ErrNotFound", round, err)
				}
				h.wantGone(hashes[i], "of a renewal's hash after End")
			}
			if renewed > 1 {
				h.Errorf("round %d: %d renewals from one hash succeeded, want at most 1", round, renewed)
			}
			if renewed == 0 && endRec.TokenHash != rec.TokenHash {
				h.Errorf("round %d: no Renew succeeded but End removed a record with another hash", round)
			}
			h.wantGone(rec.TokenHash, "of the original hash after End")
			h.wantEnded(endRec.TokenHash, e)
			h.wantList("", 0)
		}
	}},
}
