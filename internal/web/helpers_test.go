package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// Passwords that pass the account package's policy.
const (
	alicePassword = "violet kettle drums at dawn"
	bobPassword   = "seven orange lanterns hum"
	rootPassword  = "granite owls guard the ledger"
)

// fastParams make argon2id cheap, for tests only.
var fastParams = account.Params{Memory: 64, Time: 1, Threads: 1}

// testEnv is a Server with everything it talks to, on a clock that moves
// only when told.
type testEnv struct {
	t        testing.TB
	clock    *sessiontest.Clock
	store    *failingStore
	sessions *session.Manager
	accounts *account.Store
	authn    *account.Authenticator
	audit    *audit.Log
	events   *eventRecorder
	reg      *prometheus.Registry
	logs     *syncBuffer
	srv      *Server
	handler  http.Handler
}

type envOption func(*Config)

func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	ctx := context.Background()
	e := &testEnv{
		t:      t,
		clock:  sessiontest.NewClock(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)),
		store:  &failingStore{Store: memstore.New()},
		events: &eventRecorder{},
		reg:    prometheus.NewRegistry(),
		logs:   &syncBuffer{},
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := metrics.New(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(ctx, "sqlite:"+t.TempDir()+"/test.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.audit, err = audit.NewLog(ctx, db, audit.Options{Clock: e.clock.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.sessions, err = session.New(session.Config{
		Store:         e.store,
		Clock:         e.clock,
		Observers:     []session.Observer{m, e.events, e.audit},
		Logger:        logger,
		SweepInterval: session.SweepOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sessions.Close() })
	e.accounts, err = account.NewStore(ctx, db, account.Options{Params: fastParams, Clock: e.clock.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.authn, err = account.NewAuthenticator(e.accounts, account.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Sessions:      e.sessions,
		Accounts:      e.accounts,
		Authenticator: e.authn,
		Audit:         e.audit,
		Logger:        logger,
		Clock:         e.clock,
		Metrics:       m,
		Gatherer:      e.reg,
		Policies: map[string]session.Policy{
			"admin": {IdleTimeout: 15 * time.Minute, AbsoluteTimeout: 12 * time.Hour},
		},
		// Tests not about second factors sign admins in with a password
		// alone; mfa_test.go sets the policies it tests.
		SecondFactors: e.accounts,
		AdminMFA:      account.MFAOptional,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = e.srv.Handler()
	return e
}

// addUser creates a user directly in the store.
func (e *testEnv) addUser(name, password string, role account.Role) {
	e.t.Helper()
	if err := e.accounts.Create(context.Background(), name, password, role); err != nil {
		e.t.Fatal(err)
	}
}

// client is a browser (or a script) talking to the env's handler: it keeps
// cookies by hand, since the session cookie is Secure and __Host-.
type client struct {
	e       *testEnv
	cookies map[string]string
	header  http.Header // sent with every request
	addr    string
}

func (e *testEnv) browser() *client {
	return &client{e: e, cookies: map[string]string{}, addr: "192.0.2.10:4321", header: http.Header{
		"Accept":     {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	}}
}

func (e *testEnv) script() *client {
	c := e.browser()
	c.header.Set("Accept", "application/json")
	return c
}

// do sends a request; form (may be nil) is the urlencoded body; extra
// headers come in pairs.
func (c *client) do(method, target string, form url.Values, headers ...string) *http.Response {
	c.e.t.Helper()
	if form == nil {
		return c.send(method, target, nil, headers...)
	}
	return c.doBody(method, target, form.Encode(), headers...)
}

// doBody sends body as is, as a urlencoded form.
func (c *client) doBody(method, target, body string, headers ...string) *http.Response {
	c.e.t.Helper()
	return c.send(method, target, strings.NewReader(body),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

func (c *client) send(method, target string, body io.Reader, headers ...string) *http.Response {
	c.e.t.Helper()
	r := httptest.NewRequest(method, "https://sessionguard.test"+target, body)
	r.RemoteAddr = c.addr
	for k, vs := range c.header {
		r.Header[k] = vs
	}
	if method != http.MethodGet && method != http.MethodHead {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Origin", "https://sessionguard.test")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
		} else {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	var parts []string
	for k, v := range c.cookies {
		parts = append(parts, k+"="+v)
	}
	if len(parts) > 0 {
		r.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	rec := httptest.NewRecorder()
	c.e.handler.ServeHTTP(rec, r)
	res := rec.Result()
	res.Request = r
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return res
}

func (c *client) get(target string, headers ...string) *http.Response {
	c.e.t.Helper()
	return c.do(http.MethodGet, target, nil, headers...)
}

func (c *client) post(target string, form url.Values, headers ...string) *http.Response {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return c.do(http.MethodPost, target, form, headers...)
}

// login signs in and fails the test unless it worked.
func (c *client) login(name, password string) {
	c.e.t.Helper()
	res := c.post("/auth/login", url.Values{"username": {name}, "password": {password}}, "Accept", "text/html")
	if res.StatusCode != http.StatusSeeOther {
		c.e.t.Fatalf("login %s: status %d, body %s", name, res.StatusCode, readBody(res))
	}
}

// sessionCookie returns the session token the client holds, or "".
func (c *client) sessionCookie() string { return c.cookies[c.e.sessions.CookieName()] }

func readBody(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return string(b)
}

func wantStatus(t testing.TB, res *http.Response, want int) string {
	t.Helper()
	body := readBody(res)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", res.Request.Method, res.Request.URL, res.StatusCode, want, body)
	}
	return body
}

func wantRedirect(t testing.TB, res *http.Response, want string) {
	t.Helper()
	body := readBody(res)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
		t.Fatalf("%s %s: %d to %q, want 303 to %q; body:\n%s", res.Request.Method, res.Request.URL,
			res.StatusCode, res.Header.Get("Location"), want, body)
	}
}

// failingStore is a session store that can be made to fail every call, or
// only the calls that change a session (as a SQLite file whose write lock
// another process holds), and that counts those calls.
type failingStore struct {
	*memstore.Store
	fail       atomic.Bool
	failWrites atomic.Bool
	writes     atomic.Int64 // Create, Touch, SaveData, Renew and End calls
}

// write counts a call that changes a session, and fails it while
// failWrites is set.
func (s *failingStore) write() error {
	s.writes.Add(1)
	if s.failWrites.Load() {
		return errStoreDown
	}
	return nil
}

var errStoreDown = errors.New("test: the store is down (internal detail)")

func (s *failingStore) err() error {
	if s.fail.Load() {
		return errStoreDown
	}
	return nil
}

func (s *failingStore) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	if err := s.err(); err != nil {
		return session.Record{}, err
	}
	return s.Store.Get(ctx, h)
}

func (s *failingStore) Create(ctx context.Context, rec session.Record) error {
	if err := s.write(); err != nil {
		return err
	}
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Create(ctx, rec)
}

func (s *failingStore) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.Store.Touch(ctx, id, at, exp)
}

func (s *failingStore) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.Store.SaveData(ctx, id, old, data)
}

func (s *failingStore) Renew(ctx context.Context, id string, old, new session.TokenHash, r session.Renewal) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.Store.Renew(ctx, id, old, new, r)
}

func (s *failingStore) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	if err := s.write(); err != nil {
		return session.Record{}, err
	}
	return s.Store.End(ctx, id, e)
}

