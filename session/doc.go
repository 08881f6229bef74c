// Package session gives any net/http application server-side login sessions
// that time out the right way.
//
// Every session has two clocks, both enforced on the server before the
// handler runs: an idle timeout (default 30 minutes) and an absolute timeout
// counted from login (default 12 hours). A session is refused from the
// instant either deadline is reached. The browser holds only a random
// 256-bit token in a __Host- cookie; the store holds only its SHA-256 hash,
// so a copy of the cookie dies with the session, and a logout or revocation
// is final everywhere at once.
//
// Protecting an application takes a Manager and its middleware:
//
//	store := memstore.New() // or sqlitestore.Open("app.db")
//	sessions, err := session.New(session.Config{Store: store})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer sessions.Close()
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
//		// ... check the password, then:
//		if _, err := sessions.Login(w, r, "alice", session.LoginOptions{}); err != nil {
//			http.Error(w, "Sign-in failed; try again.", http.StatusServiceUnavailable)
//		}
//	})
//	mux.Handle("GET /", sessions.Require(http.HandlerFunc(home)))
//	mux.Handle("GET /status", session.Passive(sessions.Require(http.HandlerFunc(status))))
//	http.ListenAndServe("localhost:8080", sessions.Handler(mux))
//
// Inside a handler, FromContext returns the request's *Session; on a route
// without one it returns nil, whose methods are safe (UserID is "").
//
// Data: a session holds small string values (Set, Get, Pop for a flash
// message shown once, Keys, Clear, and Int, Time and JSON helpers), at most
// Config.MaxDataBytes (16 KiB) in all. Requests of one session may write
// different keys at once: the Manager writes by compare-and-set and retries,
// so no write is lost. Start gives an anonymous visitor a session of their
// own (a cart before sign-in); Login always issues a new token and carries
// over the keys named in LoginOptions.Keep.
//
// Activity: every request with a session counts as activity except passive
// ones: those with the header "Session-Activity: passive", prefetches, and
// routes wrapped in Passive. A background poll therefore never keeps a
// session alive.
//
// Writes: the last activity is written at most once per touch interval
// (default: a twentieth of the idle timeout, at most a minute), so a busy
// session costs a few writes per idle period. The price is that a session can
// end up to one touch interval early; it never ends late.
//
// Ends: every session ends exactly once, with a reason (logout, idle,
// absolute, revoked), reported to the Config's Observers, also when it times
// out while nobody uses it (the Manager's sweeper finds it within about a
// second). A browser that presents an ended token is told why through
// EndedReason.
//
// Stores: the Manager owns the clock and the timeout rule. It computes each
// session's expiry and hands it to the Store, which only keeps it; see
// Store for the contract and package storetest for the suite that checks a
// store against it.
package session
