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
	rec.IP, rec.UserAgent, rec.Data, rec.Persistent = "2001:db8::1", "curl/8", map[string]string{"k": "v"}, true
	rec.Expires = session.Expiry{At: rec.CreatedAt.Add(-time.Hour), Reason: session.ReasonAbsolute} // not the policy's: stored as given
	fields, expires, err := recordFields(rec)
	if err != nil {
		t.Fatal(err)
	}
	if expires != rec.Expires.At.UnixNano() {
		t.Errorf("expiry %d, want %d", expires, rec.Expires.At.UnixNano())
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
		!got.Expires.At.Equal(rec.Expires.At) || got.Expires.Reason != rec.Expires.Reason || !got.Persistent ||
		got.Policy != rec.Policy || got.IP != rec.IP || got.UserAgent != rec.UserAgent || !maps.Equal(got.Data, rec.Data) {
		t.Errorf("round trip gave %+v, want %+v", got, rec)
	}
}

// TestARecordWithoutExpiry reads a record as written before records kept
// their expiry: the expiry is the one its old fields give.
func TestARecordWithoutExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 1)
	for _, c := range []struct {
		name   string
		p      session.Policy
		want   time.Duration
		reason session.EndReason
	}{
		{"idle first", session.Policy{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour}, time.Minute, session.ReasonIdle},
		{"absolute first", session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Minute}, time.Minute, session.ReasonAbsolute},
		{"a tie is absolute", session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour}, time.Hour, session.ReasonAbsolute},
	} {
		rec := storetest.NewRecord("u", now, c.p)
		fields, _, err := recordFields(rec)
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]string)
		for i := 0; i < len(fields); i += 2 {
			m[fields[i].(string)] = fields[i+1].(string)
		}
		delete(m, fieldExpires)
		delete(m, fieldReason)
		got, err := parseRecord(m)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Expires.At.Equal(now.Add(c.want)) || got.Expires.Reason != c.reason {
			t.Errorf("%s: expiry %+v, want %s at %v", c.name, got.Expires, c.reason, now.Add(c.want))
		}
	}
}

func TestRecordFieldsRejectsWhatCannotBeStored(t *testing.T) {
	ok := storetest.NewRecord("u", time.Now(), session.Policy{})
	noID := ok
	noID.ID = ""
	farFuture := ok
	farFuture.Expires.At = time.Date(2262, 6, 1, 0, 0, 0, 0, time.UTC)
	ancient := ok
	ancient.CreatedAt = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	noReason := ok
	noReason.Expires.Reason = ""
	logout := ok
	logout.Expires.Reason = session.ReasonLogout
	for name, rec := range map[string]session.Record{"no ID": noID, "expiry after 2262": farFuture,
		"creation before 1678": ancient, "no expiry reason": noReason, "an expiry of reason logout": logout} {
		if _, _, err := recordFields(rec); err == nil {
			t.Errorf("recordFields accepted a record with %s", name)
		}
	}
}

func TestParseRecordRejectsDamage(t *testing.T) {
	fields, _, err := recordFields(storetest.NewRecord("u", time.Now(), session.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	good := make(map[string]string)
	for i := 0; i < len(fields); i += 2 {
		good[fields[i].(string)] = fields[i+1].(string)
	}
	for _, damage := range []struct{ field, value string }{
		{fieldID, ""}, {fieldHash, "short"}, {fieldHash, strings.Repeat("!", 43)}, {fieldLast, "noon"},
		{fieldIdle, "1e9"}, {fieldData, "\x05"}, {fieldExpires, "soon"}, {fieldReason, "logout"},
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

func TestIndexMembers(t *testing.T) {
	for _, c := range []struct{ ref, version, member string }{
		{"{u:YQ}:s:abc", "0", "{u:YQ}:s:abc"},
		{"{u:YQ}:s:abc", "12", "{u:YQ}:s:abc#12"},
		{"{u:YQ}:s:a#b", "0", "{u:YQ}:s:a#b"},
	} {
		if got := indexMember(c.ref, c.version); got != c.member {
			t.Errorf("indexMember(%q, %q) = %q, want %q", c.ref, c.version, got, c.member)
		}
		if ref, v := splitMember(c.member); ref != c.ref || v != c.version {
			t.Errorf("splitMember(%q) = %q, %q; want %q, %q", c.member, ref, v, c.ref, c.version)
		}
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

// packed is a record as the Get script packs it: a MessagePack array of
// fields in readOrder, each a string or (nil) absent, in the given string
// form ("fixstr", "str8", "str16", "str32", "bin8", "false" for absent).
func packed(form string, fields []*string) string {
	var b []byte
	b = append(b, 0x90|byte(len(fields)))
	for _, f := range fields {
		if f == nil {
			if form == "false" {
				b = append(b, 0xc2)
			} else {
				b = append(b, 0xc0)
			}
			continue
		}
		n := len(*f)
		switch {
		case form == "fixstr" && n < 32:
			b = append(b, 0xa0|byte(n))
		case form == "str16":
			b = append(b, 0xda, byte(n>>8), byte(n))
		case form == "str32":
			b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		case form == "bin8":
			b = append(b, 0xc4, byte(n))
		default:
			b = append(b, 0xd9, byte(n))
		}
		b = append(b, *f...)
	}
	return string(b)
}

func TestUnpackRecord(t *testing.T) {
	fields, _, err := recordFields(storetest.NewRecord("", time.Now(), session.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for i := 0; i < len(fields); i += 2 {
		m[fields[i].(string)] = fields[i+1].(string)
	}
	want := valuesOf(m)
	values := make([]*string, numRead)
	for i := range values {
		if want.present[i] {
			values[i] = &want.v[i]
		}
	}
	for _, form := range []string{"fixstr", "str8", "str16", "str32", "bin8", "false"} {
		rv, found, err := unpackRecord(packed(form, values))
		if err != nil || !found || rv != want {
			t.Errorf("%s: unpacked %+v, %v, %v; want %+v", form, rv, found, err, want)
		}
		if _, err := rv.record(); err != nil {
			t.Errorf("%s: %v", form, err)
		}
	}
	if _, found, err := unpackRecord(""); found || err != nil {
		t.Errorf("an empty reply: found %v, %v; want no record", found, err)
	}
	if _, found, err := unpackRecord(packed("false", make([]*string, numRead))); found || err != nil {
		t.Errorf("a record with no fields: found %v, %v; want no record", found, err)
	}
	good := packed("str8", values)
	for name, bad := range map[string]string{
		"too few fields":  packed("str8", values[:numRead-1]),
		"too many fields": packed("str8", append(values[:numRead:numRead], values[0])),
		"truncated":       good[:len(good)-1],
		"trailing bytes":  good + "\xc0",
		"not an array":    "\xa1x",
		"an integer":      "\x9e\x01" + good[2:],
	} {
		if _, _, err := unpackRecord(bad); err == nil {
			t.Errorf("unpackRecord accepted %s", name)
		}
	}
}

func FuzzUnpackRecord(f *testing.F) {
	v := "value"
	values := make([]*string, numRead)
	for i := range values {
		values[i] = &v
	}
	f.Add(packed("str8", values))
	f.Add(packed("false", make([]*string, numRead)))
	f.Fuzz(func(t *testing.T, s string) {
		rv, found, err := unpackRecord(s)
		if err == nil && found {
			rv.record() // must not panic, whatever the fields hold
		}
	})
}
