package web

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// behindProxy is a web server behind a TLS-terminating proxy at 10.0.0.2,
// which the server trusts.
func behindProxy(c *Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}
}

// proxiedSignIn is a sign-in as an older browser (no Sec-Fetch-Site, only
// Origin) sends it to https://sg.example.com, arriving from peer with the
// Host the proxy rewrote to the server's own address.
func proxiedSignIn(peer string, headers ...string) *http.Request {
	form := url.Values{"username": {"alice"}, "password": {alicePassword}}
	r := httptest.NewRequest("POST", "http://127.0.0.1:8080/auth/login", strings.NewReader(form.Encode()))
	r.RemoteAddr = peer
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Origin", "https://sg.example.com")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "sg.example.com")
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// TestCrossOriginBehindProxy: the cross-origin check compares Origin with
// the host the browser used, which a trusted proxy tells in
// X-Forwarded-Host, not with the Host header the proxy rewrote. From any
// other peer, or naming another host, the request is still refused.
func TestCrossOriginBehindProxy(t *testing.T) {
	e := newEnv(t, behindProxy)
	e.addUser("alice", alicePassword, "user")

	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, proxiedSignIn("10.0.0.2:40000"))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in through the trusted proxy: %d, want 303; body:\n%s", rec.Code, rec.Body.String())
	}

	for _, tc := range []struct {
		name string
		req  *http.Request
	}{
		{"the same headers from an untrusted peer", proxiedSignIn("203.0.113.9:40000")},
		{"another site's origin through the proxy", proxiedSignIn("10.0.0.2:40000", "Origin", "https://evil.example")},
		{"a cross-site fetch through the proxy", proxiedSignIn("10.0.0.2:40000", "Sec-Fetch-Site", "cross-site")},
	} {
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, tc.req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, rec.Code)
		}
	}
}

// TestCrossOriginWithoutTrustedProxy: with no proxy trusted, the server
// judges by its own Host, as http.CrossOriginProtection does.
func TestCrossOriginWithoutTrustedProxy(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, "user")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, proxiedSignIn("10.0.0.2:40000"))
	if rec.Code != http.StatusForbidden {
		t.Errorf("forwarded headers without -trusted-proxy: %d, want 403", rec.Code)
	}
	rec = httptest.NewRecorder()
	e.handler.ServeHTTP(rec, proxiedSignIn("10.0.0.2:40000", "Origin", "http://127.0.0.1:8080"))
	if rec.Code != http.StatusSeeOther {
		t.Errorf("same-host origin: %d, want 303; body:\n%s", rec.Code, rec.Body.String())
	}
}
