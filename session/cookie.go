package session

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CookieConfig says how the session token travels. The zero value is the
// secure default: a cookie named "__Host-session", Secure, HttpOnly,
// SameSite=Lax, Path=/, no Domain and no Max-Age or Expires, so it ends with
// the browser while the server enforces the real limits.
type CookieConfig struct {
	// Name is the cookie's full name, used as written in every environment.
	// The default is "__Host-session", or "__Secure-session" when Domain is
	// set. The browser enforces what the prefixes promise: a "__Host-"
	// cookie is Secure, for Path=/ and this host only; a "__Secure-" one is
	// Secure. New refuses settings that would break the promise of the name.
	Name string

	// Path limits the cookie to a part of the site. The default is "/". A
	// "__Host-" cookie must have Path=/.
	Path string

	// SameSite is the SameSite attribute. The default is http.SameSiteLaxMode,
	// which keeps the session on links from other sites while refusing it on
	// their cross-site POSTs. http.SameSiteStrictMode is stricter;
	// http.SameSiteNoneMode is refused by New.
	SameSite http.SameSite

	// Domain shares the cookie with the domain's subdomains. Empty (the
	// default) keeps it on the exact host, which is what "__Host-" enforces.
	Domain string

	// Partitioned sets the Partitioned attribute (CHIPS): for an application
	// embedded in other sites' frames, the browser keeps a separate cookie
	// for each top-level site instead of refusing it as a third-party one.
	Partitioned bool

	// InsecureAllowHTTP drops the Secure attribute so that a browser sends the
	// cookie over plain HTTP to a host other than localhost. The token can
	// then be read by anyone on the network path. It is for development only,
	// and New logs a warning when it is set. Browsers already accept Secure
	// cookies from http://localhost, so local development does not need it.
	// A prefixed name cannot be sent without Secure: set Name to one without
	// a prefix, such as "session", and keep that name in production too.
	InsecureAllowHTTP bool
}

// withDefaults returns c with its zero fields set to their defaults.
func (c CookieConfig) withDefaults() CookieConfig {
	if c.Name == "" {
		c.Name = "__Host-session"
		if c.Domain != "" {
			c.Name = "__Secure-session"
		}
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == http.SameSiteDefaultMode || c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	return c
}

// validate refuses settings that a browser would reject, or that would send
// the token where it must not go. c has its defaults.
func (c CookieConfig) validate() error {
	host, secure := strings.HasPrefix(c.Name, "__Host-"), strings.HasPrefix(c.Name, "__Secure-")
	switch {
	case (&http.Cookie{Name: c.Name, Value: "x"}).Valid() != nil:
		return fmt.Errorf("session: cookie name %q is not a valid cookie name", c.Name)
	case c.SameSite == http.SameSiteNoneMode:
		return errors.New("session: SameSite=None would send the session cookie on cross-site requests; use Lax or Strict")
	case c.InsecureAllowHTTP && (host || secure):
		return fmt.Errorf("session: a %q cookie must be Secure, so InsecureAllowHTTP cannot send it; set CookieConfig.Name to a name without the prefix, such as %q, in every environment",
			c.Name, strings.TrimPrefix(strings.TrimPrefix(c.Name, "__Host-"), "__Secure-"))
	case c.InsecureAllowHTTP && c.Partitioned:
		return errors.New("session: a Partitioned cookie must be Secure; InsecureAllowHTTP cannot be combined with it")
	case host && c.Domain != "":
		return fmt.Errorf("session: a %q cookie cannot have a Domain; use a \"__Secure-\" name to share it with subdomains", c.Name)
	case host && c.Path != "/":
		return fmt.Errorf("session: a %q cookie must have Path=/; use a \"__Secure-\" name for Path %q", c.Name, c.Path)
	case !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, ";\x00\r\n"):
		return fmt.Errorf("session: cookie Path %q must start with / and hold no ';' or control characters", c.Path)
	}
	return nil
}

// sessionCookie returns the Set-Cookie that hands token to the browser,
// lasting until until (zero: until the browser closes); an empty token
// returns one that deletes the cookie, with the same name, Secure and Path
// so that browsers accept it.
func (c CookieConfig) sessionCookie(token string, until, now time.Time) *http.Cookie {
	ck := &http.Cookie{
		Name:        c.Name,
		Value:       token,
		Path:        c.Path,
		Domain:      c.Domain,
		Secure:      !c.InsecureAllowHTTP,
		HttpOnly:    true,
		SameSite:    c.SameSite,
		Partitioned: c.Partitioned,
	}
	switch {
	case token == "":
		ck.MaxAge = -1 // sent as Max-Age=0: delete now
	case !until.IsZero():
		// Max-Age counts from the browser's receipt, so it does not depend
		// on the browser's clock; Expires is for the few that ignore it.
		ck.MaxAge = max(int(until.Sub(now)/time.Second), 1)
		ck.Expires = until.UTC()
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
