package passkey

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Config names the relying party: the site the passkeys belong to.
type Config struct {
	// RPID is the relying party ID: the host name (no scheme, no port) the
	// passkeys are scoped to, or a registrable suffix of it. A passkey made
	// for one RPID never signs in anywhere else, so changing it orphans
	// every passkey. Required.
	RPID string

	// RPDisplayName is the name the browser shows when it asks for a
	// passkey. The default is "sessionguard".
	RPDisplayName string

	// Origins are the scheme://host[:port] origins whose pages may run the
	// ceremonies; an answer collected on any other page is refused.
	// Required.
	Origins []string
}

// ConfigFromURL derives the Config of a server reached at baseURL (its
// public URL, as in -base-url). The RPID is the URL's host, or cookieDomain
// when given (a gateway whose cookie covers sibling hosts wants passkeys
// valid across them too), which must then be the host or a parent domain of
// it. Browsers run WebAuthn only in secure contexts, so the URL must be
// https, except on localhost.
func ConfigFromURL(baseURL, cookieDomain string) (Config, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return Config{}, fmt.Errorf("passkey: base URL %q is not an http(s) URL with a host", baseURL)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return Config{}, fmt.Errorf("passkey: base URL %q has an IP address for host: passkeys need a domain name (use localhost for a local server)", baseURL)
	}
	if u.Scheme == "http" && host != "localhost" && !strings.HasSuffix(host, ".localhost") {
		return Config{}, fmt.Errorf("passkey: base URL %q is not https: browsers offer passkeys only to https sites and localhost", baseURL)
	}
	rpID := host
	if cookieDomain != "" {
		domain := strings.ToLower(strings.TrimPrefix(cookieDomain, "."))
		if host != domain && !strings.HasSuffix(host, "."+domain) {
			return Config{}, fmt.Errorf("passkey: cookie domain %q does not cover the base URL's host %q", cookieDomain, host)
		}
		rpID = domain
	}
	// The browser's origin leaves the scheme's default port out.
	origin := u.Scheme + "://" + host
	if port := u.Port(); port != "" && !(u.Scheme == "https" && port == "443") && !(u.Scheme == "http" && port == "80") {
		origin += ":" + port
	}
	return Config{RPID: rpID, RPDisplayName: "sessionguard", Origins: []string{origin}}, nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.RPDisplayName == "" {
		c.RPDisplayName = "sessionguard"
	}
	return c
}
