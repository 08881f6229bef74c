package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/forwarded"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/internal/web"
	"github.com/sessionguard/sessionguard/session"
)

// The check endpoints: one for nginx, which turns any answer but 2xx, 401
// and 403 into a 500, and one for Caddy and Traefik, which pass a redirect
// on to the browser.
const (
	AuthRequestPath = "/auth/gate/auth-request"
	ForwardAuthPath = "/auth/gate/forward-auth"
)

// Activity says which checked requests extend a session's idle clock.
type Activity string

const (
	// ActivityNavigation counts what a person did: page navigations and
	// unsafe methods. The default.
	ActivityNavigation Activity = "navigation"
	// ActivityAll counts every checked request that is not marked passive,
	// as most gateways do; background polls then keep sessions alive.
	ActivityAll Activity = "all"
)

// Accounts is what the gateway needs of the user accounts: who a session's
// user is now. *account.Store satisfies it.
type Accounts interface {
	Get(ctx context.Context, name string) (account.User, error)
}

// Config configures a Gate. Sessions, Accounts and Web are required; every
// other field takes its documented default when zero.
type Config struct {
	// Sessions checks the sessions. Required.
	Sessions *session.Manager

	// Accounts tells a session's user's role, and whether the account was
	// disabled meanwhile (its sessions are then ended). Required.
	Accounts Accounts

	// Web is the server whose sign-in page the gateway sends people to and
	// whose error pages it shows. Required.
	Web *web.Server

	// TrustedProxies are the peers whose X-Original-* and X-Forwarded-*
	// headers describe the request being checked. From any other peer
	// those headers are ignored (and this is logged once): the check then
	// answers about the session alone. The default trusts none.
	TrustedProxies []netip.Prefix

	// AllowRoles limits who may pass to users with one of these roles;
	// others get 403. The default (none) lets every signed-in user pass.
	AllowRoles []string

	// PassivePaths are path.Match patterns ("/api/notifications/*") of
	// original paths whose requests never extend a session. The default is
	// none. New refuses a malformed pattern.
	PassivePaths []string

	// Activity says which requests extend a session. The default ("") is
	// ActivityNavigation.
	Activity Activity

	// BaseURL is the public URL of the sign-in page's server
	// ("https://sso.example.com"). The default (empty) sends people to the
	// sign-in page on the host of the request being checked, which is
	// where the proxy serves /auth/, else to DefaultBaseURL.
	BaseURL string

	// DefaultBaseURL is the sign-in page's server when neither BaseURL nor
	// the original request tells one: the server's own address.
	DefaultBaseURL string

	// RedirectHosts are the hosts other than the sign-in page's that the
	// sign-in page may return to with an absolute URL; a request to any
	// other host returns to "/". Give the web server the same value.
	RedirectHosts web.RedirectHosts

	// Upstream is the application to forward signed-in users' requests to
	// (reverse-proxy mode). The default (nil) serves the check endpoints
	// only.
	Upstream *url.URL

	// InjectScript inserts the timeout script into the upstream's HTML
	// pages in reverse-proxy mode.
	InjectScript bool

	// UpstreamTimeout bounds the wait for the upstream's response headers;
	// past it the browser gets 504. The default (0) is
	// DefaultUpstreamTimeout; a negative value is an error.
	UpstreamTimeout time.Duration

	// ClientIP returns a request's client address, for X-Forwarded-For.
	// The default is the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string

	// Metrics counts the checks and proxied requests by route and status.
	// The default (nil) counts nothing.
	Metrics *metrics.Metrics

	// Logger receives configuration warnings and upstream failures. The
	// default is slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with its zero fields set to their defaults and its
// URLs without a trailing slash.
func (c Config) withDefaults() Config {
	if c.Activity == "" {
		c.Activity = ActivityNavigation
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ClientIP == nil {
		c.ClientIP = remoteHost
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	c.DefaultBaseURL = strings.TrimRight(c.DefaultBaseURL, "/")
	return c
}

// Gate answers forward-auth checks and, with an upstream, proxies signed-in
// users' requests. Create it with New; it is safe for concurrent use.
type Gate struct {
	cfg        Config
	allow      map[string]bool // nil: everyone
	proxy      http.Handler    // nil: no upstream
	untrusted  sync.Once       // the warning about an untrusted peer's headers
	cookieName string
}

// New returns a Gate for cfg, or an error naming what is missing or
// malformed.
func New(cfg Config) (*Gate, error) {
	switch {
	case cfg.Sessions == nil:
		return nil, errors.New("gateway: Config.Sessions is required")
	case cfg.Accounts == nil:
		return nil, errors.New("gateway: Config.Accounts is required")
	case cfg.Web == nil:
		return nil, errors.New("gateway: Config.Web is required")
	}
	for _, p := range cfg.PassivePaths {
		if _, err := path.Match(p, "/"); err != nil {
			return nil, fmt.Errorf("gateway: passive path %q is not a valid pattern: %w", p, err)
		}
	}
	switch cfg.Activity {
	case "", ActivityNavigation, ActivityAll:
	default:
		return nil, fmt.Errorf("gateway: Config.Activity %q: want %q or %q", cfg.Activity, ActivityNavigation, ActivityAll)
	}
	if cfg.UpstreamTimeout < 0 {
		return nil, fmt.Errorf("gateway: Config.UpstreamTimeout must be positive or zero (the default), got %v", cfg.UpstreamTimeout)
	}
	cfg = cfg.withDefaults()
	g := &Gate{cfg: cfg, cookieName: cfg.Sessions.CookieName()}
	if len(cfg.AllowRoles) > 0 {
		g.allow = make(map[string]bool, len(cfg.AllowRoles))
		for _, r := range cfg.AllowRoles {
			g.allow[r] = true
		}
	}
	if cfg.Upstream != nil {
		g.proxy = g.newProxy(cfg.Upstream)
	}
	return g, nil
}

// Handler returns the gateway in front of own, the web server's handler:
// the check endpoints, then own for the paths sessionguard serves itself,
// and with an upstream the proxy for every other path. Without an
// upstream every other path goes to own.
func (g *Gate) Handler(own http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == AuthRequestPath:
			g.serveCheck(w, r, nginxStyle)
		case p == ForwardAuthPath:
			g.serveCheck(w, r, forwardAuthStyle)
		case g.proxy == nil || Own(p):
			own.ServeHTTP(w, r)
		default:
			g.proxy.ServeHTTP(w, r)
		}
	})
}

