package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/passkey"
	"github.com/sessionguard/sessionguard/internal/web"
	"github.com/sessionguard/sessionguard/session"
)

// serveConfig is everything `sessionguard serve` is told, checked.
type serveConfig struct {
	Addr     string
	DB       string
	Sessions string // empty: sessions live in the -db database

	Preset      string
	Policy      session.Policy // for the "user" role and anyone without a role
	AdminPolicy session.Policy // never looser than Policy

	MFA      account.MFAPolicy // second factor of the "user" role
	AdminMFA account.MFAPolicy // never weaker than MFA

	WarnBefore      time.Duration
	AbsWarnBefore   time.Duration // first notice before the absolute end
	ReauthAfter     time.Duration
	TouchInterval   time.Duration // 0: the Manager's default
	StoreTimeout    time.Duration // bound of one session store call
	ShutdownTimeout time.Duration

	TLSCert, TLSKey  string
	TLSLegacyCiphers bool // also offer TLS 1.2's CBC suites
	InsecureCookie   bool

	LogFormat string
	LogLevel  slog.Level

	TrustedProxies []netip.Prefix
	BaseURL        string // empty: derived from the listening address
	DebugAddr      string // empty: no profiling listener
	MetricsAddr    string // empty: /metrics on the main listener

	// The gateway (docs/gateway.md).
	Upstream          *url.URL // nil: no reverse-proxy mode
	UpstreamTimeout   time.Duration
	InjectScript      bool
	GateActivity      string // "navigation" or "all"
	GatePassivePaths  []string
	GateAllowRoles    []string
	GateRedirectHosts []string
	CookieDomain      string

	// Lowered says which defaults parseServe made stricter to fit the
	// settings given (a timeout lowered, a second-factor policy raised),
	// one log line each, for serve to log at start.
	Lowered []string
	// UnknownVariables warns of SESSIONGUARD_* variables no flag reads.
	UnknownVariables []string
}

// TLS reports whether the server itself speaks HTTPS.
func (c *serveConfig) TLS() bool { return c.TLSCert != "" }

// serveAbout introduces serve's help.
const serveAbout = `Runs the sessionguard web server (the default command). With no account yet,
it prints a one-time setup link that creates the first administrator.

Other commands:
  sessionguard user add|list|disable|enable|passwd ...   manage accounts
  sessionguard user mfa-reset NAME                       remove a user's second factors
  sessionguard audit [flags]                             print the audit log
  sessionguard backup [-db sqlite:PATH] OUT              copy a live SQLite database
  sessionguard version (or -version)                     print the version
Run any of them with -h for its flags.

Durations are written like 90s, 15m or 12h. Database DSNs (-db) are
sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?PARAMS]. Sessions
live in the -db database unless -sessions names another store: memory,
sqlite:PATH, redis://HOST[:PORT][/DB] (rediss:// for TLS; ?key_prefix=NAME:
to share a Redis database; go-redis's URL options such as pool_size) or
postgres://... Several instances behind a load balancer share their sessions
through PostgreSQL (-db postgres://..., nothing else needed) or Redis
(-sessions redis://... with -db postgres://...); see docs/deployment.md.

Second factors: -mfa and -admin-mfa say who must give one after the
password: off (nobody, not even users who set one up), optional (those who
set one up), required (everyone: those without one enrol at sign-in) or
passkey (everyone, with a passkey only). Administrators are never weaker
than users: an -admin-mfa weaker than -mfa is refused, and the default is
raised to a stronger -mfa. -preset nist-aal2, pci-dss and hipaa set both to
required, nist-aal3 to passkey, unless given. Passkeys work on https and on
localhost: with another http -base-url (or -addr) they are off, and the
passkey policy is refused. See docs/mfa.md.

Timeouts that cannot work together are refused: a -touch-interval of half
the shortest idle timeout or more, a -warn-before not shorter than it, an
-absolute-warn-before longer than the shortest absolute timeout, and
administrators' timeouts longer than users'. A default that does not fit
the timeouts given (-warn-before, the administrators' timeouts) is lowered
instead, and the start-up log says so.

SIGHUP reloads -tls-cert and -tls-key (without TLS it is ignored); SIGTERM
and SIGINT stop the server gracefully.`

