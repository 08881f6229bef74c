package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/internal/forwarded"
)

// Config configures a Manager. Only Store is required; every other zero
// value means the default written on its field.
type Config struct {
	// Store keeps the sessions. Required. The caller opens it and closes it
	// after closing the Manager.
	Store Store

	// Policy is the timeouts of a session whose Login sets none; a field
	// left zero takes DefaultPolicy's. The default is DefaultPolicy: 30
	// minutes idle, 12 hours absolute.
	Policy Policy

	// TouchInterval is the least time between two writes of a session's last
	// activity. Between them activity is not written, so a busy session costs
	// a few writes per idle period instead of one per request. The price: a
	// session can end up to one TouchInterval early (never late), because the
	// store's last activity may lag by that much. The default, per session, is
	// a twentieth of its idle timeout, at most one minute. A value larger than
	// the idle timeout's twentieth is allowed but makes sessions end earlier.
	TouchInterval time.Duration

	// MaxDataBytes bounds a session's data: the bytes of all its keys and
	// values. A write that would exceed it fails with ErrTooLarge. The data
	// is read on every request of the session, so the default is 16 KiB.
	MaxDataBytes int

	// Cookie says how the token travels; the zero value is the secure default.
	Cookie CookieConfig

	// Clock tells the time. The default is SystemClock.
	Clock Clock

	// Observers receive the started, renewed and ended events; those that
	// are StoreWriteObservers also hear how each store write fared.
	Observers []Observer

	// Logger receives warnings (an insecure cookie setting, store failures).
	// The default is slog.Default().
	Logger *slog.Logger

	// SweepInterval is how often the Manager ends sessions that timed out
	// while nobody used them, so that their end events come within about
	// this interval plus the sweep's run time. The default is one second;
	// SweepOff turns the background sweeper off (then call SweepExpired).
	SweepInterval time.Duration

	// SweepBatch is how many sessions one store call of a sweep ends. The
	// default is the store's own (SweepBatcher): 64 for the memory store and
	// 128 for SQLite, whose calls hold a core of this process for their
	// whole length; 500 for any other store.
	SweepBatch int

	// EndedRetention is how long a store remembers why a token stopped
	// working, so a browser coming back is told "signed out after 30 minutes
	// of inactivity" instead of being sent to a bare login page. The default
	// is 24 hours.
	EndedRetention time.Duration

	// StoreTimeout bounds every store call, so a slow store fails requests
	// (closed: nobody is signed in) instead of piling them up. The default is
	// 3 seconds.
	StoreTimeout time.Duration

	// ClientIP returns the client address recorded with a session. The
	// default, RemoteIP, is the host part of r.RemoteAddr; behind a proxy,
	// use ClientIPBehind, which believes only that proxy's header.
	ClientIP func(r *http.Request) string

	// Unauthenticated answers requests that Require refuses for want of a
	// signed-in session. EndedReason(r.Context()) tells why, when known. The
	// default answers 401, in JSON when the request accepts JSON.
	Unauthenticated http.Handler

	// StoreFailure answers requests that Require cannot decide because the
	// store failed; nobody is treated as signed in. The default answers 503,
	// in JSON when the request accepts JSON.
	StoreFailure http.Handler

	// ClearSiteData is the Clear-Site-Data header sent on Logout, so the
	// browser drops what it kept of the signed-in user. The default is
	// `"cache", "cookies", "storage"`; ClearSiteDataOff sends none. Note that
	// "cookies" clears the cookies of the whole registrable domain.
	ClearSiteData string
}

// SweepOff, as Config.SweepInterval, turns the background sweeper off.
const SweepOff time.Duration = -1

// ClearSiteDataOff, as Config.ClearSiteData, sends no Clear-Site-Data header.
const ClearSiteDataOff = "off"

// defaultSweepBatch is Config.SweepBatch for a store that suggests none: a
// networked store's call mostly waits for its server, and larger batches
// cost fewer round trips per session.
const defaultSweepBatch = 500

