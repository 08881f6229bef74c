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

// absoluteFirst returns a record whose absolute deadline (now+10m) comes
// before its idle deadline (now+30m): it authenticated 11h50m ago.
func (h *harness) absoluteFirst(userID string) session.Record {
	rec := h.record(userID)
	rec.AuthenticatedAt = h.now.Add(-11*time.Hour - 50*time.Minute)
	rec.CreatedAt = rec.AuthenticatedAt
	return rec
}

var touchCases = []testCase{
	{"moves LastActivity forward", func(h *harness) {
		rec := h.create(h.record("alice"))
		at := h.now.Add(time.Minute + 17)
		if err := h.s.Touch(h.ctx, rec.ID, at); err != nil {
			h.Fatalf("Touch: %v", err)
		}
		rec.LastActivity = at
		h.wantRecord(rec)
	}},
	{"never moves LastActivity back", func(h *harness) {
		rec := h.create(h.record("alice"))
		later := h.now.Add(2 * time.Minute)
		if err := h.s.Touch(h.ctx, rec.ID, later); err != nil {
			h.Fatalf("Touch: %v", err)
		}
		for _, at := range []time.Time{later.Add(-time.Minute), later.Add(-1), later, h.now.Add(-time.Hour)} {
			if err := h.s.Touch(h.ctx, rec.ID, at); err != nil {
				h.Errorf("Touch at now+%v, before the stored LastActivity: %v, want nil", at.Sub(h.now), err)
			}
		}
		rec.LastActivity = later
		h.wantRecord(rec)
	}},
	{"unknown ID is ErrNotFound", func(h *harness) {
		rec := h.create(h.record("alice"))
		h.wantErr(h.s.Touch(h.ctx, "no-such-id", h.now.Add(time.Minute)), session.ErrNotFound, "Touch of an unknown ID")
		h.wantRecord(rec)
		h.wantList("", 0, rec)
	}},
	{"refuses at or after the deadline and changes nothing", func(h *harness) {
		idle := h.record("idle-first") // deadline now+30m, idle
		abs := h.absoluteFirst("absolute-first")
		cases := []struct {
			name string
			rec  session.Record
			at   time.Duration // after now
			ok   bool
		}{
			{"idle deadline - 1ns", idle, 30*time.Minute - 1, true},
			{"idle deadline", idle, 30 * time.Minute, false},
			{"idle deadline + 1ns", idle, 30*time.Minute + 1, false},
			{"idle deadline + 1h", idle, 90 * time.Minute, false},
			{"absolute deadline - 1ns", abs, 10*time.Minute - 1, true},
			{"absolute deadline", abs, 10 * time.Minute, false},
			{"absolute deadline + 1ns", abs, 10*time.Minute + 1, false},
		}
		for _, c := range cases {
			h.sub(c.name, func(h *harness) {
				rec := c.rec
				rec.ID, rec.TokenHash = NewRecord("", h.now, policy).ID, randomHash()
				h.create(rec)
				at := h.now.Add(c.at)
				err := h.s.Touch(h.ctx, rec.ID, at)
				if c.ok {
					if err != nil {
						h.Fatalf("Touch before the deadline: %v", err)
					}
					rec.LastActivity = at
				} else {
					h.wantErr(err, session.ErrNotFound, "Touch at or after the deadline")
				}
				h.wantRecord(rec)
			})
		}
	}},
	{"moves the deadline EndExpired sweeps by", func(h *harness) {
		rec := h.create(h.record("alice")) // idle deadline now+30m
		// other's deadline, now+40m, falls between rec's old and new ones: a
		// store that keeps sessions in deadline order must reorder them.
		other := h.create(NewRecord("bob", h.now.Add(10*time.Minute), policy))
		at := h.now.Add(20 * time.Minute)
		if err := h.s.Touch(h.ctx, rec.ID, at); err != nil {
			h.Fatalf("Touch: %v", err)
		}
		rec.LastActivity = at
		if got := h.endExpired(h.now.Add(30*time.Minute), time.Hour, 10); len(got) != 0 {
			h.Fatalf("EndExpired at the old deadline ended %v; Touch should have moved the deadline to now+50m", endedIDs(got))
		}
		got := h.endExpired(h.now.Add(45*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{other.ID: other}, map[string]session.Ending{other.ID: {
			Reason: session.ReasonIdle, At: h.now.Add(40 * time.Minute), KeepUntil: h.now.Add(100 * time.Minute),
		}})
		if got := h.endExpired(h.now.Add(50*time.Minute-1), time.Hour, 10); len(got) != 0 {
			h.Fatalf("EndExpired 1ns before the new deadline ended %v", endedIDs(got))
		}
		h.wantRecord(rec)
		got = h.endExpired(h.now.Add(50*time.Minute), time.Hour, 10)
		want := session.Ending{Reason: session.ReasonIdle, At: h.now.Add(50 * time.Minute), KeepUntil: h.now.Add(110 * time.Minute)}
		h.wantEndedBatch(got, map[string]session.Record{rec.ID: rec}, map[string]session.Ending{rec.ID: want})
	}},
	{"after End is ErrNotFound and brings nothing back", func(h *harness) {
		rec := h.create(h.record("alice"))
		e := h.ending(session.ReasonLogout)
		h.end(rec, e)
		h.wantErr(h.s.Touch(h.ctx, rec.ID, h.now.Add(time.Minute)), session.ErrNotFound, "Touch after End")
		h.wantGone(rec.TokenHash, "after End and Touch")
		h.wantList("", 0)
		h.wantEnded(rec.TokenHash, e)
	}},
}

var saveDataCases = []testCase{
	{"replaces the data", func(h *harness) {
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
		}
		for _, s := range steps {
			if err := h.s.SaveData(h.ctx, rec.ID, s.data); err != nil {
				h.Fatalf("SaveData %s: %v", s.name, err)
			}
			rec.Data = s.data
			h.sub(s.name, func(h *harness) { h.wantRecord(rec) })
		}
	}},
	{"changes no other field", func(h *harness) {
		rec := h.create(h.record("alice"))
		at := h.now.Add(time.Minute)
		if err := h.s.Touch(h.ctx, rec.ID, at); err != nil {
			h.Fatalf("Touch: %v", err)
		}
		rec.LastActivity = at
		rec.Data = map[string]string{"k": "v"}
		if err := h.s.SaveData(h.ctx, rec.ID, rec.Data); err != nil {
			h.Fatalf("SaveData: %v", err)
		}
		h.wantRecord(rec)
	}},
	{"unknown ID is ErrNotFound and creates nothing", func(h *harness) {
		err := h.s.SaveData(h.ctx, "no-such-id", map[string]string{"k": "v"})
		h.wantErr(err, session.ErrNotFound, "SaveData of an unknown ID")
		h.wantList("", 0)
	}},
	{"after End is ErrNotFound and brings nothing back", func(h *harness) {
		rec := h.create(h.record("alice"))
		e := h.ending(session.ReasonRevoked)
		h.end(rec, e)
		h.wantErr(h.s.SaveData(h.ctx, rec.ID, map[string]string{"k": "v"}), session.ErrNotFound, "SaveData after End")
		h.wantGone(rec.TokenHash, "after End and SaveData")
		h.wantList("", 0)
		h.wantList("alice", 0)
		h.wantEnded(rec.TokenHash, e)
		_, err := h.s.End(h.ctx, rec.ID, e)
		h.wantErr(err, session.ErrNotFound, "End after End and SaveData")
	}},
}