// serveText holds the flags of serve that are converted after parsing.
type serveText struct {
	logLevel, trusted, upstream string
	mfa, adminMFA               string
}

// serveFlags defines serve's flags on a new flagSet, to be parsed into c
// and text.
func serveFlags(c *serveConfig, text *serveText) *flagSet {
	f := newFlagSet("sessionguard serve", "sessionguard [serve] [flags]", serveAbout)
	f.String(&c.Addr, "addr", "localhost:8080", "HOST:PORT",
		"address to listen on (port 0 picks a free port; the start-up log names it)")
	f.String(&c.DB, "db", defaultDB, "DSN",
		"database of accounts, audit log and (unless -sessions) sessions: sqlite:PATH or postgres://...")
	f.String(&c.Sessions, "sessions", "", "DSN",
		"session store: memory, sqlite:PATH, redis://HOST[:PORT][/DB], rediss://... (TLS) or postgres://...").defaultIs("the -db database")
	f.Duration(&c.Policy.IdleTimeout, "idle-timeout", "30m",
		"end a session after this long without activity")
	f.Duration(&c.Policy.AbsoluteTimeout, "absolute-timeout", "12h",
		"end a session this long after sign-in, however active")
	f.String(&c.Preset, "preset", "", "NAME",
		"set -idle-timeout, -absolute-timeout, -mfa and -admin-mfa from a standard: "+presetNames()+" (explicit flags win)")
	f.Duration(&c.AdminPolicy.IdleTimeout, "admin-idle-timeout", "15m",
		"idle timeout of administrators' sessions; longer than -idle-timeout is an error, and the default is lowered to a shorter -idle-timeout")
	f.Duration(&c.AdminPolicy.AbsoluteTimeout, "admin-absolute-timeout", "12h",
		"absolute timeout of administrators' sessions; longer than -absolute-timeout is an error, and the default is lowered to a shorter -absolute-timeout")
	f.Choice(&text.mfa, "mfa", string(account.MFAOptional), mfaChoices(),
		"second factor after the password for users: off, optional (asked of those who set one up), required (everyone; those without one enrol at sign-in) or passkey (required, passkeys only)")
	f.Choice(&text.adminMFA, "admin-mfa", string(account.MFARequired), mfaChoices(),
		"second factor for administrators, as -mfa; weaker than -mfa is an error, and the default is raised to a stronger -mfa")
	f.Duration(&c.WarnBefore, "warn-before", "2m",
		"show the browser's timeout warning this long before the idle end (0: no warning); must be shorter than the idle timeouts, and with one of 2m or less the default becomes half of it")
	f.Duration(&c.AbsWarnBefore, "absolute-warn-before", "5m",
		"tell the user this long before the absolute end (which no click can extend) to save their work; longer than the absolute timeouts is an error")
	f.Duration(&c.ReauthAfter, "reauth-after", "5m",
		"ask for the password again before a sensitive action when the sign-in is older than this")
	f.Duration(&c.TouchInterval, "touch-interval", "0",
		"least time between two writes of a session's last activity (0: a twentieth of the idle timeout, at most 1m); must be under half the idle timeouts")
	f.String(&c.TLSCert, "tls-cert", "", "FILE", "serve HTTPS with this certificate (PEM; needs -tls-key); SIGHUP reloads it")
	f.String(&c.TLSKey, "tls-key", "", "FILE", "private key of -tls-cert (PEM)")
	f.Bool(&c.TLSLegacyCiphers, "tls-legacy-ciphers",
		"also offer TLS 1.2's CBC cipher suites, for clients older than about 2014 that have no AES-GCM or ChaCha20-Poly1305 (logged as a warning)")
	f.Bool(&c.InsecureCookie, "insecure-cookie",
		"send the session cookie without Secure, for plain HTTP to a host other than localhost (development only: anyone on the network can steal sessions)")
	f.Choice(&c.LogFormat, "log-format", "text", []string{"text", "json"}, "log format")
	f.Choice(&text.logLevel, "log-level", "info", []string{"debug", "info", "warn", "error"}, "least severe log level written")
	f.Duration(&c.StoreTimeout, "store-timeout", formatDuration(defaultStoreTimeout),
		"longest wait for the session store in one call; past it the request fails with 503, signing nobody in")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", "15s",
		"on SIGTERM or SIGINT, how long requests in flight may take to finish")
	f.String(&text.trusted, "trusted-proxy", "", "CIDR[,CIDR...]",
		"reverse proxies whose X-Forwarded-For gives the client address, and whose X-Forwarded-Proto and X-Forwarded-Host give the public scheme and host").defaultIs("none trusted")
	f.String(&c.BaseURL, "base-url", "", "URL",
		"the server's public URL, for the printed setup link and the gateway's sign-in redirects").defaultIs("from -addr and TLS; the gateway uses the checked request's host")
	f.String(&c.DebugAddr, "debug-addr", "", "HOST:PORT",
		"serve Go's runtime profiles (/debug/pprof/) on this loopback address, apart from the application").defaultIs("off")
	f.String(&c.MetricsAddr, "metrics-addr", "", "HOST:PORT",
		"serve /metrics on this address, a plain-HTTP listener of its own, and not on -addr").defaultIs("/metrics on -addr")
	f.String(&text.upstream, "upstream", "", "URL",
		"reverse-proxy mode: forward signed-in users' requests for every path outside /auth/, /setup, /healthz, /readyz and /metrics to this application").defaultIs("none: the gateway answers forward-auth checks only")
	f.Duration(&c.UpstreamTimeout, "upstream-timeout", "60s",
		"longest wait for the -upstream application's response headers; past it the browser gets 504 (a stream that has started is not bounded)")
	f.Bool(&c.InjectScript, "inject-script",
		"in reverse-proxy mode, insert the timeout script into the application's HTML pages (-inject-script=false: leave them alone)").on()
	f.Choice(&c.GateActivity, "gate-activity", "navigation", []string{"navigation", "all"},
		"which gateway requests extend a session: page navigations and form posts only, or every request not marked passive")
	f.Strings(&c.GatePassivePaths, "gate-passive-path", "GLOB",
		"a path pattern (path.Match, as in /api/notifications/*) whose requests never extend a session", checkPassivePath)
	f.Strings(&c.GateAllowRoles, "gate-allow-role", "ROLE",
		"only users with this role (admin or user) pass the gateway; others get 403", checkRole)
	f.Strings(&c.GateRedirectHosts, "gate-redirect-host", "HOST",
		"a host of a protected application that signing in may return to with an absolute URL (with -cookie-domain, its subdomains are allowed too)", checkRedirectHost)
	f.String(&c.CookieDomain, "cookie-domain", "", "DOMAIN",
		"share the session cookie with every subdomain of DOMAIN (cookie __Secure-session with Domain=; see docs/gateway.md for the trade-off)").defaultIs("none: the cookie stays on one host (__Host-session)")
	return f
}

