package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// gatedStore holds the first SaveData until release is closed, so a test can
// make a slow write overlap a fast one.
type gatedStore struct {
	session.Store
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (s *gatedStore) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.entered)
		<-s.release
	}
	return s.Store.SaveData(ctx, id, old, data)
}

// sessionOf loads the session of token as a request of its own would.
func sessionOf(t *testing.T, m *session.Manager, token string) (*session.Session, *http.Request) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", m.CookieName()+"="+token)
	r = m.Check(r, false)
	s := session.FromContext(r.Context())
	if s == nil {
		t.Fatal("the token opened no session")
	}
	return s, r
}

// Two requests of one session set different keys at once; the slower one
// read the data before the faster one wrote. Both keys must survive.
func TestConcurrentSetsOfDifferentKeysBothSurvive(t *testing.T) {
	h := newHarness(t, nil)
	gate := &gatedStore{Store: h.store, entered: make(chan struct{}), release: make(chan struct{})}
	m, err := session.New(session.Config{Store: gate, Clock: h.clock, SweepInterval: session.SweepOff})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := h.login("alice")
	slow, rs := sessionOf(t, m, tok)
	fast, rf := sessionOf(t, m, tok)

	done := make(chan error)
	go func() { done <- slow.Set(rs.Context(), "a", "1") }()
	<-gate.entered // the slow write has read the empty data and is in the store
	if err := fast.Set(rf.Context(), "b", "2"); err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after, _ := sessionOf(t, m, tok)
	if got := strings.Join(after.Keys(), ","); got != "a,b" {
		t.Fatalf("keys after two concurrent Sets = %q, want a,b", got)
	}
}

// Of many requests popping one flash message at once, exactly one gets it.
func TestPopIsOnce(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	s, r := sessionOf(t, h.m, tok)
	if err := s.Set(r.Context(), "flash", "Saved."); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 8 {
		wg.Go(func() {
			s, r := sessionOf(t, h.m, tok)
			v, ok, err := s.Pop(r.Context(), "flash")
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				got++
				mu.Unlock()
				if v != "Saved." {
					t.Errorf("Pop = %q", v)
				}
			}
		})
	}
	wg.Wait()
	if got != 1 {
		t.Fatalf("%d requests popped the flash message, want 1", got)
	}
}

func TestDataHelpers(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	s, r := sessionOf(t, h.m, tok)
	ctx := r.Context()
	when := time.Date(2026, 12, 3, 4, 5, 6, 789, time.FixedZone("CET", 3600))
	type cart struct {
		Items []string `json:"items"`
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetInt(ctx, "n", -42))
	must(s.SetTime(ctx, "t", when))
	must(s.SetJSON(ctx, "cart", cart{Items: []string{"tea"}}))

	// A fresh request reads what the store kept.
	s, r = sessionOf(t, h.m, tok)
	ctx = r.Context()
	if n, ok := s.Int("n"); !ok || n != -42 {
		t.Errorf("Int = %d, %v", n, ok)
	}
	if got, ok := s.Time("t"); !ok || !got.Equal(when) {
		t.Errorf("Time = %v, %v; want %v", got, ok, when)
	}
	var c cart
	if ok, err := s.JSON("cart", &c); !ok || err != nil || len(c.Items) != 1 || c.Items[0] != "tea" {
		t.Errorf("JSON = %+v, %v, %v", c, ok, err)
	}
	if _, ok := s.Int("cart"); ok {
		t.Error("Int read a JSON value as an integer")
	}
	if ok, err := s.JSON("n", &[]string{}); !ok || err == nil {
		t.Error("JSON decoded an integer into a slice without an error")
	}
	if !s.Exists("n") || s.Exists("missing") {
		t.Error("Exists is wrong")
	}
	if got := strings.Join(s.Keys(), ","); got != "cart,n,t" {
		t.Errorf("Keys = %q", got)
	}
	if v, ok, err := s.Pop(ctx, "missing"); ok || v != "" || err != nil {
		t.Errorf("Pop of a missing key = %q, %v, %v", v, ok, err)
	}
	must(s.Clear(ctx))
	s, _ = sessionOf(t, h.m, tok)
	if len(s.Keys()) != 0 {
		t.Errorf("keys after Clear: %v", s.Keys())
	}
	if !s.SignedIn() {
		t.Error("Clear signed the user out")
	}
}

