package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/web"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

var t0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

const (
	idle     = 30 * time.Minute
	password = "violet kettle drums at dawn"
)

// The trusted proxy's address, and a client's.
const (
	proxyAddr  = "10.0.0.2:40000"
	clientAddr = "192.0.2.10:4321"
)

// env is a Gate in front of a web server, on a clock that moves only when
// told, with a store that counts writes and can be made to fail.
type env struct {
	t        *testing.T
	clock    *sessiontest.Clock
	store    *countingStore
	sessions *session.Manager
	accounts *account.Store
	gate     *Gate
	handler  http.Handler
	logs     *syncBuffer
}

// newEnv returns an env whose users alice (user) and root (admin) exist;
// configure may change the gateway's Config.
func newEnv(t *testing.T, configure func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, clock: sessiontest.NewClock(t0), store: &countingStore{Store: memstore.New()}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	var err error
	e.sessions, err = session.New(session.Config{Store: e.store, Clock: e.clock, Logger: logger, SweepInterval: session.SweepOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sessions.Close() })
	db, err := sqldb.Open(ctx, "sqlite:"+t.TempDir()+"/test.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if e.accounts, err = account.NewStore(ctx, db, account.Options{Params: account.Params{Memory: 64, Time: 1, Threads: 1}, Clock: e.clock.Now, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	for name, role := range map[string]account.Role{"alice": account.RoleUser, "root": account.RoleAdmin} {
		if err := e.accounts.Create(ctx, name, password, role); err != nil {
			t.Fatal(err)
		}
	}
	authn, err := account.NewAuthenticator(e.accounts, account.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's own tests are about the check, not the sign-in: the
	// second factor's flow has its tests in package web.
	ws, err := web.New(web.Config{Sessions: e.sessions, Accounts: e.accounts, Authenticator: authn, Logger: logger,
		Clock: e.clock, Registerer: prometheus.NewRegistry(), MFA: account.MFAOff, AdminMFA: account.MFAOff})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Sessions:       e.sessions,
		Accounts:       e.accounts,
		Web:            ws,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")},
		DefaultBaseURL: "https://sg.internal:8080",
		Logger:         logger,
	}
	if configure != nil {
		configure(&cfg)
	}
	if e.gate, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e.handler = e.gate.Handler(ws.Handler())
	return e
}

// login starts a session for user and returns its token.
func (e *env) login(user string) string {
	e.t.Helper()
	u, err := e.accounts.Get(context.Background(), user)
	if err != nil {
		e.t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if _, err := e.sessions.Login(w, httptest.NewRequest("POST", "/auth/login", nil), u.Name, session.LoginOptions{Policy: session.Policy{IdleTimeout: idle, AbsoluteTimeout: 12 * time.Hour}}); err != nil {
		e.t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == e.sessions.CookieName() {
			return c.Value
		}
	}
	e.t.Fatal("no session cookie")
	return ""
}

// req builds a request from a peer (proxyAddr unless a "RemoteAddr"
// pseudo-header says otherwise) with the session token (none if empty)
// and header pairs.
func (e *env) req(method, target, token string, headers ...string) *http.Request {
	e.t.Helper()
	r := httptest.NewRequest(method, "http://sg.internal:8080"+target, nil)
	r.RemoteAddr = proxyAddr
	if token != "" {
		r.Header.Set("Cookie", "theme=dark; "+e.sessions.CookieName()+"="+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "RemoteAddr" {
			r.RemoteAddr = headers[i+1]
			continue
		}
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// do serves a request built by req.
func (e *env) do(method, target, token string, headers ...string) *http.Response {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, e.req(method, target, token, headers...))
	return w.Result()
}

// signedIn reports whether token is live now, without counting activity.
func (e *env) signedIn(token string) bool {
	e.t.Helper()
	res := e.do("GET", AuthRequestPath, token, "Session-Activity", "passive")
	return res.StatusCode == http.StatusOK
}

// The headers of a browser's requests: a page navigation, a script's
// fetch, an image, and an old browser without fetch metadata.
var (
	navigation = []string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
	fetchJSON  = []string{"Accept", "application/json", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"}
	image      = []string{"Accept", "image/avif,image/webp,*/*", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}
	oldBrowser = []string{"Accept", "text/html,*/*;q=0.8"}
)

func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// countingStore counts activity writes and fails every call while failing
// is set.
type countingStore struct {
	session.Store
	touches atomic.Int64
	failing atomic.Bool
}

var errStoreDown = errors.New("store down")

func (s *countingStore) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	if s.failing.Load() {
		return session.Record{}, errStoreDown
	}
	return s.Store.Get(ctx, h)
}

func (s *countingStore) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	if s.failing.Load() {
		return errStoreDown
	}
	s.touches.Add(1)
	return s.Store.Touch(ctx, id, at, exp)
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

// loginQuery returns the next and reason of a sign-in URL.
func loginQuery(t *testing.T, location string) (base, next, reason string) {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatalf("Location %q: %v", location, err)
	}
	if u.Path != "/auth/login" {
		t.Fatalf("Location %q is not the sign-in page", location)
	}
	q := u.Query()
	return u.Scheme + "://" + u.Host, q.Get("next"), q.Get("reason")
}

// hasPrefixFold is strings.HasPrefix in any case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