// DefaultMaxDataBytes is the default of Config.MaxDataBytes.
const DefaultMaxDataBytes = 16 << 10

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Policy = c.Policy.orDefaults(DefaultPolicy)
	if c.MaxDataBytes == 0 {
		c.MaxDataBytes = DefaultMaxDataBytes
	}
	if c.Clock == nil {
		c.Clock = SystemClock
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.SweepBatch == 0 {
		c.SweepBatch = defaultSweepBatch
		if b, ok := c.Store.(SweepBatcher); ok && b.SweepBatch() > 0 {
			c.SweepBatch = b.SweepBatch()
		}
	}
	if c.EndedRetention == 0 {
		c.EndedRetention = 24 * time.Hour
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = 3 * time.Second
	}
	if c.ClientIP == nil {
		c.ClientIP = RemoteIP
	}
	if c.Unauthenticated == nil {
		c.Unauthenticated = http.HandlerFunc(notSignedIn)
	}
	if c.StoreFailure == nil {
		c.StoreFailure = http.HandlerFunc(storeUnavailable)
	}
	if c.ClearSiteData == "" {
		c.ClearSiteData = `"cache", "cookies", "storage"`
	}
	c.Cookie = c.Cookie.withDefaults()
	return c
}

// Manager creates, checks and ends sessions. It is safe for concurrent use.
type Manager struct {
	store      Store
	policy     Policy
	touchEvery time.Duration
	maxData    int
	cookie     CookieConfig
	clock      Clock
	observers  []Observer
	writeObs   []StoreWriteObserver // the observers that are, once each
	log        *slog.Logger
	sweepBatch int
	retention  time.Duration
	timeout    time.Duration
	inMemory   bool // the store never waits on I/O: no timer per call
	claims     touchClaims
	clientIP   func(*http.Request) string
	unauth     http.Handler
	failure    http.Handler
	clearSite  string

	stopSweep chan struct{}
	sweepDone chan struct{}
	closeOnce sync.Once
}

// New returns a Manager for cfg, and starts its sweeper unless
// cfg.SweepInterval is SweepOff. Close stops it.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("session: Config.Store is required")
	}
	if cfg.TouchInterval < 0 || cfg.MaxDataBytes < 0 || cfg.SweepBatch < 0 || cfg.EndedRetention < 0 || cfg.StoreTimeout < 0 {
		return nil, errors.New("session: Config.TouchInterval, MaxDataBytes, SweepBatch, EndedRetention and StoreTimeout must not be negative")
	}
	if cfg.SweepInterval < 0 && cfg.SweepInterval != SweepOff {
		return nil, fmt.Errorf("session: Config.SweepInterval must be positive, zero (the default) or SweepOff, got %v", cfg.SweepInterval)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Cookie.validate(); err != nil {
		return nil, err
	}
	m := &Manager{
		store:      cfg.Store,
		policy:     cfg.Policy,
		touchEvery: cfg.TouchInterval,
		maxData:    cfg.MaxDataBytes,
		cookie:     cfg.Cookie,
		clock:      cfg.Clock,
		observers:  cfg.Observers,
		log:        cfg.Logger,
		sweepBatch: cfg.SweepBatch,
		retention:  cfg.EndedRetention,
		timeout:    cfg.StoreTimeout,
		clientIP:   cfg.ClientIP,
		unauth:     cfg.Unauthenticated,
		failure:    cfg.StoreFailure,
		clearSite:  cfg.ClearSiteData,
	}
	for _, o := range m.observers {
		if wo, ok := o.(StoreWriteObserver); ok {
			m.writeObs = append(m.writeObs, wo)
		}
	}
	_, m.inMemory = cfg.Store.(InMemoryStore)
	if m.cookie.InsecureAllowHTTP {
		m.log.Warn("INSECURE: session cookie sent without the Secure attribute; anyone on the network path can steal sessions. Use only for development over plain HTTP.",
			"cookie", m.cookie.Name)
	}
	if cfg.SweepInterval > 0 {
		m.stopSweep = make(chan struct{})
		m.sweepDone = make(chan struct{})
		go m.sweepLoop(cfg.SweepInterval)
	}
	return m, nil
}

// notSignedIn is the default Config.Unauthenticated.
func notSignedIn(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, http.StatusUnauthorized, "unauthenticated", "Not signed in: sign in and try again.")
}

// storeUnavailable is the default Config.StoreFailure.
func storeUnavailable(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, http.StatusServiceUnavailable, "unavailable", "The session service is unavailable; try again in a moment.")
}

// writeError answers with status, as JSON {"error": code, "message": msg}
// when the client accepts JSON (a script's fetch) and as text otherwise.
// A request whose session ended says why, so that a script can tell the
// user "signed out after 30 minutes of inactivity".
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if !acceptsJSON(r) {
		http.Error(w, msg, status)
		return
	}
	body := struct {
		Error   string    `json:"error"`
		Message string    `json:"message"`
		Reason  EndReason `json:"reason,omitempty"`
	}{code, msg, EndedReason(r.Context())}
	b, _ := json.Marshal(body) // strings only: cannot fail
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// acceptsJSON reports whether r asks for JSON before HTML: a fetch or an
// API client, not a browser navigation.
func acceptsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "application/json":
				return true
			case "text/html":
				return false
			}
		}
	}
	return false
}