// variables maps every environment variable that a command reads to its
// flag: serve's, since the other commands read only -db and -sessions.
func variables() map[string]string {
	return serveFlags(&serveConfig{}, &serveText{}).variables()
}

// parseServe parses serve's arguments and environment into a checked
// serveConfig. A mistake is a *usageError naming the flag.
func parseServe(args []string, env environment, stdout io.Writer) (*serveConfig, error) {
	var c serveConfig
	var text serveText
	f := serveFlags(&c, &text)
	rest, err := f.parse(args, env, stdout)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, usageErrorf("serve takes no arguments, got %q (see 'sessionguard serve -h')", rest[0])
	}
	c.UnknownVariables = unknownVariables(env, f.variables())

	if err := c.LogLevel.UnmarshalText([]byte(text.logLevel)); err != nil {
		return nil, usageErrorf("invalid value %q for -log-level: %v", text.logLevel, err)
	}
	if err := checkHostPort(c.Addr); err != nil {
		return nil, usageErrorf("invalid value %q for %s: %v", c.Addr, f.lookup("addr").source, err)
	}
	if err := checkDB(c.DB); err != nil {
		return nil, usageErrorf("invalid value for %s: %v", f.lookup("db").source, err)
	}
	if err := checkSessions(c.Sessions, c.DB); err != nil {
		src := f.lookup("sessions").source
		if c.Sessions == "" {
			src = "-sessions (default: the -db database)"
		}
		return nil, usageErrorf("invalid value for %s: %v", src, err)
	}

	for _, d := range []struct {
		name     string
		v        time.Duration
		positive bool
	}{
		{"warn-before", c.WarnBefore, false},
		{"absolute-warn-before", c.AbsWarnBefore, true},
		{"reauth-after", c.ReauthAfter, true},
		{"touch-interval", c.TouchInterval, false},
		{"store-timeout", c.StoreTimeout, true},
		{"shutdown-timeout", c.ShutdownTimeout, true},
		{"upstream-timeout", c.UpstreamTimeout, true},
	} {
		if d.v < 0 || (d.positive && d.v == 0) {
			want := "not negative"
			if d.positive {
				want = "positive"
			}
			return nil, usageErrorf("invalid value %q for %s: must be %s", f.lookup(d.name).raw, f.lookup(d.name).source, want)
		}
	}
	if err := c.checkTimeouts(f); err != nil {
		return nil, err
	}
	c.MFA, c.AdminMFA = account.MFAPolicy(text.mfa), account.MFAPolicy(text.adminMFA)
	if err := c.checkMFA(f); err != nil {
		return nil, err
	}

	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return nil, usageErrorf("%s is set but -tls-key is not: give both or neither", f.lookup("tls-cert").source)
	case c.TLSKey != "" && c.TLSCert == "":
		return nil, usageErrorf("%s is set but -tls-cert is not: give both or neither", f.lookup("tls-key").source)
	case c.TLSLegacyCiphers && c.TLSCert == "":
		return nil, usageErrorf("%s is set but -tls-cert is not: the cipher suites are those of the server's own TLS", f.lookup("tls-legacy-ciphers").source)
	}

	if c.TrustedProxies, err = parsePrefixes(text.trusted); err != nil {
		return nil, usageErrorf("invalid value %q for %s: %v", text.trusted, f.lookup("trusted-proxy").source, err)
	}
	if c.BaseURL != "" {
		if err := checkBaseURL(c.BaseURL); err != nil {
			return nil, usageErrorf("invalid value %q for %s: %v", c.BaseURL, f.lookup("base-url").source, err)
		}
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	if text.upstream != "" {
		if c.Upstream, err = parseUpstream(text.upstream); err != nil {
			return nil, usageErrorf("invalid value %q for %s: %v", text.upstream, f.lookup("upstream").source, err)
		}
	}
	if c.CookieDomain != "" {
		if err := checkCookieDomain(c.CookieDomain); err != nil {
			return nil, usageErrorf("invalid value %q for %s: %v", c.CookieDomain, f.lookup("cookie-domain").source, err)
		}
		c.CookieDomain = strings.ToLower(strings.TrimPrefix(c.CookieDomain, "."))
	}
	if c.DebugAddr != "" {
		if err := checkDebugAddr(c.DebugAddr); err != nil {
			return nil, usageErrorf("invalid value %q for %s: %v", c.DebugAddr, f.lookup("debug-addr").source, err)
		}
	}
	if c.MetricsAddr != "" {
		if err := checkHostPort(c.MetricsAddr); err != nil {
			return nil, usageErrorf("invalid value %q for %s: %v", c.MetricsAddr, f.lookup("metrics-addr").source, err)
		}
	}
	if err := c.checkPasskeyPolicy(f); err != nil {
		return nil, err
	}
	return &c, nil
}

