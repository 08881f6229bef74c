package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/forwarded"
)

// timeoutScript is what the upstream's HTML pages get, so that they warn
// before the timeout, keep tabs in step and report activity.
var timeoutScript = []byte(`<script src="/auth/timeout.js" defer></script>`)

// upstreamDialTimeout bounds connecting to the upstream: an application
// that is down answers 502 at once (connection refused) or after this
// (a host that drops packets), never never.
const upstreamDialTimeout = 10 * time.Second

// DefaultUpstreamTimeout is how long the gateway waits for the upstream's
// response headers when Config.UpstreamTimeout is zero: nginx's default
// proxy_read_timeout. A stream that has started is not bounded.
const DefaultUpstreamTimeout = 60 * time.Second

// proxied is what the gateway's decision hands to the proxy's hooks.
type proxied struct {
	user, role string
	document   bool // a page the browser navigated to: the script goes in
}

type proxiedKey struct{}

// newProxy returns the reverse proxy to upstream, in front of which serve
// decides.
func (g *Gate) newProxy(upstream *url.URL) http.Handler {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: upstreamDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	// One application behind one gateway: keep enough idle connections
	// for a busy one, instead of the default two per host.
	transport.MaxIdleConns = 512
	transport.MaxIdleConnsPerHost = 512
	transport.ResponseHeaderTimeout = g.cfg.UpstreamTimeout
	rp := &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { g.rewrite(pr, upstream) },
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamFailed,
		Transport:      transport,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() { g.observe("proxy", rec.status, start) }()
		g.serveProxied(rec, r, rp)
	})
}

// serveProxied decides about r as a forward-auth check would about the
// same request, and forwards it to the upstream if it may pass.
func (g *Gate) serveProxied(w http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	orig := &original{method: r.Method, referer: r.Header.Get("Referer"), req: r, gate: g}
	checked, v := g.decide(r, orig)
	if v.status != http.StatusOK {
		g.refuse(w, checked, orig, v, forwardAuthStyle)
		return
	}
	if invalidUpgrade(r.Header) {
		// httputil.ReverseProxy refuses it too, through the error
		// handler: the client's mistake would read as the upstream's.
		g.cfg.Web.ServeError(w, r, http.StatusBadRequest, "bad_request",
			"The request asks to switch to a protocol whose name is not valid (its Upgrade header).")
		return
	}
	// The server's read and write deadlines are for sessionguard's own
	// short requests; a proxied one may be an upload, a server-sent event
	// stream or a WebSocket that lasts as long as the application says.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	p := &proxied{user: v.user.Name, role: string(v.user.Role), document: g.cfg.InjectScript && isDocument(r)}
	rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxiedKey{}, p)))
}

// invalidUpgrade reports whether h asks to switch protocols (Connection:
// upgrade) to one whose name is not printable ASCII, which
// httputil.ReverseProxy will not forward.
func invalidUpgrade(h http.Header) bool {
	upgrade := false
	for _, v := range h["Connection"] {
		for token := range strings.SplitSeq(v, ",") {
			upgrade = upgrade || strings.EqualFold(strings.TrimSpace(token), "upgrade")
		}
	}
	if !upgrade {
		return false
	}
	for _, c := range []byte(h.Get("Upgrade")) {
		if c < ' ' || c > '~' {
			return true
		}
	}
	return false
}

// requestURL is the absolute URL a browser asked the gateway for, with the
// scheme and host a trusted proxy in front says it was asked for.
func (g *Gate) requestURL(r *http.Request) *url.URL {
	scheme, host := forwarded.Proxies(g.cfg.TrustedProxies).PublicOrigin(r)
	u := parseOriginalURL(scheme + "://" + host + r.URL.RequestURI())
	if u == nil {
		// A Host header url.Parse refuses: the path alone is known.
		return &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	}
	return u
}

// isDocument reports whether r asks for a page the browser will show as a
// document, into which the timeout script goes: Sec-Fetch-Dest: document
// (a link followed or a form posted), or from a browser without fetch
// metadata a navigation. Fragments and templates fetched by a script get
// nothing: a second copy of the script would run in the page.
func isDocument(r *http.Request) bool {
	if dest := r.Header.Get("Sec-Fetch-Dest"); dest != "" {
		return strings.EqualFold(dest, "document")
	}
	return isNavigation(r)
}

