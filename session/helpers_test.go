package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// countingStore counts the calls that reach a store, so tests can prove what
// the Manager does not do (no lookup for a malformed token, no write for a
// passive request).
type countingStore struct {
	session.Store
	gets, endeds, touches, saves atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, h)
}

func (s *countingStore) Ended(ctx context.Context, h session.TokenHash) (session.Ending, error) {
	s.endeds.Add(1)
	return s.Store.Ended(ctx, h)
}

func (s *countingStore) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	s.touches.Add(1)
	return s.Store.Touch(ctx, id, at, exp)
}

func (s *countingStore) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	s.saves.Add(1)
	return s.Store.SaveData(ctx, id, old, data)
}

// recorder collects session events.
type recorder struct {
	mu     sync.Mutex
	events []session.Event
}

func (r *recorder) SessionEvent(_ context.Context, e session.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) ended() []session.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []session.Event
	for _, e := range r.events {
		if e.Kind == session.EventEnded {
			out = append(out, e)
		}
	}
	return out
}

type harness struct {
	t      *testing.T
	m      *session.Manager
	clock  *sessiontest.Clock
	store  *countingStore
	events *recorder
	h      http.Handler
}

// newHarness returns a Manager on a fake clock and a memory store, with no
// background sweeper, serving:
//
//	POST /login?user=NAME   logs in with the default policy
//	POST /logout
//	GET  /private           requires a session; writes its user
//	GET  /status            passive, requires a session
//	POST /extend            requires a session; extends it
//	GET  /public            no session needed; writes the end reason
func newHarness(t *testing.T, configure func(*session.Config)) *harness {
	t.Helper()
	clock := sessiontest.NewClock(t0)
	store := &countingStore{Store: memstore.New()}
	events := &recorder{}
	cfg := session.Config{
		Store:         store,
		Clock:         clock,
		Observers:     []session.Observer{events},
		SweepInterval: session.SweepOff,
	}
	if configure != nil {
		configure(&cfg)
	}
	m, err := session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Login(w, r, r.URL.Query().Get("user"), session.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Logout(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("GET /private", m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(session.FromContext(r.Context()).UserID()))
	})))
	mux.Handle("GET /status", session.Passive(m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(session.FromContext(r.Context()).IdleRemaining().String()))
	}))))
	mux.Handle("POST /extend", m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := session.FromContext(r.Context()).Extend(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	})))
	mux.HandleFunc("GET /public", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(session.EndedReason(r.Context())))
	})
	return &harness{t: t, m: m, clock: clock, store: store, events: events, h: m.Handler(mux)}
}

// do sends a request with the given session token (none if empty) and extra
// header lines ("Name: value").
func (h *harness) do(method, target, token string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Cookie", h.m.CookieName()+"="+token)
	}
	for _, line := range headers {
		k, v, _ := strings.Cut(line, ":")
		r.Header.Add(k, strings.TrimSpace(v))
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

// login signs user in and returns the session token.
func (h *harness) login(user string, oldToken ...string) string {
	h.t.Helper()
	tok := ""
	if len(oldToken) > 0 {
		tok = oldToken[0]
	}
	w := h.do("POST", "/login?user="+user, tok)
	if w.Code != http.StatusOK {
		h.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	c := sessionCookie(h.t, w, h.m.CookieName())
	return c.Value
}

// sessionCookie returns the session cookie set by a response.
func sessionCookie(t *testing.T, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", name, w.Header().Values("Set-Cookie"))
	return nil
}

// signedIn reports whether token opens /private now.
func (h *harness) signedIn(token string) bool {
	h.t.Helper()
	w := h.do("GET", "/private", token)
	switch w.Code {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	h.t.Fatalf("GET /private: unexpected %d %s", w.Code, w.Body)
	return false
}

func (h *harness) reason(token string) string {
	h.t.Helper()
	return h.do("GET", "/public", token).Body.String()
}
