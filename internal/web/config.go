package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/drafts"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/internal/passkey"
	"github.com/sessionguard/sessionguard/session"
)

// Config configures a Server. Sessions, Accounts and Authenticator are
// required, and SecondFactors unless second factors are off; every other
// field has a working default, which its zero value
// selects. A setting that can be turned off has a named value for that
// (WarningOff, UnknownTokenLimitOff); no zero value means "off".
//
// Wiring order (cmd/sessionguard): create the metrics with metrics.New
// first, because the session Manager takes it as an Observer at
// construction; then the Manager; then web.New with both.
//
// The Server answers unauthenticated requests and store failures itself (an
// HTML redirect or a JSON 401/503, depending on the request), so the
// Manager's Config.Unauthenticated and Config.StoreFailure need not be set:
// the Server never uses Manager.Require.
type Config struct {
	// Sessions creates, checks and ends sessions. Required. The Server wraps
	// its whole handler in Sessions.Handler.
	Sessions *session.Manager

	// Accounts holds the users. Required. *account.Store satisfies it.
	Accounts AccountStore

	// Authenticator checks passwords at sign-in and re-authentication,
	// with throttling. Required. *account.Authenticator satisfies it.
	Authenticator Authenticator

	// Audit receives login_succeeded, login_failed (with the client
	// address, never the password), password_changed, user_created,
	// user_disabled, user_enabled and sessions_revoked (who ended whose
	// sessions), and serves the admin page's audit log. The Server writes
	// no session_started/renewed/ended entries: the audit log, registered
	// as a session Observer by the caller, records those, once each.
	// *audit.Log satisfies it. The default (nil) records nothing and shows
	// an empty log.
	Audit AuditLog

	// Logger receives request errors (with their reference), panics and
	// security-relevant refusals. The default is slog.Default().
	Logger *slog.Logger

	// Policies maps a role ("admin", "user") to the session policy a login
	// with that role gets. A role absent from the map gets the Manager's
	// policy. Every policy must pass Policy.Validate. Admins should be
	// stricter than users; the caller enforces that. The sign-in page names
	// the "user" policy's timeouts when it says why a session ended ("after
	// 30 minutes of inactivity"). The default (nil) gives everyone the
	// Manager's policy.
	Policies map[string]session.Policy

	// ReauthAfter is how old a session's last authentication may be before
	// a sensitive action (password change, ending sessions, admin actions)
	// asks for the password again. The default (0) is 5 minutes. It cannot
	// be turned off; a negative value is an error.
	ReauthAfter time.Duration

	// WarnBefore is how long before the idle end the browser's warning
	// appears (/auth/timeout.js reads it from /auth/status as
	// warn_before_s). The default (0) is 2 minutes; WarningOff shows no
	// warning. Another negative value is an error.
	WarnBefore time.Duration

	// AbsoluteWarnBefore is how long before the absolute end the browser
	// first tells the user to save their work (absolute_warn_before_s in
	// /auth/status). The default (0) is 5 minutes; WarningOff leaves only
	// the last notice, a minute before the end. Another negative value is
	// an error.
	AbsoluteWarnBefore time.Duration

	// Setup enables the first-run page /setup?token=...: while no account
	// exists and the token is valid, it creates the first administrator.
	// The default (nil) disables the page (404).
	Setup SetupToken

	// Metrics is where the Server counts logins and request latencies, and
	// where it registers the active-sessions gauge (so one Metrics serves
	// one Server). Pass the same value that is one of the Manager's
	// Observers. The default (nil) creates one registered with Registerer,
	// whose session counters then stay at zero (it is no Observer of the
	// Manager).
	Metrics *metrics.Metrics

	// Registerer receives the Server's collectors when Metrics is nil. The
	// default is prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer

	// Gatherer is what GET /metrics exposes. The default is Registerer when
	// it is also a Gatherer (a *prometheus.Registry), else
	// prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer

	// Ready reports whether the stores answer, for GET /readyz (503 with
	// the error logged when it fails; the error text is never shown). It is
	// called with a context bounded by 2 seconds. The default pings
	// Sessions. /readyz also answers 503 while the session store refuses
	// writes, which Metrics learns as an Observer of Sessions.
	Ready func(ctx context.Context) error

	// Clock tells the time for re-authentication checks. Use the same clock
	// as Sessions. The default is session.SystemClock.
	Clock session.Clock

	// ClientIP returns the client address of a request, for the audit log,
	// the throttling of sign-ins and the counting of unknown session tokens
	// (UnknownTokenLimit). Use the same function as the session
	// Manager's Config.ClientIP. The default is the host part of
	// r.RemoteAddr.
	ClientIP func(r *http.Request) string

	// TLS says the server is reached over HTTPS, so responses carry
	// Strict-Transport-Security. The default (false) sends no HSTS, as a
	// browser would pin plain http://localhost otherwise.
	TLS bool

	// MaxFormBytes bounds a request body; a larger one gets 413. The
	// default (0) is 64 KiB. There is no unbounded setting; a negative
	// value is an error.
	MaxFormBytes int64

	// Drafts keeps what people typed into forms marked
	// data-sessionguard-preserve when their session is about to time out,
	// at /auth/drafts for /auth/timeout.js, so that it is restored after
	// they sign in again. The default (nil) turns drafts off:
	// /auth/drafts answers 404 and the script saves nothing.
	Drafts *drafts.Store

	// RedirectHosts are the hosts, besides this server's own paths, that
	// the sign-in page may send a browser back to: the applications a
	// gateway protects on hosts of their own. The default allows none.
	RedirectHosts RedirectHosts

	// Embedded says the server sits in front of another application that
	// owns every path outside /auth/, /setup, /healthz, /readyz and
	// /metrics (reverse-proxy mode): the pages then link only to those.
	// The default (false) links to the server's own home, account and
	// admin pages.
	Embedded bool

	// TrustedOrigins are extra origins ("https://admin.example.com") whose
	// cross-origin unsafe requests are allowed by the CSRF protection. The
	// default (none) allows same-origin requests only.
	TrustedOrigins []string

	// TrustedProxies are the reverse proxies whose X-Forwarded-Host (and
	// X-Forwarded-Proto) say which host the browser asked for: the CSRF
	// protection compares a request's Origin with that host instead of the
	// Host header, which a TLS-terminating proxy may rewrite to the
	// server's own address. Give the same proxies as to ClientIP. The
	// default trusts none: the Host header is the browser's.
	TrustedProxies []netip.Prefix

	// UnknownTokenLimit is how many different well-formed session tokens
	// that the session store does not know one client address (ClientIP;
	// an IPv6 client's /64) may present within a minute. Beyond it, its
	// requests with such tokens get 429 with Retry-After for a minute, and
	// the burst is logged once (OWASP: session ID guessing). Requests with
	// a live session, or with no token, are never counted or refused,
	// whatever their address. The default (0) is DefaultUnknownTokenLimit,
	// 100; UnknownTokenLimitOff turns the limit off. Another negative value
	// is an error.
	UnknownTokenLimit int

	// SecondFactors holds the users' authenticator apps and recovery codes.
	// Required unless both MFA and AdminMFA are account.MFAOff.
	// *account.Store satisfies it.
	SecondFactors SecondFactorStore

	// Passkeys holds the users' passkeys (WebAuthn credentials). The
	// default (nil) turns passkeys off: they are neither offered nor
	// accepted, and a policy of account.MFAPasskey is then an error. A
	// Store without a relying party (passkey.NewStore with the zero
	// Config) also offers and accepts none, but its users' passkeys still
	// count as a second factor they have: such a user is asked for another
	// one (a recovery code) rather than signed in with the password alone.
	Passkeys *passkey.Store

	// MFA is when users of role "user" need a second factor after their
	// password (see account.MFAPolicy). The default (zero) is
	// account.MFAOptional: asked of those who set one up.
	MFA account.MFAPolicy

	// AdminMFA is the same for administrators. The default (zero) is
	// account.MFARequired: an administrator without a second factor is
	// taken to set one up straight after the password.
	AdminMFA account.MFAPolicy
}