// identityHeaders are the request headers only the gateway may set; any
// copy a client sent is deleted. Session-* (Session-Activity and any
// other) goes too: it is addressed to sessionguard.
var identityHeaders = []string{"Remote-User", "Remote-Groups", "Remote-Name", "Remote-Email"}

// rewrite turns the incoming request into the upstream's: its address, the
// identity the gateway vouches for, the X-Forwarded-* headers, and no
// session cookie.
func (g *Gate) rewrite(pr *httputil.ProxyRequest, upstream *url.URL) {
	pr.SetURL(upstream)
	out := pr.Out
	if g.trusted(pr.In) {
		// Keep the trusted proxy's record of the hops before it.
		if xff := pr.In.Header["X-Forwarded-For"]; len(xff) > 0 {
			out.Header["X-Forwarded-For"] = xff
		}
	}
	pr.SetXForwarded()
	if g.trusted(pr.In) {
		// The scheme and host the browser used, as the proxy in front saw
		// them, rather than the proxy's own request to sessionguard.
		if p := lastValue(pr.In.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			out.Header["X-Forwarded-Proto"] = []string{p}
		}
		if h := lastValue(pr.In.Header.Get("X-Forwarded-Host")); h != "" {
			out.Header["X-Forwarded-Host"] = []string{h}
		}
	}
	for _, name := range identityHeaders {
		out.Header.Del(name)
	}
	for name := range out.Header {
		if strings.HasPrefix(name, "Session-") {
			delete(out.Header, name)
		}
	}
	if p, ok := pr.In.Context().Value(proxiedKey{}).(*proxied); ok {
		identity := []string{p.user, p.role}
		out.Header["Remote-User"] = identity[0:1:1]
		out.Header["Remote-Groups"] = identity[1:2:2]
		if p.document {
			// The page must come back in an encoding the script can be
			// inserted into: gzip if the browser takes it, else none.
			if acceptsGzip(pr.In.Header) {
				out.Header.Set("Accept-Encoding", "gzip")
			} else {
				out.Header.Del("Accept-Encoding")
			}
		}
	}
	removeCookie(out.Header, g.cookieName)
}

// acceptsGzip reports whether a client's Accept-Encoding allows gzip.
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
				return true
			}
		}
	}
	return false
}

// removeCookie deletes the cookie called name from h's Cookie headers, and
// the headers left empty: the session token never reaches the upstream.
// The other cookies are kept as the browser wrote them.
func removeCookie(h http.Header, name string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := lines[:0:0]
	for _, line := range lines {
		if !strings.Contains(line, name) {
			kept = append(kept, line)
			continue
		}
		var b strings.Builder
		b.Grow(len(line))
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			if n, _, _ := strings.Cut(p, "="); strings.TrimSpace(n) == name {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// modifyResponse inserts the timeout script into HTML documents.
func (g *Gate) modifyResponse(res *http.Response) error {
	if p, ok := res.Request.Context().Value(proxiedKey{}).(*proxied); ok && p.document {
		injectScript(res, timeoutScript)
	}
	return nil
}

// upstreamFailed answers a request the upstream did not answer: 502 with
// sessionguard's own page, logged. A client that went away is no failure.
func (g *Gate) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(499) // never seen by the client: it is gone
		return
	}
	g.cfg.Logger.Error("gateway: the upstream did not answer", "upstream", g.cfg.Upstream.Redacted(),
		"method", r.Method, "path", r.URL.Path, "err", err)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		g.cfg.Web.ServeError(w, r, http.StatusGatewayTimeout, "gateway_timeout",
			"The application behind this sign-in took too long to answer. Try again in a moment; if it goes on, tell the people who run it.")
		return
	}
	g.cfg.Web.ServeError(w, r, http.StatusBadGateway, "bad_gateway",
		"The application behind this sign-in is not answering. Try again in a moment; if it goes on, tell the people who run it.")
}
