package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/drafts"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/session"
)

// Config configures a Server. Sessions, Accounts and Authenticator are
// required; every other field has a working default.
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
	// with that role gets. A role absent from the map gets
	// Sessions.DefaultPolicy(). Every policy must pass Policy.Validate.
	// Admins should be stricter than users; the caller enforces that. The
	// sign-in page names the "user" policy's timeouts when it says why a
	// session ended ("after 30 minutes of inactivity"). The default (nil)
	// gives everyone Sessions.DefaultPolicy().
	Policies map[string]session.Policy

	// ReauthAfter is how old a session's last authentication may be before
	// a sensitive action (password change, ending sessions, admin actions)
	// asks for the password again. The default is 5 minutes.
	ReauthAfter time.Duration

	// WarnBefore is how long before the idle end the browser's warning
	// appears (issue 4: /auth/timeout.js reads it from /auth/status as
	// warn_before_s). The default is 2 minutes.
	WarnBefore time.Duration

	// AbsoluteWarnBefore is how long before the absolute end the browser
	// first tells the user to save their work (absolute_warn_before_s in
	// /auth/status). The default is 5 minutes.
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
	// default is 64 KiB.
	MaxFormBytes int64

	// Drafts keeps what people typed into forms marked
	// data-sessionguard-preserve when their session is about to time out,
	// at /auth/drafts for /auth/timeout.js, so that it is restored after
	// they sign in again (issue 4). The default (nil) turns drafts off:
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
	// 100; a negative value turns the limit off.
	UnknownTokenLimit int
}

// New returns a Server for cfg, or an error naming the field that is
// missing or invalid.
func New(cfg Config) (*Server, error) {
	return newServer(cfg)
}

// Handler returns the Server's HTTP handler: every route, wrapped in the
// security headers, panic recovery, request limits, CSRF protection,
// metrics and the session middleware.
func (s *Server) Handler() http.Handler { return s.handler }