// presetMFA is the second-factor policy a preset's standard asks of every
// account, administrators included (docs/mfa.md gives the clauses). A
// preset not listed leaves -mfa and -admin-mfa at their defaults.
var presetMFA = map[string]account.MFAPolicy{
	"nist-aal2": account.MFARequired, // two factors
	"nist-aal3": account.MFAPasskey,  // a hardware-bound, phishing-resistant authenticator
	"pci-dss":   account.MFARequired, // MFA for all access into the cardholder data environment
	"hipaa":     account.MFARequired,
}

// mfaChoices are the values of -mfa and -admin-mfa, weakest first.
func mfaChoices() []string {
	return []string{string(account.MFAOff), string(account.MFAOptional), string(account.MFARequired), string(account.MFAPasskey)}
}

// mfaStrength orders the second-factor policies: each asks at least what
// the one before it asks, of at least the same users.
func mfaStrength(p account.MFAPolicy) int {
	return slices.Index(mfaChoices(), string(p))
}

// checkMFA fills in the second-factor policies from -preset and refuses
// administrators weaker than users, by the rule of checkTimeouts: a value
// given is never changed, two given values that contradict each other are
// a usage error, and a default that does not fit is made stricter (here:
// raised) and logged.
func (c *serveConfig) checkMFA(f *flagSet) error {
	users, admins := f.lookup("mfa"), f.lookup("admin-mfa")
	if want, ok := presetMFA[c.Preset]; ok {
		if !users.explicit {
			c.MFA = want
			users.source = "-mfa (from -preset " + c.Preset + ")"
		}
		if !admins.explicit {
			c.AdminMFA = want
			admins.source = "-admin-mfa (from -preset " + c.Preset + ")"
		}
	}
	if mfaStrength(c.AdminMFA) >= mfaStrength(c.MFA) {
		return nil
	}
	if admins.explicit {
		return usageErrorf("%s %s is weaker than the users' %s %s: administrators' sign-in must not be weaker than users'",
			admins.source, c.AdminMFA, users.source, c.MFA)
	}
	c.Lowered = append(c.Lowered, fmt.Sprintf("%s raised from %s to the users' %s (%s): administrators' sign-in is never weaker than users'",
		admins.source, c.AdminMFA, c.MFA, users.source))
	c.AdminMFA = c.MFA
	return nil
}

