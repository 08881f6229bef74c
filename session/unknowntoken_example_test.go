package session_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
)

// Telling a stale or guessed token from no token at all, to count the
// unknown tokens each client address presents: a browser whose cookie
// outlived the store presents one now and then, someone guessing session
// IDs presents many.
func ExampleUnknownToken() {
	sessions, err := session.New(session.Config{Store: memstore.New()})
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()
	h := sessions.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch {
		case session.FromContext(ctx) != nil:
			fmt.Println("signed in: never counted")
		case session.UnknownToken(ctx):
			fmt.Println("unknown token: count it against", r.RemoteAddr)
		case session.EndedReason(ctx) != "":
			fmt.Println("a token that ended:", session.EndedReason(ctx))
		default:
			fmt.Println("no token, or a malformed one")
		}
	}))
	send := func(token string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.7:4711"
		if token != "" {
			r.Header.Set("Cookie", sessions.CookieName()+"="+token)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	w := httptest.NewRecorder()
	if _, err := sessions.Login(w, httptest.NewRequest(http.MethodPost, "/login", nil), "alice", session.LoginOptions{}); err != nil {
		log.Fatal(err)
	}
	token := w.Result().Cookies()[0].Value

	send("")
	send("not-a-token")
	send(strings.Repeat("A", 43)) // well-formed, never issued
	send(token)
	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.Header.Set("Cookie", sessions.CookieName()+"="+token)
	sessions.Logout(httptest.NewRecorder(), r)
	send(token)
	// Output:
	// no token, or a malformed one
	// no token, or a malformed one
	// unknown token: count it against 192.0.2.7:4711
	// signed in: never counted
	// a token that ended: logout
}
