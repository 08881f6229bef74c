package session

import (
	"crypto/sha256"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParseToken(f *testing.F) {
	tok, _ := newToken()
	for _, seed := range []string{tok, "", "abc", tok + "A", tok[:42] + "B", "\xff" + tok[1:], strings.Repeat("-", 43), strings.Repeat("_", 43), strings.Repeat("A", 43), strings.Repeat("A", 42) + "E", tok[:20] + "=" + tok[21:]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := parseToken(s)
		b, err := tokenEncoding.DecodeString(s)
		canonical := err == nil && len(b) == tokenBytes && tokenEncoding.EncodeToString(b) == s
		// Exactly the canonical 256-bit tokens pass, and they hash as issued.
		switch {
		case ok && !canonical:
			t.Fatalf("accepted a non-canonical token %q", s)
		case !ok && canonical:
			t.Fatalf("refused the canonical token %q", s)
		case ok && h != sha256.Sum256([]byte(s)):
			t.Fatal("wrong hash")
		}
	})
}

func FuzzTokenFromCookieHeader(f *testing.F) {
	tok, _ := newToken()
	for _, seed := range []string{
		"__Host-session=" + tok,
		"a=b; __Host-session=" + tok + "; c=d",
		`__Host-session="` + tok + `"`,
		"__Host-session=",
		"__Host-session",
		";;;==;",
		"__Host-session=\xff\xfe",
		strings.Repeat("x=y; ", 1000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", header)
		v, ok := tokenFrom(r, "__Host-session")
		if ok && !strings.Contains(header, v) {
			t.Fatalf("value %q is not from the header", v)
		}
		parseToken(v) // must not panic on whatever the header held
	})
}

func TestNewTokenForm(t *testing.T) {
	tok, h := newToken()
	got, ok := parseToken(tok)
	if !ok || got != h || len(tok) != 43 {
		t.Fatalf("a fresh token does not parse: %q", tok)
	}
	if id := newPublicID(); len(id) != 22 || strings.Contains(tok, id) {
		t.Fatalf("public ID %q", id)
	}
}
