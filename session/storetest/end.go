package storetest

import (
	"fmt"
	"slices"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// wantEndedBatch checks that EndExpired's result holds exactly the records of
// want (by ID, each once) with the endings of endings.
func (h *harness) wantEndedBatch(got []session.Ended, want map[string]session.Record, endings map[string]session.Ending) {
	h.Helper()
	seen := make(map[string]bool)
	for _, e := range got {
		w, ok := want[e.ID]
		switch {
		case !ok:
			h.Errorf("EndExpired ended %s, which it should not have", e.ID)
			continue
		case seen[e.ID]:
			h.Errorf("EndExpired returned %s twice", e.ID)
			continue
		}
		seen[e.ID] = true
		if d := diff(e.Record, w); d != "" {
			h.Errorf("EndExpired returned a record for %s that differs from the stored one:\n%s", e.ID, d)
		}
		if d := diffEnding(e.Ending, endings[e.ID]); d != "" {
			h.Errorf("EndExpired ended %s with the wrong ending:\n%s", e.ID, d)
		}
	}
	for id := range want {
		if !seen[id] {
			h.Errorf("EndExpired did not end %s", id)
		}
	}
}

var endCases = []testCase{
	{"returns the removed record as it last was", func(h *harness) {
		rec := h.create(h.record("alice"))
		rec = h.touch(rec, time.Minute)
		rec = h.saveData(rec, map[string]string{"k": "v"})
		got := h.end(rec, h.ending(session.ReasonLogout))
		if d := diff(got, rec); d != "" {
			h.Errorf("End returned a record that differs from the stored one:\n%s", d)
		}
		h.wantGone(rec.TokenHash, "after End")
	}},
	{"Ended tells the reason, time and retention of each ending", func(h *harness) {
		for _, reason := range []session.EndReason{session.ReasonLogout, session.ReasonRevoked, session.ReasonIdle, session.ReasonAbsolute} {
			h.sub(string(reason), func(h *harness) {
				rec := h.create(h.record("alice"))
				e := session.Ending{Reason: reason, At: h.now.Add(3*time.Minute + 5).In(zoneEast), KeepUntil: h.now.Add(24*time.Hour + 7).In(zoneWest)}
				h.end(rec, e)
				h.wantEnded(rec.TokenHash, e)
			})
		}
	}},
	{"a second End is ErrNotFound", func(h *harness) {
		rec := h.create(h.record("alice"))
		first := h.ending(session.ReasonLogout)
		h.end(rec, first)
		_, err := h.s.End(h.ctx, rec.ID, h.ending(session.ReasonRevoked))
		h.wantErr(err, session.ErrNotFound, "second End")
		h.wantEnded(rec.TokenHash, first)
	}},
	{"unknown ID is ErrNotFound", func(h *harness) {
		rec := h.create(h.record("alice"))
		_, err := h.s.End(h.ctx, "no-such-id", h.ending(session.ReasonRevoked))
		h.wantErr(err, session.ErrNotFound, "End of an unknown ID")
		h.wantRecord(rec)
	}},
	{"Ended of a hash that did not end is ErrNotFound", func(h *harness) {
		rec := h.create(h.record("alice"))
		h.wantNoEnded(randomHash(), "of an unknown hash")
		h.wantNoEnded(rec.TokenHash, "of a live session")
	}},
	{"nothing brings an ended session back", func(h *harness) {
		rec := h.create(h.record("alice"))
		e := h.ending(session.ReasonLogout)
		h.end(rec, e)
		at := h.now.Add(time.Minute)
		newHash := randomHash()
		exp := session.Expiry{At: at.Add(time.Hour), Reason: session.ReasonIdle}
		h.wantErr(h.s.Touch(h.ctx, rec.ID, at, exp), session.ErrNotFound, "Touch after End")
		h.wantErr(h.s.SaveData(h.ctx, rec.ID, nil, map[string]string{"k": "v"}), session.ErrNotFound, "SaveData after End")
		h.wantErr(h.s.Renew(h.ctx, rec.ID, rec.TokenHash, newHash, renewal(policy, at)), session.ErrNotFound, "Renew after End")
		h.wantGone(rec.TokenHash, "after End, Touch, SaveData and Renew")
		h.wantGone(newHash, "of Renew's new hash after End")
		h.wantList("", 0)
		if got := h.endExpired(h.now.Add(13*time.Hour), 48*time.Hour, 10); len(got) != 0 {
			h.Errorf("EndExpired ended %v, a session End had already ended", endedIDs(got))
		}
		h.wantEnded(rec.TokenHash, e)
	}},
	{"ends only the session named", func(h *harness) {
		a1 := h.create(h.record("alice"))
		a2 := h.create(h.record("alice"))
		b := h.create(h.record("bob"))
		h.end(a1, h.ending(session.ReasonRevoked))
		h.wantRecord(a2)
		h.wantRecord(b)
		h.wantNoEnded(a2.TokenHash, "of a session of the same user")
	}},
}

var endExpiredCases = []testCase{
	{"ends at Expires.At with Expires.Reason", func(h *harness) {
		const keep = 24*time.Hour + 1
		for _, reason := range []session.EndReason{session.ReasonIdle, session.ReasonAbsolute} {
			h.sub(string(reason), func(h *harness) {
				// An expiry the policy would not give (now+30m idle): the
				// store sweeps by Expires alone.
				rec := h.create(h.expiresAt(h.record("alice"), 17*time.Minute+3, reason))
				if got := h.endExpired(rec.Expires.At.Add(-1), keep, 10); len(got) != 0 {
					h.Fatalf("EndExpired 1ns before Expires.At ended %v", endedIDs(got))
				}
				h.wantRecord(rec)
				want := sweptEnding(rec, keep)
				got := h.endExpired(rec.Expires.At, keep, 10)
				h.wantEndedBatch(got, map[string]session.Record{rec.ID: rec}, map[string]session.Ending{rec.ID: want})
				h.wantGone(rec.TokenHash, "after EndExpired")
				h.wantEnded(rec.TokenHash, want)
				_, err := h.s.End(h.ctx, rec.ID, h.ending(session.ReasonLogout))
				h.wantErr(err, session.ErrNotFound, "End after EndExpired")
				h.wantList("", 0)
			})
		}
	}},
	{"ignores the policy and the activity times", func(h *harness) {
		// Past every deadline its policy gives, but not its expiry.
		stale := h.record("stale")
		stale.AuthenticatedAt = h.now.Add(-48 * time.Hour)
		stale.LastActivity = stale.AuthenticatedAt
		stale.CreatedAt = stale.AuthenticatedAt
		stale.Expires = session.Expiry{At: h.now.Add(2 * time.Hour), Reason: session.ReasonAbsolute}
		h.create(stale)
		// Within every deadline its policy gives, but past its expiry.
		early := h.expiresAt(h.record("early"), time.Minute, session.ReasonIdle)
		h.create(early)
		got := h.endExpired(h.now.Add(time.Hour), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{early.ID: early}, map[string]session.Ending{early.ID: sweptEnding(early, time.Hour)})
		h.wantRecord(stale)
	}},
	{"ends an expiry equal to now, not one 1ns after", func(h *harness) {
		atNow := h.create(NewRecord("at", h.now, policy))                        // expires now+30m
		after := h.create(NewRecord("after", h.now.Add(1), policy))              // expires now+30m+1ns
		before := h.create(NewRecord("before", h.now.Add(-time.Minute), policy)) // expires now+29m
		got := h.endExpired(h.now.Add(30*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got,
			map[string]session.Record{atNow.ID: atNow, before.ID: before},
			map[string]session.Ending{atNow.ID: sweptEnding(atNow, time.Hour), before.ID: sweptEnding(before, time.Hour)})
		h.wantRecord(after)
		h.wantList("", 0, after)
	}},
	{"ends at most limit records per call", func(h *harness) {
		const expired, limit = 25, 10
		want := make(map[string]session.Record)
		endings := make(map[string]session.Ending)
		for i := range expired {
			rec := h.create(NewRecord(fmt.Sprintf("user-%d", i%3), h.now.Add(time.Duration(i)*time.Second), policy))
			want[rec.ID] = rec
			endings[rec.ID] = sweptEnding(rec, time.Hour)
		}
		var live []session.Record
		for range 3 {
			live = append(live, h.create(NewRecord("live", h.now.Add(2*time.Hour), policy)))
		}
		now := h.now.Add(time.Hour)
		var all []session.Ended
		var sizes []int
		for range 4 {
			got := h.endExpired(now, time.Hour, limit)
			sizes = append(sizes, len(got))
			all = append(all, got...)
		}
		if !slices.Equal(sizes, []int{10, 10, 5, 0}) {
			h.Errorf("four EndExpired calls with limit %d over %d expired sessions ended %v, want [10 10 5 0]", limit, expired, sizes)
		}
		h.wantEndedBatch(all, want, endings)
		for _, rec := range live {
			h.wantRecord(rec)
		}
		for _, rec := range want {
			h.wantEnded(rec.TokenHash, endings[rec.ID])
		}
	}},
	{"ends records of equal expiry across batches", func(h *harness) {
		const n, limit = 12, 5
		want := make(map[string]session.Record)
		endings := make(map[string]session.Ending)
		for range n {
			rec := h.create(h.record("alice")) // all expire at now+30m
			want[rec.ID] = rec
			endings[rec.ID] = sweptEnding(rec, time.Hour)
		}
		var all []session.Ended
		for batch := 0; batch < n/limit+1; batch++ {
			got := h.endExpired(h.now.Add(time.Hour), time.Hour, limit)
			if len(got) != min(limit, n-len(all)) {
				h.Fatalf("batch %d ended %d, want %d", batch, len(got), min(limit, n-len(all)))
			}
			all = append(all, got...)
		}
		h.wantEndedBatch(all, want, endings)
	}},
	{"returns the record as it last was", func(h *harness) {
		rec := h.create(h.record("alice"))
		rec = h.touch(rec, 5*time.Minute)
		rec = h.saveData(rec, map[string]string{"cart": "3 items"})
		got := h.endExpired(h.now.Add(time.Hour), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{rec.ID: rec}, map[string]session.Ending{rec.ID: sweptEnding(rec, time.Hour)})
	}},
	{"keeps ended-token records until KeepUntil, then deletes them", func(h *harness) {
		// One ended by End, one by EndExpired; each must answer Ended until
		// its KeepUntil and be gone once a sweep runs after it.
		byEnd := h.create(h.record("alice"))
		byEndEnding := session.Ending{Reason: session.ReasonLogout, At: h.now, KeepUntil: h.now.Add(time.Hour)}
		h.end(byEnd, byEndEnding)

		bySweep := h.create(NewRecord("bob", h.now.Add(-10*time.Minute), policy)) // expires now+20m
		const keep = 90 * time.Minute
		got := h.endExpired(h.now.Add(25*time.Minute), keep, 10)
		bySweepEnding := sweptEnding(bySweep, keep) // kept until now+110m
		h.wantEndedBatch(got, map[string]session.Record{bySweep.ID: bySweep}, map[string]session.Ending{bySweep.ID: bySweepEnding})

		steps := []struct {
			now                 time.Time
			byEndKept, bySweepK bool
		}{
			{h.now.Add(time.Hour - 1), true, true},
			{h.now.Add(time.Hour + 1), false, true},
			{h.now.Add(110*time.Minute - 1), false, true},
			{h.now.Add(110*time.Minute + 1), false, false},
		}
		for _, s := range steps {
			h.sub("swept at now+"+s.now.Sub(h.now).String(), func(h *harness) {
				if got := h.endExpired(s.now, keep, 10); len(got) != 0 {
					h.Errorf("EndExpired ended %v, which had already ended", endedIDs(got))
				}
				if s.byEndKept {
					h.wantEnded(byEnd.TokenHash, byEndEnding)
				} else {
					h.wantNoEnded(byEnd.TokenHash, "after a sweep past KeepUntil of a session ended by End")
				}
				if s.bySweepK {
					h.wantEnded(bySweep.TokenHash, bySweepEnding)
				} else {
					h.wantNoEnded(bySweep.TokenHash, "after a sweep past KeepUntil of a session ended by EndExpired")
				}
			})
		}
	}},
	{"on an empty store ends nothing", func(h *harness) {
		if got := h.endExpired(h.now.Add(24*time.Hour), time.Hour, 10); len(got) != 0 {
			h.Errorf("EndExpired on an empty store returned %v", endedIDs(got))
		}
	}},
}
