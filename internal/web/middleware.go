package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// contentSecurityPolicy allows only the server's own scripts, styles and
// images: no inline script or style, no plugins, no framing, no <base>, and
// forms that post to this origin only.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// requestInfo is what the outermost middleware knows of a request and lets
// the inner layers fill in.
type requestInfo struct {
	id      string // the reference shown on error pages and logged
	pattern string // the ServeMux pattern that served it; empty: none
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// recorder remembers the status of a response, for metrics and for knowing
// whether a panic can still be answered with an error page.
type recorder struct {
	http.ResponseWriter
	status int
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// frame is the outermost middleware: it gives the request a reference,
// sets the security headers, turns a panic into a 500 page (logged with its
// reference, never shown), and measures the request for metrics.
func (s *Server) frame(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: newRequestID()}
		rec := &recorder{ResponseWriter: w}
		h := rec.Header()
		for _, sh := range s.securityHeaders {
			h[sh.name] = sh.value
		}
		h["X-Request-Id"] = []string{ri.id}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v) // the handler asked net/http to drop the connection
				}
				s.cfg.Logger.Error("panic while serving a request", "ref", ri.id, "method", r.Method,
					"path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					s.internalPage(rec, r, ri.id)
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			took := time.Since(start)
			s.cfg.Metrics.ObserveRequest(ri.pattern, status, took)
			if s.cfg.Logger.Enabled(r.Context(), slog.LevelDebug) {
				s.cfg.Logger.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("ref", ri.id),
					slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", ri.pattern),
					slog.Int("status", status), slog.Duration("took", took))
			}
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, ri)))
	})
}

// securityHeader is a header every response carries, its value built once.
type securityHeader struct {
	name  string // in canonical form
	value []string
}

// securityHeaders lists the headers every response carries. The values
// are shared by every response, which saves building them per request; that
// is safe because nothing changes a header's value slice in place: Set and
// Del replace or drop it, and Add appends to a slice whose capacity is its
// length, so append copies.
func securityHeaders(tls bool) []securityHeader {
	hs := [][2]string{
		{"Content-Security-Policy", contentSecurityPolicy},
		{"X-Content-Type-Options", "nosniff"},
		{"X-Frame-Options", "DENY"},
		{"Referrer-Policy", "no-referrer"},
		{"Cross-Origin-Opener-Policy", "same-origin"},
		{"Cross-Origin-Resource-Policy", "same-origin"},
		{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
		// Nothing this server says is for a shared cache, and pages
		// that show a user must never be replayed by the Back button
		// after the session ends; static files override this.
		{"Cache-Control", "no-store"},
	}
	if tls {
		hs = append(hs, [2]string{"Strict-Transport-Security", "max-age=63072000; includeSubDomains"})
	}
	out := make([]securityHeader, len(hs))
	for i, h := range hs {
		out[i] = securityHeader{http.CanonicalHeaderKey(h[0]), []string{h[1]}[:1:1]}
	}
	return out
}

func newRequestID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// limitBody bounds every request body; reading past the limit fails, and
// parseForm turns that into a 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxFormBytes {
			s.tooLarge(w, r)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxFormBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// dispatch routes the request, answering paths without a route (404) and
// methods a route does not take (405) with the server's own pages.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if s.patterns[pattern] {
		infoFrom(r.Context()).pattern = pattern
		s.mux.ServeHTTP(w, r)
		return
	}
	if pattern != "" {
		// ServeMux redirects to the cleaned path ("/a/../b" to "/b");
		// its "pattern" is then that path, not a route.
		h.ServeHTTP(w, r)
		return
	}
	probe := &probeWriter{header: make(http.Header)}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		s.errorPage(w, r, http.StatusMethodNotAllowed, "method_not_allowed",
			"This address does not accept "+r.Method+" requests.")
		return
	}
	s.notFound(w, r)
}

// probeWriter learns what ServeMux would answer for a request it has no
// route for (404 or 405, and the Allow header) without sending it.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }

func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// crossOriginDenied answers an unsafe request that http.CrossOriginProtection
// refused: a cross-site form post or fetch.
func (s *Server) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	s.cfg.Logger.Warn("refused a cross-origin request", "ref", infoFrom(r.Context()).id, "method", r.Method,
		"path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	s.errorPage(w, r, http.StatusForbidden, "cross_origin_request",
		"This request came from another site and was refused. Go back to the page and try again.")
}

// parseForm parses the request's form, and answers a body too large (413),
// a malformed body or query (400), or text that is not valid UTF-8 (400).
// It reports whether the handler may go on.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.tooLarge(w, r)
			return false
		}
		s.errorPage(w, r, http.StatusBadRequest, "bad_request", "The form could not be read. Reload the page and try again.")
		return false
	}
	for _, vs := range r.Form {
		for _, v := range vs {
			if !validText(v) {
				s.errorPage(w, r, http.StatusBadRequest, "bad_request",
					"The form contained characters that are not valid text. Check what you typed and try again.")
				return false
			}
		}
	}
	return true
}

func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusRequestEntityTooLarge, "request_too_large",
		"What you sent is larger than this server accepts ("+byteWords(s.cfg.MaxFormBytes)+"). Shorten it and try again.")
}