// Close stops the sweeper. It does not close the store.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		if m.stopSweep != nil {
			close(m.stopSweep)
			<-m.sweepDone
		}
	})
	return nil
}

// CookieName is the session cookie's name.
func (m *Manager) CookieName() string { return m.cookie.Name }

// Policy is the policy sessions get when Login is given none.
func (m *Manager) Policy() Policy { return m.policy }

// TouchInterval is the least time between two writes of the last activity of
// a session with policy p.
func (m *Manager) TouchInterval(p Policy) time.Duration {
	if m.touchEvery > 0 {
		return m.touchEvery
	}
	return min(p.IdleTimeout/20, time.Minute)
}

// Ping reports whether the store answers, within the store timeout.
func (m *Manager) Ping(ctx context.Context) error {
	ctx, cancel := m.storeContext(ctx)
	defer cancel()
	return m.store.Ping(ctx)
}

// LoginOptions are the choices of one Login. The zero value is the usual
// login: the Manager's policy, a cookie that ends with the browser, and no
// data carried over.
type LoginOptions struct {
	// Policy is this session's timeouts; a field left zero takes the
	// Manager's (Config.Policy).
	Policy Policy

	// RememberMe makes the cookie persistent: it survives the browser's
	// restart, until the session's absolute deadline and never longer. The
	// idle timeout still applies, so a remembered session left alone ends
	// as any other. What it costs: the token stays on the device's disk,
	// where anyone who can read the browser's profile can copy it until it
	// ends. Offer it only where the user chooses it, on their own device.
	RememberMe bool

	// Keep names data keys of the session the request had (anonymous or
	// signed in) to copy into the new one: a cart filled before signing in.
	// Everything else of the old session ends with it.
	Keep []string
}

// Login starts a new session for userID, sets its cookie on w, and returns
// it. The token is always new: a session the browser presented (anonymous
// or signed in) is ended first, as a logout, so a token planted before login
// can never be adopted; the keys named by o.Keep are copied from it. The
// request's context, when it went through Handler or Require, sees the new
// session afterwards.
func (m *Manager) Login(w http.ResponseWriter, r *http.Request, userID string, o LoginOptions) (*Session, error) {
	if userID == "" {
		return nil, errors.New("session: Login needs a user ID")
	}
	p := o.Policy.orDefaults(m.policy)
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return m.start(w, r, userID, p, o.RememberMe, o.Keep)
}

// Start returns the request's session, signed in or anonymous; when the
// request has none, it starts an anonymous one (UserID "") and sets its
// cookie on w. An anonymous session keeps data for a visitor who has not
// signed in, such as a cart or a flash message, with the Manager's
// timeouts; Require does not let it through. Login replaces it with a
// signed-in session under a new token, carrying over the keys it is told to.
//
// Each call for a visitor without a session writes a record to the store,
// so call Start where a visitor keeps something (a cart, a message), not in
// middleware for every page: a crawler would then fill the store with
// sessions nobody uses until their idle timeout ends them.
//
// Called after Logout in the same request, Start begins a new anonymous
// session, so that a message such as "you were signed out" can follow the
// user to the next page; the Clear-Site-Data header then spares cookies.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request) (*Session, error) {
	st := m.requestState(r)
	s, _, err := st.get()
	switch {
	case s != nil:
		return s, nil
	case err != nil:
		return nil, err
	}
	if v := w.Header().Get("Clear-Site-Data"); v != "" {
		spareCookies(w.Header(), v)
	}
	return m.start(w, r, "", m.policy, false, nil)
}

// spareCookies drops "cookies" from the Clear-Site-Data header v, which
// would otherwise delete the cookie set in the same response.
func spareCookies(h http.Header, v string) {
	var keep []string
	for part := range strings.SplitSeq(v, ",") {
		switch part = strings.TrimSpace(part); part {
		case `"cookies"`, "":
		case `"*"`: // everything but the cookies
			keep = append(keep, `"cache"`, `"storage"`)
		default:
			keep = append(keep, part)
		}
	}
	if len(keep) == 0 {
		h.Del("Clear-Site-Data")
		return
	}
	h.Set("Clear-Site-Data", strings.Join(keep, ", "))
}

