// Package forwarded tells what a request looked like where it started, when
// it came through reverse proxies: the client's address (X-Forwarded-For),
// and the scheme and host the browser used (X-Forwarded-Proto and
// X-Forwarded-Host). Those headers are believed only from the proxies the
// operator named (-trusted-proxy); from any other peer anyone could write
// them, so the request is taken as it arrived.
//
// The web server (its cross-origin check), the gateway (the addresses it
// sends browsers to) and the command's client-address function all ask this
// package, so that they agree about one request.
package forwarded

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
)

// Proxies are the peers whose forwarding headers are believed: a request
// that arrives straight from an address in one of the prefixes describes the
// browser's request in X-Forwarded-*. The zero value trusts no one.
type Proxies []netip.Prefix

// Trusted reports whether r arrived straight from one of the proxies.
func (p Proxies) Trusted(r *http.Request) bool {
	peer, ok := addrOf(r.RemoteAddr)
	return ok && p.contains(peer)
}

func (p Proxies) contains(a netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(a) {
			return true
		}
	}
	return false
}

// PublicOrigin returns the scheme ("http" or "https") and the host
// ("sg.example.com", with a port when not the default) that the browser
// used for r. From a trusted proxy they are the last X-Forwarded-Proto and
// X-Forwarded-Host (the values the nearest proxy wrote), when well formed;
// otherwise, and from any other peer, r's own: https when it arrived over
// TLS, and its Host header.
func (p Proxies) PublicOrigin(r *http.Request) (scheme, host string) {
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if !p.Trusted(r) {
		return scheme, host
	}
	switch proto := strings.ToLower(lastValue(r.Header.Get("X-Forwarded-Proto"))); proto {
	case "http", "https":
		scheme = proto
	}
	if h := lastValue(r.Header.Get("X-Forwarded-Host")); validHost(h) {
		host = h
	}
	return scheme, host
}

// ClientIP returns r's client address. From a trusted proxy it is read from
// X-Forwarded-For, from the right: each trusted proxy appends the address it
// received the request from, so the first untrusted address from the right
// is the client as far as trusted hops can vouch; anything to its left was
// written by the client and may be forged. A request from any other peer
// keeps its own address whatever it claims.
func (p Proxies) ClientIP(r *http.Request) string {
	peer, ok := addrOf(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	client := peer
	if p.contains(peer) {
		hops := forwardedFor(r.Header)
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(hops[i])
			if err != nil {
				break // a malformed entry: trust nothing further left
			}
			client = a.Unmap()
			if !p.contains(client) {
				break
			}
		}
	}
	return client.String()
}

// WarnUntrusted returns h, logging one warning, the first time it happens,
// when a request from a peer outside the proxies carries X-Forwarded-For:
// the server is probably behind a proxy that -trusted-proxy does not name,
// so every client has the proxy's address (one throttling bucket for all,
// the proxy's address in the audit log) and the proxy's scheme and host are
// ignored. Once is enough to tell the operator; a client that writes the
// header itself must not fill the log.
func (p Proxies) WarnUntrusted(h http.Handler, log *slog.Logger) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("X-Forwarded-For")) > 0 && !p.Trusted(r) {
			once.Do(func() {
				log.Warn("X-Forwarded-For from a peer outside -trusted-proxy (logged once): if a reverse proxy is in front, "+
					"set -trusted-proxy to its address, or all clients share its address and its X-Forwarded-Proto and X-Forwarded-Host are ignored",
					"peer", r.RemoteAddr)
			})
		}
		h.ServeHTTP(w, r)
	})
}

// addrOf returns the IP address of a "host:port" remote address.
func addrOf(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// forwardedFor returns the addresses of every X-Forwarded-For header, in
// order, with surrounding space removed.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, line := range h.Values("X-Forwarded-For") {
		for part := range strings.SplitSeq(line, ",") {
			hops = append(hops, strings.TrimSpace(part))
		}
	}
	return hops
}

// lastValue returns the last of a comma-separated header's values: the one
// the nearest proxy wrote.
func lastValue(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// validHost reports whether h is a host with an optional port and nothing
// else, as a Host header holds: a value that would change the meaning of a
// URL built from it (a path, a user, a query) is refused.
func validHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/\\@?# \t") {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h && u.Hostname() != ""
}