// Own reports whether sessionguard serves path itself in reverse-proxy
// mode: its sign-in pages and scripts under /auth/, the first-run setup
// page, health, readiness and metrics. The application gets every other
// path.
func Own(path string) bool {
	switch path {
	case "/auth", "/setup", "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/auth/")
}

// noStore is the Cache-Control of every answer: a proxy that cached one
// would delay idle timeouts and revocations. Its capacity is its length,
// so a handler that appends gets a copy.
var noStore = []string{"no-store"}[:1:1]

// answerStyle is how a refusal is told: as nginx needs it, or as Caddy and
// Traefik (and a browser talking to the reverse proxy) take it.
type answerStyle int

const (
	nginxStyle       answerStyle = iota // 401 with Location, never a redirect
	forwardAuthStyle                    // 302/303 for navigations, 401 JSON otherwise
)

// original is the request a check is about, as the proxy describes it.
// Its URL is parsed only when a decision needs it (a refusal, a passive
// path), which most allowed checks do not.
type original struct {
	method  string
	referer string

	// Where the URL comes from: raw (X-Original-URL), or proto, host and
	// uri (X-Forwarded-*), or the request itself in reverse-proxy mode.
	raw, proto, host, uri string
	req                   *http.Request
	gate                  *Gate

	parsed bool
	u      *url.URL // absolute when scheme and host are known; nil: unknown
}

// url returns the original URL, or nil when it is unknown.
func (o *original) url() *url.URL {
	if o.parsed {
		return o.u
	}
	o.parsed = true
	switch {
	case o.req != nil:
		o.u = o.gate.requestURL(o.req)
	case o.raw != "":
		o.u = parseOriginalURL(o.raw)
	case o.uri != "" && o.host == "":
		o.u = parseOriginalURL(o.uri)
	case o.uri != "":
		proto := o.proto
		if proto == "" {
			proto = "http"
		}
		o.u = parseOriginalURL(proto + "://" + o.host + o.uri)
	}
	return o.u
}

