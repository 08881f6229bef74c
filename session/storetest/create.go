package storetest

import (
	"maps"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// roundTripRecords are records whose every field must come back from Get as
// it went into Create.
func roundTripRecords(now time.Time) []struct {
	name string
	rec  session.Record
} {
	full := NewRecord("user-42@example.com", now, session.Policy{
		// Odd nanoseconds catch a store that keeps durations in seconds.
		IdleTimeout:     30*time.Minute + 1,
		AbsoluteTimeout: 12*time.Hour + 3,
	})
	full.CreatedAt = now.Add(-90*time.Minute + 7).In(zoneEast)
	full.AuthenticatedAt = now.Add(-time.Hour + 11).In(zoneWest)
	full.LastActivity = now.Add(-time.Second + 13).UTC()
	// Not what the policy gives: a store keeps Expires as given.
	full.Expires = session.Expiry{At: now.Add(17*time.Minute + 19).In(zoneWest), Reason: session.ReasonAbsolute}
	full.Persistent = true
	full.IP = "2001:db8::1"
	full.UserAgent = `Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 "ünïcødé" \ 'q'`
	full.Data = map[string]string{
		"cart":        `{"items":[1,2,3],"note":"it's \"quoted\""}`,
		"ключ":        "значение",
		"名前":          "値 🍣",
		"emoji 🔑":     "👍🏽",
		"empty":       "",
		"":            "empty key",
		"multi\nline": "a\r\nb\tc\\d",
	}

	bigData := NewRecord("big", now, policy)
	bigData.Data = map[string]string{"blob": strings.Repeat("0123456789abcdef", 256)}
	for i := range 50 {
		bigData.Data["k"+strings.Repeat("x", i)] = strings.Repeat("v", i)
	}

	emptyData := NewRecord("empty-data", now, policy)
	emptyData.Data = map[string]string{}

	unicodeUser := NewRecord("用户-ユーザー-👤", now, policy)
	unicodeUser.IP = "198.51.100.7"

	noClient := NewRecord("no-client", now, policy)
	noClient.IP, noClient.UserAgent = "", ""

	persistent := NewRecord("remembered", now, policy)
	persistent.Persistent = true

	// A policy of zero timeouts and an expiry it could never give: the
	// store holds no opinion on either.
	oddPolicy := NewRecord("odd-policy", now, policy)
	oddPolicy.Policy = session.Policy{}
	oddPolicy.Expires = session.Expiry{At: now.Add(time.Hour), Reason: session.ReasonIdle}

	return []struct {
		name string
		rec  session.Record
	}{
		{"as made by NewRecord", NewRecord("alice", now, policy)},
		{"every field set, times in three zones", full},
		{"nil Data", NewRecord("nil-data", now, policy)},
		{"empty Data", emptyData},
		{"4 KiB Data value and 50 keys", bigData},
		{"unicode user ID", unicodeUser},
		{"empty IP and user agent", noClient},
		{"anonymous (empty user ID)", NewRecord("", now, policy)},
		{"Persistent", persistent},
		{"expiry unrelated to the policy", oddPolicy},
	}
}

var createCases = []testCase{
	{"Get returns every field as created", func(h *harness) {
		for _, c := range roundTripRecords(h.now) {
			h.sub(c.name, func(h *harness) {
				h.create(c.rec)
				h.wantRecord(c.rec)
			})
		}
	}},
	{"Get of an unknown hash is ErrNotFound", func(h *harness) {
		h.wantGone(randomHash(), "of an unknown hash on an empty store")
		h.create(h.record("alice"))
		h.wantGone(randomHash(), "of an unknown hash")
	}},
	{"Create with an existing ID is ErrConflict", func(h *harness) {
		first := h.create(h.record("alice"))
		second := h.record("bob")
		second.ID = first.ID
		h.wantErr(h.s.Create(h.ctx, second), session.ErrConflict, "Create with a duplicate ID")
		h.wantRecord(first)
		h.wantGone(second.TokenHash, "of the rejected record's hash")
		h.wantList("", 0, first)
	}},
	{"Create with an existing token hash is ErrConflict", func(h *harness) {
		first := h.create(h.record("alice"))
		second := h.record("bob")
		second.TokenHash = first.TokenHash
		h.wantErr(h.s.Create(h.ctx, second), session.ErrConflict, "Create with a duplicate token hash")
		h.wantRecord(first)
		_, err := h.s.End(h.ctx, second.ID, session.Ending{Reason: session.ReasonRevoked, At: h.now, KeepUntil: h.now.Add(time.Hour)})
		h.wantErr(err, session.ErrNotFound, "End of the rejected record's ID")
		h.wantList("", 0, first)
	}},
	{"Get returns a record past its expiry", func(h *harness) {
		// The one record in the suite whose expiry has really passed: one
		// second ago. The Manager, not the store, decides it has expired.
		wall := time.Now()
		rec := NewRecord("alice", wall.Add(-2*time.Second), session.Policy{IdleTimeout: time.Second, AbsoluteTimeout: time.Hour})
		h.create(rec)
		h.wantRecord(rec)
		h.wantList("alice", 0, rec)
	}},
	{"callers cannot change stored Data through their maps", func(h *harness) {
		rec := h.record("alice")
		rec.Data = map[string]string{"a": "1"}
		h.create(rec)
		rec.Data["a"] = "changed after Create"
		rec.Data["b"] = "added after Create"
		want := rec
		want.Data = map[string]string{"a": "1"}
		h.wantRecord(want)

		got, err := h.s.Get(h.ctx, rec.TokenHash)
		if err != nil {
			h.Fatalf("Get: %v", err)
		}
		got.Data["a"] = "changed in Get's result"
		h.wantRecord(want)

		old := map[string]string{"a": "1"}
		data := map[string]string{"c": "3"}
		if err := h.s.SaveData(h.ctx, rec.ID, old, data); err != nil {
			h.Fatalf("SaveData: %v", err)
		}
		data["c"] = "changed after SaveData"
		old["a"] = "changed after SaveData"
		want.Data = map[string]string{"c": "3"}
		h.wantRecord(want)
		if !maps.Equal(data, map[string]string{"c": "changed after SaveData"}) ||
			!maps.Equal(old, map[string]string{"a": "changed after SaveData"}) {
			h.Errorf("SaveData changed the caller's maps: %v, %v", old, data)
		}
	}},
}