func TestDataSizeLimit(t *testing.T) {
	h := newHarness(t, func(c *session.Config) { c.MaxDataBytes = 100 })
	tok := h.login("alice")
	s, r := sessionOf(t, h.m, tok)
	ctx := r.Context()
	if err := s.Set(ctx, "k", strings.Repeat("x", 99)); err != nil { // 1 + 99 bytes: at the limit
		t.Fatal(err)
	}
	if err := s.Set(ctx, "k2", "y"); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("Set past the limit = %v, want ErrTooLarge", err)
	}
	if err := s.SetJSON(ctx, "big", strings.Repeat("z", 200)); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("SetJSON past the limit = %v, want ErrTooLarge", err)
	}
	// What was refused was not written.
	s, _ = sessionOf(t, h.m, tok)
	if s.Exists("k2") || s.Exists("big") {
		t.Error("a refused value was stored")
	}
	// Replacing a value by a smaller one is always possible.
	if err := s.Set(ctx, "k", "small"); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultDataLimitIs16KiB(t *testing.T) {
	h := newHarness(t, nil)
	s, r := sessionOf(t, h.m, h.login("alice"))
	if err := s.Set(r.Context(), "v", strings.Repeat("x", 6_000_000)); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("a 6 MB value = %v, want ErrTooLarge", err)
	}
	if err := s.Set(r.Context(), "v", strings.Repeat("x", 16<<10-1)); err != nil {
		t.Fatalf("a value at the 16 KiB limit: %v", err)
	}
	if _, err := session.New(session.Config{Store: h.store, MaxDataBytes: -1}); err == nil {
		t.Error("a negative MaxDataBytes was accepted")
	}
}

func TestNilSessionIsSafe(t *testing.T) {
	s := session.FromContext(context.Background()) // no middleware: no session
	if s != nil {
		t.Fatal("a bare context has a session")
	}
	if s.UserID() != "" || s.ID() != "" || s.SignedIn() || s.Exists("k") || s.Keys() != nil || s.IdleRemaining() != 0 {
		t.Error("a nil Session reads as something")
	}
	if _, ok := s.Get("k"); ok {
		t.Error("a nil Session has data")
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"Set":    s.Set(ctx, "k", "v"),
		"Delete": s.Delete(ctx, "k"),
		"Clear":  s.Clear(ctx),
		"Extend": s.Extend(ctx),
	} {
		if !errors.Is(err, session.ErrNoSession) {
			t.Errorf("%s on a nil Session = %v, want ErrNoSession", name, err)
		}
	}
	if _, _, err := s.Pop(ctx, "k"); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("Pop on a nil Session = %v", err)
	}
}

func TestPartialPolicyTakesDefaults(t *testing.T) {
	h := newHarness(t, nil)
	r := httptest.NewRequest("POST", "/login", nil)
	s, err := h.m.Login(httptest.NewRecorder(), r, "alice", session.LoginOptions{Policy: session.Policy{IdleTimeout: 5 * time.Minute}})
	if err != nil {
		t.Fatalf("Login with only an idle timeout: %v", err)
	}
	if p := s.Info().Policy; p.IdleTimeout != 5*time.Minute || p.AbsoluteTimeout != session.DefaultPolicy.AbsoluteTimeout {
		t.Errorf("policy = %+v", p)
	}
	s, err = h.m.Login(httptest.NewRecorder(), r, "alice", session.LoginOptions{Policy: session.Policy{AbsoluteTimeout: time.Hour}})
	if err != nil || s.Info().Policy.IdleTimeout != 30*time.Minute {
		t.Errorf("Login with only an absolute timeout: %+v, %v", s.Info().Policy, err)
	}
	// The Manager's own Config.Policy fills the same way.
	m, err := session.New(session.Config{Store: h.store, SweepInterval: session.SweepOff, Policy: session.Policy{IdleTimeout: 10 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if p := m.Policy(); p.IdleTimeout != 10*time.Minute || p.AbsoluteTimeout != 12*time.Hour {
		t.Errorf("Manager policy = %+v", p)
	}
}

func TestUnauthenticatedAnswersJSONToScripts(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	h.do("POST", "/logout", tok)
	w := h.do("GET", "/private", tok, "Accept: application/json")
	if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("got %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if body := w.Body.String(); !strings.Contains(body, `"error":"unauthenticated"`) || !strings.Contains(body, `"reason":"logout"`) {
		t.Errorf("body %s", body)
	}
	w = h.do("GET", "/private", "", "Accept: text/html,application/json;q=0.9")
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Error("a browser navigation got JSON")
	}
}