// start ends the request's session, if any, and begins a new one.
func (m *Manager) start(w http.ResponseWriter, r *http.Request, userID string, p Policy, persistent bool, keep []string) (*Session, error) {
	st := m.requestState(r)
	var data map[string]string
	if old, _, _ := st.get(); old != nil {
		for _, k := range keep {
			if v, ok := old.Get(k); ok {
				if data == nil {
					data = make(map[string]string, len(keep))
				}
				data[k] = v
			}
		}
		if _, err := m.end(r.Context(), old.info(), Ending{Reason: ReasonLogout, At: m.clock.Now()}, m.clientIP(r)); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		st.set(nil, ReasonLogout)
	}
	now := m.clock.Now()
	token, hash := newToken()
	rec := Record{
		Info: Info{
			ID:              newPublicID(),
			UserID:          userID,
			CreatedAt:       now,
			AuthenticatedAt: now,
			LastActivity:    now,
			Policy:          p,
			IP:              m.clientIP(r),
			UserAgent:       truncate(r.UserAgent(), 512),
			Expires:         expiryOf(p, now, now),
			Persistent:      persistent,
		},
		TokenHash: hash,
		Data:      data,
	}
	ctx, cancel := m.storeContext(r.Context())
	defer cancel()
	err := m.store.Create(ctx, rec)
	m.wrote(r.Context(), "create", err)
	if err != nil {
		return nil, fmt.Errorf("session: creating session: %w", err)
	}
	m.setCookie(w, token, rec.Info, now)
	s := &Session{m: m, rec: rec}
	st.set(s, "")
	m.emit(r.Context(), Event{Kind: EventStarted, Session: rec.Info, Time: now, IP: rec.IP})
	return s, nil
}

// Logout ends the request's session, if any, and tells the browser to forget
// it: the cookie is deleted and Clear-Site-Data is sent. It is safe to call
// without a session.
//
// If the store fails, so that the session may still be live (it could not
// be looked up, or not ended), Logout returns the error and changes nothing:
// the cookie stays, and the request keeps its session. A browser told to
// forget a token that still works would hide from its user that they are
// still signed in, where anyone holding a copy of the token is too; keeping
// the cookie lets them try again. Tell them it did not work.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request) error {
	st := m.requestState(r)
	s, _, err := st.get()
	if err != nil {
		return err
	}
	if s != nil {
		_, err := m.end(r.Context(), s.info(), Ending{Reason: ReasonLogout, At: m.clock.Now()}, m.clientIP(r))
		if err != nil && !errors.Is(err, ErrNotFound) { // not found: it ended meanwhile
			return err
		}
		st.set(nil, ReasonLogout)
	}
	m.clearCookie(w)
	if m.clearSite != ClearSiteDataOff {
		w.Header().Set("Clear-Site-Data", m.clearSite)
	}
	return nil
}

// Renew gives the request's session a new token, keeping its ID, data and
// clocks. Call it after a privilege change (OWASP: renew the session ID after
// any privilege level change); the old token stops working at once.
func (m *Manager) Renew(w http.ResponseWriter, r *http.Request) error {
	return m.renew(w, r, false)
}

// Reauthenticate records that the user proved who they are again (they typed
// their password before a sensitive action): the session gets a new token
// and both clocks restart from now (NIST 800-63B-4 §5.2).
func (m *Manager) Reauthenticate(w http.ResponseWriter, r *http.Request) error {
	return m.renew(w, r, true)
}

// ErrNoSession is returned by operations that need the request's session
// when the request has none, and by the writes of a nil Session.
var ErrNoSession = errors.New("session: the request has no session")

func (m *Manager) renew(w http.ResponseWriter, r *http.Request, reauth bool) error {
	st := m.requestState(r)
	s, _, err := st.get()
	if s == nil {
		if err != nil {
			return err
		}
		return ErrNoSession
	}
	now := m.clock.Now()
	info := s.info()
	rn := Renewal{AuthenticatedAt: info.AuthenticatedAt, LastActivity: info.LastActivity}
	if reauth {
		rn.AuthenticatedAt, rn.LastActivity = now, now
	} else if !st.isPassive(r) && now.After(rn.LastActivity) {
		rn.LastActivity = now
	}
	rn.Expires = expiryOf(info.Policy, rn.AuthenticatedAt, rn.LastActivity)
	if !reauth && info.Expires.At.After(rn.Expires.At) {
		rn.Expires = info.Expires // a renewal never shortens the session
	}
	token, hash := newToken()
	ctx, cancel := m.storeContext(r.Context())
	defer cancel()
	err = m.store.Renew(ctx, info.ID, s.tokenHash(), hash, rn)
	m.wrote(r.Context(), "renew", err)
	if err != nil {
		return fmt.Errorf("session: renewing session: %w", err)
	}
	s.renewed(hash, rn)
	m.setCookie(w, token, s.info(), now)
	m.emit(r.Context(), Event{Kind: EventRenewed, Session: s.info(), Time: now, IP: m.clientIP(r)})
	return nil
}