// verdict is the gateway's decision about one request.
type verdict struct {
	status     int // 200, 401, 403, 429 or 503
	sess       *session.Session
	user       account.User
	reason     string        // why there is no session, when known; for 403, role_not_allowed
	err        error         // the store's failure, for 503
	retryAfter time.Duration // for 429: the client presented too many unknown tokens
}

// serveCheck answers a forward-auth check in style.
func (g *Gate) serveCheck(w http.ResponseWriter, r *http.Request, style answerStyle) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { g.observe(r.URL.Path, rec.status, start) }()
	w = rec

	// The proxy may forward the original request's Content-Length without
	// its body (nginx does unless told not to). Answer without waiting for
	// a body that may never come, and close the connection rather than
	// drain it.
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Connection", "close")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		g.cfg.Web.ServeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed",
			"The gateway check answers GET requests from a proxy.")
		return
	}
	orig := g.originalOf(r)
	r, v := g.decide(r, orig)
	h := w.Header()
	h["Cache-Control"] = noStore
	if v.status == http.StatusOK {
		g.setIdentity(h, v)
		w.WriteHeader(http.StatusOK)
		return
	}
	g.refuse(w, r, orig, v, style)
}

// setIdentity puts who the user is and how long the session has left into
// h, for the proxy to copy onto the upstream request.
func (g *Gate) setIdentity(h http.Header, v verdict) {
	// One backing array and one string for the four values: this runs on
	// every request to the protected application.
	idle, abs := wholeSeconds(v.sess.IdleRemaining()), wholeSeconds(v.sess.AbsoluteRemaining())
	var digits [40]byte
	b := strconv.AppendInt(digits[:0], idle, 10)
	split := len(b)
	nums := string(strconv.AppendInt(b, abs, 10))
	vals := [4]string{v.user.Name, string(v.user.Role), nums[:split], nums[split:]}
	all := vals[:]
	h["Remote-User"] = all[0:1:1]
	h["Remote-Groups"] = all[1:2:2]
	h["Session-Idle-Remaining"] = all[2:3:3]
	h["Session-Absolute-Remaining"] = all[3:4:4]
}

// refuse answers a request that may not pass: 503 when the store failed,
// 403 when the user's role is not allowed, and without a session either
// 401 with the sign-in URL in Location (nginx) or, in forward-auth style,
// a redirect for page navigations and 401 JSON for everything else.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, orig *original, v verdict, style answerStyle) {
	h := w.Header()
	if v.reason != "" {
		h.Set("Session-Reason", v.reason)
	}
	switch v.status {
	case http.StatusServiceUnavailable:
		g.cfg.Logger.Error("gateway: a store did not answer; the request is refused", "path", r.URL.Path, "err", v.err)
		h.Set("Retry-After", "5")
		g.cfg.Web.ServeError(w, r, http.StatusServiceUnavailable, "unavailable",
			"Sign-ins cannot be checked right now. Try again in a moment.")
		return
	case http.StatusForbidden:
		g.cfg.Web.ServeError(w, r, http.StatusForbidden, "forbidden",
			"You are signed in as "+v.user.Name+", but this application is not open to your account. Ask an administrator for access, or sign out and sign in as someone else.")
		return
	case http.StatusTooManyRequests:
		if style != nginxStyle {
			g.cfg.Web.ServeTooManyUnknownTokens(w, r, v.retryAfter)
			return
		}
		// nginx turns a 429 into a 500: it gets the usual 401, and the
		// sign-in page it sends the browser to answers 429 itself.
		h.Set("Retry-After", strconv.Itoa(max(1, int((v.retryAfter+time.Second-1)/time.Second))))
	}
	login := g.loginURL(r, orig, v.reason)
	if style == forwardAuthStyle && isNavigation(r) {
		h.Set("Location", login)
		status := http.StatusFound
		if orig.method != http.MethodGet && orig.method != http.MethodHead {
			status = http.StatusSeeOther // a form post: come back with a GET
		}
		w.WriteHeader(status)
		return
	}
	if style == nginxStyle {
		h.Set("Location", login)
	}
	writeUnauthenticated(w, v.reason)
}

