package account_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
)

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"BOB.Smith@Example.COM", "bob.smith@example.com"},
		{"a", "a"},
		{"7up", "7up"},
		{"x_y-z.w@v", "x_y-z.w@v"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
	} {
		got, err := account.NormalizeName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", strings.Repeat("a", 65), "-flag", ".hidden", "@home", "_x", "has space", "tab\there",
		"caf\u00e9", "\u0430lice" /* Cyrillic a */, "a/b", "a:b", "a\x00b", "a'b", "a;b", "\xff",
	} {
		if got, err := account.NormalizeName(in); !errors.Is(err, account.ErrInvalidName) {
			t.Errorf("NormalizeName(%q) = %q, %v; want ErrInvalidName", in, got, err)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"admin", "user"} {
		if r, err := account.ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", "users"} {
		if _, err := account.ParseRole(s); !errors.Is(err, account.ErrInvalidRole) {
			t.Errorf("ParseRole(%q) = %v, want ErrInvalidRole", s, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, pw := range []string{
		"correct horse battery staple",
		"fifteen chars!!",                             // exactly 15
		"Zürich ist schön im Mai",                     // non-ASCII letters
		"🔑🔑 my emoji passphrase 🔑",                    // emoji count as one character each
		"летний дождь над рекой",                      // another script
		strings.Repeat("abcdefghij", 12) + "klmnopqr", // 128, long but not a pure run
		"password is not all of this one",             // a common word inside a long phrase
	} {
		if err := account.CheckPassword("alice", pw); err != nil {
			t.Errorf("CheckPassword(%q) = %v, want accepted", pw, err)
		}
	}
	for _, tc := range []struct{ name, pw, why string }{
		{"alice", "", "at least 15"},
		{"alice", "short1!", "at least 15"},
		{"alice", "fourteen chars", "at least 15"},
		{"alice", "🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑", "at least 15"}, // 14 code points, 56 bytes
		{"alice", strings.Repeat("x", 129) + "yz", "at most 128"},
		{"alice", "tab\tinside this password", "control"},
		{"alice", "new\nline in this password", "control"},
		{"alice", "nul\x00byte in this password", "control"},
		{"alice", "bad utf8 \xff\xfe in this password", "UTF-8"},
		{"alice", "aaaaaaaaaaaaaaaa", "repeated"},
		{"alice", "abcabcabcabcabcabc", "repeated"},
		{"alice", "PasswordPASSWORD", "repeated"},
		{"alice", "abcdefghijklmnopq", "consecutive"},
		{"alice", "zyxwvutsrqponmlk", "consecutive"},
		{"alice", "789012345678901", "consecutive"},
		{"alice", "543210987654321", "consecutive"},
		{"alice", "alice_password!!", "easy to guess"},
		{"Alice", "ALICE ALICE ALICE 12", "easy to guess"},
		{"bob", "Password1234567!", "easy to guess"},
		{"bob", "qwertyuiop123456", "easy to guess"},
		{"bob", "SessionGuard2025!", "easy to guess"},
	} {
		err := account.CheckPassword(tc.name, tc.pw)
		if !errors.Is(err, account.ErrWeakPassword) {
			t.Errorf("CheckPassword(%q, %q) = %v, want ErrWeakPassword", tc.name, tc.pw, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("CheckPassword(%q, %q) = %q, want it to say %q", tc.name, tc.pw, err, tc.why)
		}
		if strings.Contains(err.Error(), "account:") {
			t.Errorf("message %q is not fit to show a user", err)
		}
	}
}
