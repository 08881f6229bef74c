package storetest

import (
	"errors"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// listFixture creates three sessions of alice and two of bob, in an order
// that is neither their CreatedAt order nor their ID order, and returns them
// oldest first: alice's, bob's, and everyone's.
func (h *harness) listFixture() (alice, bob, all []session.Record) {
	h.Helper()
	// Creation order, with each one's age: a store that lists in insertion
	// order or by ID fails.
	plan := []struct {
		user string
		age  time.Duration
		id   string
	}{
		{"alice", 2 * time.Minute, "b"},
		{"bob", 4 * time.Minute, "c"},
		{"alice", 5 * time.Minute, "d"},
		{"bob", 1 * time.Minute, "a"},
		{"alice", 3 * time.Minute, "e"},
	}
	byAge := make(map[time.Duration]session.Record)
	for _, p := range plan {
		rec := h.record(p.user)
		rec.ID = p.id + "-" + rec.ID
		rec.CreatedAt = h.now.Add(-p.age)
		byAge[p.age] = h.create(rec)
	}
	for _, age := range []time.Duration{5, 4, 3, 2, 1} {
		rec := byAge[age*time.Minute]
		all = append(all, rec)
		if rec.UserID == "alice" {
			alice = append(alice, rec)
		} else {
			bob = append(bob, rec)
		}
	}
	return alice, bob, all
}

var listCases = []testCase{
	{"lists a user's sessions oldest first", func(h *harness) {
		alice, bob, _ := h.listFixture()
		h.wantList("alice", 0, alice...)
		h.wantList("bob", 0, bob...)
	}},
	{"lists every user's sessions oldest first for an empty user ID", func(h *harness) {
		_, _, all := h.listFixture()
		h.wantList("", 0, all...)
	}},
	{"returns at most limit, the oldest", func(h *harness) {
		alice, _, all := h.listFixture()
		cases := []struct {
			user  string
			limit int
			want  []session.Record
		}{
			{"alice", 1, alice[:1]},
			{"alice", 2, alice[:2]},
			{"alice", 3, alice},
			{"alice", 10, alice},
			{"alice", -1, alice},
			{"", 2, all[:2]},
			{"", 5, all},
			{"", -1, all},
		}
		for _, c := range cases {
			h.wantList(c.user, c.limit, c.want...)
		}
	}},
	{"lists anonymous sessions among everyone's, and past their expiry", func(h *harness) {
		anon := h.record("")
		anon.CreatedAt = h.now.Add(-time.Hour)
		anon.Expires = session.Expiry{At: h.now.Add(-time.Minute), Reason: session.ReasonIdle}
		h.create(anon)
		alice := h.create(h.record("alice"))
		h.wantList("", 0, anon, alice)
		h.wantList("alice", 0, alice)
	}},
	{"lists nothing for an unknown user", func(h *harness) {
		h.listFixture()
		h.wantList("carol", 0)
		h.wantList("ALICE", 0)
	}},
	{"leaves out ended sessions", func(h *harness) {
		alice, bob, all := h.listFixture()
		h.end(alice[1], h.ending(session.ReasonRevoked))
		h.end(bob[0], h.ending(session.ReasonLogout))
		h.wantList("alice", 0, alice[0], alice[2])
		h.wantList("bob", 0, bob[1])
		h.wantList("", 0, all[0], all[3], all[4])
		h.wantList("", 2, all[0], all[3])
	}},
	{"shows the renewed record", func(h *harness) {
		alice, _, _ := h.listFixture()
		renewed := h.renew(alice[0], h.now.Add(time.Minute))
		h.wantList("alice", 0, renewed, alice[1], alice[2])
	}},
}

var countCases = []testCase{
	{"counts every record, less the ended ones (if the store can count)", func(h *harness) {
		c, ok := h.s.(session.CountingStore)
		if !ok {
			return
		}
		count := func(want int) {
			h.Helper()
			if n, err := c.Count(h.ctx); err != nil || n != want {
				h.Errorf("Count = %d, %v; want %d", n, err, want)
			}
		}
		count(0)
		alice, _, _ := h.listFixture()
		count(5)
		h.end(alice[1], h.ending(session.ReasonRevoked))
		count(4)
	}},
}

var pingCloseCases = []testCase{
	{"Ping answers", func(h *harness) {
		if err := h.s.Ping(h.ctx); err != nil {
			h.Errorf("Ping: %v", err)
		}
	}},
	{"Close succeeds", func(h *harness) {
		h.create(h.record("alice"))
		if err := h.s.Close(); err != nil {
			h.Errorf("Close: %v", err)
		}
	}},
	{"a closed store answers every call with an error", func(h *harness) {
		rec := h.create(h.record("alice"))
		ended := h.create(h.record("bob"))
		h.end(ended, h.ending(session.ReasonLogout))
		if err := h.s.Close(); err != nil {
			h.Fatalf("Close: %v", err)
		}
		at := h.now.Add(time.Minute)
		exp := session.Expiry{At: at.Add(time.Hour), Reason: session.ReasonIdle}
		// ErrNotFound would be a lie: the record may well exist.
		calls := []struct {
			name string
			call func() error
		}{
			{"Create", func() error { return h.s.Create(h.ctx, h.record("carol")) }},
			{"Get", func() error { _, err := h.s.Get(h.ctx, rec.TokenHash); return err }},
			{"Touch", func() error { return h.s.Touch(h.ctx, rec.ID, at, exp) }},
			{"SaveData", func() error { return h.s.SaveData(h.ctx, rec.ID, nil, map[string]string{"k": "v"}) }},
			{"Renew", func() error { return h.s.Renew(h.ctx, rec.ID, rec.TokenHash, randomHash(), renewal(policy, at)) }},
			{"End", func() error { _, err := h.s.End(h.ctx, rec.ID, h.ending(session.ReasonRevoked)); return err }},
			{"EndExpired", func() error { _, err := h.s.EndExpired(h.ctx, h.now.Add(24*time.Hour), time.Hour, 10); return err }},
			{"Ended", func() error { _, err := h.s.Ended(h.ctx, ended.TokenHash); return err }},
			{"List", func() error { _, err := h.s.List(h.ctx, "", 0); return err }},
			{"Ping", func() error { return h.s.Ping(h.ctx) }},
		}
		for _, c := range calls {
			err, panicked := callSafely(c.call)
			switch {
			case panicked != nil:
				h.Errorf("%s after Close panicked: %v", c.name, panicked)
			case err == nil:
				h.Errorf("%s after Close succeeded, want an error", c.name)
			case errors.Is(err, session.ErrNotFound):
				h.Errorf("%s after Close: %v, want an error other than ErrNotFound", c.name, err)
			}
		}
		if _, panicked := callSafely(h.s.Close); panicked != nil {
			h.Errorf("a second Close panicked: %v", panicked)
		}
	}},
}

// callSafely calls f, returning its error or what it panicked with.
func callSafely(f func() error) (err error, panicked any) {
	defer func() { panicked = recover() }()
	return f(), nil
}
