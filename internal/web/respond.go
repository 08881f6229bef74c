package web

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/session"
)

// wantsJSON reports whether the client asked for JSON rather than a page:
// an Accept header naming application/json ahead of (or without) text/html.
// Browsers navigating send text/html first, so they get pages and redirects.
func wantsJSON(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt := strings.TrimSpace(part)
		if strings.ContainsRune(mt, ';') {
			// Parameters ("q=0.9") need parsing; a bare type, what
			// clients send most, is compared as it is, in any case.
			var err error
			if mt, _, err = mime.ParseMediaType(mt); err != nil {
				continue
			}
		}
		switch {
		case strings.EqualFold(mt, "application/json"):
			return true
		case strings.EqualFold(mt, "text/html"):
			return false
		}
	}
	return false
}

// writeJSON sends v as the JSON body of a response with status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	buf := getBuffer()
	defer putBuffer(buf)
	// Encode writes what json.Marshal returns, and a newline.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		s.internalError(w, r, fmt.Errorf("encoding a JSON answer: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// jsonError is the body of every JSON error: a stable machine-readable code
// and, for server errors, the reference to quote.
type jsonError struct {
	Error     string `json:"error"`
	Reference string `json:"reference,omitempty"`
}

// errorPage answers with status: a JSON error {"error": code} for JSON
// clients, an HTML page saying message for browsers.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	if wantsJSON(r) {
		s.writeJSON(w, r, status, jsonError{Error: code})
		return
	}
	v := &view{
		Title:   http.StatusText(status),
		Content: errorView{Heading: http.StatusText(status), Message: message},
	}
	// A signed-in user keeps the frame with the sign-out button.
	if sess := session.FromContext(r.Context()); sess.SignedIn() {
		v.User = sess.UserID()
	}
	s.render(w, r, status, "error", v)
}

// ServeError answers with the server's own error page (or JSON error, for
// JSON clients) and its security headers, for a component in front of the
// server that fails on its own, such as a gateway whose application does
// not answer. message tells the person what to do.
func (s *Server) ServeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	h := w.Header()
	for _, sh := range s.securityHeaders {
		h[sh.name] = sh.value
	}
	s.errorPage(w, r, status, code, message)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusNotFound, "not_found", "There is no page at this address.")
}

// internalError logs err with the request's reference and answers 500
// without any of err's text.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	ref := infoFrom(r.Context()).id
	s.cfg.Logger.Error("request failed", "ref", ref, "method", r.Method, "path", r.URL.Path, "err", err)
	s.internalPage(w, r, ref)
}

// internalPage answers 500 with the reference to quote and nothing else.
func (s *Server) internalPage(w http.ResponseWriter, r *http.Request, ref string) {
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusInternalServerError, jsonError{Error: "internal", Reference: ref})
		return
	}
	s.render(w, r, http.StatusInternalServerError, "error", &view{
		Title: "Something went wrong",
		Content: errorView{
			Heading: "Something went wrong",
			Message: "Something went wrong on our side (reference " + ref + "). Try again in a moment.",
		},
	})
}

// unavailable answers 503 when a store the request needs does not answer:
// nobody is treated as signed in.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	ref := infoFrom(r.Context()).id
	s.cfg.Logger.Error("a store did not answer", "ref", ref, "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusServiceUnavailable, jsonError{Error: "unavailable"})
		return
	}
	s.render(w, r, http.StatusServiceUnavailable, "error", &view{
		Title: "Temporarily unavailable",
		Content: errorView{
			Heading: "Temporarily unavailable",
			Message: "The service cannot check sign-ins right now (reference " + ref + "). Try again in a moment.",
		},
	})
}

// seeOther redirects with 303 to target: a same-origin path, or an absolute
// URL that RedirectHosts allows.
func seeOther(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// validText reports whether a form value is text a person could have typed:
// valid UTF-8 without control characters other than tab and line breaks.
func validText(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, c := range v {
		if (c < ' ' && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
			return false
		}
	}
	return true
}

// byteWords says a size the way the 413 page shows it: "64 KiB".
func byteWords(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
