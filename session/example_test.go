package session_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// Protecting a net/http application: a login route, a private page, a
// passive status route and a logout.
func Example() {
	sessions, err := session.New(session.Config{Store: memstore.New()})
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the user's password here; then:
		if _, err := sessions.Login(w, r, "alice", session.LoginOptions{}); err != nil {
			http.Error(w, "Sign-in failed; try again.", http.StatusInternalServerError)
		}
	})
	mux.Handle("GET /private", sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", session.FromContext(r.Context()).UserID())
	})))
	mux.Handle("GET /status", session.Passive(sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%.0f minutes left", session.FromContext(r.Context()).IdleRemaining().Minutes())
	}))))
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Logout(w, r); err != nil { // the store failed: the cookie stays
			http.Error(w, "You are still signed in: the sign-out failed. Try again.", http.StatusServiceUnavailable)
		}
	})

	// The session cookie is Secure, so serve over TLS.
	srv := httptest.NewTLSServer(sessions.Handler(mux))
	defer srv.Close()
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)

	get := func(method, path string) {
		resp, err := client.Do(must(http.NewRequest(method, srv.URL+path, nil)))
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(strings.TrimSpace(fmt.Sprint(method, " ", path, " ", resp.StatusCode, " ", strings.TrimSpace(string(body)))))
	}
	get("GET", "/private")
	get("POST", "/login")
	get("GET", "/private")
	get("GET", "/status")
	get("POST", "/logout")
	get("GET", "/private")
	// Output:
	// GET /private 401 Not signed in: sign in and try again.
	// POST /login 200
	// GET /private 200 hello alice
	// GET /status 200 30 minutes left
	// POST /logout 200
	// GET /private 401 Not signed in: sign in and try again.
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

// Telling the user why they were signed out: EndedReason knows what became of
// the token the browser presented.
func ExampleEndedReason() {
	clock := sessiontest.NewClock(time.Now()) // a clock the example can move
	sessions, _ := session.New(session.Config{Store: memstore.New(), Clock: clock})
	defer sessions.Close()
	w := httptest.NewRecorder()
	sessions.Login(w, httptest.NewRequest("POST", "/login", nil), "alice", session.LoginOptions{})
	cookie := w.Header().Get("Set-Cookie")
	clock.Advance(31 * time.Minute) // past the default 30-minute idle timeout

	page := sessions.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if session.FromContext(r.Context()) == nil {
			switch session.EndedReason(r.Context()) {
			case session.ReasonIdle:
				fmt.Println("You were signed out after a period of inactivity.")
			case session.ReasonLogout:
				fmt.Println("You signed out.")
			default:
				fmt.Println("Please sign in.")
			}
		}
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", strings.Split(cookie, ";")[0])
	page.ServeHTTP(httptest.NewRecorder(), r)
	// Output: You were signed out after a period of inactivity.
}

// Ending a user's other sessions, for example after a password change.
func ExampleManager_RevokeUser() {
	sessions, _ := session.New(session.Config{Store: memstore.New(), SweepInterval: session.SweepOff})
	defer sessions.Close()
	var current *session.Session
	for range 3 {
		current, _ = sessions.Login(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil), "alice", session.LoginOptions{})
	}
	n, _ := sessions.RevokeUser(context.Background(), "alice", current.ID())
	left, _ := sessions.List(context.Background(), "alice", 0)
	fmt.Println("ended", n, "left", len(left))
	// Output: ended 2 left 1
}

// Observing session ends, the hook for an audit log.
func ExampleObserverFunc() {
	audit := session.ObserverFunc(func(_ context.Context, e session.Event) {
		if e.Kind == session.EventEnded {
			fmt.Println("session of", e.Session.UserID, "ended:", e.Reason)
		}
	})
	sessions, _ := session.New(session.Config{Store: memstore.New(), SweepInterval: session.SweepOff, Observers: []session.Observer{audit}})
	defer sessions.Close()
	s, _ := sessions.Login(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil), "alice", session.LoginOptions{})
	sessions.Revoke(context.Background(), "alice", s.ID())
	// Output: session of alice ended: revoked
}

// Choosing a policy from a standard, for example for administrators.
func ExampleLookupPreset() {
	p, _ := session.LookupPreset("pci-dss")
	fmt.Println(p.Policy.IdleTimeout, p.Policy.AbsoluteTimeout)
	// Output: 15m0s 12h0m0s
}

// A forward-auth check that decides for itself what counts as activity:
// a page navigation does, a background fetch does not.
func ExampleManager_Check() {
	sessions, err := session.New(session.Config{Store: memstore.New()})
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()

	check := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		navigation := r.Header.Get("Sec-Fetch-Mode") == "navigate"
		r = sessions.Check(r, navigation)
		sess := session.FromContext(r.Context())
		if sess == nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Remote-User", sess.UserID())
	})

	w := httptest.NewRecorder()
	check.ServeHTTP(w, httptest.NewRequest("GET", "/check", nil))
	fmt.Println(w.Code)
	// Output: 401
}
