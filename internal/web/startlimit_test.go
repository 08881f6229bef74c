package web

import (
	"net/http"
	"testing"
	"time"
)

func TestStartLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newStartLimit(3, time.Minute, 2)
	for i := range 3 {
		if _, ok := l.allow("a", now.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("start %d of 3 refused", i+1)
		}
	}
	if wait, ok := l.allow("a", now.Add(10*time.Second)); ok || wait != 50*time.Second {
		t.Errorf("4th start in the window: allowed %v, wait %v, want refused for 50s", ok, wait)
	}
	if _, ok := l.allow("b", now); !ok {
		t.Error("another address was refused")
	}
	// Two addresses tracked, both within their window: a third goes ahead
	// uncounted (refusing every new address would be a lever against
	// everyone), and neither tracked address forgets its count.
	if _, ok := l.allow("c", now.Add(30*time.Second)); !ok {
		t.Error("a third address was refused while the table was full")
	}
	if _, ok := l.allow("a", now.Add(40*time.Second)); ok {
		t.Error("a forgot its count when the table was full")
	}
	if _, ok := l.allow("a", now.Add(time.Minute)); !ok {
		t.Error("a's next window was refused")
	}
	// Once b's window has passed, it makes room.
	if _, ok := l.allow("c", now.Add(time.Minute)); !ok {
		t.Error("c was refused though b's window had passed")
	}
}

// A script posting to the passwordless begin without a cookie, over and
// over, starts at most passwordlessStartLimit sessions a minute; a browser
// that keeps its cookie is not counted again.
func TestPasswordlessBeginsAreLimited(t *testing.T) {
	e := newEnv(t, withPasskeys(t))
	for i := range passwordlessStartLimit {
		if res := e.browser().postJSON("/auth/passkey/begin", map[string]any{}); res.StatusCode != http.StatusOK {
			t.Fatalf("begin %d: %d, want 200", i+1, res.StatusCode)
		}
	}
	res := e.browser().postJSON("/auth/passkey/begin", map[string]any{})
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("begin past the limit: %d, Retry-After %q, want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	e.clock.Advance(passwordlessStartWindow)
	b := e.browser()
	for i := range 3 {
		if res := b.postJSON("/auth/passkey/begin", map[string]any{}); res.StatusCode != http.StatusOK {
			t.Fatalf("a browser's begin %d in the next minute: %d, want 200", i+1, res.StatusCode)
		}
	}
}
