package session

import (
	"net/http"
	"strings"
)

// CookieConfig says how the session token travels. The zero value is the
// secure default: a cookie named "__Host-session", Secure, HttpOnly,
// SameSite=Lax, Path=/, no Domain and no Max-Age or Expires, so it ends with
// the browser while the server enforces the real limits.
type CookieConfig struct {
	// Name is the cookie's name without its prefix. The default is "session".
	// The prefix is chosen from the other settings: "__Host-" normally,
	// "__Secure-" when Domain is set, none when InsecureAllowHTTP is set.
	Name string

	// SameSite is the SameSite attribute. The default is http.SameSiteLaxMode,
	// which keeps the session on links from other sites while refusing it on
	// their cross-site POSTs. http.SameSiteStrictMode is stricter;
	// http.SameSiteNoneMode is refused by New.
	SameSite http.SameSite

	// Domain shares the cookie with the domain's subdomains. Empty (the
	// default) keeps it on the exact host, which is what "__Host-" enforces.
	Domain string

	// InsecureAllowHTTP drops the Secure attribute so that a browser sends the
	// cookie over plain HTTP to a host other than localhost. The token can
	// then be read by anyone on the network path. It is for development only,
	// and New logs a warning when it is set. Browsers already accept Secure
	// cookies from http://localhost, so local development does not need it.
	InsecureAllowHTTP bool
}

// cookieName returns the cookie's full name, prefix included.
func (c CookieConfig) cookieName() string {
	name := c.Name
	if name == "" {
		name = "session"
	}
	switch {
	case c.InsecureAllowHTTP:
		return name
	case c.Domain != "":
		return "__Secure-" + name
	default:
		return "__Host-" + name
	}
}

func (c CookieConfig) sameSite() http.SameSite {
	if c.SameSite == http.SameSiteDefaultMode || c.SameSite == 0 {
		return http.SameSiteLaxMode
	}
	return c.SameSite
}

// sessionCookie returns the Set-Cookie that hands token to the browser; an
// empty token returns one that deletes the cookie, with the same name,
// Secure and Path so that browsers accept it.
func (c CookieConfig) sessionCookie(name, token string) *http.Cookie {
	ck := &http.Cookie{
		Name:     name,
		Value:    token,
		Path:     "/",
		Domain:   c.Domain,
		Secure:   !c.InsecureAllowHTTP,
		HttpOnly: true,
		SameSite: c.sameSite(),
	}
	if token == "" {
		ck.MaxAge = -1 // sent as Max-Age=0: delete now
	}
	return ck
}

// tokenFrom returns the value of the first cookie called name in r. It looks
// at the raw header instead of r.Cookies, which would allocate every cookie
// of the request on the hot path.
func tokenFrom(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				return strings.Trim(part[len(name)+1:], `"`), true
			}
		}
	}
	return "", false
}
