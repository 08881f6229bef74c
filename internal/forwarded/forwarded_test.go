package forwarded

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

var proxies = Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func TestPublicOrigin(t *testing.T) {
	tests := []struct {
		name       string
		remote     string
		tls        bool
		host       string
		headers    []string // pairs
		wantScheme string
		wantHost   string
	}{
		{"direct request", "203.0.113.9:4000", false, "127.0.0.1:8080", nil, "http", "127.0.0.1:8080"},
		{"direct TLS", "203.0.113.9:4000", true, "sg.example.com", nil, "https", "sg.example.com"},
		{"untrusted peer's headers ignored", "203.0.113.9:4000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example"}, "http", "127.0.0.1:8080"},
		{"trusted proxy", "10.0.0.2:5000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "sg.example.com"}, "https", "sg.example.com"},
		{"trusted proxy, host with port", "[::1]:5000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Host", "sg.example.com:8443"}, "http", "sg.example.com:8443"},
		{"nearest proxy's value wins", "10.0.0.2:5000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Proto", "http, HTTPS", "X-Forwarded-Host", "forged.example, sg.example.com"}, "https", "sg.example.com"},
		{"unknown scheme ignored", "10.0.0.2:5000", true, "127.0.0.1:8443",
			[]string{"X-Forwarded-Proto", "ftp"}, "https", "127.0.0.1:8443"},
		{"host with a path ignored", "10.0.0.2:5000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Host", "evil.example/x"}, "http", "127.0.0.1:8080"},
		{"host with a user ignored", "10.0.0.2:5000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Host", "a@evil.example"}, "http", "127.0.0.1:8080"},
		{"empty host ignored", "10.0.0.2:5000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Host", " "}, "http", "127.0.0.1:8080"},
		{"IPv6 host", "10.0.0.2:5000", false, "127.0.0.1:8080",
			[]string{"X-Forwarded-Host", "[2001:db8::1]:8443"}, "http", "[2001:db8::1]:8443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/auth/login", nil)
			r.RemoteAddr, r.Host = tt.remote, tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.TLS = nil
			}
			for i := 0; i+1 < len(tt.headers); i += 2 {
				r.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			scheme, host := proxies.PublicOrigin(r)
			if scheme != tt.wantScheme || host != tt.wantHost {
				t.Errorf("PublicOrigin = %s, %s; want %s, %s", scheme, host, tt.wantScheme, tt.wantHost)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
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
		{"IPv4-mapped peer", "[::ffff:10.0.0.2]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"unparsable remote address kept", "pipe", []string{"198.51.100.1"}, "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := proxies.ClientIP(r); got != tt.want {
				t.Errorf("client = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWarnUntrusted: X-Forwarded-For from a peer outside the proxies is
// logged once however often it comes; from a trusted proxy, or without the
// header, never.
func TestWarnUntrusted(t *testing.T) {
	for _, tt := range []struct {
		name    string
		proxies Proxies
		remote  string
		xff     string
		want    int
	}{
		{"no proxy trusted, header sent", nil, "127.0.0.1:4000", "198.51.100.1", 1},
		{"untrusted peer", proxies, "203.0.113.9:4000", "198.51.100.1", 1},
		{"trusted peer", proxies, "10.0.0.2:4000", "198.51.100.1", 0},
		{"no header", nil, "203.0.113.9:4000", "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := tt.proxies.WarnUntrusted(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}), slog.New(slog.NewTextHandler(&logs, nil)))
			for range 5 {
				r := httptest.NewRequest("GET", "/", nil)
				r.RemoteAddr = tt.remote
				if tt.xff != "" {
					r.Header.Set("X-Forwarded-For", tt.xff)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusNoContent {
					t.Fatalf("the wrapped handler did not answer: %d", rec.Code)
				}
			}
			if n := strings.Count(logs.String(), "X-Forwarded-For from a peer"); n != tt.want {
				t.Errorf("%d warnings, want %d:\n%s", n, tt.want, logs.String())
			}
		})
	}
}
