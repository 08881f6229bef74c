package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// requestState is what the middleware learned about a request's session.
// It is also the context of the request the handler gets: it wraps the
// request's own context and answers for stateKey itself, which saves the
// allocation of a context.WithValue on every request.
type requestState struct {
	context.Context // the request's context, as it came to the middleware

	m  *Manager
	at time.Time // when the request arrived: the instant of its activity

	// passive is set by Passive inside the middleware. Headers and a Passive
	// outside it are read only when a touch is due (see isPassive).
	passive atomic.Bool

	mu     sync.Mutex
	sess   *Session  // nil: not signed in
	reason EndReason // why the presented token no longer works, when known
	err    error     // the store failed: nobody can be treated as signed in

	// unknown: the request presented a well-formed token that the store
	// neither holds nor remembers ending. Set by load, never changed.
	unknown bool

	// own holds the request's session when it was loaded with the request,
	// so that both take one allocation.
	own Session
}

// Value returns the state itself for stateKey and asks the wrapped context
// for any other key.
func (st *requestState) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return st
	}
	return st.Context.Value(key)
}

// String names the context as context.WithValue would, and never prints the
// session: fmt would otherwise show the token hash in a log line.
func (st *requestState) String() string {
	parent := "context"
	if s, ok := st.Context.(fmt.Stringer); ok {
		parent = s.String()
	}
	return parent + ".WithValue(session.stateKey, *session.requestState)"
}

// get returns the request's session, why it has none, and the store's error.
func (st *requestState) get() (*Session, EndReason, error) {
	st.mu.Lock()
	s, reason, err := st.sess, st.reason, st.err
	st.mu.Unlock()
	return s, reason, err
}

// set records the request's new session (after a login) or that it has none
// any more, and why.
func (st *requestState) set(s *Session, reason EndReason) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sess, st.reason, st.err = s, reason, nil
}

// isPassive reports whether r, the request of st, does not count as
// activity: a Passive route (inside or outside the middleware) or a passive
// header. It is asked only when a touch is due, so most requests never read
// those headers.
func (st *requestState) isPassive(r *http.Request) bool {
	return st.passive.Load() || r.Context().Value(passiveKey{}) != nil || passiveHeaders(r)
}

type stateKey struct{}

type passiveKey struct{}

func stateFrom(ctx context.Context) *requestState {
	// A handler's own r.Context() is the state itself: no walk up the chain.
	if st, ok := ctx.(*requestState); ok {
		return st
	}
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// Handler is middleware that finds the request's session, if any, checks both
// of its clocks before next runs, and counts the request as activity unless
// it is passive. next always runs; FromContext tells whether the request has
// a session and EndedReason why not. Use Require for routes that need one.
//
// A request is passive, authenticated but not moving the idle clock, when it
// carries the header "Session-Activity: passive", when it is a prefetch
// ("Sec-Purpose: prefetch"), or when its route is wrapped in Passive.
//
// Responses to requests with a session get "Cache-Control: no-store", so a
// private page is never kept where the Back button could show it after the
// session ended; a handler may set another value.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateFrom(r.Context()); st != nil && st.m == m {
			next.ServeHTTP(w, r) // an outer Handler of this Manager did the work
			return
		}
		st := m.load(r)
		if st.sess != nil {
			h := w.Header()
			h["Cache-Control"] = noStore
			if v := h["Vary"]; len(v) > 0 {
				h["Vary"] = append(v, "Cookie")
			} else {
				h["Vary"] = varyCookie
			}
		}
		next.ServeHTTP(w, r.WithContext(st))
		m.recordActivity(r, st)
	})
}

// Require is middleware like Handler that runs next only for requests with a
// live, signed-in session. Others get Config.Unauthenticated (no session, or
// an anonymous one) or Config.StoreFailure (the store failed: fail closed).
func (m *Manager) Require(next http.Handler) http.Handler {
	return m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _, err := stateFrom(r.Context()).get()
		switch {
		case sess.SignedIn():
			next.ServeHTTP(w, r)
		case err != nil:
			m.failure.ServeHTTP(w, r)
		default:
			m.unauth.ServeHTTP(w, r)
		}
	}))
}

// Passive marks the routes it wraps as passive: their requests are
// authenticated as usual but never count as activity, so a status endpoint or
// a background poll cannot keep a session alive. It works inside or outside
// Handler and Require.
func Passive(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateFrom(r.Context()); st != nil {
			st.passive.Store(true)
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), passiveKey{}, true)))
	})
}

// FromContext returns the session of the request whose context is ctx,
// signed in or anonymous, or nil if it has none. The context comes from
// Handler or Require; any other context has no session. Every method of the
// nil *Session it may return is safe: FromContext(ctx).UserID() is "" on a
// route without a session, never a panic. Session.SignedIn tells a
// signed-in session from an anonymous one.
func FromContext(ctx context.Context) *Session {
	st := stateFrom(ctx)
	if st == nil {
		return nil
	}
	s, _, _ := st.get()
	return s
}

// EndedReason tells why the request whose context is ctx has no session,
// when the server knows: the token it presented ended for that reason
// (including a logout during this request). It is empty when the request
// presented no token, an unknown one, or has a session.
func EndedReason(ctx context.Context) EndReason {
	st := stateFrom(ctx)
	if st == nil {
		return ""
	}
	_, reason, _ := st.get()
	return reason
}

