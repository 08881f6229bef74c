package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// newManager returns a Manager on a memory store for the examples.
func newManager() *session.Manager {
	m, err := session.New(session.Config{Store: memstore.New()})
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// newJar returns a cookie jar, as a browser keeps.
func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}

// fetch sends a request with client and prints the status and body.
func fetch(client *http.Client, method, url string, header ...string) {
	req, _ := http.NewRequest(method, url, nil)
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(strings.TrimSpace(fmt.Sprint(res.StatusCode, " ", strings.TrimSpace(string(body)))))
}

// A flash message: set by one request, shown once by the next.
func ExampleSession_Pop() {
	sessions := newManager()
	defer sessions.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /save", func(w http.ResponseWriter, r *http.Request) {
		s := session.FromContext(r.Context())
		if err := s.Set(r.Context(), "flash", "Saved."); err != nil {
			http.Error(w, "Could not save; try again.", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		msg, _, _ := session.FromContext(r.Context()).Pop(r.Context(), "flash")
		fmt.Fprintf(w, "page [%s]", msg)
	})
	srv := httptest.NewServer(sessions.Require(mux))
	defer srv.Close()
	alice := sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{})

	fetch(alice, "POST", srv.URL+"/save")
	fetch(alice, "GET", srv.URL+"/")
	fetch(alice, "GET", srv.URL+"/")
	// Output:
	// 200
	// 200 page [Saved.]
	// 200 page []
}

// Values beyond strings: a counter, a time and a small struct.
func ExampleSession_SetJSON() {
	sessions := newManager()
	defer sessions.Close()
	type cart struct{ Items []string }
	srv := httptest.NewServer(sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ctx := session.FromContext(r.Context()), r.Context()
		var c cart
		if _, err := s.JSON("cart", &c); err != nil {
			http.Error(w, "Your cart could not be read; it was emptied.", http.StatusOK)
			s.Delete(ctx, "cart")
			return
		}
		c.Items = append(c.Items, r.URL.Query().Get("add"))
		visits, _ := s.Int("visits")
		if err := s.SetJSON(ctx, "cart", c); err != nil {
			http.Error(w, "Your cart is full.", http.StatusRequestEntityTooLarge)
			return
		}
		s.SetInt(ctx, "visits", visits+1)
		fmt.Fprintln(w, c.Items, visits+1)
	})))
	defer srv.Close()
	alice := sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{})
	fetch(alice, "POST", srv.URL+"/?add=tea")
	fetch(alice, "POST", srv.URL+"/?add=milk")
	// Output:
	// 200 [tea] 1
	// 200 [tea milk] 2
}

// Require lets only signed-in users through; a script asking for JSON is
// told so in JSON.
func ExampleManager_Require() {
	sessions := newManager()
	defer sessions.Close()
	srv := httptest.NewServer(sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello ", session.FromContext(r.Context()).UserID())
	})))
	defer srv.Close()

	fetch(srv.Client(), "GET", srv.URL)
	fetch(srv.Client(), "GET", srv.URL, "Accept: application/json")
	fetch(sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{}), "GET", srv.URL)
	// Output:
	// 401 Not signed in: sign in and try again.
	// 401 {"error":"unauthenticated","message":"Not signed in: sign in and try again."}
	// 200 hello alice
}

// A status route that a page polls every minute: wrapped in Passive, it
// never keeps the session alive, so the idle timeout still ends it.
func ExamplePassive() {
	clock := sessiontest.NewClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	sessions, _ := session.New(session.Config{Store: memstore.New(), Clock: clock})
	defer sessions.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /status", session.Passive(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%v left", session.FromContext(r.Context()).IdleRemaining())
	})))
	srv := httptest.NewServer(sessions.Require(mux))
	defer srv.Close()
	alice := sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{})

	for range 3 {
		clock.Advance(10 * time.Minute)
		fetch(alice, "GET", srv.URL+"/status")
	}
	// Output:
	// 200 20m0s left
	// 200 10m0s left
	// 401 Not signed in: sign in and try again.
}

