package memstore

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

var base = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

var policy = session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}

func TestEndExpiredRefusesUnboundedBatch(t *testing.T) {
	s := New()
	rec := storetest.NewRecord("alice", base, policy)
	if err := s.Create(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, -1} {
		if _, err := s.EndExpired(t.Context(), base.Add(24*time.Hour), time.Hour, limit); err == nil {
			t.Errorf("EndExpired with limit %d: no error", limit)
		}
	}
	if _, err := s.Get(t.Context(), rec.TokenHash); err != nil {
		t.Errorf("a refused EndExpired ended the session: %v", err)
	}
}

func TestTimesOutOfRange(t *testing.T) {
	ctx := t.Context()
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		set  func(*session.Record)
	}{
		{"zero CreatedAt", func(r *session.Record) { r.CreatedAt = time.Time{} }},
		{"AuthenticatedAt after 2262", func(r *session.Record) { r.AuthenticatedAt = far }},
		{"LastActivity before 1678", func(r *session.Record) { r.LastActivity = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"Expires.At after 2262", func(r *session.Record) { r.Expires.At = far }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New()
			rec := storetest.NewRecord("alice", base, policy)
			c.set(&rec)
			err := s.Create(ctx, rec)
			if err == nil || !strings.Contains(err.Error(), "1678 to 2262") {
				t.Errorf("Create: %v, want an error naming the range", err)
			}
			if _, err := s.Get(ctx, rec.TokenHash); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Get after a refused Create: %v, want ErrNotFound", err)
			}
		})
	}

	s := New()
	rec := storetest.NewRecord("alice", base, policy)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, rec.ID, far, session.Expiry{At: far}); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Touch after 2262: %v, want a range error", err)
	}
	if err := s.Touch(ctx, rec.ID, base, session.Expiry{At: far}); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Touch expiring after 2262: %v, want a range error", err)
	}
	for _, r := range []session.Renewal{
		{AuthenticatedAt: far, LastActivity: base, Expires: rec.Expires},
		{AuthenticatedAt: base, LastActivity: base, Expires: session.Expiry{At: far}},
	} {
		if err := s.Renew(ctx, rec.ID, rec.TokenHash, rec.TokenHash, r); err == nil {
			t.Errorf("Renew to %+v: no error", r)
		}
	}
	if _, err := s.End(ctx, rec.ID, session.Ending{Reason: session.ReasonLogout, At: base, KeepUntil: far}); err == nil {
		t.Error("End keeping until after 2262: no error")
	}
	got, err := s.Get(ctx, rec.TokenHash)
	if err != nil || !got.LastActivity.Equal(base) || !got.AuthenticatedAt.Equal(base) {
		t.Errorf("refused calls changed the session: %+v, %v", got.Info, err)
	}
}

// TestSharedHashKey checks sessions whose token hashes share the 64 bits
// that key the hash index: with real hashes, a once-in-2^64 event.
func TestSharedHashKey(t *testing.T) {
	ctx := t.Context()
	s := New()
	live := make(map[string]session.Record)
	wantLive := func(when string) {
		t.Helper()
		for _, rec := range live {
			if got, err := s.Get(ctx, rec.TokenHash); err != nil || got.ID != rec.ID {
				t.Fatalf("%s: Get of chained session %s = %q, %v", when, rec.ID, got.ID, err)
			}
		}
		s.checkIndexes(t, len(live))
	}
	var ids []string
	for i := range 4 {
		rec := storetest.NewRecord("alice", base.Add(time.Duration(i)), policy)
		copy(rec.TokenHash[:8], "samekey!")
		if err := s.Create(ctx, rec); err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		live[rec.ID] = rec
		ids = append(ids, rec.ID)
	}
	wantLive("after Create")

	dup := storetest.NewRecord("bob", base, policy)
	dup.TokenHash = live[ids[2]].TokenHash
	if err := s.Create(ctx, dup); !errors.Is(err, session.ErrConflict) {
		t.Errorf("Create with the full hash of a chained session: %v, want ErrConflict", err)
	}
	var unknown session.TokenHash
	copy(unknown[:8], "samekey!")
	if _, err := s.Get(ctx, unknown); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of an unknown hash in the chain: %v, want ErrNotFound", err)
	}

	rec := live[ids[0]] // the tail of the chain: sessions are added in front
	renewed := rec.TokenHash
	renewed[31] ^= 1
	if err := s.Renew(ctx, rec.ID, rec.TokenHash, renewed, session.Renewal{AuthenticatedAt: base, LastActivity: base, Expires: rec.Expires}); err != nil {
		t.Fatalf("Renew within the chain: %v", err)
	}
	if _, err := s.Get(ctx, rec.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of the hash replaced by Renew: %v, want ErrNotFound", err)
	}
	rec.TokenHash = renewed
	live[rec.ID] = rec
	wantLive("after Renew")

	// End them from the middle, the head and the tail of the chain.
	for _, id := range []string{ids[2], ids[0], ids[3], ids[1]} {
		if _, err := s.End(ctx, id, session.Ending{Reason: session.ReasonRevoked, At: base, KeepUntil: base}); err != nil {
			t.Fatalf("End: %v", err)
		}
		if _, err := s.Get(ctx, live[id].TokenHash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get of an ended chained session: %v, want ErrNotFound", err)
		}
		delete(live, id)
		wantLive("after End")
	}
}

