package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/web"
)

// guessedToken returns a well-formed session token that was never issued.
func guessedToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Session ID guessing at the gateway: a burst of unknown tokens from one
// address is refused (429 where the proxy passes it on; nginx, which turns
// a 429 into a 500, gets its 401 with Retry-After) and logged once, while
// a live session from the same address, and unknown tokens from others,
// are answered as before.
func TestGateRefusesUnknownTokenBurst(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login("alice")
	const guesser = "192.0.2.66:5000"
	for i := range web.DefaultUnknownTokenLimit {
		res := e.do("GET", ForwardAuthPath, guessedToken(), with(fetchJSON, "RemoteAddr", guesser)...)
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, res.StatusCode)
		}
	}
	res := e.do("GET", ForwardAuthPath, guessedToken(), with(fetchJSON, "RemoteAddr", guesser)...)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "60" {
		t.Fatalf("forward-auth after the burst: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	res = e.do("GET", AuthRequestPath, guessedToken(), "RemoteAddr", guesser)
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Retry-After") == "" || res.Header.Get("Location") == "" {
		t.Fatalf("nginx check after the burst: %d, Retry-After %q, Location %q", res.StatusCode, res.Header.Get("Retry-After"), res.Header.Get("Location"))
	}
	if n := strings.Count(e.logs.String(), "guessing session IDs"); n != 1 {
		t.Errorf("%d log lines for one burst, want 1:\n%s", n, e.logs.String())
	}
	for _, path := range []string{ForwardAuthPath, AuthRequestPath} {
		if res := e.do("GET", path, alice, "RemoteAddr", guesser); res.StatusCode != http.StatusOK {
			t.Errorf("%s: alice's session from the guesser's address: %d", path, res.StatusCode)
		}
	}
	if res := e.do("GET", ForwardAuthPath, guessedToken(), with(fetchJSON, "RemoteAddr", "198.51.100.3:5000")...); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unknown token from another address: %d, want 401", res.StatusCode)
	}
}
