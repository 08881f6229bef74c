package account

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseRecoveryCode(f *testing.F) {
	for _, s := range []string{"7kqm-x2cd-9vhe-t4nb", "7KQM X2CD 9VHE T4NB", "oilo-0000-0000-0000", "7kqmx2cd9vhet4n", "7kqm-x2cd-9vhe-t4nbb", "uuuu-uuuu-uuuu-uuuu", "7kqm\u2014x2cd\u2014 9vhe\tt4nb", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		code, ok := parseRecoveryCode(typed)
		if !ok {
			if code != "" {
				t.Errorf("refused %q but returned %q", typed, code)
			}
			return
		}
		if len(code) != recoveryCodeChars || strings.Trim(code, recoveryAlphabet) != "" {
			t.Fatalf("parseRecoveryCode(%q) = %q, not %d characters of the alphabet", typed, code, recoveryCodeChars)
		}
		if !utf8.ValidString(typed) {
			t.Fatalf("parseRecoveryCode accepted invalid UTF-8 %q", typed)
		}
		// The canonical form and the shown form read back as themselves.
		for _, form := range []string{code, formatRecoveryCode(code), strings.ToUpper(formatRecoveryCode(code))} {
			if again, ok := parseRecoveryCode(form); !ok || again != code {
				t.Fatalf("parseRecoveryCode(%q) = %q, %v, want %q", form, again, ok, code)
			}
		}
		if _, err := recoveryEncoding.DecodeString(code); err != nil {
			t.Fatalf("canonical code %q does not decode: %v", code, err)
		}
	})
}

// The codes NewRecoveryCodes shows are read back by parseRecoveryCode as
// what was hashed.
func TestRecoveryCodeFormat(t *testing.T) {
	for n := range 100 {
		var b [recoveryCodeBytes]byte
		for i := range b {
			b[i] = byte(n*31 + i*37)
		}
		canonical := recoveryEncoding.EncodeToString(b[:])
		shown := formatRecoveryCode(canonical)
		if len(canonical) != recoveryCodeChars || len(shown) != recoveryCodeChars+3 {
			t.Fatalf("canonical %q, shown %q", canonical, shown)
		}
		if got, ok := parseRecoveryCode(shown); !ok || got != canonical {
			t.Fatalf("parseRecoveryCode(%q) = %q, %v", shown, got, ok)
		}
	}
}