// writeUnauthenticated sends the 401 JSON body.
func writeUnauthenticated(w http.ResponseWriter, reason string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	body := `{"error":"unauthenticated","reason":` + strconv.Quote(reason) + "}\n"
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(body))
}

// decide checks r's session for the request orig and returns r with the
// session in its context and the verdict. Activity is recorded only once
// the request is known to pass.
func (g *Gate) decide(r *http.Request, orig *original) (*http.Request, verdict) {
	r = g.cfg.Sessions.Check(r, false)
	ctx := r.Context()
	sess := session.FromContext(ctx)
	if !sess.SignedIn() { // none, or an anonymous one: never let through
		if err := session.StoreError(ctx); err != nil {
			return r, verdict{status: http.StatusServiceUnavailable, err: err}
		}
		if wait, refused := g.cfg.Web.UnknownTokenRefusal(r); refused {
			return r, verdict{status: http.StatusTooManyRequests, retryAfter: wait}
		}
		return r, verdict{status: http.StatusUnauthorized, reason: string(session.EndedReason(ctx))}
	}
	u, err := g.cfg.Accounts.Get(ctx, sess.UserID())
	if errors.Is(err, account.ErrNotFound) || (err == nil && u.Disabled) {
		// The account was disabled or removed and this session's
		// revocation missed: end it now.
		if err := g.cfg.Sessions.Revoke(ctx, sess.UserID(), sess.ID()); err != nil && !errors.Is(err, session.ErrNotFound) {
			return r, verdict{status: http.StatusServiceUnavailable, err: err}
		}
		g.cfg.Logger.Warn("gateway: ended a session whose account is disabled or gone", "user", sess.UserID(), "session", sess.ID())
		return r, verdict{status: http.StatusUnauthorized, reason: string(session.ReasonRevoked)}
	}
	if err != nil {
		return r, verdict{status: http.StatusServiceUnavailable, err: err}
	}
	v := verdict{status: http.StatusOK, sess: sess, user: u}
	if g.allow != nil && !g.allow[string(u.Role)] {
		v.status, v.reason = http.StatusForbidden, "role_not_allowed"
		return r, v
	}
	if g.isActivity(r, orig) {
		r = g.cfg.Sessions.Check(r, true)
	}
	return r, v
}

// originalOf returns the request a check from r is about, from the proxy's
// headers when r comes from a trusted proxy. Otherwise only the method is
// known (GET: proxies send checks for every method as GET).
func (g *Gate) originalOf(r *http.Request) *original {
	h := r.Header
	o := &original{method: http.MethodGet, referer: h.Get("Referer")}
	if !g.trusted(r) {
		if h.Get("X-Original-Url") != "" || h.Get("X-Forwarded-Uri") != "" || h.Get("X-Forwarded-Host") != "" {
			g.untrusted.Do(func() {
				g.cfg.Logger.Warn("gateway: ignoring X-Original-* and X-Forwarded-* headers from a peer outside -trusted-proxy; "+
					"checks answer about the session alone and sign-in cannot return to the page asked for. "+
					"Set -trusted-proxy to the proxy's address.", "peer", r.RemoteAddr)
			})
		}
		return o
	}
	if m := h.Get("X-Original-Method"); m != "" {
		o.method = strings.ToUpper(m)
	} else if m := h.Get("X-Forwarded-Method"); m != "" {
		o.method = strings.ToUpper(m)
	}
	if o.raw = h.Get("X-Original-Url"); o.raw == "" {
		o.uri = h.Get("X-Forwarded-Uri")
		o.proto = lastValue(h.Get("X-Forwarded-Proto"))
		o.host = lastValue(h.Get("X-Forwarded-Host"))
	}
	return o
}

// parseOriginalURL parses an original URL, absolute or a path; anything
// else (a malformed value, another scheme) is unknown.
func parseOriginalURL(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return nil
	}
	if u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") {
		return u
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u
}

