package storetest

import (
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// reopen closes the subtest's store and opens its database again, through
// the WithReopen hook.
func (h *harness) reopen() {
	h.Helper()
	s := h.cfg.reopen(h.T, h.s)
	if s == nil {
		h.Fatal("the WithReopen hook returned a nil Store")
	}
	h.s = s
}

// second opens another handle on the subtest's database, through the
// WithSecondHandle hook.
func (h *harness) second() session.Store {
	h.Helper()
	s := h.cfg.secondHandle(h.T, h.s)
	if s == nil {
		h.Fatal("the WithSecondHandle hook returned a nil Store")
	}
	return s
}

var durableCases = []testCase{
	{"records, data and endings survive a reopen", func(h *harness) {
		plain := h.record("alice")
		plain.CreatedAt = h.now.Add(-time.Second) // so that List's order is defined
		h.create(plain)
		touched := h.touch(h.create(h.record("alice")), 10*time.Minute+7)
		withData := h.record("bob")
		withData.Data = map[string]string{"theme": "dark", "名前": "値 🍣", "": "empty key"}
		h.create(withData)
		withData = h.saveData(withData, map[string]string{"theme": "light", "cart": `{"n":2}`})
		remembered := h.record("carol")
		remembered.Persistent = true
		h.create(remembered)
		anonymous := h.create(h.record(""))
		renewedFrom := h.create(h.record("dave"))
		rn := h.renew(renewedFrom, h.now.Add(2*time.Minute))
		ended := h.create(h.record("erin"))
		ending := session.Ending{Reason: session.ReasonRevoked, At: h.now.Add(time.Minute), KeepUntil: h.now.Add(time.Hour)}
		h.end(ended, ending)
		// Its expiry is not what the policy gives: the sweep after the
		// reopen must end it by the expiry the store kept.
		early := h.create(h.expiresAt(h.record("frank"), 5*time.Minute, session.ReasonAbsolute))

		h.reopen()

		for _, rec := range []session.Record{plain, touched, withData, remembered, anonymous, rn, early} {
			h.wantRecord(rec)
		}
		h.wantGone(renewedFrom.TokenHash, "of the hash Renew replaced, after a reopen")
		h.wantGone(ended.TokenHash, "of an ended session after a reopen")
		h.wantEnded(ended.TokenHash, ending)
		h.wantList("alice", 0, plain, touched)
		if got := h.list("", 0); len(got) != 7 {
			h.Errorf("List after a reopen returned %d records, want 7", len(got))
		}

		got := h.endExpired(h.now.Add(10*time.Minute), time.Hour, 10)
		h.wantEndedBatch(got, map[string]session.Record{early.ID: early}, map[string]session.Ending{early.ID: sweptEnding(early, time.Hour)})
		h.reopen()
		h.wantEnded(early.TokenHash, sweptEnding(early, time.Hour))
		h.wantGone(early.TokenHash, "of a swept session after a reopen")
	}},
	{"conditional writes still hold after a reopen", func(h *harness) {
		rec := h.record("alice")
		rec.Data = map[string]string{"a": "1"}
		h.create(rec)
		h.reopen()
		h.wantErr(h.s.SaveData(h.ctx, rec.ID, nil, map[string]string{"b": "2"}), session.ErrStale, "SaveData from stale data after a reopen")
		rec = h.saveData(rec, map[string]string{"a": "1", "b": "2"})
		at := rec.Expires.At
		exp := session.Expiry{At: at.Add(time.Hour), Reason: session.ReasonIdle}
		h.wantErr(h.s.Touch(h.ctx, rec.ID, at, exp), session.ErrNotFound, "Touch at Expires.At after a reopen")
		h.wantRecord(rec)
	}},
}

var secondHandleCases = []testCase{
	{"writes through one handle are seen through the other at once", func(h *harness) {
		other := h.on(h.second())
		rec := h.create(h.record("alice"))
		other.wantRecord(rec)
		// The Manager's retry after ErrStale reads the data again: a
		// handle that kept serving its old copy would never succeed.
		rec = other.saveData(rec, map[string]string{"k": "v"})
		h.wantRecord(rec)
		rn := other.renew(rec, h.now.Add(time.Minute))
		h.wantGone(rec.TokenHash, "of the hash the other handle's Renew replaced")
		h.wantRecord(rn)
		e := h.ending(session.ReasonRevoked)
		h.end(rn, e)
		other.wantGone(rn.TokenHash, "of a session the other handle ended")
		other.wantEnded(rn.TokenHash, e)
		other.wantList("", 0)
	}},
	{"of concurrent Ends on both handles exactly one wins", func(h *harness) {
		endsRace(h, []session.Store{h.s, h.second()})
	}},
	{"of End racing EndExpired on both handles exactly one wins", func(h *harness) {
		endRacesEndExpired(h, []session.Store{h.s, h.second()})
	}},
	{"sweepers on both handles end each record once", func(h *harness) {
		sweepersEndEachOnce(h, []session.Store{h.s, h.second()})
	}},
	{"concurrent writes of different keys on both handles all survive", func(h *harness) {
		concurrentKeysSurvive(h, []session.Store{h.s, h.second()})
	}},
	{"a sweep on one handle leaves the other serving", func(h *harness) {
		sweepWhileServing(h, h.second())
	}},
}