// checkPasskeyPolicy refuses the passkey policy where browsers would offer
// no passkey: on a public URL that is neither https nor localhost, or an IP
// address. Without -base-url the URL is derived from -addr as serve derives
// it (the port does not matter here).
func (c *serveConfig) checkPasskeyPolicy(f *flagSet) error {
	var which *option
	switch {
	case c.MFA == account.MFAPasskey:
		which = f.lookup("mfa")
	case c.AdminMFA == account.MFAPasskey:
		which = f.lookup("admin-mfa")
	default:
		return nil
	}
	if _, err := passkey.ConfigFromURL(c.passkeyURL(nil), c.CookieDomain); err != nil {
		return usageErrorf("%s passkey needs passkeys, which this server cannot offer (%v): set -base-url to the https:// URL people use",
			which.source, strings.TrimPrefix(err.Error(), "passkey: "))
	}
	return nil
}

// passkeyURL is the URL whose host passkeys are registered for: -base-url,
// else the URL derived from the listening address (the address -addr
// names, when listening is nil).
func (c *serveConfig) passkeyURL(listening net.Addr) string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	if listening == nil {
		_, port, _ := net.SplitHostPort(c.Addr)
		p, _ := strconv.Atoi(port)
		listening = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}
	}
	return deriveBaseURL(listening, c.Addr, c.TLS())
}

