package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/drafts"
	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// withDrafts gives the env's Server a drafts store on the env's clock.
func withDrafts(t testing.TB) envOption {
	return func(cfg *Config) {
		db, err := sqldb.Open(context.Background(), "sqlite:"+t.TempDir()+"/drafts.db")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		cfg.Drafts, err = drafts.NewStore(context.Background(), db, drafts.Options{Clock: cfg.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestTimeoutScriptIsServed(t *testing.T) {
	e := newEnv(t)
	c := e.browser() // other applications include it without a session of ours
	for _, f := range []struct{ path, file, contentType string }{
		{"/auth/timeout.js", "static/timeout.js", "text/javascript; charset=utf-8"},
		{"/auth/timeout.css", "static/timeout.css", "text/css; charset=utf-8"},
	} {
		res := c.get(f.path)
		body := wantStatus(t, res, http.StatusOK)
		want, err := staticFS.ReadFile(f.file)
		if err != nil {
			t.Fatal(err)
		}
		if body != string(want) {
			t.Errorf("%s is not the embedded %s", f.path, f.file)
		}
		etag := res.Header.Get("ETag")
		if ct := res.Header.Get("Content-Type"); ct != f.contentType {
			t.Errorf("%s: Content-Type %q, want %q", f.path, ct, f.contentType)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" || etag == "" {
			t.Errorf("%s: Cache-Control %q, ETag %q: want revalidation with an ETag", f.path, cc, etag)
		}
		wantStatus(t, c.get(f.path, "If-None-Match", etag), http.StatusNotModified)
	}
}

func TestSignedInPagesIncludeTheTimeoutScript(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	const tag = `<script src="/auth/timeout.js" defer></script>`
	if body := wantStatus(t, c.get("/auth/login"), http.StatusOK); strings.Contains(body, tag) {
		t.Error("the sign-in page includes the timeout script: there is no session to time out")
	}
	c.login("alice", alicePassword)
	for _, p := range []string{"/", "/account", "/auth/sessions"} {
		if body := wantStatus(t, c.get(p), http.StatusOK); !strings.Contains(body, tag) {
			t.Errorf("%s lacks %s", p, tag)
		}
	}
	home := wantStatus(t, c.get("/"), http.StatusOK)
	if !strings.Contains(home, `id="note-form"`) || !strings.Contains(home, "data-sessionguard-preserve") {
		t.Error("the home page's note form is not marked for drafts (data-sessionguard-preserve with an id)")
	}
}

func TestDraftsEndpoint(t *testing.T) {
	if w := newEnv(t).script().get("/auth/drafts?path=/"); w.StatusCode != http.StatusNotFound {
		t.Errorf("without a drafts store /auth/drafts answers %d, want 404", w.StatusCode)
	}

	e := newEnv(t, withDrafts(t))
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("bob", bobPassword, account.RoleUser)
	anon := e.script()
	if res := anon.get("/auth/drafts?path=/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a session: %d, want 401", res.StatusCode)
	}

	alice := e.script()
	alice.login("alice", alicePassword)
	start := e.clock.Now()
	// Saved near the idle end, as the script does, a draft must not count
	// as activity, even sent without "Session-Activity: passive".
	e.clock.Advance(29 * time.Minute)
	body := `{"form":"note-form","path":"/","fields":{"note":"half a thought"}}`
	res := alice.send("POST", "/auth/drafts", strings.NewReader(body), "Content-Type", "application/json")
	wantStatus(t, res, http.StatusOK)

	var list struct {
		Drafts []struct {
			Form   string
			Fields map[string]string
		}
	}
	if err := json.Unmarshal([]byte(wantStatus(t, alice.get("/auth/drafts?path=/"), http.StatusOK)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Drafts) != 1 || list.Drafts[0].Fields["note"] != "half a thought" {
		t.Errorf("alice's drafts: %+v", list)
	}

	bob := e.script()
	bob.login("bob", bobPassword)
	if got := wantStatus(t, bob.get("/auth/drafts?path=/"), http.StatusOK); strings.Contains(got, "half a thought") {
		t.Error("bob sees alice's draft")
	}

	e.clock.Set(start.Add(30 * time.Minute))
	if res := alice.get("/auth/status"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("at the idle end after only draft requests, status is %d: drafts counted as activity", res.StatusCode)
	}
}
