package sessiontest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sessionguard/sessionguard/session"
)

// Login signs userID in with m and returns a client for srv that presents
// the new session on every request, as a browser would after signing in:
// one call instead of a sign-in form in every test of a protected handler.
// srv must serve m's middleware; the client keeps the session's cookie up to
// date when a response renews or clears it.
//
// t may be nil outside a test, as in an Example; a failure then panics.
//
// The session is a real one in m's store, started by m.Login with opts, so
// everything the test then sees (timeouts, revocation, end events) is what
// production does.
func Login(t testing.TB, srv *httptest.Server, m *session.Manager, userID string, opts session.LoginOptions) *http.Client {
	if t != nil {
		t.Helper()
	}
	fail := func(format string, args ...any) {
		if t == nil {
			panic(fmt.Sprintf(format, args...))
		}
		t.Helper()
		t.Fatalf(format, args...)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, srv.URL+"/", nil)
	if _, err := m.Login(w, r, userID, opts); err != nil {
		fail("sessiontest.Login: %v", err)
	}
	var token string
	for _, c := range w.Result().Cookies() {
		if c.Name == m.CookieName() {
			token = c.Value
		}
	}
	if token == "" {
		fail("sessiontest.Login: Login set no %s cookie", m.CookieName())
	}
	// A client of its own: srv.Client() is shared, and a jar a test put on
	// it would send another session's cookie alongside this one.
	return &http.Client{
		Transport: &cookieTransport{next: srv.Client().Transport, name: m.CookieName(), token: token},
		Timeout:   srv.Client().Timeout,
	}
}

// cookieTransport presents the session cookie itself. A cookie jar would
// refuse to send a Secure cookie (every production session cookie) to a
// plain-HTTP test server, and the test would then exercise a setting it
// never ships with.
type cookieTransport struct {
	next http.RoundTripper
	name string

	mu    sync.Mutex
	token string // "" once a response cleared the cookie
}

func (ct *cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.mu.Lock()
	token := ct.token
	ct.mu.Unlock()
	if token != "" {
		r = r.Clone(r.Context())
		r.Header.Add("Cookie", ct.name+"="+token)
	}
	res, err := ct.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	for _, c := range res.Cookies() {
		if c.Name != ct.name {
			continue
		}
		ct.mu.Lock()
		if c.MaxAge < 0 || strings.TrimSpace(c.Value) == "" {
			ct.token = ""
		} else {
			ct.token = c.Value
		}
		ct.mu.Unlock()
	}
	return res, nil
}
