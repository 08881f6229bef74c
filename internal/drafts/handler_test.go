package drafts

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// headerUser is the signed-in user of a test request: its X-User header.
func headerUser(r *http.Request) (string, bool) {
	u := r.Header.Get("X-User")
	return u, u != ""
}

// call sends a request to h as user (none when empty) and returns the
// response.
func call(h http.Handler, method, target, user, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if user != "" {
		r.Header.Set("X-User", user)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type listJSON struct {
	Drafts []draftJSON `json:"drafts"`
}

func TestHandlerRoundTrip(t *testing.T) {
	s, _ := newStore(t, sqldbtest.Open(t, sqldb.SQLite), Options{})
	h := Handler(s, headerUser)

	w := call(h, "POST", "/auth/drafts", "alice", "application/json",
		`{"form":"note","path":"/","fields":{"note":"a long text <b>&</b>"}}`)
	if w.Code != http.StatusOK {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	var saved draftJSON
	if err := json.Unmarshal(w.Body.Bytes(), &saved); err != nil || saved.ExpiresAt == nil || !saved.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("POST answered %s (%v), want the draft with its expiry", w.Body, err)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}

	w = call(h, "GET", "/auth/drafts?path=/", "alice", "", "")
	var got listJSON
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	if len(got.Drafts) != 1 || got.Drafts[0].Form != "note" || got.Drafts[0].Fields["note"] != "a long text <b>&</b>" {
		t.Errorf("GET answered %s", w.Body)
	}

	w = call(h, "GET", "/auth/drafts?path=/", "bob", "", "")
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"drafts":[]}` {
		t.Errorf("another user's GET answered %d %s, want an empty list", w.Code, w.Body)
	}
	if w := call(h, "DELETE", "/auth/drafts?path=/&form=note", "bob", "", ""); w.Code != http.StatusNoContent {
		t.Errorf("another user's DELETE: %d", w.Code)
	}
	if list, _ := s.Load(t.Context(), "alice", "/"); len(list) != 1 {
		t.Error("another user's DELETE removed alice's draft")
	}

	if w := call(h, "DELETE", "/auth/drafts?path=/&form=note", "alice", "", ""); w.Code != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", w.Code, w.Body)
	}
	if list, _ := s.Load(t.Context(), "alice", "/"); len(list) != 0 {
		t.Error("DELETE left the draft")
	}
}

func TestHandlerErrors(t *testing.T) {
	s, _ := newStore(t, sqldbtest.Open(t, sqldb.SQLite), Options{MaxBytes: 1024, MaxPerUser: 1})
	h := Handler(s, headerUser)
	big := `{"form":"f","path":"/","fields":{"t":"` + strings.Repeat("x", 2000) + `"}}`
	huge := `{"form":"f","path":"/","fields":{"t":"` + strings.Repeat("x", 20000) + `"}}`
	for _, tc := range []struct {
		name, method, target, user, contentType, body string
		status                                        int
		code                                          string
	}{
		{"no user", "GET", "/auth/drafts?path=/", "", "", "", 401, "unauthenticated"},
		{"no user, POST", "POST", "/auth/drafts", "", "application/json", `{}`, 401, "unauthenticated"},
		{"GET without path", "GET", "/auth/drafts", "alice", "", "", 400, "bad_request"},
		{"malformed JSON", "POST", "/auth/drafts", "alice", "application/json", `{"form":`, 400, "bad_request"},
		{"not an object", "POST", "/auth/drafts", "alice", "application/json", `[1,2]`, 400, "bad_request"},
		{"a number value", "POST", "/auth/drafts", "alice", "application/json", `{"form":"f","path":"/","fields":{"n":1}}`, 400, "bad_request"},
		{"trailing data", "POST", "/auth/drafts", "alice", "application/json", `{"form":"f","path":"/"} {}`, 400, "bad_request"},
		{"no form", "POST", "/auth/drafts", "alice", "application/json", `{"path":"/","fields":{}}`, 400, "bad_request"},
		{"relative path", "POST", "/auth/drafts", "alice", "application/json", `{"form":"f","path":"x","fields":{}}`, 400, "bad_request"},
		{"form encoded", "POST", "/auth/drafts", "alice", "application/x-www-form-urlencoded", `form=f`, 415, "unsupported_media_type"},
		{"over MaxBytes", "POST", "/auth/drafts", "alice", "application/json", big, 413, "too_large"},
		{"over the body limit", "POST", "/auth/drafts", "alice", "application/json", huge, 413, "too_large"},
		{"PUT", "PUT", "/auth/drafts", "alice", "application/json", `{}`, 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := call(h, tc.method, tc.target, tc.user, tc.contentType, tc.body)
			var e errorJSON
			if w.Code != tc.status || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error != tc.code || e.Message == "" {
				t.Errorf("%d %s, want %d with error %q and a message", w.Code, w.Body, tc.status, tc.code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	if w := call(h, "POST", "/auth/drafts", "alice", "application/json", `{"form":"a","path":"/","fields":{}}`); w.Code != 200 {
		t.Fatalf("first draft: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/auth/drafts", "alice", "application/json", `{"form":"b","path":"/","fields":{}}`); w.Code != http.StatusTooManyRequests {
		t.Errorf("a draft over MaxPerUser: %d %s, want 429", w.Code, w.Body)
	}
}

// TestHandlerIsPassive proves that saving drafts never keeps a session
// alive: only the user's own activity may.
func TestHandlerIsPassive(t *testing.T) {
	s, _ := newStore(t, sqldbtest.Open(t, sqldb.SQLite), Options{})
	clock := sessiontest.NewClock(t0)
	m, err := session.New(session.Config{
		Store:         memstore.New(),
		Clock:         clock,
		Policy:        session.Policy{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour},
		SweepInterval: session.SweepOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Login(w, r, "alice", session.LoginOptions{}); err != nil {
			t.Error(err)
		}
	})
	mux.Handle("/auth/drafts", Handler(s, nil))
	h := m.Handler(mux)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/login", nil))
	cookie := w.Header().Get("Set-Cookie")
	cookie = cookie[:strings.IndexByte(cookie, ';')]
	send := func(method, target, body string) int {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Cookie", cookie)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}

	for _, at := range []time.Duration{3 * time.Minute, 6 * time.Minute, 9 * time.Minute} {
		clock.Set(t0.Add(at))
		if code := send("POST", "/auth/drafts", `{"form":"note","path":"/","fields":{"note":"x"}}`); code != 200 {
			t.Fatalf("POST at %v: %d", at, code)
		}
		if code := send("GET", "/auth/drafts?path=/", ""); code != 200 {
			t.Fatalf("GET at %v: %d", at, code)
		}
	}
	clock.Set(t0.Add(10 * time.Minute))
	if code := send("GET", "/auth/drafts?path=/", ""); code != http.StatusUnauthorized {
		t.Errorf("at the idle timeout after only draft requests: %d, want 401 (drafts must not count as activity)", code)
	}
}