// WarningOff, as Config.WarnBefore or Config.AbsoluteWarnBefore, turns that
// warning off.
const WarningOff time.Duration = -1

// UnknownTokenLimitOff, as Config.UnknownTokenLimit, turns the limit of
// unknown session tokens off.
const UnknownTokenLimitOff = -1

// The defaults of Config's fields, as withDefaults fills them in.
const (
	defaultReauthAfter        = 5 * time.Minute
	defaultWarnBefore         = 2 * time.Minute
	defaultAbsoluteWarnBefore = 5 * time.Minute

	// A sign-in or a note needs a few hundred bytes; 64 KiB leaves room
	// for long notes.
	defaultMaxFormBytes = 64 << 10
)

// check reports the first field of c that is missing or out of range.
func (c *Config) check() error {
	switch {
	case c.Sessions == nil:
		return errors.New("web: Config.Sessions is required")
	case c.Accounts == nil:
		return errors.New("web: Config.Accounts is required")
	case c.Authenticator == nil:
		return errors.New("web: Config.Authenticator is required")
	}
	for role, p := range c.Policies {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("web: Config.Policies[%q]: %w", role, err)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		off  bool // WarningOff is allowed
	}{
		{"ReauthAfter", c.ReauthAfter, false},
		{"WarnBefore", c.WarnBefore, true},
		{"AbsoluteWarnBefore", c.AbsoluteWarnBefore, true},
	} {
		if d.v < 0 && !(d.off && d.v == WarningOff) {
			if d.off {
				return fmt.Errorf("web: Config.%s must be positive, zero (the default) or WarningOff, got %v", d.name, d.v)
			}
			return fmt.Errorf("web: Config.%s must be positive or zero (the default), got %v", d.name, d.v)
		}
	}
	if c.MaxFormBytes < 0 {
		return fmt.Errorf("web: Config.MaxFormBytes must be positive or zero (the default), got %d", c.MaxFormBytes)
	}
	if c.UnknownTokenLimit < 0 && c.UnknownTokenLimit != UnknownTokenLimitOff {
		return fmt.Errorf("web: Config.UnknownTokenLimit must be positive, zero (the default) or UnknownTokenLimitOff, got %d", c.UnknownTokenLimit)
	}
	needFactors := false
	for _, p := range []struct {
		name   string
		policy account.MFAPolicy
	}{{"MFA", mfaOrDefault(c.MFA, defaultMFA)}, {"AdminMFA", mfaOrDefault(c.AdminMFA, defaultAdminMFA)}} {
		if _, err := account.ParseMFAPolicy(string(p.policy)); err != nil {
			return fmt.Errorf("web: Config.%s: %w", p.name, err)
		}
		if p.policy == account.MFAPasskey && (c.Passkeys == nil || !c.Passkeys.CeremoniesOn()) {
			return fmt.Errorf("web: Config.%s is %q, which needs Config.Passkeys with a relying party", p.name, p.policy)
		}
		needFactors = needFactors || p.policy != account.MFAOff
	}
	if needFactors && c.SecondFactors == nil {
		return errors.New("web: Config.SecondFactors is required unless both Config.MFA and Config.AdminMFA are account.MFAOff")
	}
	return nil
}