// Signing in and out. Login always issues a new token; Logout ends the
// session in the store, so a copy of the cookie stops working too.
func ExampleManager_Login() {
	sessions := newManager()
	defer sessions.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the password first; "remember" is the user's own choice.
		_, err := sessions.Login(w, r, r.FormValue("user"), session.LoginOptions{RememberMe: r.FormValue("remember") == "on"})
		if err != nil {
			http.Error(w, "Sign-in failed; try again.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "welcome")
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Logout(w, r); err != nil {
			http.Error(w, "You are still signed in: the sign-out failed. Try again.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "signed out")
	})
	srv := httptest.NewTLSServer(sessions.Handler(mux))
	defer srv.Close()

	res, _ := srv.Client().Post(srv.URL+"/login?user=alice&remember=on", "", nil)
	cookie := res.Cookies()[0]
	fmt.Println(cookie.Name, cookie.Secure, cookie.HttpOnly, cookie.MaxAge == 12*3600)
	req, _ := http.NewRequest("POST", srv.URL+"/logout", nil)
	req.AddCookie(cookie)
	res, _ = srv.Client().Do(req)
	fmt.Println(res.StatusCode, res.Header.Get("Clear-Site-Data"))
	// Output:
	// __Host-session true true true
	// 200 "cache", "cookies", "storage"
}

// A visitor fills a cart before signing in; the cart follows them into the
// signed-in session, under a new token.
func ExampleManager_Start() {
	sessions := newManager()
	defer sessions.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		s, err := sessions.Start(w, r)
		if err == nil {
			err = s.Set(r.Context(), "cart", r.FormValue("item"))
		}
		if err != nil {
			http.Error(w, "The cart is unavailable; try again.", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := sessions.Login(w, r, "alice", session.LoginOptions{Keep: []string{"cart"}}); err != nil {
			http.Error(w, "Sign-in failed; try again.", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		s := session.FromContext(r.Context())
		cart, _ := s.Get("cart")
		fmt.Fprintf(w, "user=%q signed-in=%v cart=%q", s.UserID(), s.SignedIn(), cart)
	})
	srv := httptest.NewTLSServer(sessions.Handler(mux))
	defer srv.Close()
	client := srv.Client()
	client.Jar = newJar()

	fetch(client, "POST", srv.URL+"/cart?item=tea")
	fetch(client, "GET", srv.URL+"/")
	fetch(client, "POST", srv.URL+"/login")
	fetch(client, "GET", srv.URL+"/")
	// Output:
	// 200
	// 200 user="" signed-in=false cart="tea"
	// 200
	// 200 user="alice" signed-in=true cart="tea"
}

// A "your devices" page: the user's sessions, and signing one out. Revoke
// takes the user from the request's own session, so a user can end only
// their own sessions whatever ID they send.
func ExampleManager_Revoke() {
	sessions := newManager()
	defer sessions.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		infos, err := sessions.List(r.Context(), session.FromContext(r.Context()).UserID(), 0)
		if err != nil {
			http.Error(w, "Your sessions could not be listed; try again.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%d sessions", len(infos))
	})
	mux.HandleFunc("POST /devices/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		err := sessions.Revoke(r.Context(), session.FromContext(r.Context()).UserID(), r.PathValue("id"))
		switch {
		case err == nil:
			fmt.Fprint(w, "signed out")
		case errors.Is(err, session.ErrNotFound):
			http.Error(w, "No such session of yours.", http.StatusNotFound)
		default:
			http.Error(w, "The session could not be ended; try again.", http.StatusServiceUnavailable)
		}
	})
	srv := httptest.NewServer(sessions.Require(mux))
	defer srv.Close()
	phone := sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{})
	laptop := sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{})
	mallory := sessiontest.Login(nil, srv, sessions, "mallory", session.LoginOptions{})
	list, _ := sessions.List(context.Background(), "alice", 0)
	phoneID := list[0].ID

	fetch(laptop, "GET", srv.URL+"/devices")
	fetch(mallory, "POST", srv.URL+"/devices/"+phoneID+"/revoke")
	fetch(laptop, "POST", srv.URL+"/devices/"+phoneID+"/revoke")
	fetch(phone, "GET", srv.URL+"/devices")
	// Output:
	// 200 2 sessions
	// 404 No such session of yours.
	// 200 signed out
	// 401 Not signed in: sign in and try again.
}

