package account

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var fastParams = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashPasswordDefaultFormat(t *testing.T) {
	h, err := HashPassword("correct horse battery staple", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h) {
		t.Fatalf("hash %q is not an OWASP-parameter argon2id PHC string", h)
	}
	for pw, want := range map[string]bool{
		"correct horse battery staple":  true,
		"correct horse battery staple ": false,
		"Correct horse battery staple":  false,
		"":                              false,
	} {
		ok, err := CheckPasswordHash(h, pw)
		if err != nil || ok != want {
			t.Errorf("CheckPasswordHash(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if NeedsRehash(h, DefaultParams) {
		t.Error("a fresh default hash needs rehashing")
	}
}

func TestHashPasswordSalted(t *testing.T) {
	a, _ := HashPassword("same password here", fastParams)
	b, _ := HashPassword("same password here", fastParams)
	if a == b {
		t.Fatal("two hashes of one password are equal: no random salt")
	}
}

// The same characters typed on different systems (é precomposed, or e and a
// combining accent; a full-width digit) must match.
func TestHashPasswordNormalizes(t *testing.T) {
	h, _ := HashPassword("caf\u00e9 au lait, s'il vous pla\u00eet", fastParams)
	ok, err := CheckPasswordHash(h, "cafe\u0301 au lait, s'il vous plai\u0302t")
	if err != nil || !ok {
		t.Errorf("decomposed form does not match: %v, %v", ok, err)
	}
	h, _ = HashPassword("room \uff11\uff10\uff11 is open", fastParams)
	if ok, _ := CheckPasswordHash(h, "room 101 is open"); !ok {
		t.Error("full-width digits do not match their NFKC form")
	}
}

func TestHashPasswordRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{},
		{Memory: 64, Time: 0, Threads: 1},
		{Memory: 64, Time: 1, Threads: 0},
		{Memory: 7, Time: 1, Threads: 1},
		{Memory: 256<<10 + 1, Time: 1, Threads: 1},
		{Memory: 64, Time: 65, Threads: 1},
	} {
		if _, err := HashPassword("whatever it is", p); err == nil {
			t.Errorf("HashPassword with %+v succeeded", p)
		}
	}
}

func TestParseHashRejects(t *testing.T) {
	good, _ := HashPassword("whatever it is", fastParams)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, s := range []string{
		"",
		"garbage",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,keyid=x$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, // 4 TiB
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1048576,t=1,p=1$" + salt + "$" + key, // 1 GiB
		"$argon2id$v=19$m=64,t=1000000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "==",
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt[:10] + "\r\n" + salt[10:] + "$" + key, // the decoder would skip CR LF
		"$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key,                                   // salt too short
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$extra",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 600),
		"x$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key,
	} {
		_, err := parseHash(s)
		if !errors.Is(err, ErrMalformedHash) {
			t.Errorf("parseHash(%q) = %v, want ErrMalformedHash", s, err)
		}
		if ok, err := CheckPasswordHash(s, "whatever it is"); ok || err == nil {
			t.Errorf("CheckPasswordHash(%q) = %v, %v", s, ok, err)
		}
		if !NeedsRehash(s, fastParams) {
			t.Errorf("NeedsRehash(%q) = false for an unusable hash", s)
		}
	}
	if _, err := parseHash(good); err != nil {
		t.Fatalf("parseHash(%q): %v", good, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	old, _ := HashPassword("whatever it is", fastParams)
	for _, p := range []Params{
		{Memory: 128, Time: 1, Threads: 1},
		{Memory: 64, Time: 2, Threads: 1},
		{Memory: 64, Time: 1, Threads: 2},
	} {
		if !NeedsRehash(old, p) {
			t.Errorf("a hash with %+v does not need rehashing for %+v", fastParams, p)
		}
	}
	if NeedsRehash(old, fastParams) {
		t.Error("a hash with the current parameters needs rehashing")
	}
	// Another salt or key length than the ones we write is upgraded too.
	h, _ := parseHash(old)
	h.key = h.key[:16]
	if !NeedsRehash(h.String(), fastParams) {
		t.Error("a 16-byte key does not need rehashing")
	}
}

// Stored hashes come from the database, which is outside input: parsing
// must never panic, must accept only what it can write back unchanged, and
// must keep its limits. Hashing itself is not fuzzed: a valid string may ask
// for up to 256 MiB, which is the limit working, not a bug.
func FuzzParseHash(f *testing.F) {
	good, _ := HashPassword("whatever it is", fastParams)
	def, _ := HashPassword("whatever it is", DefaultParams)
	for _, s := range []string{good, def, "", "$argon2id$v=19$m=64,t=1,p=1$$", "$argon2id$v=19$m=0,t=0,p=0$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHash(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parseHash(%q) error %v does not wrap ErrMalformedHash", s, err)
			}
			return
		}
		if got := h.String(); got != s {
			t.Fatalf("parseHash accepted %q, which writes back as %q", s, got)
		}
		if h.params.Validate() != nil || len(h.salt) < minSaltLen || len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
			t.Fatalf("parseHash accepted %q beyond its limits: %+v", s, h)
		}
	})
}
