package session

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

// requestState is what the middleware learned about a request's session. It
// lives in the request's context.
type requestState struct {
	m  *Manager
	at time.Time // when the request arrived: the instant of its activity

	mu      sync.Mutex
	sess    *Session  // nil: not signed in
	reason  EndReason // why the presented token no longer works, when known
	err     error     // the store failed: nobody can be treated as signed in
	passive bool      // the request does not count as activity

	// own holds the request's session when it was loaded with the request,
	// so that both take one allocation.
	own Session
}

// get returns the request's session, why it has none, and the store's error.
func (st *requestState) get() (*Session, EndReason, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sess, st.reason, st.err
}

// set records the request's new session (after a login) or that it has none
// any more, and why.
func (st *requestState) set(s *Session, reason EndReason) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sess, st.reason, st.err = s, reason, nil
}

func (st *requestState) isPassive() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.passive
}

type stateKey struct{}

type passiveKey struct{}

func stateFrom(ctx context.Context) *requestState {
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
			h["Vary"] = append(h["Vary"], "Cookie")
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
		m.recordActivity(r.Context(), st)
	})
}

// Require is middleware like Handler that runs next only for requests with a
// live session. Others get Config.Unauthenticated (no session) or
// Config.StoreFailure (the store failed: fail closed).
func (m *Manager) Require(next http.Handler) http.Handler {
	return m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _, err := stateFrom(r.Context()).get()
		switch {
		case sess != nil:
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
			st.mu.Lock()
			st.passive = true
			st.mu.Unlock()
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), passiveKey{}, true)))
	})
}

// FromContext returns the session of the request whose context is ctx, or nil
// if it has none. The context must come from Handler or Require.
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
	st := &requestState{m: m, at: m.clock.Now(), passive: isPassive(r)}
	token, ok := tokenFrom(r, m.cookieName)
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
		if e, err := m.store.Ended(ctx, hash); err == nil {
			st.reason = e.Reason
		}
		return st
	case err != nil:
		st.err = err
		return st
	}
	if rec.Expired(st.at) {
		reason, at := rec.Expiry()
		st.reason = reason
		// Whoever ends it first (this request, another, or the sweeper)
		// emits its one end event; the others find it gone.
		if _, err := m.end(r.Context(), rec.Info, Ending{Reason: reason, At: at}, ""); err != nil && !errors.Is(err, ErrNotFound) {
			m.log.Warn("session: could not end an expired session; it stays refused", "session", rec.ID, "err", err)
		}
		return st
	}
	st.own = Session{m: m, rec: rec}
	st.sess = &st.own
	return st
}

// recordActivity writes the request's activity to the store after the
// handler ran, unless the request was passive or the last write is recent
// (touch throttling). Waiting for the handler lets a route wrapped in
// Passive, or a Logout, decide first.
func (m *Manager) recordActivity(ctx context.Context, st *requestState) {
	sess, _, _ := st.get()
	if sess == nil || st.isPassive() {
		return
	}
	info := sess.info()
	interval := m.TouchInterval(info.Policy)
	if st.at.Sub(info.LastActivity) < interval || !m.claims.claim(info.ID, st.at, interval) {
		return
	}
	if err := sess.touch(ctx, st.at); err != nil && !errors.Is(err, ErrNotFound) {
		m.claims.release(info.ID)
		m.log.Warn("session: could not record activity", "session", info.ID, "err", err)
	}
}

// noStore is the shared value of the Cache-Control header of responses with
// a session. Its capacity is its length, so a handler that appends to it
// gets a copy.
var noStore = []string{"no-store"}[:1:1]

func isPassive(r *http.Request) bool {
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