func (s *failingStore) List(ctx context.Context, userID string, limit int) ([]session.Record, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, userID, limit)
}

func (s *failingStore) Ping(ctx context.Context) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

// The account and audit packages' types are what cmd passes in.
var (
	_ AccountStore      = (*account.Store)(nil)
	_ Authenticator     = (*account.Authenticator)(nil)
	_ SetupToken        = (*account.SetupToken)(nil)
	_ SecondFactorStore = (*account.Store)(nil)
	_ AuditLog          = (*audit.Log)(nil)
)

// auditFind returns the audit entries of event (and user, unless empty).
func (e *testEnv) auditFind(event audit.Event, user string) []audit.Entry {
	e.t.Helper()
	entries, err := e.audit.Query(e.t.Context(), audit.Filter{Event: event, User: user})
	if err != nil {
		e.t.Fatal(err)
	}
	return entries
}

// eventRecorder is a session.Observer that keeps the events.
type eventRecorder struct {
	mu     sync.Mutex
	events []session.Event
}

func (o *eventRecorder) SessionEvent(_ context.Context, e session.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *eventRecorder) ended(user string) []session.EndReason {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []session.EndReason
	for _, e := range o.events {
		if e.Kind == session.EventEnded && e.Session.UserID == user {
			out = append(out, e.Reason)
		}
	}
	return out
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// metricsText returns what GET /metrics shows.
func (e *testEnv) metricsText() string {
	e.t.Helper()
	return wantStatus(e.t, e.browser().get("/metrics"), http.StatusOK)
}
