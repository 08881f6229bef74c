package web

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionguard/sessionguard/internal/drafts"
	"github.com/sessionguard/sessionguard/session"
)

// routes registers every route. Patterns with a method ("GET /x") answer
// other methods with 405; "GET" also serves HEAD.
func (s *Server) routes() {
	s.handle("GET /{$}", s.signedIn(s.home))
	s.handle("POST /notes", s.signedIn(s.saveNote))

	s.handle("GET /auth/login", http.HandlerFunc(s.loginPage))
	s.handle("POST /auth/login", http.HandlerFunc(s.login))
	s.handle("POST /auth/logout", http.HandlerFunc(s.logout))
	s.handle("GET /auth/status", session.Passive(http.HandlerFunc(s.status)))
	s.handle("POST /auth/extend", http.HandlerFunc(s.extend))
	s.handle("GET /auth/reauth", s.signedIn(s.reauthPage))
	s.handle("POST /auth/reauth", s.signedIn(s.reauth))
	s.handle("GET /auth/sessions", s.signedIn(s.sessionsPage))
	s.handle("POST /auth/sessions/revoke", s.sensitive(s.revokeOwn))

	s.handle("GET /account", s.signedIn(s.accountPage))
	s.handle("POST /account/password", s.signedIn(s.changePassword))
	s.mfaRoutes()

	s.handle("GET /admin", s.admin(s.adminPage))
	s.handle("GET /admin/audit", s.admin(s.auditPage))
	s.handle("POST /admin/users", s.admin(s.addUser))
	s.handle("POST /admin/users/disable", s.admin(s.disableUser))
	s.handle("POST /admin/users/enable", s.admin(s.enableUser))
	s.handle("POST /admin/users/password", s.admin(s.resetPassword))
	s.handle("POST /admin/sessions/revoke", s.admin(s.revokeAny))

	s.handle("GET /setup", http.HandlerFunc(s.setupPage))
	s.handle("POST /setup", http.HandlerFunc(s.setupSubmit))

	// The browser side of timeouts, at the address other
	// applications include it from; the layout includes it on every page
	// of a signed-in user.
	s.handle("GET /auth/timeout.js", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveStatic(w, r, "timeout.js")
	}))
	s.handle("GET /auth/timeout.css", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveStatic(w, r, "timeout.css")
	}))
	if s.cfg.Drafts != nil {
		s.handle("/auth/drafts", drafts.Handler(s.cfg.Drafts, nil))
	}
	s.handle("GET /auth/static/{file}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveStatic(w, r, r.PathValue("file"))
	}))
	// The pages link their icon, favicon.svg above. Browsers and tools
	// that ask for /favicon.ico anyway get 204, no icon and no error,
	// kept a day: an ICO drawing of its own would be a second icon to
	// keep in step for the few clients that cannot show SVG.
	s.handle("GET /favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	}))
	s.handle("GET /healthz", http.HandlerFunc(s.healthz))
	s.handle("GET /readyz", http.HandlerFunc(s.readyz))
	s.handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slogPrinter{s},
	}))
}

func (s *Server) handle(pattern string, h http.Handler) {
	s.patterns[pattern] = true
	s.mux.Handle(pattern, h)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 when the stores answer within two seconds and the
// session store takes writes, else 503; the error is logged, not shown. A
// store can answer a ping while refusing every write (a SQLite file whose
// write lock another process holds), and then no sign-in, sign-out or
// revocation goes through: the metrics, which hear how each session write
// fares, tell (Metrics.StoreWritesFailing).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	err := s.cfg.Ready(ctx)
	if err == nil {
		err = s.cfg.Metrics.StoreWritesFailing()
	}
	// Probes come every few seconds: log the changes, not every answer.
	if wasFailing := s.notReady.Swap(err != nil); err != nil && !wasFailing {
		s.cfg.Logger.Warn("not ready: a store does not answer or takes no writes", "err", err)
	} else if err == nil && wasFailing {
		s.cfg.Logger.Info("ready again: the stores answer and take writes")
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("unavailable\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// slogPrinter sends promhttp's errors to the Server's logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) {
	p.s.cfg.Logger.Error("serving metrics", "err", v)
}
