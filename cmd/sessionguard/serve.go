package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/drafts"
	"github.com/sessionguard/sessionguard/internal/forwarded"
	"github.com/sessionguard/sessionguard/internal/gateway"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/internal/passkey"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/web"
	"github.com/sessionguard/sessionguard/session"
)

// The http.Server's limits. Sign-in forms and JSON calls are small and
// quick, so these only bound misbehaving clients: a slow-loris header
// (ReadHeaderTimeout), a trickled body (ReadTimeout), a client that stops
// reading (WriteTimeout), and idle keep-alive connections (IdleTimeout).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10 // a few cookies and a long user agent fit well
)

// handlerTimeout is the deadline of each request's context. Session store
// calls have their own, shorter bound (-store-timeout); this one bounds the
// calls to the -db database (accounts, drafts), so that a database that
// stops answering without closing its connections (a hung server, a network
// that drops packets) fails requests with 503 instead of holding their
// goroutines and connections until the clients give up.
const handlerTimeout = 10 * time.Second

// wcagWarnBefore is the least warning WCAG 2.2.1 (Timing Adjustable) asks
// for before a time limit: 20 seconds to react.
const wcagWarnBefore = 20 * time.Second

// serve runs the server until ctx is done or SIGTERM/SIGINT arrives, then
// shuts down gracefully. SIGHUP reloads the TLS certificate, or is ignored
// without TLS. Logs go to logOut, and so does the setup link, plainly.
func serve(ctx context.Context, cfg *serveConfig, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	slog.SetDefault(log)

	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	// SIGHUP's default action ends the process; it is caught from the
	// start so that it never does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	for _, w := range cfg.UnknownVariables {
		log.Warn(w)
	}
	for _, l := range cfg.Lowered {
		log.Info(l)
	}

	var cert *serverCertificate
	if cfg.TLS() {
		var err error
		if cert, err = loadCertificate(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
	}

	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close(log)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	baseURL := cfg.BaseURL
	if baseURL == "" {
		baseURL = deriveBaseURL(ln.Addr(), cfg.Addr, cfg.TLS())
	}

	if a.passkeys, err = openPasskeys(ctx, cfg, a.db, baseURL, log); err != nil {
		return err
	}
	handler, err := a.handler(cfg, baseURL, log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// net/http complains here about clients (failed TLS handshakes,
		// malformed requests): worth knowing, not a fault of the server.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelInfo),
	}
	served := ln
	if cfg.TLS() {
		// The server's own TLS listener rather than ServeTLS, which would
		// serve a copy of the configuration that the ticket key rotation
		// could not reach.
		var keys *ticketKeys
		srv.TLSConfig, keys = newTLSConfig(cert, cfg.TLSLegacyCiphers)
		go keys.rotateEvery(ctx, ticketKeyRotation)
		served = tls.NewListener(ln, srv.TLSConfig)
	}

	attrs := []any{
		"addr", ln.Addr().String(),
		"url", baseURL,
		"version", versionString(),
		"db", a.db.String(),
		"sessions", a.sessionsDesc,
		"idle_timeout", formatDuration(cfg.Policy.IdleTimeout),
		"absolute_timeout", formatDuration(cfg.Policy.AbsoluteTimeout),
		"admin_idle_timeout", formatDuration(cfg.AdminPolicy.IdleTimeout),
		"admin_absolute_timeout", formatDuration(cfg.AdminPolicy.AbsoluteTimeout),
		"mfa", cfg.MFA,
		"admin_mfa", cfg.AdminMFA,
		"tls", cfg.TLS(),
	}
	if a.passkeys != nil {
		attrs = append(attrs, "passkeys_rp_id", a.passkeys.Config().RPID)
	}
	if cfg.Preset != "" {
		attrs = append(attrs, "preset", cfg.Preset)
	}
	if cfg.Upstream != nil {
		attrs = append(attrs, "upstream", cfg.Upstream.Redacted())
	}
	// Tests and scripts read the address from this line when -addr asks
	// for a free port (":0").
	log.Info("sessionguard listening", attrs...)
	if cert != nil {
		logTLS(cfg, cert, log)
	}
	warnings(cfg, baseURL, ln.Addr(), log)
	if a.setupSecret != "" {
		announceSetup(logOut, log, baseURL+"/setup?token="+a.setupSecret, a.setup.ExpiresAt())
	}

	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, a.registry, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	done := make(chan error, 1)
	go func() { done <- srv.Serve(served) }()
serving:
	for {
		select {
		case err := <-done:
			return fmt.Errorf("serving: %w", err)
		case <-hup:
			reloadCertificate(cert, log)
		case <-ctx.Done():
			break serving
		}
	}
	stopSignals() // a second signal ends the process at once
	log.Info("shutting down: refusing new connections, finishing requests in flight",
		"timeout", formatDuration(cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still running after -shutdown-timeout %s were cut off", formatDuration(cfg.ShutdownTimeout))
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	log.Info("requests finished; closing the stores")
	return nil
}

// reloadCertificate answers SIGHUP: it loads -tls-cert and -tls-key again,
// so that a renewed certificate is served without a restart, or keeps the
// one in use if the files are unreadable or do not match. Without TLS
// there is nothing to reload, and the signal is ignored.
func reloadCertificate(cert *serverCertificate, log *slog.Logger) {
	if cert == nil {
		log.Info("SIGHUP ignored: it reloads -tls-cert and -tls-key, and the server serves plain HTTP")
		return
	}
	if err := cert.reload(); err != nil {
		log.Error("SIGHUP: the TLS certificate was not reloaded; the one in use stays", "err", err)
		return
	}
	log.Info("SIGHUP: reloaded the TLS certificate; new connections get it", cert.describe()...)
}

// announceSetup tells the person starting a server without accounts where
// to create the first administrator. The link goes to the terminal only,
// plainly: it holds the one-time token that makes its bearer an
// administrator, and logs travel to collectors that many people read. The
// log says only that a link was issued, and until when it works.
func announceSetup(terminal io.Writer, log *slog.Logger, link string, expires time.Time) {
	fmt.Fprintf(terminal, "\nNo account exists yet. Create the first administrator within %s at:\n\n    %s\n\n",
		formatDuration(time.Until(expires).Round(time.Minute)), link)
	log.Info("no account yet: printed a one-time setup link on standard error (not in the log); open it to create the first administrator, or use 'sessionguard user add -role admin'",
		"expires", expires.UTC().Format(time.RFC3339))
}

// handler builds the web application and the gateway in front of it on
// a's stores, and returns the server's handler. sessionguard's own routes
// get a deadline (handlerTimeout); requests proxied to -upstream do not,
// since a stream or a WebSocket lasts as long as the application says.
func (a *app) handler(cfg *serveConfig, baseURL string, log *slog.Logger) (http.Handler, error) {
	redirectHosts, err := web.NewRedirectHosts(cfg.GateRedirectHosts, cfg.CookieDomain)
	if err != nil {
		return nil, err // checked with the flags
	}
	ws, err := a.webServer(cfg, redirectHosts, log)
	if err != nil {
		return nil, err
	}
	gate, err := gateway.New(gateway.Config{
		Sessions:        a.sessions,
		Accounts:        a.accounts,
		Web:             ws,
		TrustedProxies:  cfg.TrustedProxies,
		AllowRoles:      cfg.GateAllowRoles,
		PassivePaths:    cfg.GatePassivePaths,
		Activity:        gateway.Activity(cfg.GateActivity),
		BaseURL:         cfg.BaseURL,
		DefaultBaseURL:  baseURL,
		RedirectHosts:   redirectHosts,
		Upstream:        cfg.Upstream,
		UpstreamTimeout: cfg.UpstreamTimeout,
		InjectScript:    cfg.InjectScript,
		ClientIP:        a.clientIP,
		Metrics:         a.metrics,
		Logger:          log,
	})
	if err != nil {
		return nil, err
	}
	own := withDeadline(ws.Handler(), handlerTimeout)
	if cfg.MetricsAddr != "" {
		own = withoutMetrics(own, ws)
	}
	return forwarded.Proxies(cfg.TrustedProxies).WarnUntrusted(gate.Handler(own), log), nil
}

// withoutMetrics answers GET /metrics with 404 and passes every other
// request to h: with -metrics-addr the metrics are served on a listener of
// their own, which the network in front of the application need not reach.
func withoutMetrics(h http.Handler, ws *web.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			ws.ServeError(w, r, http.StatusNotFound, "not_found", "There is no page at this address.")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// webServer builds the web application on a's stores.
func (a *app) webServer(cfg *serveConfig, redirectHosts web.RedirectHosts, log *slog.Logger) (*web.Server, error) {
	wcfg := web.Config{
		Sessions:      a.sessions,
		Accounts:      a.accounts,
		Authenticator: a.authn,
		Audit:         a.audit,
		Drafts:        a.drafts,
		SecondFactors: a.accounts,
		Passkeys:      a.passkeys,
		MFA:           cfg.MFA,
		AdminMFA:      cfg.AdminMFA,
		Logger:        log,
		Policies: map[string]session.Policy{
			string(account.RoleUser):  cfg.Policy,
			string(account.RoleAdmin): cfg.AdminPolicy,
		},
		ReauthAfter:        cfg.ReauthAfter,
		WarnBefore:         cfg.WarnBefore,
		AbsoluteWarnBefore: cfg.AbsWarnBefore,
		Metrics:            a.metrics,
		Registerer:         a.registry,
		Gatherer:           a.registry,
		Ready:              a.ready,
		ClientIP:           a.clientIP,
		TrustedProxies:     cfg.TrustedProxies,
		TLS:                cfg.TLS() || strings.HasPrefix(cfg.BaseURL, "https://"),
		RedirectHosts:      redirectHosts,
		Embedded:           cfg.Upstream != nil,
	}
	if a.setup != nil {
		wcfg.Setup = a.setup
	}
	if cfg.WarnBefore == 0 {
		// -warn-before 0 asks for no warning; web reads zero as its
		// default.
		wcfg.WarnBefore = web.WarningOff
	}
	return web.New(wcfg)
}

// openPasskeys opens the passkeys on db for the relying party at baseURL
// (its host, or -cookie-domain when set). Where browsers would offer no
// passkey (plain http beyond localhost, an IP address for host), passkeys
// are off, with a warning naming the fix: parseServe has refused the
// passkey policy there, so the other policies work with authenticator apps,
// and the store, made without a relying party, still counts the passkeys
// users registered elsewhere.
func openPasskeys(ctx context.Context, cfg *serveConfig, db *sqldb.DB, baseURL string, log *slog.Logger) (*passkey.Store, error) {
	rp, err := passkey.ConfigFromURL(baseURL, cfg.CookieDomain)
	if err != nil {
		level := slog.LevelWarn
		if cfg.MFA == account.MFAOff && cfg.AdminMFA == account.MFAOff {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "passkeys are off: browsers offer them to https sites and localhost only; set -base-url to the https:// URL people use; users who have a passkey are asked for another second factor",
			"url", baseURL, "reason", strings.TrimPrefix(err.Error(), "passkey: "))
		// Without a relying party the store still counts passkeys, so
		// that a user whose only factor is one is not let in with the
		// password alone.
		rp = passkey.Config{}
	}
	s, err := passkey.NewStore(ctx, db, rp, passkey.Options{})
	if err != nil {
		return nil, fmt.Errorf("opening the passkeys: %w", err)
	}
	return s, nil
}

// withDeadline gives the context of every request to h a deadline d from
// its start.
func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// newLogger returns the process's logger, as -log-format and -log-level say.
func newLogger(cfg *serveConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// deriveBaseURL returns the URL a person on this machine would open: the
// listening address, with "localhost" for a wildcard or loopback host, since
// browsers accept the Secure session cookie from http://localhost only.
func deriveBaseURL(listening net.Addr, configured string, useTLS bool) string {
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	host, _, _ := net.SplitHostPort(configured)
	_, port, err := net.SplitHostPort(listening.String())
	if err != nil {
		return scheme + "://" + listening.String()
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && (a.IsUnspecified() || a.IsLoopback())) {
		host = "localhost"
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// warnings logs the settings that work but that a person should know about.
func warnings(cfg *serveConfig, baseURL string, listening net.Addr, log *slog.Logger) {
	if cfg.WarnBefore < wcagWarnBefore {
		log.Warn("-warn-before is below the 20 seconds WCAG 2.2.1 asks for to react to a timeout warning",
			"warn_before", formatDuration(cfg.WarnBefore))
	}
	if cfg.ReauthAfter >= cfg.AdminPolicy.AbsoluteTimeout {
		// Not a contradiction: a session shorter than -reauth-after always
		// has a sign-in recent enough, which is what the flag asks for.
		log.Info("-reauth-after is not shorter than the absolute timeout: no session lives long enough to be asked for its password again",
			"reauth_after", formatDuration(cfg.ReauthAfter), "admin_absolute_timeout", formatDuration(cfg.AdminPolicy.AbsoluteTimeout))
	}
	if cfg.CookieDomain != "" {
		log.Warn("-cookie-domain: the session cookie goes to every host under this domain, and any of them can read or overwrite it; trust them all, or keep one origin per application (docs/gateway.md)",
			"cookie_domain", cfg.CookieDomain)
	}
	if cfg.GateActivity == "all" {
		log.Warn("-gate-activity all: every checked request that is not marked passive extends its session, so a page that polls keeps an unattended session alive")
	}
	if cfg.Upstream != nil && !cfg.InjectScript {
		log.Info("-inject-script=false: the application's pages get no timeout warning unless they include /auth/timeout.js themselves")
	}
	// Secure by default, weaker by choice: a sign-in that a password alone
	// can pass is said at every start.
	for _, m := range []struct {
		flag, key, whom string
		policy          account.MFAPolicy
		warnUpTo        account.MFAPolicy // this policy and weaker ones are warned of
	}{
		{"-mfa", "mfa", "users", cfg.MFA, account.MFAOff},
		{"-admin-mfa", "admin_mfa", "administrators", cfg.AdminMFA, account.MFAOptional},
	} {
		switch {
		case m.policy == account.MFAOff:
			log.Warn(m.flag+" off: "+m.whom+" sign in with a password alone, even those who set up a second factor", m.key, m.policy)
		case mfaStrength(m.policy) <= mfaStrength(m.warnUpTo):
			log.Warn(m.flag+" "+string(m.policy)+": "+m.whom+" who set up no second factor sign in with a password alone", m.key, m.policy)
		}
		if want, ok := presetMFA[cfg.Preset]; ok && mfaStrength(m.policy) < mfaStrength(want) {
			log.Warn(m.flag+" is weaker than -preset "+cfg.Preset+" asks: the preset's standard is not met",
				m.key, m.policy, "preset", cfg.Preset, "preset_"+m.key, want)
		}
	}
	if cfg.InsecureCookie && (cfg.TLS() || strings.HasPrefix(baseURL, "https://")) {
		log.Warn("-insecure-cookie is set although the server is reached over HTTPS: it only weakens the cookie")
	}
	if !cfg.InsecureCookie && !cfg.TLS() && !strings.HasPrefix(baseURL, "https://") && !loopbackOnly(listening, baseURL) {
		log.Warn("plain HTTP beyond localhost: browsers send the Secure session cookie over HTTPS and to localhost only, so sign-in will not stick; serve HTTPS (-tls-cert, -tls-key), put a TLS proxy in front and set -base-url https://..., or for development only use -insecure-cookie",
			"url", baseURL)
	}
}

// serveDebug serves Go's runtime profiles on addr, a loopback address, on a
// listener of their own so that the application's routes, middleware and
// metrics never see them. It returns a function that stops it.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on -debug-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	go srv.Serve(ln)
	log.Warn("serving runtime profiles: anyone on this machine can read what the server is doing",
		"debug_addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { srv.Close() }, nil
}

// serveMetrics serves GET /metrics from g on addr, on a listener of its
// own: plain HTTP, no other route, so that Prometheus can scrape an
// internal address while the application's address shows no metrics. It
// returns a function that stops it.
func serveMetrics(addr string, g prometheus.Gatherer, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on -metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout}
	go srv.Serve(ln)
	log.Info("serving /metrics on its own listener, not on -addr",
		"metrics_addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { srv.Close() }, nil
}

// loopbackOnly reports whether the server is reached through localhost only.
func loopbackOnly(listening net.Addr, baseURL string) bool {
	if !strings.HasPrefix(baseURL, "http://localhost") && !strings.HasPrefix(baseURL, "http://127.") && !strings.HasPrefix(baseURL, "http://[::1]") {
		return false
	}
	ap, err := netip.ParseAddrPort(listening.String())
	return err == nil && ap.Addr().IsLoopback()
}

// app is the server's open stores and the objects built on them: everything
// that needs closing, in the order it was opened.
type app struct {
	db           *sqldb.DB
	store        session.Store
	sessionsDesc string
	sessions     *session.Manager
	accounts     *account.Store
	authn        *account.Authenticator
	audit        *auditLog
	drafts       *drafts.Store
	passkeys     *passkey.Store // nil: passkeys are off (see openPasskeys)
	registry     *prometheus.Registry
	metrics      *metrics.Metrics
	clientIP     func(*http.Request) string

	setup       *account.SetupToken // nil when accounts exist
	setupSecret string
}

// openApp opens the database and the session store and builds the session
// Manager, the accounts and the audit log on them. On error, whatever was
// opened is closed.
func openApp(ctx context.Context, cfg *serveConfig, log *slog.Logger) (_ *app, err error) {
	a := &app{clientIP: clientIPFunc(cfg.TrustedProxies)}
	defer func() {
		if err != nil {
			a.close(log)
		}
	}()
	if a.db, err = openDB(ctx, cfg.DB, false); err != nil {
		return nil, err
	}
	if a.audit, err = openAudit(ctx, a.db, log); err != nil {
		return nil, err
	}
	if a.accounts, err = account.NewStore(ctx, a.db, account.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("opening the accounts: %w", err)
	}
	// Sign-in locks and unlocks go to the audit log as well as the log.
	if a.authn, err = account.NewAuthenticator(a.accounts, account.AuthOptions{Observer: a.audit}); err != nil {
		return nil, fmt.Errorf("opening the accounts: %w", err)
	}
	if a.drafts, err = drafts.NewStore(ctx, a.db, drafts.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("opening the drafts: %w", err)
	}

	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.metrics, err = metrics.New(a.registry); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	if err := metrics.RegisterBuildInfo(a.registry, releaseVersion()); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}

	var open openStore
	if a.sessionsDesc, open, err = sessionBackend(cfg.Sessions, cfg.DB); err != nil {
		return nil, err // checked with the flags; kept for safety
	}
	if a.store, err = open(ctx, cfg.StoreTimeout); err != nil {
		return nil, fmt.Errorf("opening the session store %s: %w", a.sessionsDesc, err)
	}
	cookie := session.CookieConfig{Domain: cfg.CookieDomain}
	if cfg.InsecureCookie {
		// A prefixed name promises Secure, which -insecure-cookie drops;
		// the server's plain-HTTP cookie has always been "session".
		cookie.Name, cookie.InsecureAllowHTTP = "session", true
	}
	a.sessions, err = session.New(session.Config{
		Store:         a.store,
		Policy:        cfg.Policy,
		TouchInterval: cfg.TouchInterval,
		StoreTimeout:  cfg.StoreTimeout,
		Cookie:        cookie,
		Observers:     []session.Observer{a.audit, a.metrics},
		Logger:        log,
		ClientIP:      a.clientIP,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the session manager: %w", err)
	}

	n, err := a.accounts.Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("counting accounts: %w", err)
	}
	if n == 0 {
		// Kept in the database: the link works on every instance on it.
		if a.setup, a.setupSecret, err = a.accounts.NewSetupToken(ctx, account.DefaultSetupTTL); err != nil {
			return nil, fmt.Errorf("issuing the setup link: %w", err)
		}
	}
	return a, nil
}

// ready reports whether both stores answer, for /readyz.
func (a *app) ready(ctx context.Context) error {
	return errors.Join(a.sessions.Ping(ctx), a.db.PingContext(ctx))
}

// close stops the Manager's sweeper, then closes the session store and the
// database, which the accounts and the audit log write to. Failures are
// logged: there is nothing else to do with them on the way out.
func (a *app) close(log *slog.Logger) {
	if a.sessions != nil {
		a.sessions.Close()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			log.Error("closing the session store", "err", err)
		}
	}
	if a.db != nil {
		if err := a.db.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}
}
