// Package web is sessionguard's HTTP face: the sign-in and sign-out
// endpoints, the JSON endpoints the browser script polls, the pages (home,
// account, admin, sessions, first-run setup), health, readiness and metrics.
//
// Every response carries strict security headers (a Content-Security-Policy
// without inline script or style), unsafe methods are protected against
// cross-site request forgery with http.CrossOriginProtection, bodies are
// bounded, and nothing internal (stack traces, error texts) ever reaches a
// client: errors are logged with a reference that the error page shows.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/drafts"
	"github.com/sessionguard/sessionguard/internal/forwarded"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/session"
)

// Server is the sessionguard web application. Create it with New; it is
// safe for concurrent use.
type Server struct {
	sessions *session.Manager
	accounts AccountStore
	authn    Authenticator
	audit    AuditLog
	log      *slog.Logger
	clock    session.Clock
	clientIP func(*http.Request) string
	metrics  *metrics.Metrics
	gatherer prometheus.Gatherer
	ready    func(context.Context) error
	setup    SetupToken
	drafts   *drafts.Store

	policies           map[string]session.Policy
	reauthAfter        time.Duration
	warnBefore         time.Duration
	absoluteWarnBefore time.Duration
	tls                bool
	maxBody            int64
	redirectHosts      RedirectHosts
	embedded           bool

	mux      *http.ServeMux
	patterns map[string]bool // the patterns registered on mux
	pages    pages
	rendered renderCache
	static   map[string]staticFile
	handler  http.Handler

	securityHeaders []securityHeader

	notReady atomic.Bool // the last readiness check failed

	guesses *tokenGuesses // unknown session tokens per client address
}

// defaultMaxBody is the default request body limit: a sign-in or a note
// needs a few hundred bytes; 64 KiB leaves room for long notes.
const defaultMaxBody = 64 << 10

func newServer(cfg Config) (*Server, error) {
	if cfg.Sessions == nil {
		return nil, errors.New("web: Config.Sessions is required")
	}
	if cfg.Accounts == nil {
		return nil, errors.New("web: Config.Accounts is required")
	}
	if cfg.Authenticator == nil {
		return nil, errors.New("web: Config.Authenticator is required")
	}
	for role, p := range cfg.Policies {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("web: Config.Policies[%q]: %w", role, err)
		}
	}
	if cfg.ReauthAfter < 0 || cfg.WarnBefore < 0 || cfg.AbsoluteWarnBefore < 0 || cfg.MaxFormBytes < 0 {
		return nil, errors.New("web: Config.ReauthAfter, WarnBefore, AbsoluteWarnBefore and MaxFormBytes must not be negative")
	}
	s := &Server{
		sessions:           cfg.Sessions,
		accounts:           cfg.Accounts,
		authn:              cfg.Authenticator,
		audit:              cfg.Audit,
		log:                cfg.Logger,
		clock:              cfg.Clock,
		clientIP:           cfg.ClientIP,
		metrics:            cfg.Metrics,
		gatherer:           cfg.Gatherer,
		ready:              cfg.Ready,
		setup:              cfg.Setup,
		drafts:             cfg.Drafts,
		policies:           cfg.Policies,
		reauthAfter:        cfg.ReauthAfter,
		warnBefore:         cfg.WarnBefore,
		absoluteWarnBefore: cfg.AbsoluteWarnBefore,
		tls:                cfg.TLS,
		maxBody:            cfg.MaxFormBytes,
		redirectHosts:      cfg.RedirectHosts,
		embedded:           cfg.Embedded,
		mux:                http.NewServeMux(),
		patterns:           make(map[string]bool),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = session.SystemClock
	}
	if s.clientIP == nil {
		s.clientIP = remoteIP
	}
	if s.reauthAfter == 0 {
		s.reauthAfter = 5 * time.Minute
	}
	if s.warnBefore == 0 {
		s.warnBefore = 2 * time.Minute
	}
	if s.absoluteWarnBefore == 0 {
		s.absoluteWarnBefore = 5 * time.Minute
	}
	if s.maxBody == 0 {
		s.maxBody = defaultMaxBody
	}
	if s.gatherer == nil {
		s.gatherer = prometheus.DefaultGatherer
		if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
			s.gatherer = g
		}
	}
	if s.metrics == nil {
		m, err := metrics.New(cfg.Registerer)
		if err != nil {
			return nil, fmt.Errorf("web: registering metrics: %w", err)
		}
		s.metrics = m
	}
	if err := s.metrics.CountActive(s.countSessions, 10*time.Second); err != nil {
		return nil, fmt.Errorf("web: registering the active sessions gauge: %w", err)
	}
	if s.ready == nil {
		s.ready = s.sessions.Ping
	}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if s.static, err = loadStatic(); err != nil {
		return nil, err
	}
	s.routes()
	s.securityHeaders = securityHeaders(s.tls)

	csrf := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("web: Config.TrustedOrigins: %w", err)
		}
	}

	var h http.Handler = http.HandlerFunc(s.dispatch)
	s.guesses = newTokenGuesses(cfg.UnknownTokenLimit)
	h = s.refuseTokenGuessing(h)
	h = s.sessions.Handler(h)
	h = s.crossOriginProtection(csrf, forwarded.Proxies(cfg.TrustedProxies), h)
	h = s.limitBody(h)
	s.handler = s.frame(h)
	return s, nil
}

// crossOriginProtection refuses the cross-origin unsafe requests that csrf
// refuses, judging a request from a trusted proxy by the host the browser
// used (X-Forwarded-Host) rather than by the Host header the proxy sent:
// http.CrossOriginProtection compares Origin with Host, so a proxy that
// rewrites Host would otherwise make every sign-in from an older browser
// (one that sends Origin but no Sec-Fetch-Site) cross-origin.
func (s *Server) crossOriginProtection(csrf *http.CrossOriginProtection, proxies forwarded.Proxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checked := r
		if _, host := proxies.PublicOrigin(r); host != r.Host {
			checked = new(http.Request)
			*checked = *r
			checked.Host = host
		}
		if err := csrf.Check(checked); err != nil {
			s.crossOriginDenied(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// countSessions counts the live sessions of every user, for the
// active-sessions gauge.
func (s *Server) countSessions(ctx context.Context) (int, error) {
	return s.sessions.Count(ctx)
}

// policyFor returns the session policy of a user with role.
func (s *Server) policyFor(role string) session.Policy {
	if p, ok := s.policies[role]; ok {
		return p
	}
	return s.sessions.DefaultPolicy()
}

// userPolicy is the policy of ordinary users, whose timeouts the login page
// names when it says why a session ended.
func (s *Server) userPolicy() session.Policy { return s.policyFor("user") }

// remoteIP is the host part of r.RemoteAddr, the session Manager's default
// client address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
