package web

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext checks that whatever safeNext lets through stays on this
// site, even as a browser would read it (backslashes as slashes, tabs and
// newlines dropped, percent-escapes decoded).
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{
		"/", "/account", "/a?b=c#d", "//evil", "/\\evil", "\\\\evil", "https://evil/", "/%2F%2Fevil",
		"/\t/evil", "javascript:alert(1)", "/%5C%5Cevil", "/ok/../..//evil", "/@evil", "/.//evil", "\x00/",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://sessionguard.test/page")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: neither the input nor /", next, got)
		}
		for _, form := range []string{got, browserForm(got), decodedForm(got)} {
			u, err := url.Parse(form)
			if err != nil {
				continue // a browser would not follow it either
			}
			if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
				t.Fatalf("safeNext(%q) = %q resolves to %q", next, got, r)
			}
		}
	})
}

// browserForm is how the WHATWG URL parser reads a path of a special
// scheme: tabs and newlines removed, backslashes as slashes.
func browserForm(s string) string {
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	return strings.ReplaceAll(s, "\\", "/")
}

func decodedForm(s string) string {
	path, _, _ := strings.Cut(s, "?")
	d, err := url.PathUnescape(path)
	if err != nil {
		return s
	}
	return browserForm(d)
}

func TestSafeNextTable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		safe bool
	}{
		{"/", true},
		{"/account", true},
		{"/admin/audit?user=bob&since=24h", true},
		{"/a#frag", true},
		{"/caf%C3%A9", true},
		{"/café", true},
		{"", false},
		{"account", false},
		{"//evil.example", false},
		{"///evil.example", false},
		{"/\\evil.example", false},
		{"/a\\b", false},
		{"https://evil.example", false},
		{"HTTPS://evil.example", false},
		{"mailto:x@evil.example", false},
		{"/\x00", false},
		{"/\x7f", false},
		{"/a\u0085b", false},
		{"/a b", false},
		{"/\xff", false},
		{"/%2f/evil.example", false},
		{"/%5c/evil.example", false},
		{"/" + strings.Repeat("x", maxNextLen), false},
	} {
		if got := safeNext(tc.in) == tc.in && tc.in != "/" || tc.in == "/"; got != tc.safe {
			t.Errorf("safeNext(%q) = %q, safe %v, want %v", tc.in, safeNext(tc.in), got, tc.safe)
		}
	}
}
