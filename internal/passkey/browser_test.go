package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/internal/testbrowser"
)

// page is the test site's only page: helpers that run the ceremonies
// through the JSON endpoints, each resolving to the server's answer or to
// {error}.
const page = `<!doctype html><title>passkeys</title><script>
async function post(path, body) {
	const r = await fetch(path, {method: 'POST', body: body === undefined ? undefined : JSON.stringify(body)});
	const answer = await r.json();
	if (!r.ok) throw new Error(answer.error);
	return answer;
}
async function register(user, name) {
	const o = await post('/register/begin?user=' + user);
	const cred = await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(o.publicKey)});
	return post('/register/finish?user=' + user + '&name=' + encodeURIComponent(name), cred.toJSON());
}
async function login(user) {
	const o = await post('/login/begin?user=' + user);
	const cred = await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o.publicKey)});
	return post('/login/finish', cred.toJSON());
}
function run(p) { return p.then(r => r, e => ({error: String(e)})); }
</script>`

// site serves page and the four ceremony steps. It stands for the server:
// one browser, so one session, whose ceremony state is kept here.
type site struct {
	store *Store

	mu      sync.Mutex
	state   []byte
	lastErr error
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
		return
	}
	ctx := r.Context()
	user := r.URL.Query().Get("user")
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	s.mu.Lock()
	defer s.mu.Unlock()
	var answer any
	var err error
	switch r.URL.Path {
	case "/register/begin":
		var options []byte
		options, s.state, err = s.store.BeginRegistration(ctx, user)
		answer = json.RawMessage(options)
	case "/register/finish":
		var c Credential
		c, err = s.store.FinishRegistration(ctx, user, r.URL.Query().Get("name"), s.state, body)
		answer = c
	case "/login/begin":
		var options []byte
		options, s.state, err = s.store.BeginLogin(ctx, user)
		answer = json.RawMessage(options)
	case "/login/finish":
		var signedIn string
		var verified bool
		signedIn, verified, err = s.store.FinishLogin(ctx, s.state, body)
		answer = map[string]any{"user": signedIn, "userVerified": verified}
	default:
		http.NotFound(w, r)
		return
	}
	s.lastErr = err
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		answer = map[string]string{"error": err.Error()}
	}
	json.NewEncoder(w).Encode(answer)
}

// result is what the page's helpers resolve to.
type result struct {
	Error        string `json:"error"`
	ID           string `json:"ID"`
	Name         string `json:"Name"`
	User         string `json:"user"`
	UserVerified bool   `json:"userVerified"`
}

func TestBrowser(t *testing.T) {
	ctx := testbrowser.New(t, testbrowser.Find())
	db := sqldbtest.Open(t, sqldb.SQLite)

	site := &site{}
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	// An RP ID cannot be an IP address; localhost is a secure context
	// without TLS.
	base := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	cfg, err := ConfigFromURL(base, "")
	if err != nil {
		t.Fatal(err)
	}
	if site.store, err = NewStore(t.Context(), db, cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	store := site.store

	step := func(what, js string) result {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		r, err := chromedp.Run(c, chromedp.Evaluate[result]("run("+js+")", chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return r
	}
	lastErr := func() error {
		site.mu.Lock()
		defer site.mu.Unlock()
		return site.lastErr
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	authID := testbrowser.AddAuthenticator(t, ctx)

	// Register.
	reg := step("registering", `register('alice', 'Test laptop')`)
	if reg.Error != "" || reg.Name != "Test laptop" {
		t.Fatalf("register = %+v (server: %v)", reg, lastErr())
	}
	list, err := store.List(t.Context(), "alice")
	if err != nil || len(list) != 1 || list[0].ID != reg.ID || !list[0].UserVerified || list[0].BackupEligible ||
		!strings.Contains(strings.Join(list[0].Transports, ","), "internal") {
		t.Fatalf("after registering: List = %+v, %v", list, err)
	}
	// The same authenticator is not registered twice.
	if again := step("registering again", `register('alice', 'Again')`); again.Error == "" {
		t.Errorf("the same authenticator registered twice: %+v", again)
	}

	// Sign in with it as the second factor, then without a password.
	for _, who := range []string{"alice", ""} {
		got := step("signing in", `login('`+who+`')`)
		if got.Error != "" || got.User != "alice" || !got.UserVerified {
			t.Fatalf("login(%q) = %+v (server: %v), want alice, verified", who, got, lastErr())
		}
	}
	list, _ = store.List(t.Context(), "alice")
	if list[0].LastUsedAt.IsZero() || list[0].SignCount == 0 {
		t.Errorf("after signing in: %+v, want a last use and a counter", list[0])
	}

	// An answer without user verification (the authenticator's UV bit
	// cleared in its response) still serves as a second factor, and says
	// so, but is refused by the server for a passwordless sign-in.
	noUV := true
	if _, err := chromedp.Call(ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: authID, IsBadUV: &noUV}); err != nil {
		t.Fatalf("WebAuthn.setResponseOverrideBits: %v", err)
	}
	if got := step("second factor without verification", `login('alice')`); got.Error != "" || got.User != "alice" || got.UserVerified {
		t.Errorf("login(alice) without user verification = %+v (server: %v), want alice, not verified", got, lastErr())
	}
	if got := step("passwordless without verification", `login('')`); got.Error == "" || !errors.Is(lastErr(), ErrRejected) {
		t.Errorf("login('') without user verification = %+v (server: %v), want ErrRejected", got, lastErr())
	}
	if _, err := chromedp.Call(ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: authID}); err != nil {
		t.Fatalf("WebAuthn.setResponseOverrideBits: %v", err)
	}

	// A counter that goes backwards is a cloned key.
	if _, err := db.ExecContext(t.Context(), `UPDATE passkey_credentials SET sign_count = 1000000`); err != nil {
		t.Fatal(err)
	}
	if got := step("signing in with a cloned key", `login('')`); got.Error == "" || !errors.Is(lastErr(), ErrCloned) {
		t.Errorf("login with a counter behind the stored one = %+v (server: %v), want ErrCloned", got, lastErr())
	}
	if _, err := db.ExecContext(t.Context(), `UPDATE passkey_credentials SET sign_count = 0`); err != nil {
		t.Fatal(err)
	}
	if got := step("signing in", `login('alice')`); got.Error != "" {
		t.Fatalf("login(alice) = %+v (server: %v)", got, lastErr())
	}

	// A removed passkey signs in no more, with or without a user name.
	if err := store.Remove(t.Context(), "alice", reg.ID); err != nil {
		t.Fatal(err)
	}
	if got := step("signing in with a removed passkey", `login('')`); got.Error == "" || !errors.Is(lastErr(), ErrRejected) {
		t.Errorf("passwordless login with a removed passkey = %+v (server: %v), want ErrRejected", got, lastErr())
	}
	if got := step("second factor with no passkey", `login('alice')`); got.Error == "" || !errors.Is(lastErr(), ErrNoPasskeys) {
		t.Errorf("second-factor login with no passkey left = %+v (server: %v), want ErrNoPasskeys", got, lastErr())
	}
}
