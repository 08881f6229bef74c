package web

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxNextLen bounds a "next" target: a real page's path and query fit many
// times over; anything longer is not worth honouring.
const maxNextLen = 2048

// safeNext returns next if it is a same-origin relative path ("/account",
// "/admin?user=bob"), and "/" otherwise. It refuses what a browser could
// resolve to another origin or that a proxy could read differently:
// absolute URLs, scheme-relative "//host", "/\host" (browsers treat "\" as
// "/"), any backslash, control characters and spaces (browsers strip tabs
// and newlines, so "/\t/evil" would become "//evil"), invalid UTF-8, and
// overlong values.
func safeNext(next string) string {
	if !isSafeNext(next) {
		return "/"
	}
	return next
}

func isSafeNext(next string) bool {
	if next == "" || len(next) > maxNextLen || next[0] != '/' || !utf8.ValidString(next) {
		return false
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return false
	}
	for _, c := range next {
		if c <= ' ' || c == 0x7f || c == '\\' || (c >= 0x80 && c <= 0x9f) {
			return false
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// A path that percent-decodes to "//" or "/\" could be turned into a
	// scheme-relative URL by a component that decodes before redirecting.
	if p := u.Path; strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	return true
}