// lastValue returns the last of a comma-separated header's values: the
// one the nearest proxy wrote.
func lastValue(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// trusted reports whether r comes straight from a trusted proxy.
func (g *Gate) trusted(r *http.Request) bool {
	return forwarded.Proxies(g.cfg.TrustedProxies).Trusted(r)
}

// isActivity reports whether the request orig, checked through r, is
// something a person did: a page navigation or an unsafe method, unless it
// is marked passive, is a prefetch or its path is a passive path. With
// ActivityAll every request that is not marked passive counts.
func (g *Gate) isActivity(r *http.Request, orig *original) bool {
	if passiveMarked(r.Header) {
		return false
	}
	if len(g.cfg.PassivePaths) > 0 {
		if u := orig.url(); u != nil {
			for _, p := range g.cfg.PassivePaths {
				if ok, _ := path.Match(p, u.Path); ok {
					return false
				}
			}
		}
	}
	if g.cfg.Activity == ActivityAll {
		return true
	}
	switch orig.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return strings.EqualFold(mode, "navigate")
	}
	return acceptsHTML(r.Header)
}

// passiveMarked reports whether a request says it is no activity: the
// Session-Activity: passive header, or a prefetch.
func passiveMarked(h http.Header) bool {
	if strings.EqualFold(h.Get("Session-Activity"), "passive") {
		return true
	}
	if strings.HasPrefix(strings.TrimSpace(h.Get("Sec-Purpose")), "prefetch") {
		return true
	}
	return strings.EqualFold(h.Get("Purpose"), "prefetch")
}

// isNavigation reports whether r is (or checks) a page navigation, which
// is sent to the sign-in page rather than answered 401: its Accept names
// text/html, and its Sec-Fetch-Mode, if any, is navigate.
func isNavigation(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && !strings.EqualFold(mode, "navigate") {
		return false
	}
	return acceptsHTML(r.Header)
}

func acceptsHTML(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		if containsFold(v, "text/html") {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII substr in
// any case.
func containsFold(s, substr string) bool {
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return true
		}
	}
	return false
}

// loginURL is the absolute address of the sign-in page for a request
// without a session, with where to return and why the session ended.
func (g *Gate) loginURL(r *http.Request, orig *original, reason string) string {
	base := g.cfg.BaseURL
	if u := orig.url(); base == "" && u != nil && u.Host != "" {
		base = u.Scheme + "://" + u.Host
	}
	if base == "" {
		base = g.cfg.DefaultBaseURL
	}
	q := url.Values{}
	if next := g.nextFor(base, orig); next != "" {
		q.Set("next", next)
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	if len(q) == 0 {
		return base + "/auth/login"
	}
	return base + "/auth/login?" + q.Encode()
}

// nextFor returns where signing in should lead back to: the original
// address (for a form post, the page the form was on, when the browser
// said), as a path when it is on the sign-in page's host, as an absolute
// URL for a host of RedirectHosts, and "/" for any other host. Unknown: "".
func (g *Gate) nextFor(base string, orig *original) string {
	u := orig.url()
	if u == nil {
		return ""
	}
	if orig.method != http.MethodGet && orig.method != http.MethodHead {
		if ref := parseOriginalURL(orig.referer); ref != nil && ref.Host == u.Host {
			u = ref
		}
	}
	if u.Host == "" || sameHost(base, u.Host) {
		return u.RequestURI()
	}
	if g.cfg.RedirectHosts.Allows(u.Host) {
		return u.String()
	}
	return "/"
}

// sameHost reports whether the URL base is on host.
func sameHost(base, host string) bool {
	b, err := url.Parse(base)
	return err == nil && strings.EqualFold(b.Host, host)
}

// wholeSeconds is d in whole seconds, never negative.
func wholeSeconds(d time.Duration) int64 {
	return max(int64(d/time.Second), 0)
}

// observe counts one check or proxied request.
func (g *Gate) observe(route string, status int, start time.Time) {
	if g.cfg.Metrics == nil {
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	g.cfg.Metrics.ObserveRequest(route, status, time.Since(start))
}

// statusRecorder remembers the status of a response, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection: full duplex,
// deadlines, flushing and hijacking for WebSockets.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// remoteHost is the host part of r.RemoteAddr.
func remoteHost(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ap.Addr().Unmap().String()
}
