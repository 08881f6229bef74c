package redisstore

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

func TestDataRoundTrip(t *testing.T) {
	cases := []map[string]string{
		{"": ""},
		{"a": "1", "b": ""},
		{"nul": "a\x00b", "\x00": "\x00\x00"},
		{"bad utf-8": "\xff\xfe", "\xc3": "\x28"},
		{"big": strings.Repeat("x", 1<<16), "ключ": "значение"},
	}
	many := make(map[string]string)
	for i := range 300 {
		many[strings.Repeat("k", i)] = strings.Repeat("v", 300-i)
	}
	cases = append(cases, many)
	for _, data := range cases {
		got, err := decodeData(encodeData(data))
		if err != nil {
			t.Fatalf("decoding the encoding of %q: %v", data, err)
		}
		if !maps.Equal(got, data) {
			t.Errorf("round trip changed %q into %q", data, got)
		}
	}
	for _, empty := range []map[string]string{nil, {}} {
		if enc := encodeData(empty); enc != "" {
			t.Errorf("encodeData(%#v) = %q, want \"\" (no field)", empty, enc)
		}
	}
	if got, err := decodeData(""); err != nil || got != nil {
		t.Errorf("decodeData(\"\") = %v, %v; want nil, nil", got, err)
	}
}

func TestDecodeDataRejectsMalformedInput(t *testing.T) {
	for _, s := range []string{
		"\x05ab",      // key shorter than its length
		"\x01a",       // key without a value
		"\x01a\x03xy", // value shorter than its length
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // length overflows
		"\x80",           // unfinished length
		"\x01a\x01b\x09", // trailing garbage
	} {
		if got, err := decodeData(s); err == nil {
			t.Errorf("decodeData(%q) = %q, want an error", s, got)
		}
	}
}

func FuzzDecodeData(f *testing.F) {
	f.Add(encodeData(map[string]string{"a": "1", "": "\x00"}))
	f.Add("\x80\x80")
	f.Fuzz(func(t *testing.T, s string) {
		data, err := decodeData(s)
		if err != nil {
			return
		}
		// Whatever decodes must survive another round trip.
		again, err := decodeData(encodeData(data))
		if err != nil || !maps.Equal(again, data) {
			t.Errorf("%q decoded to %q, which does not round-trip: %q, %v", s, data, again, err)
		}
	})
}

func TestRecordFieldsRoundTrip(t *testing.T) {
	rec := storetest.NewRecord("zoë", time.Unix(1_700_000_000, 123_456_789), session.Policy{IdleTimeout: time.Minute + 1, AbsoluteTimeout: time.Hour + 3})
	rec.IP, rec.UserAgent, rec.Data = "2001:db8::1", "curl/8", map[string]string{"k": "v"}
	fields, deadline, absolute, err := recordFields(rec)
	if err != nil {
		t.Fatal(err)
	}
	if deadline != rec.Deadline().UnixNano() || absolute != rec.AbsoluteDeadline().UnixNano() {
		t.Errorf("deadlines %d, %d; want %d, %d", deadline, absolute, rec.Deadline().UnixNano(), rec.AbsoluteDeadline().UnixNano())
	}
	m := make(map[string]string)
	for i := 0; i < len(fields); i += 2 {
		m[fields[i].(string)] = fields[i+1].(string)
	}
	got, err := parseRecord(m)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != rec.ID || got.UserID != rec.UserID || got.TokenHash != rec.TokenHash ||
		!got.CreatedAt.Equal(rec.CreatedAt) || !got.LastActivity.Equal(rec.LastActivity) ||
		got.Policy != rec.Policy || got.IP != rec.IP || got.UserAgent != rec.UserAgent || !maps.Equal(got.Data, rec.Data) {
		t.Errorf("round trip gave %+v, want %+v", got, rec)
	}
}

func TestRecordFieldsRejectsWhatCannotBeStored(t *testing.T) {
	ok := storetest.NewRecord("u", time.Now(), session.Policy{})
	noID := ok
	noID.ID = ""
	farFuture := ok
	farFuture.AuthenticatedAt = time.Date(2262, 6, 1, 0, 0, 0, 0, time.UTC)
	ancient := ok
	ancient.CreatedAt = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	negative := ok
	negative.Policy.IdleTimeout = -time.Minute
	for name, rec := range map[string]session.Record{"no ID": noID, "absolute deadline after 2262": farFuture,
		"creation before 1678": ancient, "negative timeout": negative} {
		if _, _, _, err := recordFields(rec); err == nil {
			t.Errorf("recordFields accepted a record with %s", name)
		}
	}
}

func TestParseRecordRejectsDamage(t *testing.T) {
	fields, _, _, err := recordFields(storetest.NewRecord("u", time.Now(), session.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	good := make(map[string]string)
	for i := 0; i < len(fields); i += 2 {
		good[fields[i].(string)] = fields[i+1].(string)
	}
	for _, damage := range []struct{ field, value string }{
		{fieldID, ""}, {fieldHash, "short"}, {fieldHash, strings.Repeat("!", 43)}, {fieldLast, "noon"},
		{fieldIdle, "1e9"}, {fieldData, "\x05"},
	} {
		m := maps.Clone(good)
		m[damage.field] = damage.value
		if _, err := parseRecord(m); err == nil {
			t.Errorf("parseRecord accepted %s = %q", damage.field, damage.value)
		}
	}
	m := maps.Clone(good)
	delete(m, fieldUser)
	if _, err := parseRecord(m); err == nil {
		t.Error("parseRecord accepted a record without a user")
	}
}

func TestMilliseconds(t *testing.T) {
	for _, c := range []struct{ ns, floor, ceil int64 }{
		{0, 0, 0}, {1, 0, 1}, {999_999, 0, 1}, {1_000_000, 1, 1}, {-1, -1, 0}, {-1_000_000, -1, -1}, {-1_000_001, -2, -1},
	} {
		if f, c2 := msFloor(c.ns), msCeil(c.ns); f != c.floor || c2 != c.ceil {
			t.Errorf("%d ns: floor %d ceil %d ms, want %d and %d", c.ns, f, c2, c.floor, c.ceil)
		}
	}
}
