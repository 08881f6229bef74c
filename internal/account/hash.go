package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are the cost parameters of argon2id.
type Params struct {
	// Memory is in KiB. The default is 19456 (19 MiB).
	Memory uint32
	// Time is the number of passes over the memory. The default is 2.
	Time uint32
	// Threads is the degree of parallelism. The default is 1.
	Threads uint8
}

// DefaultParams are OWASP's recommended argon2id parameters (Password
// Storage Cheat Sheet: m=19 MiB, t=2, p=1), about 45 ms of one core per
// hash on a current server. Raise them, never lower them, in production:
// stored hashes are upgraded as their users sign in.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Limits on parameters, checked for configured ones and for each stored hash
// before it is used: a hash read from the database is outside input, and a
// corrupted one must not make a sign-in allocate gigabytes or spin for
// minutes. 256 MiB is five times OWASP's most memory-hungry recommendation
// (46 MiB), and with one hash per core already more than a small server has.
const (
	maxMemory  = 256 << 10 // KiB: 256 MiB
	maxTime    = 64
	maxThreads = 64
	saltLen    = 16 // bytes, as RFC 9106 recommends
	keyLen     = 32 // bytes
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Validate reports whether p can be used: at least 8 KiB of memory per
// thread (argon2's own minimum), at least one pass and one thread, and at
// most 256 MiB, 64 passes and 64 threads.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("account: argon2 threads %d out of range 1..%d", p.Threads, maxThreads)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("account: argon2 time %d out of range 1..%d", p.Time, maxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("account: argon2 memory %d KiB out of range %d..%d", p.Memory, 8*uint32(p.Threads), maxMemory)
	}
	return nil
}

// b64 is PHC's base64: the standard alphabet without padding. Strict refuses
// encodings with stray low bits, so each hash has one spelling.
var b64 = base64.RawStdEncoding.Strict()

// ErrMalformedHash is returned for a stored password hash that is not a
// valid argon2id PHC string within the limits of Params.Validate.
var ErrMalformedHash = errors.New("account: malformed password hash")

// HashPassword returns the argon2id hash of password with a fresh random
// salt, as a PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>. The
// password is NFKC-normalised first, so that the same characters typed on
// different systems hash the same.
func HashPassword(password string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := deriveKey(password, salt, p, keyLen)
	return parsedHash{params: p, salt: salt, key: key}.String(), nil
}

// CheckPasswordHash reports whether password matches the PHC string
// encoded, comparing in constant time. The error, wrapping ErrMalformedHash,
// is for an encoded string it cannot use; it never panics, whatever the input.
func CheckPasswordHash(encoded, password string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	key := deriveKey(password, h.salt, h.params, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// derived, when set, is told the parameters of every key derivation. It
// lets a test check that a failed sign-in costs the same argon2 work
// whatever the reason, by counting the work instead of timing it.
var derived atomic.Pointer[func(Params)]

// deriveKey is argon2id, the only place a password is hashed.
func deriveKey(password string, salt []byte, p Params, keyLen uint32) []byte {
	if f := derived.Load(); f != nil {
		(*f)(p)
	}
	return argon2.IDKey(normalize(password), salt, p.Time, p.Memory, p.Threads, keyLen)
}

// NeedsRehash reports whether the hash encoded should be replaced by one made
// with p: its parameters differ, its salt or key length is not the current
// one, or it cannot be parsed.
func NeedsRehash(encoded string, p Params) bool {
	h, err := parseHash(encoded)
	return err != nil || h.params != p || len(h.salt) != saltLen || len(h.key) != keyLen
}

func normalize(password string) []byte { return []byte(norm.NFKC.String(password)) }

type parsedHash struct {
	params    Params
	salt, key []byte
}

// String returns the PHC string of h, which parseHash reads back.
func (h parsedHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parseHash parses a PHC argon2id string strictly: the fields in order,
// decimal numbers without signs or leading zeros, canonical base64, and
// every value within the limits of Params.Validate.
func parseHash(s string) (parsedHash, error) {
	bad := func(why string) (parsedHash, error) {
		return parsedHash{}, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	if len(s) > 512 {
		return bad("too long")
	}
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" {
		return bad("want $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if fields[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if v, ok := strings.CutPrefix(fields[2], "v="); !ok || v != strconv.Itoa(argon2.Version) {
		return bad("version is not v=19")
	}
	ps := strings.Split(fields[3], ",")
	if len(ps) != 3 {
		return bad("want parameters m=...,t=...,p=...")
	}
	var nums [3]uint32
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return bad("want parameters m=...,t=...,p=...")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return bad("parameter " + name + " is not a number")
		}
		nums[i] = uint32(n)
	}
	if nums[2] > maxThreads {
		return bad("too many threads")
	}
	h := parsedHash{params: Params{Memory: nums[0], Time: nums[1], Threads: uint8(nums[2])}}
	if err := h.params.Validate(); err != nil {
		return bad(err.Error())
	}
	var ok bool
	if h.salt, ok = decodeB64(fields[4]); !ok || len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen {
		return bad("bad salt")
	}
	if h.key, ok = decodeB64(fields[5]); !ok || len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
		return bad("bad hash")
	}
	return h, nil
}

// decodeB64 decodes PHC base64. The decoder skips CR and LF, which would let
// a second spelling of the same hash through, so anything outside the
// alphabet is refused first.
func decodeB64(s string) ([]byte, bool) {
	for i := range len(s) {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
		default:
			return nil, false
		}
	}
	b, err := b64.DecodeString(s)
	return b, err == nil
}
