package main

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// The rules live in internal/forwarded, which tests them; this checks the
// wiring: the trusted proxies given are the ones believed.
func TestClientIP(t *testing.T) {
	clientIP := clientIPFunc([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "1.2.3.4, 198.51.100.1")
	for remote, want := range map[string]string{"10.0.0.2:5000": "198.51.100.1", "203.0.113.9:4000": "203.0.113.9"} {
		r.RemoteAddr = remote
		if got := clientIP(r); got != want {
			t.Errorf("from %s: client = %q, want %q", remote, got, want)
		}
	}
}

func TestClientIPOff(t *testing.T) {
	if clientIPFunc(nil) != nil {
		t.Error("with no trusted proxy, the default (RemoteAddr) must be used")
	}
}
