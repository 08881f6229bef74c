package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
)

// guessedToken returns a well-formed session token that was never issued.
func guessedToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// guess sends one request from c with token as its session cookie.
func (c *client) guess(token string) *http.Response {
	c.e.t.Helper()
	c.cookies[c.e.sessions.CookieName()] = token
	return c.get("/auth/status", "Accept", "application/json")
}

// Session ID guessing: a burst of unknown session tokens from one
// address is refused with 429 and logged once; signed-in users, from that
// address or any other, lose nothing.
func TestUnknownTokenBurstRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	const guesserAddr = "203.0.113.50:6000"
	alice := e.browser()
	alice.addr = guesserAddr // the guesser shares her office's address
	alice.login("alice", alicePassword)
	bob := e.browser()
	bob.addr = "198.51.100.7:6000"
	e.addUser("bob", bobPassword, account.RoleUser)
	bob.login("bob", bobPassword)

	guesser := e.browser()
	guesser.addr = guesserAddr
	for i := range DefaultUnknownTokenLimit {
		if res := guesser.guess(guessedToken()); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, res.StatusCode)
		}
	}
	res := guesser.guess(guessedToken())
	body := wantStatus(t, res, http.StatusTooManyRequests)
	if res.Header.Get("Retry-After") != "60" || strings.TrimSpace(body) != `{"error":"too_many_unknown_tokens"}` {
		t.Errorf("refusal: Retry-After %q, body %s", res.Header.Get("Retry-After"), body)
	}
	for range 50 {
		wantStatus(t, guesser.guess(guessedToken()), http.StatusTooManyRequests)
	}
	page := guesser.get("/auth/login", "Accept", "text/html")
	if body := wantStatus(t, page, http.StatusTooManyRequests); !strings.Contains(body, "Wait 1 minute") {
		t.Errorf("the page does not say what to do: %s", body)
	}
	if n := strings.Count(e.logs.String(), "guessing session IDs"); n != 1 {
		t.Errorf("%d log lines for one burst, want 1:\n%s", n, e.logs.String())
	}

	// Signed-in users are never counted or refused: alice shares the
	// guesser's address, bob has another.
	for _, c := range []*client{alice, bob} {
		wantStatus(t, c.get("/auth/status", "Accept", "application/json"), http.StatusOK)
		wantStatus(t, c.get("/account"), http.StatusOK)
	}
	// Requests without a token from the address, and unknown tokens from
	// other addresses, pass as before.
	stranger := e.browser()
	stranger.addr = guesserAddr
	wantStatus(t, stranger.get("/auth/login"), http.StatusOK)
	other := e.browser()
	other.addr = "192.0.2.200:6000"
	wantStatus(t, other.guess(guessedToken()), http.StatusUnauthorized)

	// A minute later the address is heard again; a new burst is logged anew
	// once a quiet minute has passed.
	e.clock.Advance(time.Minute)
	wantStatus(t, guesser.guess(guessedToken()), http.StatusUnauthorized)
	e.clock.Advance(2 * time.Minute)
	for range DefaultUnknownTokenLimit + 1 {
		guesser.guess(guessedToken())
	}
	if n := strings.Count(e.logs.String(), "guessing session IDs"); n != 2 {
		t.Errorf("%d log lines after a second burst, want 2", n)
	}
}

// A browser with a stale cookie presents the same unknown token on every
// request: that is one token, never a burst.
func TestRepeatedStaleTokenIsNotABurst(t *testing.T) {
	e := newEnv(t)
	stale := e.browser()
	token := guessedToken()
	for i := range 3 * DefaultUnknownTokenLimit {
		if res := stale.guess(token); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d with one stale token: %d", i+1, res.StatusCode)
		}
	}
}

func TestUnknownTokenLimitConfigured(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UnknownTokenLimit = 3 })
	c := e.browser()
	for range 3 {
		wantStatus(t, c.guess(guessedToken()), http.StatusUnauthorized)
	}
	wantStatus(t, c.guess(guessedToken()), http.StatusTooManyRequests)

	off := newEnv(t, func(c *Config) { c.UnknownTokenLimit = UnknownTokenLimitOff })
	c = off.browser()
	for range 2 * DefaultUnknownTokenLimit {
		wantStatus(t, c.guess(guessedToken()), http.StatusUnauthorized)
	}
}
