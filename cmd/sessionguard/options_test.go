package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/session"
)

// envOf returns a getenv that answers from m.
func envOf(m map[string]string) environment {
	return environment(m)
}

func TestServeDefaults(t *testing.T) {
	c, err := parseServe(nil, envOf(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := serveConfig{
		Addr:            "localhost:8080",
		DB:              "sqlite:sessionguard.db",
		Policy:          session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour},
		AdminPolicy:     session.Policy{IdleTimeout: 15 * time.Minute, AbsoluteTimeout: 12 * time.Hour},
		WarnBefore:      2 * time.Minute,
		ReauthAfter:     5 * time.Minute,
		ShutdownTimeout: 15 * time.Second,
		LogFormat:       "text",
	}
	if c.Addr != want.Addr || c.DB != want.DB || c.Sessions != "" || c.Policy != want.Policy ||
		c.AdminPolicy != want.AdminPolicy || c.WarnBefore != want.WarnBefore || c.ReauthAfter != want.ReauthAfter ||
		c.TouchInterval != 0 || c.ShutdownTimeout != want.ShutdownTimeout || c.StoreTimeout != 3*time.Second || c.LogFormat != "text" ||
		c.LogLevel.String() != "INFO" || c.InsecureCookie || c.TLS() || c.TLSLegacyCiphers || c.TrustedProxies != nil || c.BaseURL != "" ||
		c.MetricsAddr != "" || c.AbsWarnBefore != 5*time.Minute || c.Lowered != nil || c.UnknownVariables != nil ||
		c.MFA != account.MFAOptional || c.AdminMFA != account.MFARequired {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
}

func TestServeEnvAndFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *serveConfig)
	}{
		{"env fallback", nil, map[string]string{"SESSIONGUARD_IDLE_TIMEOUT": "15m", "SESSIONGUARD_ADDR": ":9000"},
			func(t *testing.T, c *serveConfig) {
				if c.Policy.IdleTimeout != 15*time.Minute || c.Addr != ":9000" {
					t.Errorf("got idle %v addr %q, want 15m :9000", c.Policy.IdleTimeout, c.Addr)
				}
			}},
		{"flag wins over env", []string{"-idle-timeout", "10m"}, map[string]string{"SESSIONGUARD_IDLE_TIMEOUT": "15m"},
			func(t *testing.T, c *serveConfig) {
				if c.Policy.IdleTimeout != 10*time.Minute {
					t.Errorf("idle = %v, want the flag's 10m", c.Policy.IdleTimeout)
				}
			}},
		{"empty env is unset", nil, map[string]string{"SESSIONGUARD_IDLE_TIMEOUT": ""},
			func(t *testing.T, c *serveConfig) {
				if c.Policy.IdleTimeout != 30*time.Minute {
					t.Errorf("idle = %v, want the default", c.Policy.IdleTimeout)
				}
			}},
		{"bool from env", nil, map[string]string{"SESSIONGUARD_INSECURE_COOKIE": "1"},
			func(t *testing.T, c *serveConfig) {
				if !c.InsecureCookie {
					t.Error("SESSIONGUARD_INSECURE_COOKIE=1 did not set it")
				}
			}},
		{"bool flag false beats env", []string{"-insecure-cookie=false"}, map[string]string{"SESSIONGUARD_INSECURE_COOKIE": "true"},
			func(t *testing.T, c *serveConfig) {
				if c.InsecureCookie {
					t.Error("-insecure-cookie=false lost to the environment")
				}
			}},
		{"serve word", []string{"-addr", "127.0.0.1:0"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.Addr != "127.0.0.1:0" {
					t.Errorf("addr = %q", c.Addr)
				}
			}},
		{"preset sets both", []string{"-preset", "owasp-high-value"}, nil,
			func(t *testing.T, c *serveConfig) {
				want := session.Policy{IdleTimeout: 5 * time.Minute, AbsoluteTimeout: 4 * time.Hour}
				if c.Policy != want {
					t.Errorf("policy = %+v, want %+v", c.Policy, want)
				}
				// Admins follow the stricter users down.
				if c.AdminPolicy != want {
					t.Errorf("admin policy = %+v, want %+v", c.AdminPolicy, want)
				}
			}},
		{"explicit timeout beats preset", []string{"-preset", "owasp-high-value", "-idle-timeout", "2m"}, nil,
			func(t *testing.T, c *serveConfig) {
				want := session.Policy{IdleTimeout: 2 * time.Minute, AbsoluteTimeout: 4 * time.Hour}
				if c.Policy != want {
					t.Errorf("policy = %+v, want %+v", c.Policy, want)
				}
			}},
		{"env timeout beats env preset", nil, map[string]string{"SESSIONGUARD_PRESET": "nist-aal3", "SESSIONGUARD_ABSOLUTE_TIMEOUT": "1h"},
			func(t *testing.T, c *serveConfig) {
				want := session.Policy{IdleTimeout: 15 * time.Minute, AbsoluteTimeout: time.Hour}
				if c.Policy != want {
					t.Errorf("policy = %+v, want %+v", c.Policy, want)
				}
			}},
		{"short timeouts for tests", []string{"-idle-timeout", "2s", "-absolute-timeout", "1m", "-warn-before", "1s"}, nil,
			func(t *testing.T, c *serveConfig) {
				want := session.Policy{IdleTimeout: 2 * time.Second, AbsoluteTimeout: time.Minute}
				if c.Policy != want || c.AdminPolicy != want {
					t.Errorf("policy = %+v admin %+v, want both %+v", c.Policy, c.AdminPolicy, want)
				}
			}},
		{"stricter admin kept", []string{"-admin-idle-timeout", "5m", "-admin-absolute-timeout", "1h"}, nil,
			func(t *testing.T, c *serveConfig) {
				want := session.Policy{IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour}
				if c.AdminPolicy != want {
					t.Errorf("admin policy = %+v, want %+v", c.AdminPolicy, want)
				}
			}},
		{"postgres for everything", []string{"-db", "postgres://sg:secret@db.internal/sg?sslmode=verify-full"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.Sessions != "" || c.DB != "postgres://sg:secret@db.internal/sg?sslmode=verify-full" {
					t.Errorf("db %q sessions %q", c.DB, c.Sessions)
				}
			}},
		{"redis sessions from env", nil, map[string]string{
			"SESSIONGUARD_DB":       "postgresql://sg@db.internal/sg",
			"SESSIONGUARD_SESSIONS": "rediss://:secret@cache.internal:6380/2?key_prefix=blue:&pool_size=20",
		},
			func(t *testing.T, c *serveConfig) {
				if c.Sessions != "rediss://:secret@cache.internal:6380/2?key_prefix=blue:&pool_size=20" {
					t.Errorf("sessions %q", c.Sessions)
				}
			}},
		{"redis sentinel", []string{"-sessions", "redis://s1:26379,s2/1?master_name=main"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.Sessions != "redis://s1:26379,s2/1?master_name=main" {
					t.Errorf("sessions %q", c.Sessions)
				}
			}},
		{"store timeout", []string{"-store-timeout", "750ms"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.StoreTimeout != 750*time.Millisecond {
					t.Errorf("store timeout %v", c.StoreTimeout)
				}
			}},
		{"sessions memory", []string{"-sessions", "memory"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.Sessions != "memory" {
					t.Errorf("sessions = %q", c.Sessions)
				}
			}},
		{"tls pair", []string{"-tls-cert", "c.pem", "-tls-key", "k.pem"}, nil,
			func(t *testing.T, c *serveConfig) {
				if !c.TLS() {
					t.Error("TLS() = false")
				}
			}},
		{"trusted proxies", []string{"-trusted-proxy", "10.0.0.0/8, 192.168.1.7,::1"}, nil,
			func(t *testing.T, c *serveConfig) {
				want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}
				if len(c.TrustedProxies) != len(want) {
					t.Fatalf("proxies = %v, want %v", c.TrustedProxies, want)
				}
				for i := range want {
					if c.TrustedProxies[i] != want[i] {
						t.Errorf("proxies = %v, want %v", c.TrustedProxies, want)
					}
				}
			}},
		{"log settings", []string{"-log-format", "json", "-log-level", "debug"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.LogFormat != "json" || c.LogLevel.String() != "DEBUG" {
					t.Errorf("log %q %v", c.LogFormat, c.LogLevel)
				}
			}},
		{"gateway defaults", nil, nil,
			func(t *testing.T, c *serveConfig) {
				if c.Upstream != nil || c.UpstreamTimeout != time.Minute || !c.InjectScript || c.GateActivity != "navigation" || c.GatePassivePaths != nil ||
					c.GateAllowRoles != nil || c.GateRedirectHosts != nil || c.CookieDomain != "" {
					t.Errorf("gateway defaults: %+v", c)
				}
			}},
		{"gateway flags, repeated", []string{"-upstream", "http://127.0.0.1:3000/base", "-inject-script=false",
			"-gate-activity", "all", "-gate-passive-path", "/api/notifications/*", "-gate-passive-path", "/poll",
			"-gate-allow-role", "admin", "-gate-redirect-host", "grafana.example.com", "-gate-redirect-host", "wiki.example.com:8443",
			"-cookie-domain", ".Example.com"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.Upstream.String() != "http://127.0.0.1:3000/base" || c.InjectScript || c.GateActivity != "all" ||
					strings.Join(c.GatePassivePaths, " ") != "/api/notifications/* /poll" ||
					strings.Join(c.GateAllowRoles, " ") != "admin" ||
					strings.Join(c.GateRedirectHosts, " ") != "grafana.example.com wiki.example.com:8443" ||
					c.CookieDomain != "example.com" {
					t.Errorf("gateway flags: %+v", c)
				}
			}},
		{"repeatable flags from env, comma-separated", nil, map[string]string{
			"SESSIONGUARD_GATE_ALLOW_ROLE": "admin, user", "SESSIONGUARD_GATE_PASSIVE_PATH": "/a/*,/b",
			"SESSIONGUARD_INJECT_SCRIPT": "false"},
			func(t *testing.T, c *serveConfig) {
				if strings.Join(c.GateAllowRoles, " ") != "admin user" || strings.Join(c.GatePassivePaths, " ") != "/a/* /b" || c.InjectScript {
					t.Errorf("from env: roles %q, paths %q, inject %v", c.GateAllowRoles, c.GatePassivePaths, c.InjectScript)
				}
			}},
		{"repeatable flag wins over env", []string{"-gate-allow-role", "user"}, map[string]string{"SESSIONGUARD_GATE_ALLOW_ROLE": "admin"},
			func(t *testing.T, c *serveConfig) {
				if strings.Join(c.GateAllowRoles, " ") != "user" {
					t.Errorf("roles %q, want the flag's user only", c.GateAllowRoles)
				}
			}},
		{"a short idle timeout lowers the defaults that follow it", []string{"-idle-timeout", "1m"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.AdminPolicy.IdleTimeout != time.Minute || c.WarnBefore != 30*time.Second {
					t.Errorf("admin idle %v, warn before %v; want 1m and 30s", c.AdminPolicy.IdleTimeout, c.WarnBefore)
				}
				want := []string{
					"-admin-idle-timeout lowered from its default 15m to the users' idle timeout 1m: administrators' sessions are never looser than users'",
					"-warn-before lowered from its default 2m to 30s, half of -idle-timeout 1m",
				}
				if strings.Join(c.Lowered, "\n") != strings.Join(want, "\n") {
					t.Errorf("lowered:\n%s\nwant\n%s", strings.Join(c.Lowered, "\n"), strings.Join(want, "\n"))
				}
			}},
		{"a short admin idle timeout lowers the warning's default", []string{"-admin-idle-timeout", "90s"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.WarnBefore != 45*time.Second || len(c.Lowered) != 1 || !strings.Contains(c.Lowered[0], "half of -admin-idle-timeout 1m30s") {
					t.Errorf("warn before %v, lowered %q; want 45s, half of -admin-idle-timeout", c.WarnBefore, c.Lowered)
				}
			}},
		{"the absolute notice's default stays for a short session", []string{"-idle-timeout", "10s", "-absolute-timeout", "16s", "-warn-before", "6s"}, nil,
			func(t *testing.T, c *serveConfig) {
				// Shown from the sign-in on: it comes once, and activity
				// does not bring it back.
				if c.AbsWarnBefore != 5*time.Minute {
					t.Errorf("absolute warn before %v, want the default 5m", c.AbsWarnBefore)
				}
			}},
		{"no warning whatever the idle timeout", []string{"-idle-timeout", "2s", "-warn-before", "0"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.WarnBefore != 0 {
					t.Errorf("warn before %v, want 0", c.WarnBefore)
				}
			}},
		{"touch interval just under half", []string{"-idle-timeout", "15s", "-touch-interval", "7s"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.TouchInterval != 7*time.Second {
					t.Errorf("touch interval %v", c.TouchInterval)
				}
			}},
		{"reauth-after past the absolute timeout is allowed", []string{"-reauth-after", "24h"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.ReauthAfter != 24*time.Hour {
					t.Errorf("reauth after %v", c.ReauthAfter)
				}
			}},
		{"metrics address and legacy ciphers", []string{"-metrics-addr", "10.0.0.5:9090", "-tls-cert", "c.pem", "-tls-key", "k.pem", "-tls-legacy-ciphers"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.MetricsAddr != "10.0.0.5:9090" || !c.TLSLegacyCiphers {
					t.Errorf("metrics addr %q, legacy ciphers %v", c.MetricsAddr, c.TLSLegacyCiphers)
				}
			}},
		{"misspelled variable", nil, map[string]string{"SESSIONGUARD_IDLE_TIMOUT": "15m", "SESSIONGUARD_TEST_POSTGRES": "postgres://x"},
			func(t *testing.T, c *serveConfig) {
				want := "SESSIONGUARD_IDLE_TIMOUT is set but no flag reads it: did you mean SESSIONGUARD_IDLE_TIMEOUT (-idle-timeout)?"
				if c.Policy.IdleTimeout != 30*time.Minute || len(c.UnknownVariables) != 1 || c.UnknownVariables[0] != want {
					t.Errorf("idle %v, warnings %q; want the default and %q", c.Policy.IdleTimeout, c.UnknownVariables, want)
				}
			}},
		{"second factors given", []string{"-mfa", "required", "-admin-mfa", "passkey"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.MFA != account.MFARequired || c.AdminMFA != account.MFAPasskey || c.Lowered != nil {
					t.Errorf("mfa %q, admin %q, lowered %q", c.MFA, c.AdminMFA, c.Lowered)
				}
			}},
		{"second factors from env", nil, map[string]string{"SESSIONGUARD_MFA": "off", "SESSIONGUARD_ADMIN_MFA": "optional"},
			func(t *testing.T, c *serveConfig) {
				if c.MFA != account.MFAOff || c.AdminMFA != account.MFAOptional {
					t.Errorf("mfa %q, admin %q", c.MFA, c.AdminMFA)
				}
			}},
		{"a stronger -mfa raises the admins' default", []string{"-mfa", "passkey"}, nil,
			func(t *testing.T, c *serveConfig) {
				want := "-admin-mfa raised from required to the users' passkey (-mfa): administrators' sign-in is never weaker than users'"
				if c.MFA != account.MFAPasskey || c.AdminMFA != account.MFAPasskey || strings.Join(c.Lowered, "\n") != want {
					t.Errorf("mfa %q, admin %q, lowered %q; want passkey twice and %q", c.MFA, c.AdminMFA, c.Lowered, want)
				}
			}},
		{"presets set the second factors", []string{"-preset", "pci-dss"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.MFA != account.MFARequired || c.AdminMFA != account.MFARequired {
					t.Errorf("mfa %q, admin %q, want required twice", c.MFA, c.AdminMFA)
				}
			}},
		{"nist-aal3 asks for passkeys", []string{"-preset", "nist-aal3"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.MFA != account.MFAPasskey || c.AdminMFA != account.MFAPasskey {
					t.Errorf("mfa %q, admin %q, want passkey twice", c.MFA, c.AdminMFA)
				}
			}},
		{"a preset without a second factor leaves the defaults", []string{"-preset", "owasp-low-risk"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.MFA != account.MFAOptional || c.AdminMFA != account.MFARequired {
					t.Errorf("mfa %q, admin %q", c.MFA, c.AdminMFA)
				}
			}},
		{"explicit second factor beats preset", []string{"-preset", "hipaa", "-mfa", "optional"}, map[string]string{"SESSIONGUARD_ADMIN_MFA": "passkey"},
			func(t *testing.T, c *serveConfig) {
				if c.MFA != account.MFAOptional || c.AdminMFA != account.MFAPasskey {
					t.Errorf("mfa %q, admin %q, want optional and passkey", c.MFA, c.AdminMFA)
				}
			}},
		{"a stronger -mfa raises the preset's admins", []string{"-preset", "nist-aal2", "-mfa", "passkey"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.AdminMFA != account.MFAPasskey || len(c.Lowered) != 1 || !strings.HasPrefix(c.Lowered[0], "-admin-mfa (from -preset nist-aal2) raised from required") {
					t.Errorf("admin %q, lowered %q", c.AdminMFA, c.Lowered)
				}
			}},
		{"passkeys on https", []string{"-mfa", "passkey", "-addr", ":8443", "-base-url", "https://sg.example.com"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.MFA != account.MFAPasskey {
					t.Errorf("mfa %q", c.MFA)
				}
			}},
		{"passkeys on a wildcard address are for localhost", []string{"-admin-mfa", "passkey", "-addr", ":8080"}, nil,
			func(t *testing.T, c *serveConfig) {
				if got := c.passkeyURL(nil); got != "http://localhost:8080" {
					t.Errorf("passkey URL %q, want http://localhost:8080", got)
				}
			}},
		{"base url trailing slash", []string{"-base-url", "https://sg.example.com/"}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.BaseURL != "https://sg.example.com" {
					t.Errorf("base url %q", c.BaseURL)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServe(tt.args, envOf(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestServeBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the whole message, or a prefix ending in "..."
	}{
		{"bad duration", []string{"-idle-timeout", "abc"}, nil,
			`invalid value "abc" for -idle-timeout: time: invalid duration "abc"`},
		{"bad duration from env", nil, map[string]string{"SESSIONGUARD_IDLE_TIMEOUT": "abc"},
			`invalid value "abc" for -idle-timeout (from SESSIONGUARD_IDLE_TIMEOUT): time: invalid duration "abc"`},
		{"bad bool from env", nil, map[string]string{"SESSIONGUARD_INSECURE_COOKIE": "maybe"},
			`invalid value "maybe" for -insecure-cookie (from SESSIONGUARD_INSECURE_COOKIE): want true or false`},
		{"zero idle", []string{"-idle-timeout", "0"}, nil,
			`invalid value "0" for -idle-timeout: must be positive`},
		{"negative absolute", []string{"-absolute-timeout", "-1h"}, nil,
			`invalid value "-1h" for -absolute-timeout: must be positive`},
		{"idle longer than absolute", []string{"-idle-timeout", "2h", "-absolute-timeout", "1h"}, nil,
			`-idle-timeout 2h is longer than -absolute-timeout 1h: the idle timeout could never apply`},
		{"admin looser than users", []string{"-idle-timeout", "10m", "-admin-idle-timeout", "20m"}, nil,
			`-admin-idle-timeout 20m is longer than the users' idle timeout 10m (-idle-timeout): administrators' sessions must not be looser than users'`},
		{"admin looser than the users' default", []string{"-admin-idle-timeout", "1h"}, nil,
			`-admin-idle-timeout 1h is longer than the users' idle timeout 30m (-idle-timeout): administrators' sessions must not be looser than users'`},
		{"admin looser than a preset, from env", []string{"-preset", "owasp-high-value"}, map[string]string{"SESSIONGUARD_ADMIN_IDLE_TIMEOUT": "10m"},
			`-admin-idle-timeout (from SESSIONGUARD_ADMIN_IDLE_TIMEOUT) 10m is longer than the users' idle timeout 5m (-idle-timeout (from -preset owasp-high-value)): administrators' sessions must not be looser than users'`},
		{"touch interval against a preset", []string{"-preset", "owasp-high-value", "-touch-interval", "3m"}, nil,
			`-touch-interval 3m is not shorter than half of -idle-timeout (from -preset owasp-high-value) 5m: ...`},
		{"admin absolute looser", []string{"-absolute-timeout", "1h", "-admin-absolute-timeout", "2h"}, nil,
			`-admin-absolute-timeout 2h is longer than the users' absolute timeout 1h (-absolute-timeout): administrators' sessions must not be looser than users'`},
		{"touch interval past half the idle timeout", []string{"-touch-interval", "1h", "-idle-timeout", "15s"}, nil,
			`-touch-interval 1h is not shorter than half of -idle-timeout 15s: an active user's session would end up to 1h early, between two writes of their activity`},
		{"touch interval of half the idle timeout", []string{"-touch-interval", "7500ms", "-idle-timeout", "15s"}, nil,
			`-touch-interval 7.5s is not shorter than half of -idle-timeout 15s: ...`},
		{"touch interval past half the admins' idle timeout", []string{"-touch-interval", "10m"}, nil,
			`-touch-interval 10m is not shorter than half of -admin-idle-timeout 15m: ...`},
		{"warning longer than the idle timeout", []string{"-warn-before", "3m", "-idle-timeout", "2m"}, nil,
			`-warn-before 3m is not shorter than -idle-timeout 2m: the warning would show all the time (0: no warning)`},
		{"warning as long as the admins' idle timeout", []string{"-warn-before", "5m", "-admin-idle-timeout", "5m"}, nil,
			`-warn-before 5m is not shorter than -admin-idle-timeout 5m: the warning would show all the time (0: no warning)`},
		{"warning from env against the default idle timeout", nil, map[string]string{"SESSIONGUARD_WARN_BEFORE": "15m"},
			`-warn-before (from SESSIONGUARD_WARN_BEFORE) 15m is not shorter than -admin-idle-timeout 15m: ...`},
		{"absolute notice longer than the absolute timeout", []string{"-absolute-warn-before", "2h", "-absolute-timeout", "1h"}, nil,
			`-absolute-warn-before 2h is longer than -absolute-timeout 1h: no session lives that long`},
		{"absolute notice longer than the admins' absolute timeout", []string{"-absolute-warn-before", "2h", "-admin-absolute-timeout", "1h"}, nil,
			`-absolute-warn-before 2h is longer than -admin-absolute-timeout 1h: no session lives that long`},
		{"store timeout past the write timeout", []string{"-store-timeout", "90s"}, nil,
			`-store-timeout 1m30s is not shorter than the server's write timeout 1m: no answer could reach the browser after such a wait`},
		{"unknown preset", []string{"-preset", "nope"}, nil,
			`invalid value "nope" for -preset: want one of nist-aal2, nist-aal3, pci-dss, owasp-high-value, owasp-low-risk, hipaa`},
		{"cert without key", []string{"-tls-cert", "c.pem"}, nil,
			`-tls-cert is set but -tls-key is not: give both or neither`},
		{"key without cert from env", nil, map[string]string{"SESSIONGUARD_TLS_KEY": "k.pem"},
			`-tls-key (from SESSIONGUARD_TLS_KEY) is set but -tls-cert is not: give both or neither`},
		{"bad log format", []string{"-log-format", "xml"}, nil,
			`invalid value "xml" for -log-format: want one of text, json`},
		{"bad log level", []string{"-log-level", "loud"}, nil,
			`invalid value "loud" for -log-level: want one of debug, info, warn, error`},
		{"bad addr", []string{"-addr", "localhost"}, nil,
			`invalid value "localhost" for -addr: want HOST:PORT, as in localhost:8080 or :8080`},
		{"port out of range", []string{"-addr", "127.0.0.1:99999"}, nil,
			`invalid value "127.0.0.1:99999" for -addr: port "99999" is not a number from 0 to 65535`},
		{"port missing", []string{"-addr", "127.0.0.1:"}, nil,
			`invalid value "127.0.0.1:" for -addr: port "" is not a number from 0 to 65535`},
		{"port a name", nil, map[string]string{"SESSIONGUARD_ADDR": ":http"},
			`invalid value ":http" for -addr (from SESSIONGUARD_ADDR): port "http" is not a number from 0 to 65535`},
		{"negative port", []string{"-addr", ":-1"}, nil,
			`invalid value ":-1" for -addr: port "-1" is not a number from 0 to 65535`},
		{"metrics address port out of range", []string{"-metrics-addr", ":65536"}, nil,
			`invalid value ":65536" for -metrics-addr: port "65536" is not a number from 0 to 65535`},
		{"debug address port out of range", []string{"-debug-addr", "127.0.0.1:70000"}, nil,
			`invalid value "127.0.0.1:70000" for -debug-addr: port "70000" is not a number from 0 to 65535`},
		{"legacy ciphers without TLS", []string{"-tls-legacy-ciphers"}, nil,
			`-tls-legacy-ciphers is set but -tls-cert is not: the cipher suites are those of the server's own TLS`},
		{"bad db scheme", []string{"-db", "mysql://u:secret@h/db"}, nil,
			`invalid value for -db: unsupported database scheme "mysql": use ...`},
		{"bad sessions scheme", []string{"-sessions", "mongodb://h"}, nil,
			`invalid value for -sessions: unsupported session store scheme "mongodb": use memory, sqlite:PATH, redis://...`},
		{"redis without slashes", []string{"-sessions", "redis:localhost"}, nil,
			`invalid value for -sessions: redis: needs a URL, as in redis://localhost:6379/0`},
		{"redis unknown option", []string{"-sessions", "redis://u:secret@localhost:6379/0?pool_sise=5"}, nil,
			`invalid value for -sessions: redisstore: invalid DSN: redis: unexpected option: pool_sise`},
		{"redis bad database", []string{"-sessions", "rediss://localhost:6379/zero"}, nil,
			`invalid value for -sessions: redisstore: invalid DSN: ...`},
		{"redis empty key prefix", []string{"-sessions", "redis://localhost/0?key_prefix="}, nil,
			`invalid value for -sessions: key_prefix= is empty: leave it out for the default "sg:"`},
		{"redis key prefix with braces", []string{"-sessions", "redis://localhost/0?key_prefix=a{b}"}, nil,
			`invalid value for -sessions: redisstore: key prefix "a{b}" contains '{' or '}'...`},
		{"redis cluster with a database", []string{"-sessions", "redis://h1:7000,h2:7001/3"}, nil,
			`invalid value for -sessions: redisstore: a Redis Cluster has only database 0; the DSN asks for 3`},
		{"postgres sessions bad pool size", []string{"-sessions", "postgres://root:secret@127.0.0.1/test?pool_max_conns=lots"}, nil,
			`invalid value for -sessions: not a valid PostgreSQL URL (strconv.ParseInt: parsing "lots": invalid syntax)...`},
		{"postgres db bad port", []string{"-db", "postgres://root:secret@127.0.0.1:99999/test"}, nil,
			`invalid value for -db: not a valid PostgreSQL URL...`},
		{"zero store timeout", []string{"-store-timeout", "0"}, nil,
			`invalid value "0" for -store-timeout: must be positive`},
		{"negative touch interval", []string{"-touch-interval", "-1s"}, nil,
			`invalid value "-1s" for -touch-interval: must be not negative`},
		{"zero shutdown timeout", []string{"-shutdown-timeout", "0s"}, nil,
			`invalid value "0s" for -shutdown-timeout: must be positive`},
		{"bad proxy", []string{"-trusted-proxy", "10.0.0.0/33"}, nil,
			`invalid value "10.0.0.0/33" for -trusted-proxy: "10.0.0.0/33" is not a CIDR such as 10.0.0.0/8`},
		{"bad base url", []string{"-base-url", "example.com"}, nil,
			`invalid value "example.com" for -base-url: want an absolute http:// or https:// URL, as in https://sg.example.com`},
		{"debug address on the network", []string{"-debug-addr", "0.0.0.0:6060"}, nil,
			`invalid value "0.0.0.0:6060" for -debug-addr: must be a loopback address (127.0.0.1, [::1] or localhost): profiles are not for the network`},
		{"debug address without a port", []string{"-debug-addr", "127.0.0.1"}, nil,
			`invalid value "127.0.0.1" for -debug-addr: want HOST:PORT, for example 127.0.0.1:6060`},
		{"upstream not a URL", []string{"-upstream", "127.0.0.1:3000"}, nil,
			`invalid value "127.0.0.1:3000" for -upstream: want the application's absolute http:// or https:// URL, as in http://127.0.0.1:3000`},
		{"upstream with a query", []string{"-upstream", "http://app/?x=1"}, nil,
			`invalid value "http://app/?x=1" for -upstream: want a URL without user, query or fragment`},
		{"zero upstream timeout", []string{"-upstream-timeout", "0s"}, nil,
			`invalid value "0s" for -upstream-timeout: must be positive`},
		{"bad gate activity", []string{"-gate-activity", "some"}, nil,
			`invalid value "some" for -gate-activity: want one of navigation, all`},
		{"relative passive path", []string{"-gate-passive-path", "/ok", "-gate-passive-path", "api/*"}, nil,
			`invalid value for -gate-passive-path: "api/*": a path pattern starts with /, as in /api/notifications/*`},
		{"malformed passive path", []string{"-gate-passive-path", "/api/["}, nil,
			`invalid value for -gate-passive-path: "/api/[" is not a valid pattern: syntax error in pattern`},
		{"unknown role from env", nil, map[string]string{"SESSIONGUARD_GATE_ALLOW_ROLE": "admin,root"},
			`invalid value for -gate-allow-role (from SESSIONGUARD_GATE_ALLOW_ROLE): "root": roles are admin and user`},
		{"redirect host with a scheme", []string{"-gate-redirect-host", "https://app.example.com"}, nil,
			`invalid value for -gate-redirect-host: "https://app.example.com" is not a host name such as app.example.com or app.example.com:8443`},
		{"cookie domain of one label", []string{"-cookie-domain", "com"}, nil,
			`invalid value "com" for -cookie-domain: want a domain name with at least two labels, such as example.com`},
		{"cookie domain an address", []string{"-cookie-domain", "10.0.0.1"}, nil,
			`invalid value "10.0.0.1" for -cookie-domain: want a domain name such as example.com, not an address`},
		{"unknown second-factor policy", []string{"-mfa", "sometimes"}, nil,
			`invalid value "sometimes" for -mfa: want one of off, optional, required, passkey`},
		{"admins weaker than users", []string{"-mfa", "required", "-admin-mfa", "optional"}, nil,
			`-admin-mfa optional is weaker than the users' -mfa required: administrators' sign-in must not be weaker than users'`},
		{"admins weaker than the users' default", []string{"-admin-mfa", "off"}, nil,
			`-admin-mfa off is weaker than the users' -mfa optional: administrators' sign-in must not be weaker than users'`},
		{"admins weaker than a preset's users, from env", []string{"-preset", "nist-aal3"}, map[string]string{"SESSIONGUARD_ADMIN_MFA": "required"},
			`-admin-mfa (from SESSIONGUARD_ADMIN_MFA) required is weaker than the users' -mfa (from -preset nist-aal3) passkey: administrators' sign-in must not be weaker than users'`},
		{"passkeys on plain http", []string{"-mfa", "passkey", "-base-url", "http://sg.example.com"}, nil,
			`-mfa passkey needs passkeys, which this server cannot offer (base URL "http://sg.example.com" is not https: browsers offer passkeys only to https sites and localhost): set -base-url to the https:// URL people use`},
		{"passkeys on an address", []string{"-preset", "nist-aal3", "-addr", "10.0.0.5:8443", "-tls-cert", "c.pem", "-tls-key", "k.pem"}, nil,
			`-mfa (from -preset nist-aal3) passkey needs passkeys, which this server cannot offer (base URL "https://10.0.0.5:8443" has an IP address for host: ...`},
		{"passkeys outside the cookie domain", []string{"-admin-mfa", "passkey", "-base-url", "https://sg.example.com", "-cookie-domain", "example.org"}, nil,
			`-admin-mfa passkey needs passkeys, which this server cannot offer (cookie domain "example.org" does not cover the base URL's host "sg.example.com"): ...`},
		{"unknown flag", []string{"-idle", "5m"}, nil,
			`flag provided but not defined: -idle (see 'sessionguard serve -h')`},
		{"missing value", []string{"-addr"}, nil,
			`flag needs an argument: -addr (see 'sessionguard serve -h')`},
		{"stray argument", []string{"extra"}, nil,
			`serve takes no arguments, got "extra" (see 'sessionguard serve -h')`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServe(tt.args, envOf(tt.env), &bytes.Buffer{})
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			got := err.Error()
			if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("error:\n got %s\nwant %s", got, tt.want)
				}
			} else if got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("error spans lines: %q", got)
			}
			if strings.Contains(got, "secret") {
				t.Errorf("error echoes a password: %q", got)
			}
		})
	}
}

