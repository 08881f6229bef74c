package sessiontest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// A test of a protected handler signs its user in with one call. In a test
// function, pass its t; an Example has none.
func ExampleLogin() {
	sessions, _ := session.New(session.Config{Store: memstore.New()})
	defer sessions.Close()
	srv := httptest.NewServer(sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "orders of ", session.FromContext(r.Context()).UserID())
	})))
	defer srv.Close()

	alice := sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{})
	res, _ := alice.Get(srv.URL + "/orders")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))
	// Output: 200 orders of alice
}

// The client follows the session: after a logout it is signed out, as a
// browser would be.
func TestLoginClientFollowsTheSession(t *testing.T) {
	clock := sessiontest.NewClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	sessions, err := session.New(session.Config{Store: memstore.New(), Clock: clock, SweepInterval: session.SweepOff})
	if err != nil {
		t.Fatal(err)
	}
	defer sessions.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /me", sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, session.FromContext(r.Context()).UserID())
	})))
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Renew(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Logout(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	srv := httptest.NewServer(sessions.Handler(mux))
	defer srv.Close()
	client := sessiontest.Login(t, srv, sessions, "alice", session.LoginOptions{})
	status := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := status("GET", "/me"); got != http.StatusOK {
		t.Fatalf("signed-in client got %d", got)
	}
	if got := status("POST", "/renew"); got != http.StatusOK {
		t.Fatalf("renew: %d", got)
	}
	if got := status("GET", "/me"); got != http.StatusOK {
		t.Fatalf("after a renewal the client lost its session: %d", got)
	}
	status("POST", "/logout")
	if got := status("GET", "/me"); got != http.StatusUnauthorized {
		t.Fatalf("after logout the client got %d, want 401", got)
	}
	other := sessiontest.Login(t, srv, sessions, "bob", session.LoginOptions{})
	if res, err := other.Get(srv.URL + "/me"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("a second client: %v %v", res, err)
	}
}
