package session_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// shop serves a store front where visitors fill a cart before signing in.
func shop(t *testing.T) (*harness, http.Handler) {
	h := newHarness(t, nil)
	m := h.m
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Start(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := s.Set(r.Context(), "cart", r.URL.Query().Get("item")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Login(w, r, r.URL.Query().Get("user"), session.LoginOptions{Keep: []string{"cart"}}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Logout(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		s, err := m.Start(w, r)
		if err == nil {
			err = s.Set(r.Context(), "flash", "You were signed out.")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		s := session.FromContext(r.Context())
		cart, _ := s.Get("cart")
		flash, _, _ := s.Pop(r.Context(), "flash")
		w.Write([]byte(s.UserID() + "|" + cart + "|" + flash))
	})
	mux.Handle("GET /private", m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(session.FromContext(r.Context()).UserID()))
	})))
	return h, m.Handler(mux)
}

func send(t *testing.T, h http.Handler, name, method, target, token string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Cookie", name+"="+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	// The last Set-Cookie of the name wins, as in a browser: a logout
	// followed by Start deletes the old cookie, then sets a new one.
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			token = c.Value
			if c.MaxAge < 0 {
				token = ""
			}
		}
	}
	return w, token
}

func TestAnonymousCartSurvivesSignInUnderANewToken(t *testing.T) {
	h, srv := shop(t)
	name := h.m.CookieName()
	w, anon := send(t, srv, name, "POST", "/cart?item=tea", "")
	if w.Code != http.StatusOK || anon == "" {
		t.Fatalf("adding to the cart: %d %s, token %q", w.Code, w.Body, anon)
	}
	// An anonymous session is no sign-in.
	if w, _ := send(t, srv, name, "GET", "/private", anon); w.Code != http.StatusUnauthorized {
		t.Fatalf("an anonymous session passed Require: %d", w.Code)
	}
	if w, _ := send(t, srv, name, "GET", "/page", anon); w.Body.String() != "|tea|" {
		t.Fatalf("anonymous page = %q", w.Body)
	}
	_, signed := send(t, srv, name, "POST", "/login?user=alice", anon)
	if signed == anon || signed == "" {
		t.Fatal("signing in kept the anonymous token: session fixation")
	}
	if w, _ := send(t, srv, name, "GET", "/page", signed); w.Body.String() != "alice|tea|" {
		t.Fatalf("after sign-in = %q, want the cart carried over", w.Body)
	}
	// The anonymous token is over: whoever planted it gets nothing.
	if w, _ := send(t, srv, name, "GET", "/page", anon); w.Body.String() != "||" {
		t.Fatalf("the pre-login token still opens %q", w.Body)
	}
}

func TestMessageSurvivesLogout(t *testing.T) {
	h, srv := shop(t)
	name := h.m.CookieName()
	_, signed := send(t, srv, name, "POST", "/login?user=alice", "")
	w, anon := send(t, srv, name, "POST", "/logout", signed)
	if anon == "" || anon == signed {
		t.Fatalf("logout then Start set no new token (got %q)", anon)
	}
	if csd := w.Header().Get("Clear-Site-Data"); strings.Contains(csd, "cookies") || !strings.Contains(csd, "cache") {
		t.Errorf("Clear-Site-Data %q would delete the new cookie, or lost the rest", csd)
	}
	if w, _ := send(t, srv, name, "GET", "/private", signed); w.Code != http.StatusUnauthorized {
		t.Fatal("the signed-out token still works")
	}
	if w, _ := send(t, srv, name, "GET", "/page", anon); w.Body.String() != "||You were signed out." {
		t.Fatalf("next page = %q", w.Body)
	}
	if w, _ := send(t, srv, name, "GET", "/page", anon); w.Body.String() != "||" {
		t.Fatalf("the flash message showed twice: %q", w.Body)
	}
}

func TestRememberMeCookieLastsUntilTheAbsoluteDeadline(t *testing.T) {
	h := newHarness(t, nil)
	r := httptest.NewRequest("POST", "/login", nil)
	w := httptest.NewRecorder()
	if _, err := h.m.Login(w, r, "alice", session.LoginOptions{RememberMe: true, Policy: session.Policy{IdleTimeout: 2 * 24 * time.Hour, AbsoluteTimeout: 7 * 24 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	c := sessionCookie(t, w, h.m.CookieName())
	if c.MaxAge != 7*24*3600 || !c.Expires.Equal(t0.Add(7*24*time.Hour)) {
		t.Errorf("remembered cookie Max-Age=%d Expires=%v", c.MaxAge, c.Expires)
	}
	// A Renew later lasts only what is left: never beyond the absolute deadline.
	h.clock.Advance(24 * time.Hour)
	tok := c.Value
	if tok == "" {
		t.Fatal("no token")
	}
	renew := httptest.NewRequest("POST", "/", nil)
	renew.Header.Set("Cookie", h.m.CookieName()+"="+tok)
	w = httptest.NewRecorder()
	if err := h.m.Renew(w, h.m.Check(renew, true)); err != nil {
		t.Fatal(err)
	}
	if c := sessionCookie(t, w, h.m.CookieName()); c.MaxAge != 6*24*3600 {
		t.Errorf("renewed cookie Max-Age=%d, want 6 days", c.MaxAge)
	}
	// Without RememberMe, the cookie ends with the browser.
	w = httptest.NewRecorder()
	h.m.Login(w, httptest.NewRequest("POST", "/login", nil), "bob", session.LoginOptions{})
	if c := sessionCookie(t, w, h.m.CookieName()); c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("a default login set a persistent cookie: Max-Age=%d Expires=%v", c.MaxAge, c.Expires)
	}
}

// A Clear-Site-Data of "*" would delete the cookie Start sets after a
// logout; Start keeps the rest of what it clears.
func TestStartAfterLogoutSparesOnlyCookies(t *testing.T) {
	h := newHarness(t, func(c *session.Config) { c.ClearSiteData = `"*"` })
	tok := h.login("alice")
	r := httptest.NewRequest("POST", "/logout", nil)
	r.Header.Set("Cookie", h.m.CookieName()+"="+tok)
	w := httptest.NewRecorder()
	if err := h.m.Logout(w, r); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Start(w, r); err != nil {
		t.Fatal(err)
	}
	if got := w.Header().Get("Clear-Site-Data"); got != `"cache", "storage"` {
		t.Errorf("Clear-Site-Data = %q, want \"cache\", \"storage\"", got)
	}
}