// TestRunBadValueOneLine checks what a user sees: exit code 2 and one line
// naming the flag, with no usage dump.
func TestRunBadValueOneLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "-idle-timeout", "abc"}, envOf(nil), strings.NewReader(""), &stdout, &stderr)
	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	want := "sessionguard: invalid value \"abc\" for -idle-timeout: time: invalid duration \"abc\"\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%q\nwant\n%q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout not empty: %q", stdout.String())
	}
}

func TestRunUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"frobnicate"}, envOf(nil), strings.NewReader(""), &stdout, &stderr)
	if code != exitUsage || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), `"frobnicate"`) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestServeHelp checks that -h lists every flag with its default and its
// environment variable, and exits 0.
func TestServeHelp(t *testing.T) {
	for _, args := range [][]string{{"serve", "-h"}, {"-h"}, {"help"}, {"-help"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, envOf(nil), strings.NewReader(""), &stdout, &stderr)
		if code != exitOK {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
		help := stdout.String()
		for _, want := range []string{
			"-addr HOST:PORT", "default: localhost:8080", "$SESSIONGUARD_ADDR",
			"-db DSN", "default: sqlite:sessionguard.db", "$SESSIONGUARD_DB",
			"-sessions DSN", "$SESSIONGUARD_SESSIONS",
			"-idle-timeout DURATION", "default: 30m", "$SESSIONGUARD_IDLE_TIMEOUT",
			"-absolute-timeout DURATION", "default: 12h", "$SESSIONGUARD_ABSOLUTE_TIMEOUT",
			"-preset NAME", "nist-aal2", "$SESSIONGUARD_PRESET",
			"-admin-idle-timeout DURATION", "default: 15m", "$SESSIONGUARD_ADMIN_IDLE_TIMEOUT",
			"-admin-absolute-timeout DURATION", "$SESSIONGUARD_ADMIN_ABSOLUTE_TIMEOUT",
			"-warn-before DURATION", "default: 2m", "$SESSIONGUARD_WARN_BEFORE",
			"-absolute-warn-before DURATION", "$SESSIONGUARD_ABSOLUTE_WARN_BEFORE",
			"-reauth-after DURATION", "default: 5m", "$SESSIONGUARD_REAUTH_AFTER",
			"-touch-interval DURATION", "default: 0", "$SESSIONGUARD_TOUCH_INTERVAL",
			"-tls-cert FILE", "$SESSIONGUARD_TLS_CERT",
			"-tls-key FILE", "$SESSIONGUARD_TLS_KEY",
			"-insecure-cookie\n", "$SESSIONGUARD_INSECURE_COOKIE",
			"-log-format text|json", "default: text", "$SESSIONGUARD_LOG_FORMAT",
			"-log-level debug|info|warn|error", "default: info", "$SESSIONGUARD_LOG_LEVEL",
			"-shutdown-timeout DURATION", "default: 15s", "$SESSIONGUARD_SHUTDOWN_TIMEOUT",
			"-store-timeout DURATION", "default: 3s", "$SESSIONGUARD_STORE_TIMEOUT",
			"redis://", "rediss://", "postgres://", "docs/deployment.md",
			"-trusted-proxy CIDR", "$SESSIONGUARD_TRUSTED_PROXY",
			"-base-url URL", "$SESSIONGUARD_BASE_URL",
			"-debug-addr HOST:PORT", "default: off", "$SESSIONGUARD_DEBUG_ADDR",
			"-metrics-addr HOST:PORT", "default: /metrics on -addr", "$SESSIONGUARD_METRICS_ADDR",
			"-tls-legacy-ciphers\n", "$SESSIONGUARD_TLS_LEGACY_CIPHERS", "SIGHUP reloads",
			"longer than -idle-timeout is an error", "sessionguard backup", "-version",
			"-upstream URL", "-upstream-timeout DURATION", "default: 60s", "-inject-script\n", "default: true", "-gate-activity navigation|all",
			"-gate-passive-path GLOB", "repeatable; $SESSIONGUARD_GATE_PASSIVE_PATH, comma-separated",
			"-gate-allow-role ROLE", "-gate-redirect-host HOST", "-cookie-domain DOMAIN",
			"-mfa off|optional|required|passkey", "default: optional", "$SESSIONGUARD_MFA",
			"-admin-mfa off|optional|required|passkey", "default: required", "$SESSIONGUARD_ADMIN_MFA",
			"docs/mfa.md", "sessionguard user mfa-reset NAME",
			"environment variable", "sessionguard user", "sessionguard audit",
		} {
			if !strings.Contains(help, want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
	}
}

// TestHelpListsEveryFlag guards against a flag added without help: every
// flag the FlagSet knows appears in the help, with its variable.
func TestHelpListsEveryFlag(t *testing.T) {
	var stdout bytes.Buffer
	if _, err := parseServe([]string{"-h"}, envOf(nil), &stdout); !errors.Is(err, errHelp) {
		t.Fatalf("err = %v", err)
	}
	n := 0
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(line, "  -") {
			n++
		}
	}
	if n != 34 {
		t.Errorf("help lists %d flags, want the 34 of serve", n)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 30 * time.Minute: "30m", 90 * time.Minute: "1h30m",
		2 * time.Second: "2s", 90 * time.Second: "1m30s", 1500 * time.Millisecond: "1.5s", 0: "0s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"idle-timeout": "SESSIONGUARD_IDLE_TIMEOUT",
		"db":           "SESSIONGUARD_DB",
		"tls-cert":     "SESSIONGUARD_TLS_CERT",
	} {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestUnknownVariables(t *testing.T) {
	known := variables()
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, nil},
		{map[string]string{"SESSIONGUARD_IDLE_TIMEOUT": "15m", "HOME": "/root", "SESSIONGUARD_DB": "sqlite:x"}, nil},
		{map[string]string{"SESSIONGUARD_IDLE_TIMOUT": "15m"},
			[]string{"SESSIONGUARD_IDLE_TIMOUT is set but no flag reads it: did you mean SESSIONGUARD_IDLE_TIMEOUT (-idle-timeout)?"}},
		{map[string]string{"SESSIONGUARD_TRUSTED_PROXIES": "10.0.0.0/8", "SESSIONGUARD_SESSION": "memory"}, []string{
			"SESSIONGUARD_SESSION is set but no flag reads it: did you mean SESSIONGUARD_SESSIONS (-sessions)?",
			"SESSIONGUARD_TRUSTED_PROXIES is set but no flag reads it: did you mean SESSIONGUARD_TRUSTED_PROXY (-trusted-proxy)?",
		}},
		{map[string]string{"SESSIONGUARD_TIMEOUT": "5m"},
			[]string{"SESSIONGUARD_TIMEOUT is set but no flag reads it (see 'sessionguard serve -h' for the variables)"}},
		// The tests' own variables are no misspelling.
		{map[string]string{"SESSIONGUARD_TEST_POSTGRES": "postgres://x", "SESSIONGUARD_CI": "1", "SESSIONGUARD_CHROMIUM": "/usr/bin/chromium"}, nil},
	} {
		if got := unknownVariables(envOf(tc.env), known); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%v:\n got %q\nwant %q", tc.env, got, tc.want)
		}
	}
	// Every variable of the other commands is one of serve's.
	for _, args := range [][]string{{"user", "disable", "-h"}, {"audit", "-h"}, {"backup", "-h"}} {
		var out bytes.Buffer
		run(context.Background(), args, envOf(nil), strings.NewReader(""), &out, &bytes.Buffer{})
		for _, v := range regexp.MustCompile(`\$(SESSIONGUARD_[A-Z_]+)`).FindAllStringSubmatch(out.String(), -1) {
			if known[v[1]] == "" {
				t.Errorf("%v reads %s, which the check of unknown variables does not know", args, v[1])
			}
		}
	}
}

func TestEnvironFrom(t *testing.T) {
	env := environFrom([]string{"A=1", "B=x=y", "A=2", "NOEQUALS", "C="})
	if len(env) != 3 || env["A"] != "1" || env["B"] != "x=y" || env["C"] != "" {
		t.Errorf("environFrom = %v", env)
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, envOf(nil), strings.NewReader(""), &stdout, &stderr)
		if code != exitOK || !strings.HasPrefix(stdout.String(), "sessionguard ") || stderr.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-version", "-addr", ":1"}, envOf(nil), strings.NewReader(""), &stdout, &stderr); code != exitUsage ||
		stderr.String() != "sessionguard: -version takes no arguments\n" {
		t.Errorf("-version with more: exit %d, stderr %q", code, stderr.String())
	}
}