// The default second-factor policies: secure by default for the accounts
// that can change everything, and no surprise for the others.
const (
	defaultMFA      = account.MFAOptional
	defaultAdminMFA = account.MFARequired
)

// mfaOrDefault returns p, or def when p is the zero value.
func mfaOrDefault(p, def account.MFAPolicy) account.MFAPolicy {
	if p == "" {
		return def
	}
	return p
}

// withDefaults returns c with every zero field that has a default filled
// in; the Server keeps the result and reads its settings only from there.
// Metrics, whose default must be registered, is left to newServer.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = session.SystemClock
	}
	if c.ClientIP == nil {
		c.ClientIP = session.RemoteIP
	}
	if c.ReauthAfter == 0 {
		c.ReauthAfter = defaultReauthAfter
	}
	if c.WarnBefore == 0 {
		c.WarnBefore = defaultWarnBefore
	}
	if c.AbsoluteWarnBefore == 0 {
		c.AbsoluteWarnBefore = defaultAbsoluteWarnBefore
	}
	if c.MaxFormBytes == 0 {
		c.MaxFormBytes = defaultMaxFormBytes
	}
	if c.UnknownTokenLimit == 0 {
		c.UnknownTokenLimit = DefaultUnknownTokenLimit
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.DefaultRegisterer
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.DefaultGatherer
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		}
	}
	if c.Ready == nil {
		c.Ready = c.Sessions.Ping
	}
	c.MFA = mfaOrDefault(c.MFA, defaultMFA)
	c.AdminMFA = mfaOrDefault(c.AdminMFA, defaultAdminMFA)
	return c
}

// warning is the seconds before an end that a warning of d appears, as
// /auth/status reports it: 0 for WarningOff, which the browser script
// reads as no warning.
func warning(d time.Duration) float64 { return max(d, 0).Seconds() }

// New returns a Server for cfg, or an error naming the field that is
// missing or invalid.
func New(cfg Config) (*Server, error) {
	return newServer(cfg)
}

// Handler returns the Server's HTTP handler: every route, wrapped in the
// security headers, panic recovery, request limits, CSRF protection,
// metrics and the session middleware.
func (s *Server) Handler() http.Handler { return s.handler }