// renew renews rec to a fresh hash at time at, returning the renewed record.
func (h *harness) renew(rec session.Record, at time.Time) session.Record {
	h.Helper()
	renewed := rec
	renewed.TokenHash = randomHash()
	renewed.AuthenticatedAt, renewed.LastActivity = at, at
	if err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, renewed.TokenHash, at, at); err != nil {
		h.Fatalf("Renew: %v", err)
	}
	return renewed
}

var renewCases = []testCase{
	{"swaps the hash and sets the times", func(h *harness) {
		rec := h.record("alice")
		rec.Data = map[string]string{"k": "v"}
		h.create(rec)
		renewed := rec
		renewed.TokenHash = randomHash()
		renewed.AuthenticatedAt = h.now.Add(5*time.Minute + 1)
		renewed.LastActivity = h.now.Add(5*time.Minute + 2)
		err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, renewed.TokenHash, renewed.AuthenticatedAt, renewed.LastActivity)
		if err != nil {
			h.Fatalf("Renew: %v", err)
		}
		h.wantGone(rec.TokenHash, "of the hash replaced by Renew")
		h.wantRecord(renewed)
		h.wantList("alice", 0, renewed)
	}},
	{"wrong old hash is ErrNotFound and changes nothing", func(h *harness) {
		rec := h.create(h.record("alice"))
		other := h.create(h.record("bob"))
		at := h.now.Add(time.Minute)
		for _, old := range []struct {
			name string
			hash session.TokenHash
		}{{"unknown hash", randomHash()}, {"another session's hash", other.TokenHash}} {
			newHash := randomHash()
			err := h.s.Renew(h.ctx, rec.ID, old.hash, newHash, at, at)
			h.wantErr(err, session.ErrNotFound, "Renew with the "+old.name+" as old")
			h.wantGone(newHash, "of the new hash of a refused Renew")
		}
		h.wantRecord(rec)
		h.wantRecord(other)
	}},
	{"a renewal that lost the race is ErrNotFound", func(h *harness) {
		rec := h.create(h.record("alice"))
		renewed := h.renew(rec, h.now.Add(time.Minute))
		late := randomHash()
		err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, late, h.now.Add(2*time.Minute), h.now.Add(2*time.Minute))
		h.wantErr(err, session.ErrNotFound, "second Renew from the same old hash")
		h.wantGone(late, "of the losing renewal's hash")
		h.wantRecord(renewed)
	}},
	{"unknown ID is ErrNotFound and creates nothing", func(h *harness) {
		rec := h.create(h.record("alice"))
		newHash := randomHash()
		err := h.s.Renew(h.ctx, "no-such-id", rec.TokenHash, newHash, h.now, h.now)
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
		err := h.s.Renew(h.ctx, rec.ID, rec.TokenHash, newHash, h.now.Add(time.Minute), h.now.Add(time.Minute))
		h.wantErr(err, session.ErrNotFound, "Renew after End")
		h.wantGone(rec.TokenHash, "of the old hash after End and Renew")
		h.wantGone(newHash, "of the new hash after End and Renew")
		h.wantList("", 0)
		h.wantEnded(rec.TokenHash, e)
	}},
	{"End after Renew ends the renewed record", func(h *harness) {
		rec := h.create(h.record("alice"))
		renewed := h.renew(rec, h.now.Add(time.Minute))
		e := h.ending(session.ReasonLogout)
		got := h.end(renewed, e)
		if d := diff(got, renewed); d != "" {
			h.Errorf("End returned a record other than the renewed one:\n%s", d)
		}
		h.wantEnded(renewed.TokenHash, e)
		h.wantGone(renewed.TokenHash, "after End")
	}},
	{"moves the deadline EndExpired sweeps by", func(h *harness) {
		// Idle and absolute timeouts equal: the absolute deadline decides,
		// and only a new AuthenticatedAt can move it.
		equal := session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour}
		rec := h.create(NewRecord("alice", h.now, equal))
		// other's deadline, now+70m, falls between rec's old and new ones.
		other := h.create(NewRecord("bob", h.now.Add(10*time.Minute), equal))
		renewed := h.renew(rec, h.now.Add(20*time.Minute))
		if got := h.endExpired(h.now.Add(time.Hour), time.Hour, 10); len(got) != 0 {
			h.Fatalf("EndExpired at the old deadline ended %v; Renew should have moved the deadline to now+80m", endedIDs(got))
		}
		got := h.endExpired(h.now.Add(75*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{other.ID: other}, map[string]session.Ending{other.ID: {
			Reason: session.ReasonAbsolute, At: h.now.Add(70 * time.Minute), KeepUntil: h.now.Add(130 * time.Minute),
		}})
		h.wantRecord(renewed)
		got = h.endExpired(h.now.Add(80*time.Minute), time.Hour, 10)
		want := session.Ending{Reason: session.ReasonAbsolute, At: h.now.Add(80 * time.Minute), KeepUntil: h.now.Add(140 * time.Minute)}
		h.wantEndedBatch(got, map[string]session.Record{rec.ID: renewed}, map[string]session.Ending{rec.ID: want})
		h.wantEnded(renewed.TokenHash, want)
	}},
	{"of concurrent renewals from one hash exactly one wins", func(h *harness) {
		rec := h.create(h.record("alice"))
		const n = 8
		hashes := make([]session.TokenHash, n)
		errs := make([]error, n)
		at := h.now.Add(time.Minute)
		var wg sync.WaitGroup
		for i := range n {
			hashes[i] = randomHash()
			wg.Go(func() { errs[i] = h.s.Renew(h.ctx, rec.ID, rec.TokenHash, hashes[i], at, at) })
		}
		wg.Wait()
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				rec.TokenHash, rec.AuthenticatedAt, rec.LastActivity = hashes[i], at, at
				h.wantRecord(rec)
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
