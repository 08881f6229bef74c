package redisstore

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// A record is a Redis hash with these fields. Times and durations are
// decimal int64 nanoseconds, so they keep their nanoseconds and the scripts
// can compare them exactly; names are short because every byte is paid once
// per session.
const (
	fieldID         = "id"
	fieldUser       = "u"
	fieldHash       = "th" // base64url token hash, as in the pointer key
	fieldCreated    = "ca"
	fieldAuth       = "aa"
	fieldLast       = "la"
	fieldIdle       = "it"
	fieldAbsolute   = "at"
	fieldExpires    = "ex" // Expires.At
	fieldReason     = "er" // Expires.Reason
	fieldPersistent = "p"  // "1", absent when not persistent
	fieldVersion    = "v"  // renewals so far, absent before the first; see indexMember
	fieldIP         = "ip" // absent when empty
	fieldUserAgent  = "ua" // absent when empty
	fieldData       = "d"  // absent when there is no data; see encodeData
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// msFloor and msCeil convert nanoseconds to milliseconds, rounding down and
// up (integer division in Go rounds toward zero, which differs for negative
// times).
func msFloor(ns int64) int64 {
	ms := ns / 1e6
	if ns%1e6 < 0 {
		ms--
	}
	return ms
}

func msCeil(ns int64) int64 {
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return ms
}

// expiryArgs checks an expiry the Manager handed over and returns its
// instant in nanoseconds and its reason, as the scripts take them.
func expiryArgs(exp session.Expiry) (int64, string, error) {
	if exp.Reason != session.ReasonIdle && exp.Reason != session.ReasonAbsolute {
		return 0, "", fmt.Errorf("redisstore: expiry reason %q is neither idle nor absolute", exp.Reason)
	}
	at, err := session.UnixNanos("expiry", exp.At)
	return at, string(exp.Reason), err
}

// recordFields returns rec as the field/value pairs of its hash, and its
// expiry in nanoseconds, from which its keys' TTLs and index scores come.
func recordFields(rec session.Record) (fields []any, expires int64, err error) {
	if rec.ID == "" {
		return nil, 0, errors.New("redisstore: record has no ID")
	}
	created, err1 := session.UnixNanos("CreatedAt", rec.CreatedAt)
	auth, err2 := session.UnixNanos("AuthenticatedAt", rec.AuthenticatedAt)
	last, err3 := session.UnixNanos("LastActivity", rec.LastActivity)
	exp, reason, err4 := expiryArgs(rec.Expires)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, 0, err
	}
	fields = []any{
		fieldID, rec.ID,
		fieldUser, rec.UserID,
		fieldHash, rec.TokenHash.String(),
		fieldCreated, itoa(created),
		fieldAuth, itoa(auth),
		fieldLast, itoa(last),
		fieldIdle, itoa(int64(rec.Policy.IdleTimeout)),
		fieldAbsolute, itoa(int64(rec.Policy.AbsoluteTimeout)),
		fieldExpires, itoa(exp),
		fieldReason, reason,
	}
	if rec.Persistent {
		fields = append(fields, fieldPersistent, "1")
	}
	if rec.IP != "" {
		fields = append(fields, fieldIP, rec.IP)
	}
	if rec.UserAgent != "" {
		fields = append(fields, fieldUserAgent, rec.UserAgent)
	}
	if d := encodeData(rec.Data); d != "" {
		fields = append(fields, fieldData, d)
	}
	return fields, exp, nil
}

// readOrder is the order in which a record's fields are read: the order of
// the Get script's packed reply (see getScript) and of recordValues. The
// version is not among them: Get and List do not need it.
var readOrder = [...]string{
	fieldID, fieldUser, fieldHash, fieldCreated, fieldAuth, fieldLast, fieldIdle, fieldAbsolute,
	fieldExpires, fieldReason, fieldPersistent, fieldIP, fieldUserAgent, fieldData,
}

// Positions in readOrder.
const (
	posID = iota
	posUser
	posHash
	posCreated
	posAuth
	posLast
	posIdle
	posAbsolute
	posExpires
	posReason
	posPersistent
	posIP
	posUserAgent
	posData
	numRead
)

// recordValues are a record's fields in readOrder, and which of them the
// hash has.
type recordValues struct {
	v       [numRead]string
	present [numRead]bool
}