// checkTimeouts fills in the timeouts that follow others and refuses the
// combinations that cannot work, naming the flags. The rule: a value given
// (on the command line or in the environment) is never changed, so two given
// values that contradict each other are a usage error; a default that does
// not fit a given value is lowered to fit, and serve logs that it was
// (c.Lowered). Lowering is always the stricter way out.
func (c *serveConfig) checkTimeouts(f *flagSet) error {
	idle, abs := f.lookup("idle-timeout"), f.lookup("absolute-timeout")
	adminIdle, adminAbs := f.lookup("admin-idle-timeout"), f.lookup("admin-absolute-timeout")
	if c.Preset != "" {
		p, ok := session.LookupPreset(c.Preset)
		if !ok {
			return usageErrorf("invalid value %q for %s: want one of %s", c.Preset, f.lookup("preset").source, presetNames())
		}
		if !idle.explicit {
			c.Policy.IdleTimeout = p.Policy.IdleTimeout
			idle.source = "-idle-timeout (from -preset " + c.Preset + ")"
		}
		if !abs.explicit {
			c.Policy.AbsoluteTimeout = p.Policy.AbsoluteTimeout
			abs.source = "-absolute-timeout (from -preset " + c.Preset + ")"
		}
	}
	if err := checkPolicy(c.Policy, idle, abs); err != nil {
		return err
	}

	// Administrators are never looser than users.
	for _, t := range []struct {
		admin, user *option
		adminV      *time.Duration
		userV       time.Duration
		what        string
	}{
		{adminIdle, idle, &c.AdminPolicy.IdleTimeout, c.Policy.IdleTimeout, "idle"},
		{adminAbs, abs, &c.AdminPolicy.AbsoluteTimeout, c.Policy.AbsoluteTimeout, "absolute"},
	} {
		switch {
		case *t.adminV <= t.userV:
		case t.admin.explicit:
			return usageErrorf("%s %s is longer than the users' %s timeout %s (%s): administrators' sessions must not be looser than users'",
				t.admin.source, formatDuration(*t.adminV), t.what, formatDuration(t.userV), t.user.source)
		default:
			c.Lowered = append(c.Lowered, fmt.Sprintf("-%s lowered from its default %s to the users' %s timeout %s: administrators' sessions are never looser than users'",
				t.admin.name, formatDuration(*t.adminV), t.what, formatDuration(t.userV)))
			*t.adminV = t.userV
		}
	}
	if err := checkPolicy(c.AdminPolicy, adminIdle, adminAbs); err != nil {
		return err
	}

	// The administrators' timeouts are the shortest now; name the flag
	// that set them.
	shortestIdle, shortestAbs := idle, abs
	if c.AdminPolicy.IdleTimeout < c.Policy.IdleTimeout {
		shortestIdle = adminIdle
	}
	if c.AdminPolicy.AbsoluteTimeout < c.Policy.AbsoluteTimeout {
		shortestAbs = adminAbs
	}
	minIdle, minAbs := c.AdminPolicy.IdleTimeout, c.AdminPolicy.AbsoluteTimeout

	// Activity is written at most once a touch interval, so the stored
	// last activity lags by up to one: an active user's session ends that
	// much early. From half the idle timeout on, that is most of it.
	if touch := f.lookup("touch-interval"); c.TouchInterval > 0 && 2*c.TouchInterval >= minIdle {
		return usageErrorf("%s %s is not shorter than half of %s %s: an active user's session would end up to %s early, between two writes of their activity",
			touch.source, formatDuration(c.TouchInterval), shortestIdle.source, formatDuration(minIdle), formatDuration(c.TouchInterval))
	}

	// A warning as long as the idle timeout would be up again the moment
	// any activity closed it: the page would never be usable.
	if warn := f.lookup("warn-before"); c.WarnBefore > 0 && c.WarnBefore >= minIdle {
		if warn.explicit {
			return usageErrorf("%s %s is not shorter than %s %s: the warning would show all the time (0: no warning)",
				warn.source, formatDuration(c.WarnBefore), shortestIdle.source, formatDuration(minIdle))
		}
		c.Lowered = append(c.Lowered, fmt.Sprintf("-warn-before lowered from its default %s to %s, half of %s %s",
			formatDuration(c.WarnBefore), formatDuration(minIdle/2), shortestIdle.source, formatDuration(minIdle)))
		c.WarnBefore = minIdle / 2
	}

	// The notice of the absolute end comes once and no activity brings it
	// back, so a default longer than a short session just shows it from
	// the sign-in on; a value given longer than the session is a mistake.
	if absWarn := f.lookup("absolute-warn-before"); absWarn.explicit && c.AbsWarnBefore > minAbs {
		return usageErrorf("%s %s is longer than %s %s: no session lives that long",
			absWarn.source, formatDuration(c.AbsWarnBefore), shortestAbs.source, formatDuration(minAbs))
	}

	// Past the server's write deadline no answer reaches the browser, so
	// a longer wait for the store could only end in a dropped connection.
	if c.StoreTimeout >= writeTimeout {
		return usageErrorf("%s %s is not shorter than the server's write timeout %s: no answer could reach the browser after such a wait",
			f.lookup("store-timeout").source, formatDuration(c.StoreTimeout), formatDuration(writeTimeout))
	}
	return nil
}

