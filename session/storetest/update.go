package storetest

import (
	"errors"
	"sync"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// ending is the Ending the suite's End calls use, at the subtest's now.
func (h *harness) ending(reason session.EndReason) session.Ending {
	return session.Ending{Reason: reason, At: h.now.Add(time.Second), KeepUntil: h.now.Add(24 * time.Hour)}
}

// end ends rec and stops the subtest if that fails.
func (h *harness) end(rec session.Record, e session.Ending) session.Record {
	h.Helper()
	got, err := h.s.End(h.ctx, rec.ID, e)
	if err != nil {
		h.Fatalf("End(%s): %v", rec.ID, err)
	}
	return got
}

// touch touches rec at now+d with the expiry the Manager would give it, and
// returns rec as the store should now hold it.
func (h *harness) touch(rec session.Record, d time.Duration) session.Record {
	h.Helper()
	at := h.now.Add(d)
	exp := expiry(rec.Policy, rec.AuthenticatedAt, at)
	if err := h.s.Touch(h.ctx, rec.ID, at, exp); err != nil {
		h.Fatalf("Touch(%s, now+%v): %v", rec.ID, d, err)
	}
	if at.After(rec.LastActivity) {
		rec.LastActivity = at
	}
	if exp.At.After(rec.Expires.At) {
		rec.Expires = exp
	}
	return rec
}

// saveData replaces rec's data, which must be rec.Data, with data, and
// returns rec as the store should now hold it.
func (h *harness) saveData(rec session.Record, data map[string]string) session.Record {
	h.Helper()
	if err := h.s.SaveData(h.ctx, rec.ID, rec.Data, data); err != nil {
		h.Fatalf("SaveData(%s, %v, %v): %v", rec.ID, rec.Data, data, err)
	}
	rec.Data = data
	return rec
}

var touchCases = []testCase{
	{"moves LastActivity and Expires forward", func(h *harness) {
		rec := h.create(h.record("alice"))
		at := h.now.Add(time.Minute + 17)
		exp := session.Expiry{At: at.Add(30 * time.Minute).In(zoneEast), Reason: session.ReasonIdle}
		if err := h.s.Touch(h.ctx, rec.ID, at, exp); err != nil {
			h.Fatalf("Touch: %v", err)
		}
		rec.LastActivity, rec.Expires = at, exp
		h.wantRecord(rec)
	}},
	{"keeps the reason it is given", func(h *harness) {
		rec := h.create(h.record("alice")) // idle, now+30m
		exp := session.Expiry{At: h.now.Add(40 * time.Minute), Reason: session.ReasonAbsolute}
		if err := h.s.Touch(h.ctx, rec.ID, h.now.Add(time.Minute), exp); err != nil {
			h.Fatalf("Touch: %v", err)
		}
		rec.LastActivity, rec.Expires = h.now.Add(time.Minute), exp
		h.wantRecord(rec)
	}},
	{"never moves either back", func(h *harness) {
		rec := h.create(h.record("alice"))
		rec = h.touch(rec, 2*time.Minute) // last now+2m, expires now+32m
		steps := []struct {
			name string
			at   time.Duration
			exp  time.Duration
			want func(session.Record) session.Record
		}{
			{"earlier activity, earlier expiry", time.Minute, 31 * time.Minute, nil},
			{"same activity, same expiry", 2 * time.Minute, 32 * time.Minute, nil},
			{"activity long ago", -time.Hour, -30 * time.Minute, nil},
			{"later activity, earlier expiry", 3 * time.Minute, 20 * time.Minute, func(r session.Record) session.Record {
				r.LastActivity = h.now.Add(3 * time.Minute)
				return r
			}},
			{"earlier activity, later expiry", time.Minute, 40 * time.Minute, func(r session.Record) session.Record {
				r.Expires = session.Expiry{At: h.now.Add(40 * time.Minute), Reason: session.ReasonIdle}
				return r
			}},
		}
		for _, s := range steps {
			h.sub(s.name, func(h *harness) {
				exp := session.Expiry{At: h.now.Add(s.exp), Reason: session.ReasonIdle}
				if err := h.s.Touch(h.ctx, rec.ID, h.now.Add(s.at), exp); err != nil {
					h.Fatalf("Touch: %v, want nil", err)
				}
				if s.want != nil {
					rec = s.want(rec)
				}
				h.wantRecord(rec)
			})
		}
	}},
	{"unknown ID is ErrNotFound", func(h *harness) {
		rec := h.create(h.record("alice"))
		exp := session.Expiry{At: h.now.Add(time.Hour), Reason: session.ReasonIdle}
		h.wantErr(h.s.Touch(h.ctx, "no-such-id", h.now.Add(time.Minute), exp), session.ErrNotFound, "Touch of an unknown ID")
		h.wantRecord(rec)
		h.wantList("", 0, rec)
	}},
	{"refuses at or after Expires.At and changes nothing", func(h *harness) {
		cases := []struct {
			name string
			at   time.Duration // after the stored Expires.At
			ok   bool
		}{
			{"Expires.At - 1ns", -1, true},
			{"Expires.At", 0, false},
			{"Expires.At + 1ns", 1, false},
			{"Expires.At + 1h", time.Hour, false},
		}
		for _, reason := range []session.EndReason{session.ReasonIdle, session.ReasonAbsolute} {
			for _, c := range cases {
				h.sub(string(reason)+", "+c.name, func(h *harness) {
					// Expires.At is not what the policy gives, so a store
					// that recomputes it fails.
					rec := h.create(h.expiresAt(h.record("alice"), 10*time.Minute, reason))
					at := rec.Expires.At.Add(c.at)
					exp := session.Expiry{At: at.Add(time.Hour), Reason: session.ReasonIdle}
					err := h.s.Touch(h.ctx, rec.ID, at, exp)
					if c.ok {
						if err != nil {
							h.Fatalf("Touch before Expires.At: %v", err)
						}
						rec.LastActivity, rec.Expires = at, exp
					} else {
						h.wantErr(err, session.ErrNotFound, "Touch at or after Expires.At")
					}
					h.wantRecord(rec)
				})
			}
		}
	}},
	{"moves the expiry EndExpired sweeps by", func(h *harness) {
		rec := h.create(h.record("alice")) // expires now+30m
		// other expires at now+40m, between rec's old and new expiry: a
		// store that keeps sessions in expiry order must reorder them.
		other := h.create(NewRecord("bob", h.now.Add(10*time.Minute), policy))
		rec = h.touch(rec, 20*time.Minute) // expires now+50m
		if got := h.endExpired(h.now.Add(30*time.Minute), time.Hour, 10); len(got) != 0 {
			h.Fatalf("EndExpired at the old expiry ended %v; Touch should have moved it to now+50m", endedIDs(got))
		}
		got := h.endExpired(h.now.Add(45*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{other.ID: other}, map[string]session.Ending{other.ID: sweptEnding(other, time.Hour)})
		if got := h.endExpired(h.now.Add(50*time.Minute-1), time.Hour, 10); len(got) != 0 {
			h.Fatalf("EndExpired 1ns before the new expiry ended %v", endedIDs(got))
		}
		h.wantRecord(rec)
		got = h.endExpired(h.now.Add(50*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{rec.ID: rec}, map[string]session.Ending{rec.ID: sweptEnding(rec, time.Hour)})
	}},
	{"after End is ErrNotFound and brings nothing back", func(h *harness) {
		rec := h.create(h.record("alice"))
		e := h.ending(session.ReasonLogout)
		h.end(rec, e)
		exp := session.Expiry{At: h.now.Add(time.Hour), Reason: session.ReasonIdle}
		h.wantErr(h.s.Touch(h.ctx, rec.ID, h.now.Add(time.Minute), exp), session.ErrNotFound, "Touch after End")
		h.wantGone(rec.TokenHash, "after End and Touch")
		h.wantList("", 0)
		h.wantEnded(rec.TokenHash, e)
	}},
}

var saveDataCases = []testCase{
	{"replaces the data when old is the stored data", func(h *harness) {
		rec := h.record("alice")
		rec.Data = map[string]string{"a": "1", "b": "2"}
		h.create(rec)
		steps := []struct {
			name string
			data map[string]string
		}{
			{"with other keys", map[string]string{"c": "3"}},
			{"with the same key changed", map[string]string{"c": "33", "d": "ünïcødé 🍣"}},
			{"with nil", nil},
			{"after nil, with a key", map[string]string{"e": ""}},
			{"with an empty map", map[string]string{}},
			{"after an empty map, with an empty key", map[string]string{"": "x"}},
		}
		for _, s := range steps {
			rec = h.saveData(rec, s.data)
			h.sub(s.name, func(h *harness) { h.wantRecord(rec) })
		}
	}},
	{"nil and empty old data are the same", func(h *harness) {
		rec := h.create(h.record("alice")) // nil data
		for i, old := range []map[string]string{{}, nil, {}} {
			data := map[string]string(nil)
			if i%2 == 0 {
				data = map[string]string{}
			}
			if err := h.s.SaveData(h.ctx, rec.ID, old, data); err != nil {
				h.Fatalf("SaveData(old %#v) of empty data: %v", old, err)
			}
		}
		rec = h.saveData(rec, map[string]string{"k": "v"})
		h.wantRecord(rec)
	}},
	{"is ErrStale when old is not the stored data, and changes nothing", func(h *harness) {
		stored := map[string]string{"a": "1", "b": "2"}
		for _, c := range []struct {
			name string
			old  map[string]string
		}{
			{"nil", nil},
			{"empty", map[string]string{}},
			{"a key missing", map[string]string{"a": "1"}},
			{"a key more", map[string]string{"a": "1", "b": "2", "c": "3"}},
			{"a value differs", map[string]string{"a": "1", "b": "3"}},
			{"a value empty", map[string]string{"a": "1", "b": ""}},
			{"a key differs", map[string]string{"a": "1", "B": "2"}},
			{"keys and values swapped", map[string]string{"1": "a", "2": "b"}},
		} {
			h.sub("old "+c.name, func(h *harness) {
				rec := h.record("alice")
				rec.Data = stored
				h.create(rec)
				err := h.s.SaveData(h.ctx, rec.ID, c.old, map[string]string{"new": "data"})
				h.wantErr(err, session.ErrStale, "SaveData with a stale old")
				h.wantRecord(rec)
			})
		}
		h.sub("stored empty, old not", func(h *harness) {
			rec := h.create(h.record("alice"))
			err := h.s.SaveData(h.ctx, rec.ID, map[string]string{"": ""}, map[string]string{"new": "data"})
			h.wantErr(err, session.ErrStale, "SaveData with a stale old")
			h.wantRecord(rec)
		})
	}},
	{"the loser of two writers from the same old is ErrStale", func(h *harness) {
		rec := h.record("alice")
		rec.Data = map[string]string{"n": "0"}
		h.create(rec)
		first := h.saveData(rec, map[string]string{"n": "0", "a": "1"})
		err := h.s.SaveData(h.ctx, rec.ID, rec.Data, map[string]string{"n": "0", "b": "2"})
		h.wantErr(err, session.ErrStale, "second SaveData from the same old data")
		h.wantRecord(first)
	}},
	{"changes no other field", func(h *harness) {
		rec := h.create(h.record("alice"))
		rec = h.touch(rec, time.Minute)
		rec = h.saveData(rec, map[string]string{"k": "v"})
		h.wantRecord(rec)
	}},
	{"unknown ID is ErrNotFound and creates nothing", func(h *harness) {
		err := h.s.SaveData(h.ctx, "no-such-id", nil, map[string]string{"k": "v"})
		h.wantErr(err, session.ErrNotFound, "SaveData of an unknown ID")
		h.wantList("", 0)
	}},
	{"after End is ErrNotFound and brings nothing back", func(h *harness) {
		rec := h.create(h.record("alice"))
		e := h.ending(session.ReasonRevoked)
		h.end(rec, e)
		h.wantErr(h.s.SaveData(h.ctx, rec.ID, nil, map[string]string{"k": "v"}), session.ErrNotFound, "SaveData after End")
		h.wantGone(rec.TokenHash, "after End and SaveData")
		h.wantList("", 0)
		h.wantList("alice", 0)
		h.wantEnded(rec.TokenHash, e)
		_, err := h.s.End(h.ctx, rec.ID, e)
		h.wantErr(err, session.ErrNotFound, "End after End and SaveData")
	}},
}

// renewal returns the Renewal of a session renewed at at with policy p.
func renewal(p session.Policy, at time.Time) session.Renewal {
	return session.Renewal{AuthenticatedAt: at, LastActivity: at, Expires: expiry(p, at, at)}
}

// renewed returns rec as Renew(r) and a new hash leave it.
func renewed(rec session.Record, hash session.TokenHash, r session.Renewal) session.Record {
	rec.TokenHash = hash
	rec.AuthenticatedAt, rec.LastActivity, rec.Expires = r.AuthenticatedAt, r.LastActivity, r.Expires
	return rec
}

// renew renews rec to a fresh hash at time at, returning the renewed record.
func (h *harness) renew(rec session.Record, at time.Time) session.Record {
	h.Helper()
	r := renewal(rec.Policy, at)
	hash := randomHash()
	if err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, hash, r); err != nil {
		h.Fatalf("Renew: %v", err)
	}
	return renewed(rec, hash, r)
}

var renewCases = []testCase{
	{"swaps the hash and sets the times as given", func(h *harness) {
		rec := h.record("alice")
		rec.Data = map[string]string{"k": "v"}
		rec.Persistent = true
		h.create(rec)
		for _, step := range []struct {
			name string
			r    session.Renewal
		}{
			{"later", session.Renewal{
				AuthenticatedAt: h.now.Add(5*time.Minute + 1).In(zoneEast),
				LastActivity:    h.now.Add(5*time.Minute + 2).In(zoneWest),
				Expires:         session.Expiry{At: h.now.Add(2*time.Hour + 3), Reason: session.ReasonAbsolute},
			}},
			// Renew sets what it is given, even an earlier expiry (a
			// stricter policy on re-authentication).
			{"earlier expiry", session.Renewal{
				AuthenticatedAt: h.now.Add(6 * time.Minute),
				LastActivity:    h.now.Add(6 * time.Minute),
				Expires:         session.Expiry{At: h.now.Add(20 * time.Minute), Reason: session.ReasonIdle},
			}},
		} {
			h.sub(step.name, func(h *harness) {
				hash := randomHash()
				if err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, hash, step.r); err != nil {
					h.Fatalf("Renew: %v", err)
				}
				h.wantGone(rec.TokenHash, "of the hash replaced by Renew")
				rec = renewed(rec, hash, step.r)
				h.wantRecord(rec)
				h.wantList("alice", 0, rec)
			})
		}
	}},
	{"wrong old hash is ErrNotFound and changes nothing", func(h *harness) {
		rec := h.create(h.record("alice"))
		other := h.create(h.record("bob"))
		r := renewal(policy, h.now.Add(time.Minute))
		for _, old := range []struct {
			name string
			hash session.TokenHash
		}{{"unknown hash", randomHash()}, {"another session's hash", other.TokenHash}} {
			newHash := randomHash()
			err := h.s.Renew(h.ctx, rec.ID, old.hash, newHash, r)
			h.wantErr(err, session.ErrNotFound, "Renew with the "+old.name+" as old")
			h.wantGone(newHash, "of the new hash of a refused Renew")
		}
		h.wantRecord(rec)
		h.wantRecord(other)
	}},
	{"to another record's hash is ErrConflict and changes nothing", func(h *harness) {
		rec := h.create(h.record("alice"))
		other := h.create(h.record("bob"))
		err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, other.TokenHash, renewal(policy, h.now.Add(time.Minute)))
		h.wantErr(err, session.ErrConflict, "Renew to another record's hash")
		h.wantRecord(rec)
		h.wantRecord(other)
	}},
	{"a renewal that lost the race is ErrNotFound", func(h *harness) {
		rec := h.create(h.record("alice"))
		won := h.renew(rec, h.now.Add(time.Minute))
		late := randomHash()
		err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, late, renewal(policy, h.now.Add(2*time.Minute)))
		h.wantErr(err, session.ErrNotFound, "second Renew from the same old hash")
		h.wantGone(late, "of the losing renewal's hash")
		h.wantRecord(won)
	}},
	{"unknown ID is ErrNotFound and creates nothing", func(h *harness) {
		rec := h.create(h.record("alice"))
		newHash := randomHash()
		err := h.s.Renew(h.ctx, "no-such-id", rec.TokenHash, newHash, renewal(policy, h.now))
		h.wantErr(err, session.ErrNotFound, "Renew of an unknown ID")
		h.wantGone(newHash, "of the new hash of a refused Renew")
		h.wantRecord(rec)
		h.wantList("", 0, rec)
	}},
	{"after End is ErrNotFound and brings nothing back", func(h *harness) {
		rec := h.create(h.record("alice"))
		e := h.ending(session.ReasonLogout)
		h.end(rec, e)
		newHash := randomHash()
		err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, newHash, renewal(policy, h.now.Add(time.Minute)))
		h.wantErr(err, session.ErrNotFound, "Renew after End")
		h.wantGone(rec.TokenHash, "of the old hash after End and Renew")
		h.wantGone(newHash, "of the new hash after End and Renew")
		h.wantList("", 0)
		h.wantEnded(rec.TokenHash, e)
	}},
	{"End after Renew ends the renewed record", func(h *harness) {
		rec := h.create(h.record("alice"))
		rn := h.renew(rec, h.now.Add(time.Minute))
		e := h.ending(session.ReasonLogout)
		got := h.end(rn, e)
		if d := diff(got, rn); d != "" {
			h.Errorf("End returned a record other than the renewed one:\n%s", d)
		}
		h.wantEnded(rn.TokenHash, e)
		h.wantGone(rn.TokenHash, "after End")
	}},
	{"moves the expiry EndExpired sweeps by", func(h *harness) {
		rec := h.create(h.record("alice")) // expires now+30m
		// other's expiry, now+40m, falls between rec's old and new ones.
		other := h.create(NewRecord("bob", h.now.Add(10*time.Minute), policy))
		rn := h.renew(rec, h.now.Add(20*time.Minute)) // expires now+50m
		if got := h.endExpired(h.now.Add(30*time.Minute), time.Hour, 10); len(got) != 0 {
			h.Fatalf("EndExpired at the old expiry ended %v; Renew should have moved it to now+50m", endedIDs(got))
		}
		got := h.endExpired(h.now.Add(45*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{other.ID: other}, map[string]session.Ending{other.ID: sweptEnding(other, time.Hour)})
		h.wantRecord(rn)
		got = h.endExpired(h.now.Add(50*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{rec.ID: rn}, map[string]session.Ending{rec.ID: sweptEnding(rn, time.Hour)})
		h.wantEnded(rn.TokenHash, sweptEnding(rn, time.Hour))
	}},
	{"of concurrent renewals from one hash exactly one wins", func(h *harness) {
		rec := h.create(h.record("alice"))
		const n = 8
		hashes := make([]session.TokenHash, n)
		errs := make([]error, n)
		r := renewal(policy, h.now.Add(time.Minute))
		var wg sync.WaitGroup
		for i := range n {
			hashes[i] = randomHash()
			wg.Go(func() { errs[i] = h.s.Renew(h.ctx, rec.ID, rec.TokenHash, hashes[i], r) })
		}
		wg.Wait()
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				h.wantRecord(renewed(rec, hashes[i], r))
			case errors.Is(err, session.ErrNotFound):
				h.wantGone(hashes[i], "of a losing renewal's hash")
			default:
				h.Errorf("concurrent Renew: %v, want nil or ErrNotFound", err)
			}
		}
		if winners != 1 {
			h.Errorf("%d of %d concurrent renewals from one hash succeeded, want exactly 1", winners, n)
		}
	}},
}