func TestPackData(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes: a two-byte length
	for _, m := range []map[string]string{
		nil,
		{"": ""},
		{"k": "v"},
		{"": "empty key", "empty value": ""},
		{long: long, "x": strings.Repeat("y", 70000)},
		{"ключ": "значение", "🔑": "👍🏽", "a\x00b": "\xff\xfe"},
	} {
		packed := packData(m)
		got := unpackData(packed)
		if !maps.Equal(got, m) {
			t.Errorf("unpackData(packData(%.40q)) = %.40q", m, got)
		}
		if len(m) == 0 && (packed != "" || got != nil) {
			t.Errorf("empty data packs to %q and unpacks to %v, want \"\" and nil", packed, got)
		}
	}
	many := make(map[string]string)
	for i := range 300 {
		many[strings.Repeat("k", i)] = strings.Repeat("v", 300-i)
	}
	if got := unpackData(packData(many)); !maps.Equal(got, many) {
		t.Error("300 pairs did not round-trip")
	}
}

func TestPackedEqual(t *testing.T) {
	packed := packData(map[string]string{"a": "1", "": "", "ключ": "значение"})
	for _, c := range []struct {
		m    map[string]string
		want bool
	}{
		{map[string]string{"a": "1", "": "", "ключ": "значение"}, true},
		{map[string]string{"a": "1", "": ""}, false},
		{map[string]string{"a": "1", "": "", "ключ": "значение", "b": ""}, false},
		{map[string]string{"a": "1", "": "x", "ключ": "значение"}, false},
		{map[string]string{"a": "1", "b": "", "ключ": "значение"}, false},
		{nil, false},
	} {
		if got := packedEqual(packed, c.m); got != c.want {
			t.Errorf("packedEqual(packed, %q) = %v, want %v", c.m, got, c.want)
		}
	}
	for _, m := range []map[string]string{nil, {}} {
		if !packedEqual(packData(nil), m) || packedEqual(packData(nil), map[string]string{"": ""}) {
			t.Errorf("empty data does not equal %#v alone", m)
		}
	}
}

// expiryOf is the Manager's rule, for the model: the earlier of the idle
// and the absolute deadline, a tie being absolute.
func expiryOf(p session.Policy, authAt, last time.Time) session.Expiry {
	idle, abs := last.Add(p.IdleTimeout), authAt.Add(p.AbsoluteTimeout)
	if !abs.After(idle) {
		return session.Expiry{At: abs, Reason: session.ReasonAbsolute}
	}
	return session.Expiry{At: idle, Reason: session.ReasonIdle}
}

