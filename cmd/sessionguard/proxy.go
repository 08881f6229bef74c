package main

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIPFunc returns the function that tells a request's client address,
// given to both the session Manager and the web server so that the session
// records, sign-in throttling per address and the audit log agree. With no
// trusted proxies it returns nil: both then use the host of r.RemoteAddr.
//
// For a request arriving from a trusted proxy, the client is read from
// X-Forwarded-For, from the right: each trusted proxy appends the address it
// received the request from, so the first untrusted address from the right is
// the client as far as trusted hops can vouch; anything to its left was
// written by the client and may be forged. A request from an untrusted peer
// keeps its own address whatever it claims.
func clientIPFunc(trusted []netip.Prefix) func(*http.Request) string {
	if len(trusted) == 0 {
		return nil
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer, ok := addrOf(r.RemoteAddr)
		if !ok {
			return r.RemoteAddr
		}
		client := peer
		if isTrusted(peer) {
			hops := forwardedFor(r.Header)
			for i := len(hops) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(hops[i])
				if err != nil {
					break // a malformed entry: trust nothing further left
				}
				client = a.Unmap()
				if !isTrusted(client) {
					break
				}
			}
		}
		return client.String()
	}
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
