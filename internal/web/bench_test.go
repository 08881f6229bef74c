package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
)

// benchRequest returns a handler, and requests for path with the session
// cookie of a signed-in user.
func benchRequest(b *testing.B, path string) (http.Handler, func() *http.Request) {
	e := newEnv(b)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	cookie := e.sessions.CookieName() + "=" + c.sessionCookie()
	return e.handler, func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "https://sessionguard.test"+path, nil)
		r.Header.Set("Cookie", cookie)
		r.Header.Set("Accept", "text/html")
		return r
	}
}

func BenchmarkStatus(b *testing.B) {
	h, req := benchRequest(b, "/auth/status")
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req())
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

func BenchmarkHomePage(b *testing.B) {
	h, req := benchRequest(b, "/")
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req())
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkAccountPage is the harness's server-page request: GET /account
// as a browser asks for it.
func BenchmarkAccountPage(b *testing.B) {
	h, req := benchRequest(b, "/account")
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req())
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkSessionsJSON is the harness's server-json request: the JSON
// list of the user's own sessions.
func BenchmarkSessionsJSON(b *testing.B) {
	h, req := benchRequest(b, "/auth/sessions")
	for b.Loop() {
		rec := httptest.NewRecorder()
		r := req()
		r.Header.Set("Accept", "application/json")
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
