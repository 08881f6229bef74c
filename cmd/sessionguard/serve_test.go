package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDeriveBaseURL(t *testing.T) {
	for _, tc := range []struct {
		listening, configured string
		tls                   bool
		want                  string
	}{
		{"127.0.0.1:8080", "localhost:8080", false, "http://localhost:8080"},
		{"127.0.0.1:41234", "127.0.0.1:0", false, "http://localhost:41234"},
		{"[::]:8080", ":8080", false, "http://localhost:8080"},
		{"0.0.0.0:8443", "0.0.0.0:8443", true, "https://localhost:8443"},
		{"[::1]:8080", "[::1]:8080", false, "http://localhost:8080"},
		{"192.0.2.7:8080", "sg.example.com:8080", false, "http://sg.example.com:8080"},
		{"192.0.2.7:443", "sg.example.com:443", true, "https://sg.example.com"},
		{"192.0.2.7:80", "192.0.2.7:80", false, "http://192.0.2.7"},
	} {
		addr, err := net.ResolveTCPAddr("tcp", tc.listening)
		if err != nil {
			t.Fatal(err)
		}
		if got := deriveBaseURL(addr, tc.configured, tc.tls); got != tc.want {
			t.Errorf("deriveBaseURL(%s, %q, %v) = %q, want %q", tc.listening, tc.configured, tc.tls, got, tc.want)
		}
	}
}

func TestStartWarnings(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, tc := range []struct {
		args      []string
		listening string
		want      []string // substrings of the log; nil: no warning at all
	}{
		{nil, "127.0.0.1:8080", nil},
		{[]string{"-warn-before", "10s"}, "127.0.0.1:8080", []string{"below the 20 seconds WCAG 2.2.1"}},
		{[]string{"-absolute-timeout", "4m", "-idle-timeout", "1m", "-warn-before", "30s"}, "127.0.0.1:8080", []string{"no session lives long enough to be asked for its password again"}},
		{[]string{"-addr", ":8080"}, "[::]:8080", []string{"plain HTTP beyond localhost"}},
		{[]string{"-addr", ":8080", "-base-url", "https://sg.example.com"}, "[::]:8080", nil},
		{[]string{"-addr", ":8080", "-insecure-cookie"}, "[::]:8080", nil},
		{[]string{"-insecure-cookie", "-base-url", "https://sg.example.com"}, "127.0.0.1:8080", []string{"only weakens the cookie"}},
		{[]string{"-mfa", "off", "-admin-mfa", "required"}, "127.0.0.1:8080", []string{`msg="-mfa off: users sign in with a password alone, even those who set up a second factor" mfa=off`}},
		{[]string{"-mfa", "off", "-admin-mfa", "optional"}, "127.0.0.1:8080", []string{
			"-mfa off: users sign in", `msg="-admin-mfa optional: administrators who set up no second factor sign in with a password alone" admin_mfa=optional`}},
		{[]string{"-mfa", "off", "-admin-mfa", "off"}, "127.0.0.1:8080", []string{"-admin-mfa off: administrators sign in with a password alone"}},
		{[]string{"-preset", "pci-dss", "-mfa", "optional"}, "127.0.0.1:8080", []string{
			`msg="-mfa is weaker than -preset pci-dss asks: the preset's standard is not met" mfa=optional preset=pci-dss preset_mfa=required`}},
		{[]string{"-preset", "pci-dss"}, "127.0.0.1:8080", nil},
	} {
		cfg, err := parseServe(tc.args, envOf(nil), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		baseURL := cfg.BaseURL
		if baseURL == "" {
			baseURL = deriveBaseURL(tcp(tc.listening), cfg.Addr, cfg.TLS())
		}
		warnings(cfg, baseURL, tcp(tc.listening), slog.New(slog.NewTextHandler(&out, nil)))
		if tc.want == nil && out.Len() > 0 {
			t.Errorf("%v: unexpected warnings:\n%s", tc.args, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: log lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}

// TestSetupLinkNotLogged: the setup link, which holds the token that makes
// its bearer the first administrator, goes to the terminal only; the log,
// in either format, says that a link was issued and until when.
func TestSetupLinkNotLogged(t *testing.T) {
	const token = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
	link := "https://sg.example.com/setup?token=" + token
	expires := time.Now().Add(time.Hour)
	for _, format := range []string{"text", "json"} {
		var terminal, logs bytes.Buffer
		log := newLogger(&serveConfig{LogFormat: format}, &logs)
		announceSetup(&terminal, log, link, expires)
		if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), "setup?token") {
			t.Errorf("%s log holds the setup token:\n%s", format, logs.String())
		}
		if !strings.Contains(logs.String(), "setup link") || !strings.Contains(logs.String(), expires.UTC().Format(time.RFC3339)) {
			t.Errorf("%s log does not say that a link was issued and when it expires:\n%s", format, logs.String())
		}
		if !strings.Contains(terminal.String(), "\n    "+link+"\n") || !strings.Contains(terminal.String(), "within 1h") {
			t.Errorf("terminal:\n%s\nwant the link on a line of its own and its lifetime", terminal.String())
		}
	}
}
