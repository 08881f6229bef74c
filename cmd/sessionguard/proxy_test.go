package main

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct client keeps its address", "203.0.113.9:4000", nil, "203.0.113.9"},
		{"untrusted peer cannot claim another address", "203.0.113.9:4000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted proxy reports the client", "10.0.0.2:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"forged left part ignored", "10.0.0.2:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.0.0.2:5000", []string{"198.51.100.1, 10.1.1.1", "10.2.2.2"}, "198.51.100.1"},
		{"all trusted: leftmost", "10.0.0.2:5000", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"malformed entry stops the walk", "10.0.0.2:5000", []string{"198.51.100.1, garbage"}, "10.0.0.2"},
		{"trusted proxy without header", "10.0.0.2:5000", nil, "10.0.0.2"},
		{"ipv6 loopback proxy", "[::1]:5000", []string{"2001:db8::7"}, "2001:db8::7"},
	}
	clientIP := clientIPFunc(trusted)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r); got != tt.want {
				t.Errorf("client = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClientIPOff(t *testing.T) {
	if clientIPFunc(nil) != nil {
		t.Error("with no trusted proxy, the default (RemoteAddr) must be used")
	}
}