// checkPolicy checks one pair of timeouts, naming the flag at fault.
func checkPolicy(p session.Policy, idle, abs *option) error {
	switch {
	case p.IdleTimeout <= 0:
		return usageErrorf("invalid value %q for %s: must be positive", idle.raw, idle.source)
	case p.AbsoluteTimeout <= 0:
		return usageErrorf("invalid value %q for %s: must be positive", abs.raw, abs.source)
	case p.IdleTimeout > p.AbsoluteTimeout:
		return usageErrorf("%s %s is longer than %s %s: the idle timeout could never apply",
			idle.source, formatDuration(p.IdleTimeout), abs.source, formatDuration(p.AbsoluteTimeout))
	}
	return nil
}

func presetNames() string {
	names := make([]string, len(session.Presets))
	for i, p := range session.Presets {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// parsePrefixes parses a comma-separated list of CIDRs; a bare address
// stands for itself alone.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an address", part)
			}
			part = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String()
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", part)
		}
		out = append(out, p.Masked())
	}
	return slices.Clip(out), nil
}

// checkDebugAddr accepts loopback addresses only: profiles show what the
// server is doing and cost CPU to take, so they are for someone on the
// machine itself (or an SSH tunnel), never for the network.
func checkDebugAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, for example 127.0.0.1:6060")
	}
	if err := checkHostPort(addr); err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return errors.New("must be a loopback address (127.0.0.1, [::1] or localhost): profiles are not for the network")
	}
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http:// or https:// URL, as in https://sg.example.com")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("want a URL without user, query or fragment")
	}
	return nil
}

// parseUpstream checks -upstream: an absolute http:// or https:// URL of
// the application, without user, query or fragment.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want the application's absolute http:// or https:// URL, as in http://127.0.0.1:3000")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("want a URL without user, query or fragment")
	}
	return u, nil
}

// checkPassivePath checks a -gate-passive-path pattern.
func checkPassivePath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q: a path pattern starts with /, as in /api/notifications/*", p)
	}
	if _, err := path.Match(p, "/"); err != nil {
		return fmt.Errorf("%q is not a valid pattern: %v", p, err)
	}
	return nil
}

// checkRole checks a -gate-allow-role value.
func checkRole(r string) error {
	if !account.Role(r).Valid() {
		return fmt.Errorf("%q: roles are %s and %s", r, account.RoleAdmin, account.RoleUser)
	}
	return nil
}

// checkRedirectHost checks a -gate-redirect-host value.
func checkRedirectHost(h string) error {
	_, err := web.NewRedirectHosts([]string{h}, "")
	return err
}

// checkCookieDomain accepts a DNS name with at least two labels: a cookie
// for a whole top-level domain is refused by browsers, and an address
// cannot have subdomains.
func checkCookieDomain(d string) error {
	d = strings.TrimPrefix(d, ".")
	if _, err := netip.ParseAddr(d); err == nil {
		return errors.New("want a domain name such as example.com, not an address")
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return errors.New("want a domain name with at least two labels, such as example.com")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("want a domain name such as example.com")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("want a domain name such as example.com, letters, digits and hyphens only")
			}
		}
	}
	return nil
}
