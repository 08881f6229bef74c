package main

import (
	"net/http"
	"net/netip"

	"github.com/sessionguard/sessionguard/internal/forwarded"
)

// clientIPFunc returns the function that tells a request's client address,
// given to both the session Manager and the web server so that the session
// records, sign-in throttling per address and the audit log agree: from a
// trusted proxy, X-Forwarded-For read from the right (see
// forwarded.Proxies.ClientIP). With no trusted proxies it returns nil: both
// then use the host of r.RemoteAddr.
func clientIPFunc(trusted []netip.Prefix) func(*http.Request) string {
	if len(trusted) == 0 {
		return nil
	}
	return forwarded.Proxies(trusted).ClientIP
}