// Before a sensitive action, the user types their password again:
// Reauthenticate restarts both clocks under a new token. After a privilege
// change without a password, Renew changes only the token.
func ExampleManager_Reauthenticate() {
	clock := sessiontest.NewClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	sessions, _ := session.New(session.Config{Store: memstore.New(), Clock: clock})
	defer sessions.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /confirm-password", func(w http.ResponseWriter, r *http.Request) {
		// Check the password here; then:
		if err := sessions.Reauthenticate(w, r); err != nil {
			http.Error(w, "Could not confirm; try again.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%v until sign-in is due", session.FromContext(r.Context()).AbsoluteRemaining())
	})
	mux.HandleFunc("POST /became-admin", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Renew(w, r); err != nil {
			http.Error(w, "Could not renew; try again.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%v until sign-in is due", session.FromContext(r.Context()).AbsoluteRemaining())
	})
	srv := httptest.NewServer(sessions.Require(mux))
	defer srv.Close()
	// Idle for up to 4 hours, 12 hours from sign-in at most.
	alice := sessiontest.Login(nil, srv, sessions, "alice", session.LoginOptions{Policy: session.Policy{IdleTimeout: 4 * time.Hour}})

	clock.Advance(3 * time.Hour)
	fetch(alice, "POST", srv.URL+"/became-admin")
	fetch(alice, "POST", srv.URL+"/confirm-password")
	// Output:
	// 200 9h0m0s until sign-in is due
	// 200 12h0m0s until sign-in is due
}

// An application under /shop, shared with its subdomains, keeps the cookie
// to its path. The name is used exactly as written, in development as in
// production.
func ExampleCookieConfig() {
	sessions, err := session.New(session.Config{
		Store:  memstore.New(),
		Cookie: session.CookieConfig{Name: "__Secure-shop", Path: "/shop", Domain: "example.com", SameSite: http.SameSiteStrictMode},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()
	w := httptest.NewRecorder()
	sessions.Login(w, httptest.NewRequest("POST", "https://shop.example.com/shop/login", nil), "alice", session.LoginOptions{})
	c := w.Result().Cookies()[0]
	fmt.Println(c.Name, c.Path, c.Domain, c.Secure, c.HttpOnly, c.SameSite == http.SameSiteStrictMode)

	// A prefixed name cannot travel without Secure, so New refuses instead
	// of renaming the cookie behind the application's back.
	_, err = session.New(session.Config{Store: memstore.New(), Cookie: session.CookieConfig{InsecureAllowHTTP: true}})
	fmt.Println(err != nil)
	// Output:
	// __Secure-shop /shop example.com true true true
	// true
}

// Behind nginx at 10.0.0.2, the client's address is in X-Forwarded-For;
// ClientIPBehind believes it only from the proxy.
func ExampleClientIPBehind() {
	sessions, _ := session.New(session.Config{
		Store:    memstore.New(),
		ClientIP: session.ClientIPBehind(netip.MustParsePrefix("10.0.0.2/32")),
	})
	defer sessions.Close()
	login := func(peer string) {
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", "198.51.100.7")
		s, _ := sessions.Login(httptest.NewRecorder(), r, "alice", session.LoginOptions{})
		fmt.Println(s.Info().IP)
	}
	login("10.0.0.2:40000")    // the proxy: its header is believed
	login("203.0.113.9:40000") // anyone else: the header is ignored
	// Output:
	// 198.51.100.7
	// 203.0.113.9
}

// An administrator's view: every live session, oldest first, with its
// client and how long it has left.
func ExampleManager_List() {
	clock := sessiontest.NewClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	sessions, _ := session.New(session.Config{Store: memstore.New(), Clock: clock})
	defer sessions.Close()
	for _, user := range []string{"alice", "bob"} {
		r := httptest.NewRequest("POST", "/login", nil)
		r.Header.Set("User-Agent", "Firefox")
		sessions.Login(httptest.NewRecorder(), r, user, session.LoginOptions{})
		clock.Advance(10 * time.Minute)
	}
	infos, err := sessions.List(context.Background(), "", 0) // "": every user
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range infos {
		fmt.Println(in.UserID, in.IP, in.UserAgent, in.Expires.At.Sub(clock.Now()), in.Expires.Reason)
	}
	// Output:
	// alice 192.0.2.1 Firefox 10m0s idle
	// bob 192.0.2.1 Firefox 20m0s idle
}