// TestMatchesModel runs random operations against a Store and against a
// plain map of records, and checks that they agree and that the Store's
// indexes stay consistent: the heap ordered, every entry at its index, every
// user's list sorted and complete.
func TestMatchesModel(t *testing.T) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	s := New()
	model := make(map[string]session.Record) // live sessions by ID
	now := base
	users := []string{"ann", "bob", "cyd", "dee"}
	var tick time.Duration // keeps CreatedAt distinct, so List's order is defined

	pick := func() (session.Record, bool) {
		if len(model) == 0 {
			return session.Record{}, false
		}
		ids := slices.Sorted(maps.Keys(model))
		return model[ids[rng.IntN(len(ids))]], true
	}
	for step := range 3000 {
		now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		switch op := rng.IntN(10); {
		case op < 3:
			tick++
			p := session.Policy{IdleTimeout: time.Duration(1+rng.IntN(30)) * time.Minute, AbsoluteTimeout: time.Duration(30+rng.IntN(90)) * time.Minute}
			rec := storetest.NewRecord(users[rng.IntN(len(users))], now.Add(-time.Duration(rng.IntN(600))*time.Second+tick), p)
			rec.LastActivity, rec.AuthenticatedAt = now, now
			rec.Expires = expiryOf(p, now, now)
			if err := s.Create(ctx, rec); err != nil {
				t.Fatalf("step %d: Create: %v", step, err)
			}
			model[rec.ID] = rec
		case op < 5:
			rec, ok := pick()
			if !ok {
				continue
			}
			exp := expiryOf(rec.Policy, rec.AuthenticatedAt, now)
			err := s.Touch(ctx, rec.ID, now, exp)
			if rec.Expires.At.After(now) {
				if err != nil {
					t.Fatalf("step %d: Touch before the expiry: %v", step, err)
				}
				rec.LastActivity = now
				if exp.At.After(rec.Expires.At) {
					rec.Expires = exp
				}
				model[rec.ID] = rec
			} else if !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("step %d: Touch after the expiry: %v", step, err)
			}
		case op < 6:
			rec, ok := pick()
			if !ok {
				continue
			}
			renewed := rec
			renewed.TokenHash = storetest.NewRecord("", now, policy).TokenHash
			renewed.AuthenticatedAt, renewed.LastActivity = now, now
			renewed.Expires = expiryOf(rec.Policy, now, now)
			r := session.Renewal{AuthenticatedAt: now, LastActivity: now, Expires: renewed.Expires}
			if err := s.Renew(ctx, rec.ID, rec.TokenHash, renewed.TokenHash, r); err != nil {
				t.Fatalf("step %d: Renew: %v", step, err)
			}
			model[rec.ID] = renewed
		case op < 7:
			rec, ok := pick()
			if !ok {
				continue
			}
			if _, err := s.End(ctx, rec.ID, session.Ending{Reason: session.ReasonRevoked, At: now, KeepUntil: now.Add(time.Hour)}); err != nil {
				t.Fatalf("step %d: End: %v", step, err)
			}
			delete(model, rec.ID)
		case op < 9:
			limit := 1 + rng.IntN(5)
			ended, err := s.EndExpired(ctx, now, time.Hour, limit)
			if err != nil {
				t.Fatalf("step %d: EndExpired: %v", step, err)
			}
			var expired []session.Record
			for _, rec := range model {
				if rec.Expired(now) {
					expired = append(expired, rec)
				}
			}
			if want := min(limit, len(expired)); len(ended) != want {
				t.Fatalf("step %d: EndExpired ended %d, want %d", step, len(ended), want)
			}
			for _, e := range ended {
				rec, ok := model[e.ID]
				if !ok || !rec.Expired(now) {
					t.Fatalf("step %d: EndExpired ended %s, which was not expired", step, e.ID)
				}
				if e.Reason != rec.Expires.Reason || !e.At.Equal(rec.Expires.At) {
					t.Fatalf("step %d: EndExpired ended %s as %s at %v, want %+v", step, e.ID, e.Reason, e.At, rec.Expires)
				}
				delete(model, e.ID)
			}
		default:
			user := ""
			if rng.IntN(2) == 0 {
				user = users[rng.IntN(len(users))]
			}
			got, err := s.List(ctx, user, 0)
			if err != nil {
				t.Fatalf("step %d: List: %v", step, err)
			}
			var want []session.Record
			for _, rec := range model {
				if user == "" || rec.UserID == user {
					want = append(want, rec)
				}
			}
			slices.SortFunc(want, func(a, b session.Record) int { return a.CreatedAt.Compare(b.CreatedAt) })
			if !slices.EqualFunc(got, want, func(a, b session.Record) bool {
				return a.ID == b.ID && a.TokenHash == b.TokenHash && a.LastActivity.Equal(b.LastActivity) && a.Expires.At.Equal(b.Expires.At) && a.Expires.Reason == b.Expires.Reason
			}) {
				t.Fatalf("step %d: List(%q) disagrees with the model", step, user)
			}
		}
		s.checkIndexes(t, len(model))
	}
}

// checkIndexes fails t if the Store's indexes disagree with each other or
// with want live sessions.
func (s *Store) checkIndexes(t *testing.T, want int) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.index[byID].n != want || s.expiries.Len() != want {
		t.Fatalf("indexes hold %d by ID, %d by expiry; want %d", s.index[byID].n, s.expiries.Len(), want)
	}
	for i := range s.index {
		s.index[i].check(t)
	}
	counted := 0
	s.index[byHash].all(func(e *entry) bool {
		if s.findID(e.id()) != e {
			t.Fatalf("entry %s found by hash is not the one found by ID", e.id())
		}
		counted++
		return true
	})
	if counted != want {
		t.Fatalf("the hash index holds %d sessions, want %d", counted, want)
	}
	for i := range s.expiries.Len() {
		e := *s.expiries.items.at(i)
		if int(e.heapIndex) != i {
			t.Fatalf("entry %s at heap position %d thinks it is at %d", e.id(), i, e.heapIndex)
		}
		if parent := (i - 1) / 2; i > 0 && (*s.expiries.items.at(parent)).expiresAt > e.expiresAt {
			t.Fatalf("heap out of order at %d", i)
		}
		if s.findID(e.id()) != e || s.lookup(e.hash) != e {
			t.Fatalf("entry %s in the heap is not the one indexed by ID and hash", e.id())
		}
	}
	linked := 0
	s.index[byUser].all(func(head *entry) bool {
		user := head.userID()
		if s.findUser(user) != head {
			t.Fatalf("the user index does not find %q's head", user)
		}
		prev := head.prev
		for e := head; ; e = e.next {
			if e.userID() != user || e.prev != prev || s.findID(e.id()) != e {
				t.Fatalf("user list of %q is broken at %s", user, e.id())
			}
			if e != head && cmp.Compare(prev.createdAt, e.createdAt) > 0 {
				t.Fatalf("user list of %q is out of order at %s", user, e.id())
			}
			linked++
			prev = e
			if e.next == head {
				break
			}
		}
		return true
	})
	if linked != want {
		t.Fatalf("user lists hold %d sessions, want %d", linked, want)
	}
}