// UnknownToken reports whether the request whose context is ctx presented a
// well-formed session token that the store does not know: no live session,
// and none it remembers ending. A browser does that now and then (its cookie
// outlived a store that was reset); many different such tokens from one
// client are someone guessing session IDs, which the caller may count per
// client address and refuse (OWASP's "session ID guessing" detection). It
// is false for a request with a session, with no token or a malformed one
// (refused before any store lookup), with a token that ended, and when the
// store failed. It describes the token as presented, even after a Login in
// the same request.
func UnknownToken(ctx context.Context) bool {
	st := stateFrom(ctx)
	return st != nil && st.unknown
}

// StoreError returns the store's error when the session of the request whose
// context is ctx could not be looked up. Such a request has no session.
func StoreError(ctx context.Context) error {
	st := stateFrom(ctx)
	if st == nil {
		return nil
	}
	_, _, err := st.get()
	return err
}

// requestState returns the state Handler put in r's context, or, for a
// request that did not go through Handler, looks the session up now.
func (m *Manager) requestState(r *http.Request) *requestState {
	if st := stateFrom(r.Context()); st != nil && st.m == m {
		return st
	}
	return m.load(r)
}

// load finds and checks the request's session. A malformed token is refused
// before any store lookup; a well-formed one the store does not know is
// simply "not signed in": the server never adopts a token it did not issue.
func (m *Manager) load(r *http.Request) *requestState {
	st := &requestState{Context: r.Context(), m: m, at: m.clock.Now()}
	token, ok := tokenFrom(r, m.cookie.Name)
	if !ok {
		return st
	}
	hash, ok := parseToken(token)
	if !ok {
		return st
	}
	ctx, cancel := m.storeContext(r.Context())
	defer cancel()
	rec, err := m.store.Get(ctx, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		switch e, err := m.store.Ended(ctx, hash); {
		case err == nil:
			st.reason = e.Reason
		case errors.Is(err, ErrNotFound):
			st.unknown = true
		}
		return st
	case err != nil:
		st.err = err
		return st
	}
	if rec.Expired(st.at) {
		reason, at := rec.Expires.Reason, rec.Expires.At
		st.reason = reason
		// Whoever ends it first (this request, another, or the sweeper)
		// emits its one end event; the others find it gone.
		if _, err := m.end(r.Context(), rec.Info, Ending{Reason: reason, At: at}, ""); err != nil && !errors.Is(err, ErrNotFound) {
			m.log.Warn("session: could not end an expired session; it stays refused", "session", rec.ID, "err", err)
		}
		return st
	}
	st.own.m, st.own.rec = m, rec
	st.sess = &st.own
	return st
}

// Check finds and checks r's session as Handler does, and returns r with a
// context for FromContext, EndedReason and StoreError. When active is true
// it counts r as activity at once, within touch throttling; the passive
// headers and Passive are not consulted: the caller has decided. It sets no
// header and runs no handler.
//
// Check is for code that decides for itself what activity is, such as a
// gateway answering for another application's requests, where a request
// may be a stream that lasts an hour: Handler would record its activity
// only when it ends. Inside Handler, Check reuses the request's lookup; wrap
// such a route in Passive so that Handler does not count it as well.
func (m *Manager) Check(r *http.Request, active bool) *http.Request {
	st := m.requestState(r)
	if active {
		m.touchIfDue(r, st)
	}
	if stateFrom(r.Context()) == st {
		return r // inside Handler: the context has the state already
	}
	return r.WithContext(st)
}

// recordActivity writes the activity of r, whose state is st, to the store
// after the handler ran, unless the last write is recent (touch throttling)
// or the request was passive. Waiting for the handler lets a route wrapped
// in Passive, or a Logout, decide first.
func (m *Manager) recordActivity(r *http.Request, st *requestState) {
	sess, _, _ := st.get()
	if sess == nil {
		return
	}
	_, last, policy := sess.activity()
	if st.at.Before(last.Add(m.TouchInterval(policy))) || st.isPassive(r) {
		return
	}
	m.touchIfDue(r, st)
}

// touchIfDue writes the activity of r, whose state is st, unless the last
// write is recent or another request of this process is writing it.
func (m *Manager) touchIfDue(r *http.Request, st *requestState) {
	sess, _, _ := st.get()
	if sess == nil {
		return
	}
	id, last, policy := sess.activity()
	interval := m.TouchInterval(policy)
	if st.at.Before(last.Add(interval)) || !m.claims.claim(id, st.at, interval) {
		return
	}
	if err := sess.touch(r.Context(), st.at); err != nil && !errors.Is(err, ErrNotFound) {
		m.claims.release(id)
		m.log.Warn("session: could not record activity", "session", id, "err", err)
	}
}

// noStore is the shared value of the Cache-Control header of responses with
// a session. Its capacity is its length, so a handler that appends to it
// gets a copy.
var noStore = []string{"no-store"}[:1:1]

// varyCookie is the shared Vary header of responses with a session, when the
// handler set none before; like noStore, a handler that appends gets a copy.
var varyCookie = []string{"Cookie"}[:1:1]

// passiveHeaders reports whether r's headers mark it passive.
func passiveHeaders(r *http.Request) bool {
	// The header map's keys are canonical already: index it directly
	// instead of paying Header.Get's canonicalisation on every request.
	if v := r.Header["Session-Activity"]; len(v) > 0 && strings.EqualFold(v[0], "passive") {
		return true
	}
	// Sec-Purpose is a structured list: "prefetch" or "prefetch;prerender".
	if v := r.Header["Sec-Purpose"]; len(v) > 0 && strings.HasPrefix(strings.TrimSpace(v[0]), "prefetch") {
		return true
	}
	v := r.Header["Purpose"]
	return len(v) > 0 && strings.EqualFold(v[0], "prefetch")
}
