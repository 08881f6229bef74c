package account

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Password length limits, in characters (Unicode code points after NFKC
// normalisation, as NIST SP 800-63B-4 §3.1.1.2 counts them).
const (
	// MinPasswordLength is 15 because a password is this server's only
	// authentication factor: NIST SP 800-63B-4 asks for at least 15
	// characters then (8 only when the password is one factor of several).
	// A passphrase of four common words meets it and is easier to remember
	// than the 8-character jumbles that composition rules produce.
	MinPasswordLength = 15
	// MaxPasswordLength is well above the 64 characters the standard asks
	// verifiers to accept, room for any passphrase or password manager,
	// while bounding what a request can make the server normalise and hash.
	MaxPasswordLength = 128
	// minOwnLength is how many characters must be left once the guessable
	// parts (the user name, the service name, common words) are taken out.
	minOwnLength = 8
)

// guessable are fragments found at the top of every list of leaked
// passwords, keyboard walks and the service's own name. A password that is
// little more than these is among an attacker's first guesses, however long.
var guessable = []string{
	"sessionguard", "password", "passw0rd", "p@ssword", "p@ssw0rd", "letmein", "welcome",
	"changeme", "iloveyou", "trustno1", "secret", "admin", "login", "master",
	"qwertyuiop", "qwertzuiop", "azertyuiop", "asdfghjkl", "zxcvbnm", "1qaz2wsx3edc", "1q2w3e4r5t",
	"qwerty", "qwertz", "azerty", "asdfgh", "zxcvbn", "1qaz2wsx",
	"1234567890", "0987654321", "123456", "654321", "abc123",
	"monkey", "dragon", "football", "baseball", "sunshine", "princess", "shadow",
}

func weakPassword(format string, args ...any) error {
	return &inputError{ErrWeakPassword, fmt.Sprintf(format, args...)}
}

// CheckPassword reports whether password may be chosen by the user called
// name, and if not, why, with an error wrapping ErrWeakPassword whose message
// can be shown to that user. The policy (see the package documentation):
//
//   - between MinPasswordLength and MaxPasswordLength characters, of valid
//     UTF-8, with no control characters (tab, newline, ...);
//   - not one short pattern repeated ("abcabcabc...", "aaaa..."), nor a run
//     of consecutive characters ("abcdef...", "987654...");
//   - still at least 8 characters of its own once the user name, the service
//     name and common passwords and keyboard walks are taken out of it.
//
// There are no composition rules: spaces, any script and emoji are welcome.
func CheckPassword(name, password string) error {
	if !utf8.ValidString(password) {
		return weakPassword("password must be text (valid UTF-8)")
	}
	p := norm.NFKC.String(password)
	n := utf8.RuneCountInString(p)
	switch {
	case n < MinPasswordLength:
		return weakPassword("password must have at least %d characters (it has %d); a few unrelated words make a good one", MinPasswordLength, n)
	case n > MaxPasswordLength:
		return weakPassword("password must have at most %d characters (it has %d)", MaxPasswordLength, n)
	case strings.ContainsFunc(p, unicode.IsControl):
		return weakPassword("password must not contain control characters such as tab or newline")
	}
	lower := []rune(strings.ToLower(p))
	if repeated(lower) {
		return weakPassword("password must not be one short pattern repeated")
	}
	if consecutive(lower) {
		return weakPassword("password must not be a run of consecutive characters such as abcdef or 123456")
	}
	rest := string(lower)
	if n, err := NormalizeName(name); err == nil && len(n) >= 3 {
		rest = strings.ReplaceAll(rest, n, "")
	}
	for _, g := range guessable {
		rest = strings.ReplaceAll(rest, g, "")
	}
	if utf8.RuneCountInString(strings.TrimSpace(rest)) < minOwnLength {
		return weakPassword("password is too easy to guess: it is mostly the user name, the service name, or common passwords and keyboard patterns")
	}
	return nil
}

// repeated reports whether s is a shorter string repeated.
func repeated(s []rune) bool {
	for unit := 1; unit <= len(s)/2; unit++ {
		if len(s)%unit != 0 {
			continue
		}
		same := true
		for i := unit; i < len(s) && same; i++ {
			same = s[i] == s[i-unit]
		}
		if same {
			return true
		}
	}
	return false
}

// consecutive reports whether each character of s follows the one before it
// in one direction: "abcdef", "fedcba", "4567890123" (digits wrap around).
func consecutive(s []rune) bool {
	if len(s) < 2 {
		return false
	}
	up, down := true, true
	for i := 1; i < len(s); i++ {
		up = up && s[i] == shift(s[i-1], 1)
		down = down && s[i] == shift(s[i-1], -1)
	}
	return up || down
}

// shift returns the character d places after r, wrapping digits around.
func shift(r rune, d rune) rune {
	if '0' <= r && r <= '9' {
		return '0' + (r-'0'+d+10)%10
	}
	return r + d
}
