package web

import (
	"fmt"
	"net"
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

// RedirectHosts are the hosts besides the server's own that signing in may
// send a browser back to with an absolute "next" URL: the applications a
// gateway protects on other hosts. The zero value allows none.
type RedirectHosts struct {
	hosts  []string // lower case; "host" matches any port, "host:port" that port
	domain string   // lower case; it and its subdomains are allowed; empty: none
}

// NewRedirectHosts returns the RedirectHosts that allow each of hosts
// ("grafana.example.com", or with a port "wiki.example.com:8443") and, when
// cookieDomain is set, that domain and all its subdomains, which share the
// session cookie anyway. It refuses a value that is not a bare host name.
func NewRedirectHosts(hosts []string, cookieDomain string) (RedirectHosts, error) {
	var rh RedirectHosts
	for _, h := range hosts {
		u, err := url.Parse("http://" + h)
		if err != nil || h == "" || u.Host != h || u.Hostname() == "" || strings.ContainsAny(h, "/\\@?#") {
			return RedirectHosts{}, fmt.Errorf("%q is not a host name such as app.example.com or app.example.com:8443", h)
		}
		rh.hosts = append(rh.hosts, strings.ToLower(h))
	}
	if cookieDomain != "" {
		rh.domain = strings.ToLower(strings.TrimPrefix(cookieDomain, "."))
	}
	return rh, nil
}

// Allows reports whether host ("app.example.com" or "app.example.com:8443")
// is one signing in may return to.
func (rh RedirectHosts) Allows(host string) bool {
	host = strings.ToLower(host)
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	for _, h := range rh.hosts {
		if h == host || h == name {
			return true
		}
	}
	return rh.domain != "" && (name == rh.domain || strings.HasSuffix(name, "."+rh.domain))
}

// nextTarget returns where signing in sends the browser: next if it is a
// same-origin path (safeNext) or an absolute http(s) URL on a host rh
// allows, and "/" otherwise. An absolute URL passes the same character
// checks as a path.
func (rh RedirectHosts) nextTarget(next string) string {
	if isSafeNext(next) {
		return next
	}
	if rh.allowsURL(next) {
		return next
	}
	return "/"
}

func (rh RedirectHosts) allowsURL(next string) bool {
	if len(next) > maxNextLen || !utf8.ValidString(next) {
		return false
	}
	for _, c := range next {
		if c <= ' ' || c == 0x7f || c == '\\' || (c >= 0x80 && c <= 0x9f) {
			return false
		}
	}
	u, err := url.Parse(next)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Opaque != "" || u.Host == "" {
		return false
	}
	// The scheme must have been written in lower case with "//", so that
	// no browser reads the URL differently from url.Parse.
	if !strings.HasPrefix(next, u.Scheme+"://") {
		return false
	}
	return rh.Allows(u.Host)
}