// check fails t if an entry is not in the bucket its hash names, or the
// count is wrong.
func (x *chainedIndex) check(t *testing.T) {
	t.Helper()
	n := 0
	x.all(func(e *entry) bool {
		if x.find(x.hashOf(e), func(f *entry) bool { return f == e }) != e {
			t.Fatalf("index %d: an entry is not in the bucket of its hash", x.link)
		}
		n++
		return true
	})
	if n != x.n {
		t.Fatalf("index %d holds %d entries but counts %d", x.link, n, x.n)
	}
}

// TestEntrySize keeps an entry in the allocator's 144-byte size class: a
// field more moves every session to the 160-byte class.
func TestEntrySize(t *testing.T) {
	if size := unsafe.Sizeof(entry{}); size > 144 {
		t.Errorf("an entry takes %d bytes, more than 144", size)
	}
}

// TestManySessions grows the indexes through several sizes, with removals
// while their buckets are being moved, and sweeps across chunk boundaries
// of the heaps (chunkLen) and of EndExpired (sweepChunk).
func TestManySessions(t *testing.T) {
	ctx := t.Context()
	s := New()
	const n = 3*chunkLen + 100
	recs := make([]session.Record, n)
	for i := range recs {
		// Several sessions per user, created out of order, so that users'
		// heads change; deadlines spread over n seconds.
		recs[i] = storetest.NewRecord(fmt.Sprintf("user-%d", i%97), base.Add(time.Duration(i%13)*time.Second), policy)
		recs[i].LastActivity = base.Add(time.Duration(i) * time.Second)
		recs[i].Expires = expiryOf(policy, recs[i].AuthenticatedAt, recs[i].LastActivity)
		if err := s.Create(ctx, recs[i]); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 { // end some while the indexes grow
			if _, err := s.End(ctx, recs[i-2].ID, session.Ending{Reason: session.ReasonRevoked, At: base, KeepUntil: base}); err != nil {
				t.Fatal(err)
			}
		}
		if i%1000 == 0 {
			s.checkIndexes(t, i+1-(i+1)/5)
		}
	}
	live := n - n/5
	s.checkIndexes(t, live)
	revoked := func(i int) bool { return i%5 == 2 && i+2 < n }

	// Expire the first half, by expiry, and sweep it in batches that
	// are not a multiple of sweepChunk.
	now := base.Add(policy.IdleTimeout + time.Duration(n/2)*time.Second)
	wantEnded := 0
	for i, rec := range recs {
		if !revoked(i) && rec.Expired(now) {
			wantEnded++
		}
	}
	ended := make(map[string]bool)
	for {
		batch, err := s.EndExpired(ctx, now, time.Hour, 150)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			if ended[e.ID] || !e.Expired(now) || e.Reason != session.ReasonIdle {
				t.Fatalf("EndExpired ended %s (%s, expired: %v, ended before: %v)", e.ID, e.Reason, e.Expired(now), ended[e.ID])
			}
			ended[e.ID] = true
		}
		if len(batch) < 150 {
			break
		}
	}
	if len(ended) != wantEnded {
		t.Errorf("EndExpired ended %d sessions, want %d", len(ended), wantEnded)
	}
	s.checkIndexes(t, live-wantEnded)
	for i, rec := range recs {
		_, err := s.Get(ctx, rec.TokenHash)
		if gone := revoked(i) || ended[rec.ID]; gone != errors.Is(err, session.ErrNotFound) {
			t.Fatalf("session %d: Get: %v, ended: %v", i, err, gone)
		}
	}

	// Past every deadline and KeepUntil, the rest end and every ended token
	// is forgotten, in batches too.
	later := now.Add(10 * time.Hour)
	for range 1000 {
		if _, err := s.EndExpired(ctx, later, time.Hour, 150); err != nil {
			t.Fatal(err)
		}
		if s.retention.Len() == 0 {
			break
		}
	}
	if len(s.ended) != 0 || s.retention.Len() != 0 {
		t.Errorf("%d ended tokens (%d queued) remain past their KeepUntil", len(s.ended), s.retention.Len())
	}
}