// valuesOf picks a record's fields out of a map of its hash.
func valuesOf(m map[string]string) recordValues {
	var rv recordValues
	for i, f := range readOrder {
		rv.v[i], rv.present[i] = m[f]
	}
	return rv
}

// unpackRecord reads a record's fields as the Get script returns them: a
// MessagePack array of the fields of readOrder, each a string or, where the
// hash lacks the field, false or nil. The values are substrings of s, so
// reading them copies nothing. found is false for an empty s or a record
// with none of the fields: there is no record.
func unpackRecord(s string) (rv recordValues, found bool, err error) {
	if s == "" {
		return rv, false, nil
	}
	n, s, ok := msgpackArray(s)
	if !ok || n != numRead {
		return rv, false, errMalformed
	}
	for i := range rv.v {
		var v string
		var present bool
		if v, present, s, ok = msgpackString(s); !ok {
			return rv, false, errMalformed
		}
		rv.v[i], rv.present[i] = v, present
		found = found || present
	}
	if s != "" {
		return rv, false, errMalformed
	}
	return rv, found, nil
}

// errMalformed is the error of a Get reply that is not what the script sends.
var errMalformed = errors.New("redisstore: malformed record in a reply")

// msgpackArray reads the header of a MessagePack array: its length and
// what follows.
func msgpackArray(s string) (n int, rest string, ok bool) {
	switch {
	case s == "":
		return 0, s, false
	case s[0]&0xf0 == 0x90: // fixarray
		return int(s[0] & 0x0f), s[1:], true
	case s[0] == 0xdc && len(s) >= 3: // array 16
		return int(s[1])<<8 | int(s[2]), s[3:], true
	}
	return 0, s, false
}

// msgpackString reads a MessagePack string or binary (a value) or nil or
// false (none), and returns what follows.
func msgpackString(s string) (v string, present bool, rest string, ok bool) {
	if s == "" {
		return "", false, s, false
	}
	var n, head int
	switch c := s[0]; {
	case c == 0xc0 || c == 0xc2: // nil, false
		return "", false, s[1:], true
	case c&0xe0 == 0xa0: // fixstr
		n, head = int(c&0x1f), 1
	case (c == 0xd9 || c == 0xc4) && len(s) >= 2: // str 8, bin 8
		n, head = int(s[1]), 2
	case (c == 0xda || c == 0xc5) && len(s) >= 3: // str 16, bin 16
		n, head = int(s[1])<<8|int(s[2]), 3
	case (c == 0xdb || c == 0xc6) && len(s) >= 5: // str 32, bin 32
		n, head = int(s[1])<<24|int(s[2])<<16|int(s[3])<<8|int(s[4]), 5
	default:
		return "", false, s, false
	}
	if n > len(s)-head {
		return "", false, s, false
	}
	return s[head : head+n], true, s[head+n:], true
}

// parseRecord reads a record from its hash's fields.
func parseRecord(m map[string]string) (session.Record, error) {
	rv := valuesOf(m)
	return rv.record()
}

// record reads the record rv holds.
func (rv *recordValues) record() (session.Record, error) {
	var rec session.Record
	rec.ID = rv.v[posID]
	bad := func(what string, err error) (session.Record, error) {
		return session.Record{}, fmt.Errorf("redisstore: record %q has an unreadable %s: %w", rec.ID, what, err)
	}
	if rec.ID == "" {
		return bad("ID", errors.New("missing"))
	}
	if !rv.present[posUser] {
		return bad("user ID", errors.New("missing"))
	}
	rec.UserID = rv.v[posUser]
	h, err := parseHash(rv.v[posHash])
	if err != nil {
		return bad("token hash", err)
	}
	rec.TokenHash = h
	var ns [5]int64
	for i, pos := range [5]int{posCreated, posAuth, posLast, posIdle, posAbsolute} {
		if ns[i], err = strconv.ParseInt(rv.v[pos], 10, 64); err != nil {
			return bad("field "+readOrder[pos], err)
		}
	}
	rec.CreatedAt, rec.AuthenticatedAt, rec.LastActivity = fromNanos(ns[0]), fromNanos(ns[1]), fromNanos(ns[2])
	rec.Policy = session.Policy{IdleTimeout: time.Duration(ns[3]), AbsoluteTimeout: time.Duration(ns[4])}
	if rv.present[posExpires] {
		at, err := strconv.ParseInt(rv.v[posExpires], 10, 64)
		reason := session.EndReason(rv.v[posReason])
		if err == nil && reason != session.ReasonIdle && reason != session.ReasonAbsolute {
			err = fmt.Errorf("reason %q", reason)
		}
		if err != nil {
			return bad("expiry", err)
		}
		rec.Expires = session.Expiry{At: fromNanos(at), Reason: reason}
	} else {
		rec.Expires = legacyExpiry(rec)
	}
	rec.Persistent = rv.v[posPersistent] == "1"
	rec.IP, rec.UserAgent = rv.v[posIP], rv.v[posUserAgent]
	if rec.Data, err = decodeData(rv.v[posData]); err != nil {
		return bad("data", err)
	}
	return rec, nil
}