// Revoke ends the session with public ID id if it belongs to userID, with
// reason ReasonRevoked: the call behind a "sign out that device" button,
// where id comes from the request and userID from its own session. It
// returns ErrNotFound if userID has no live session with that ID, whoever
// else's it may be.
func (m *Manager) Revoke(ctx context.Context, userID, id string) error {
	if userID == "" {
		return errors.New("session: Revoke needs a user ID; to end any user's session, an administrator calls RevokeAny")
	}
	recs, err := m.listRecords(ctx, userID, 0)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		// A session's user never changes, so the check cannot go stale
		// before the End below.
		if rec.ID == id {
			_, err := m.end(ctx, rec.Info, Ending{Reason: ReasonRevoked, At: m.clock.Now()}, "")
			return err
		}
	}
	return ErrNotFound
}

// RevokeAny ends the session with public ID id, whoever's it is, with reason
// ReasonRevoked. It is for administrators; an application acting for a user
// calls Revoke. It returns ErrNotFound if no such session is live.
func (m *Manager) RevokeAny(ctx context.Context, id string) error {
	_, err := m.end(ctx, Info{ID: id}, Ending{Reason: ReasonRevoked, At: m.clock.Now()}, "")
	return err
}

// RevokeUser ends every live session of userID except the one with public ID
// except (empty: none excepted), with reason ReasonRevoked, and returns how
// many it ended. Use it when a password changes, an account is disabled, or a
// user asks to sign out everywhere else.
func (m *Manager) RevokeUser(ctx context.Context, userID, except string) (int, error) {
	if userID == "" {
		return 0, errors.New("session: RevokeUser needs a user ID")
	}
	sessions, err := m.listRecords(ctx, userID, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rec := range sessions {
		if rec.ID == except {
			continue
		}
		_, err := m.end(ctx, rec.Info, Ending{Reason: ReasonRevoked, At: m.clock.Now()}, "")
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrNotFound): // it ended meanwhile
		default:
			return n, err
		}
	}
	return n, nil
}

// List returns the live sessions of userID, or of every user when userID is
// empty, oldest first, at most limit of them (limit <= 0: all).
func (m *Manager) List(ctx context.Context, userID string, limit int) ([]Info, error) {
	recs, err := m.listRecords(ctx, userID, limit)
	if err != nil {
		return nil, err
	}
	infos := make([]Info, len(recs))
	for i, rec := range recs {
		infos[i] = rec.Info
	}
	return infos, nil
}

// Count returns about how many sessions are live: exactly, less those that
// expired in the last sweep interval. It is for gauges and dashboards; it
// reads every record unless the store is a CountingStore.
func (m *Manager) Count(ctx context.Context) (int, error) {
	if c, ok := m.store.(CountingStore); ok {
		ctx, cancel := m.storeContext(ctx)
		defer cancel()
		return c.Count(ctx)
	}
	recs, err := m.listRecords(ctx, "", 0)
	return len(recs), err
}

func (m *Manager) listRecords(ctx context.Context, userID string, limit int) ([]Record, error) {
	ctx, cancel := m.storeContext(ctx)
	defer cancel()
	recs, err := m.store.List(ctx, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("session: listing sessions: %w", err)
	}
	now := m.clock.Now()
	live := recs[:0]
	for _, rec := range recs {
		if !rec.Expired(now) { // expired but not yet swept: not live
			live = append(live, rec)
		}
	}
	return live, nil
}

