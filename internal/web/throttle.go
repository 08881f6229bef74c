package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
)

// deviceCookieName is the name of the cookie that keeps a browser's device
// token (see account.RememberClient), before its prefix.
const deviceCookieName = "sessionguard-device"

// deviceCookie returns the Set-Cookie that keeps token in the browser for
// account.KnownClientTTL. Only the sign-in form receives it (Path
// /auth/login, SameSite=Strict), so it never reaches an application behind
// the gateway; it is Secure, with the __Secure- prefix, whenever the
// session cookie is.
func (s *Server) deviceCookie(token string) *http.Cookie {
	secure := s.secureCookies()
	name := deviceCookieName
	if secure {
		name = "__Secure-" + name
	}
	return &http.Cookie{
		Name:     name,
		Value:    token,
		Path:     "/auth/login",
		MaxAge:   int(account.KnownClientTTL / time.Second),
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

// secureCookies reports whether the session cookie is Secure: its name has
// a prefix (__Host- or __Secure-) unless the insecure development mode is on.
func (s *Server) secureCookies() bool {
	return strings.HasPrefix(s.cfg.Sessions.CookieName(), "__")
}

// presentedDevice returns the device token the request's cookie holds, or
// "".
func (s *Server) presentedDevice(r *http.Request) string {
	c, err := r.Cookie(s.deviceCookie("").Name)
	if err != nil {
		return ""
	}
	return c.Value
}

// rememberClient makes the client of a successful sign-in known to the
// user's account and keeps its device token in its cookie. A failure costs
// the user only that defence: it is logged, and the sign-in goes on.
func (s *Server) rememberClient(w http.ResponseWriter, r *http.Request, at account.Attempt) {
	token, err := s.cfg.Authenticator.RememberClient(r.Context(), at)
	if err != nil {
		s.cfg.Logger.Warn("could not remember the client of a sign-in; a lock on the name will hold it back", "user", at.Name, "err", err)
		return
	}
	http.SetCookie(w, s.deviceCookie(token))
}

// throttledWords says how to answer a refused password check: how long to
// wait, the JSON error code, and what to tell the person. Busy ("busy")
// means nothing failed and the server is busy; otherwise ("throttled")
// something failed too often: failed names what, "failed sign-ins" for a
// sign-in (the name may not exist), "wrong passwords" for a
// re-authentication. ok is false when err refuses nothing.
func throttledWords(err error, failed string) (wait time.Duration, code, msg string, ok bool) {
	te, ok := errors.AsType[*account.ThrottledError](err)
	switch {
	case !ok:
		return 0, "", "", false
	case te.Busy():
		return te.RetryAfter, "busy", "The server is busy checking other sign-ins. Try again in " + waitWords(te.RetryAfter) + ".", true
	}
	return te.RetryAfter, "throttled", "Too many " + failed + ". Wait " + waitWords(te.RetryAfter) + " and try again.", true
}
