package account

import (
	"strings"
	"testing"
	"time"
)

func TestTOTPStep(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(29, 999999999), 0},
		{time.Unix(30, 0), 1},
		{time.Unix(59, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(-30, 0), -1},
		{time.Unix(-31, 0), -2},
	} {
		if got := totpStep(tc.t); got != tc.want {
			t.Errorf("totpStep(%d s) = %d, want %d", tc.t.Unix(), got, tc.want)
		}
	}
}

func FuzzParseTOTPCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "123-456", " 12 34 56 ", "12345", "1234567", "12a456", "１２３４５６", "123\u2013456", "\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		code, ok := parseTOTPCode(typed)
		if !ok {
			if code != "" {
				t.Errorf("refused %q but returned %q", typed, code)
			}
			return
		}
		if len(code) != TOTPDigits || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("parseTOTPCode(%q) = %q, not %d digits", typed, code, TOTPDigits)
		}
		// What was accepted is the digits typed, in order, and nothing
		// but separators besides.
		var digits strings.Builder
		for _, r := range typed {
			if '0' <= r && r <= '9' {
				digits.WriteRune(r)
			} else if !isCodeSeparator(r) {
				t.Fatalf("parseTOTPCode(%q) accepted %q", typed, r)
			}
		}
		if digits.String() != code {
			t.Fatalf("parseTOTPCode(%q) = %q, want %q", typed, code, digits.String())
		}
		if again, ok := parseTOTPCode(code); !ok || again != code {
			t.Fatalf("parseTOTPCode is not idempotent on %q: %q, %v", code, again, ok)
		}
	})
}