// SweepExpired ends every session whose deadline has passed, in batches, and
// emits their end events; it returns how many it ended. The background
// sweeper calls it every SweepInterval; call it yourself when the sweeper is
// off or a test has moved the clock.
//
// After each full batch it pauses sweepPauseFactor times as long as the
// batch took, so that a large backlog (a million sessions ending together,
// or the sessions that expired while the store was down) takes at most a
// quarter of one core and requests keep their latency while it drains.
// Expired sessions are refused by every request's own check meanwhile; only
// their end events wait.
func (m *Manager) SweepExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		// Real time, not m.clock: the pause paces CPU use, not sessions.
		began := time.Now()
		sctx, cancel := m.storeContext(ctx)
		ended, err := m.store.EndExpired(sctx, m.clock.Now(), m.retention, m.sweepBatch)
		cancel()
		m.wrote(ctx, "end_expired", err)
		for _, e := range ended {
			m.emit(ctx, Event{Kind: EventEnded, Session: e.Info, Reason: e.Reason, Time: e.At})
		}
		total += len(ended)
		if err != nil {
			return total, fmt.Errorf("session: sweeping expired sessions: %w", err)
		}
		if len(ended) < m.sweepBatch || ctx.Err() != nil {
			return total, ctx.Err()
		}
		pause := time.NewTimer(sweepPauseFactor * time.Since(began))
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
			return total, ctx.Err()
		}
	}
}

// sweepPauseFactor is how many times as long as a batch took the sweep
// pauses after it. The garbage collection of what a batch allocated and, for
// a networked store, the store server's own work for it come on top of the
// batch's time, and share the cores with requests: pauses only as long as
// the batches left requests too little of them (docs/benchmarks.md, the
// sweep).
const sweepPauseFactor = 3

func (m *Manager) sweepLoop(interval time.Duration) {
	defer close(m.sweepDone)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stopSweep
		cancel()
	}()
	failing := false
	for {
		select {
		case <-m.stopSweep:
			return
		case <-ticker.C:
		}
		_, err := m.SweepExpired(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			m.log.Error("session sweeper: the store failed; expired sessions are still refused, their end events wait", "err", err)
			failing = true
		case err == nil && failing:
			m.log.Info("session sweeper: the store answers again")
			failing = false
		}
	}
}

// end ends a session once, and emits its end event if this call ended it.
func (m *Manager) end(ctx context.Context, info Info, e Ending, ip string) (Record, error) {
	e.KeepUntil = e.At.Add(m.retention)
	sctx, cancel := m.storeContext(ctx)
	defer cancel()
	rec, err := m.store.End(sctx, info.ID, e)
	m.wrote(ctx, "end", err)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("session: ending session: %w", err)
	}
	m.emit(ctx, Event{Kind: EventEnded, Session: rec.Info, Reason: e.Reason, Time: e.At, IP: ip})
	return rec, nil
}

// wrote tells the StoreWriteObservers how a store write fared.
func (m *Manager) wrote(ctx context.Context, op string, err error) {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		err = nil
	}
	for _, o := range m.writeObs {
		o.StoreWrite(ctx, op, err)
	}
}

func (m *Manager) emit(ctx context.Context, e Event) {
	for _, o := range m.observers {
		o.SessionEvent(ctx, e)
	}
}

// storeContext bounds a store call by the store timeout. It detaches from
// the request's cancellation: a client that hangs up must not leave a
// logout or a touch half done.
func (m *Manager) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.inMemory {
		return ctx, noCancel
	}
	return context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
}

func noCancel() {}

// setCookie hands token to the browser: a cookie that ends with the
// browser, or for a persistent session one that lasts until the absolute
// deadline of info.
func (m *Manager) setCookie(w http.ResponseWriter, token string, info Info, now time.Time) {
	var until time.Time
	if info.Persistent {
		until = info.AbsoluteDeadline()
	}
	http.SetCookie(w, m.cookie.sessionCookie(token, until, now))
	// A response that carries a token must never be stored by a cache.
	w.Header().Set("Cache-Control", "no-store")
}

func (m *Manager) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, m.cookie.sessionCookie("", time.Time{}, time.Time{}))
	w.Header().Set("Cache-Control", "no-store")
}

// RemoteIP returns the host part of r.RemoteAddr: the client's address when
// nothing stands between it and the server. It is the default
// Config.ClientIP.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ClientIPBehind returns a Config.ClientIP for a server behind reverse
// proxies at the given addresses: for a request from one of them, the
// client is the last address of X-Forwarded-For that is not a proxy; for a
// request from anyone else, the header is ignored (anyone can send one) and
// the client is the peer.
func ClientIPBehind(proxies ...netip.Prefix) func(*http.Request) string {
	return forwarded.Proxies(proxies).ClientIP
}

// truncate cuts s to at most n bytes on a character boundary, replacing
// invalid UTF-8 first: a client's User-Agent is outside input, and every
// store must be able to keep it as text.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
