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
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sessionguard/sessionguard/internal/forwarded"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/session"
)

// Server is the sessionguard web application. Create it with New; it is
// safe for concurrent use.
type Server struct {
	cfg Config // as New was given it, with its defaults filled in

	mux      *http.ServeMux
	patterns map[string]bool // the patterns registered on mux
	pages    pages
	rendered renderCache
	static   map[string]staticFile
	handler  http.Handler

	securityHeaders []securityHeader

	notReady atomic.Bool // the last readiness check failed

	guesses *tokenGuesses // unknown session tokens per client address
	starts  *startLimit   // anonymous sessions of passwordless sign-ins per client address
}

func newServer(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg.withDefaults(),
		mux:      http.NewServeMux(),
		patterns: make(map[string]bool),
	}
	if s.cfg.Metrics == nil {
		m, err := metrics.New(s.cfg.Registerer)
		if err != nil {
			return nil, fmt.Errorf("web: registering metrics: %w", err)
		}
		s.cfg.Metrics = m
	}
	if err := s.cfg.Metrics.CountActive(s.countSessions, 10*time.Second); err != nil {
		return nil, fmt.Errorf("web: registering the active sessions gauge: %w", err)
	}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if s.static, err = loadStatic(); err != nil {
		return nil, err
	}
	s.routes()
	s.securityHeaders = securityHeaders(s.cfg.TLS)

	csrf := http.NewCrossOriginProtection()
	for _, o := range s.cfg.TrustedOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("web: Config.TrustedOrigins: %w", err)
		}
	}

	var h http.Handler = http.HandlerFunc(s.dispatch)
	s.guesses = newTokenGuesses(s.cfg.UnknownTokenLimit)
	s.starts = newStartLimit(passwordlessStartLimit, passwordlessStartWindow, passwordlessStartMax)
	h = s.refuseTokenGuessing(h)
	h = s.cfg.Sessions.Handler(h)
	h = s.crossOriginProtection(csrf, forwarded.Proxies(s.cfg.TrustedProxies), h)
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
	return s.cfg.Sessions.Count(ctx)
}

// policyFor returns the session policy of a user with role.
func (s *Server) policyFor(role string) session.Policy {
	if p, ok := s.cfg.Policies[role]; ok {
		return p
	}
	return s.cfg.Sessions.Policy()
}

// userPolicy is the policy of ordinary users, whose timeouts the login page
// names when it says why a session ended.
func (s *Server) userPolicy() session.Policy { return s.policyFor("user") }