// legacyExpiry is the expiry of a record written before records kept one:
// the earlier of its idle and absolute deadlines, absolute on a tie, as the
// Manager computed it then. It is computed once per such record, when it is
// first upgraded (see Store.upgrade), and read from the record from then on.
func legacyExpiry(rec session.Record) session.Expiry {
	idle, abs := rec.IdleDeadline(), rec.AbsoluteDeadline()
	if !abs.After(idle) {
		return session.Expiry{At: abs, Reason: session.ReasonAbsolute}
	}
	return session.Expiry{At: idle, Reason: session.ReasonIdle}
}

// indexMember is a record's member in the global expiry index: its
// reference, followed by "#" and its version once Renew has changed it.
// Renew, which alone can move an expiry earlier, gives the record a new
// member: on a Cluster a sweep that read the record before the renewal may
// still re-score the old member afterwards (the index and the record are in
// different slots), and that write must not hide the new, earlier score.
func indexMember(ref, version string) string {
	if version == "" || version == "0" {
		return ref
	}
	return ref + "#" + version
}

// splitMember returns the reference and version of an index member.
func splitMember(m string) (ref, version string) {
	i := strings.LastIndexByte(m, '#')
	if i < 0 || i == len(m)-1 || strings.Trim(m[i+1:], "0123456789") != "" {
		return m, "0"
	}
	return m[:i], m[i+1:]
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// parseHash reads a token hash in the unpadded base64url of
// session.TokenHash.String.
func parseHash(s string) (session.TokenHash, error) {
	var h session.TokenHash
	// Copied to an array, the text is decoded without an allocation: Get
	// reads one hash per request.
	var text [hashTextLen]byte
	if len(s) != len(text) {
		return h, fmt.Errorf("%d characters, want %d", len(s), len(text))
	}
	copy(text[:], s)
	if _, err := base64.RawURLEncoding.Strict().Decode(h[:], text[:]); err != nil {
		return h, err
	}
	return h, nil
}

// hashTextLen is the length of a token hash in unpadded base64url: six
// bits a character, rounded up.
const hashTextLen = (len(session.TokenHash{})*8 + 5) / 6

// pairs turns a script's flat field/value reply (HGETALL's form) into a map.
func pairs(reply any) (map[string]string, error) {
	list, ok := reply.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, fmt.Errorf("redisstore: unexpected reply %T from the server", reply)
	}
	m := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, ok1 := list[i].(string)
		v, ok2 := list[i+1].(string)
		if !ok1 || !ok2 {
			return nil, errors.New("redisstore: unexpected non-string field in a record")
		}
		m[k] = v
	}
	return m, nil
}

// encodeData encodes a record's data as a sequence of length-prefixed keys
// and values (uvarint length, then the bytes), in key order. Unlike JSON it
// keeps every string exactly, invalid UTF-8 and NUL bytes included, and it
// needs no escaping. Empty data encodes as "", which is stored as no field
// at all, so nil and empty maps read back alike, as nil.
func encodeData(data map[string]string) string {
	if len(data) == 0 {
		return ""
	}
	size := 0
	for k, v := range data {
		size += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, size)
	for _, k := range slices.Sorted(maps.Keys(data)) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(data[k])))
		b = append(b, data[k]...)
	}
	return string(b)
}

// decodeData is the inverse of encodeData. It rejects malformed input
// rather than guess.
func decodeData(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	m := make(map[string]string)
	next := func() (string, error) {
		n, w := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if w <= 0 || n > uint64(len(s)-w) {
			return "", errors.New("malformed length")
		}
		v := s[w : w+int(n)]
		s = s[w+int(n):]
		return v, nil
	}
	for s != "" {
		k, err := next()
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, fmt.Errorf("key %q has no value", k)
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}
