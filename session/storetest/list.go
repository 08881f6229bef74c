package storetest

import (
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
}
