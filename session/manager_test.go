package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

const (
	idle     = 30 * time.Minute
	absolute = 12 * time.Hour
)

func TestIdleTimeoutBoundary(t *testing.T) {
	for _, tc := range []struct {
		name     string
		after    time.Duration
		signedIn bool
	}{
		{"just after login", 0, true},
		{"idle minus 1ns", idle - time.Nanosecond, true},
		{"exactly idle", idle, false},
		{"idle plus 1ns", idle + time.Nanosecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tok := h.login("alice")
			h.clock.Advance(tc.after)
			if got := h.signedIn(tok); got != tc.signedIn {
				t.Fatalf("signed in = %v after %v idle, want %v", got, tc.after, tc.signedIn)
			}
			if !tc.signedIn {
				if got := h.reason(tok); got != "idle" {
					t.Errorf("end reason = %q, want idle", got)
				}
			}
		})
	}
}

func TestActivityMovesIdleDeadline(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	h.clock.Advance(20 * time.Minute)
	if !h.signedIn(tok) { // activity at t0+20m
		t.Fatal("refused before the idle timeout")
	}
	h.clock.Advance(idle - time.Nanosecond)
	if !h.signedIn(tok) {
		t.Fatal("refused 1ns before the idle timeout counted from the last activity")
	}
	h.clock.Advance(idle)
	if h.signedIn(tok) {
		t.Fatal("accepted after the idle timeout")
	}
}

func TestAbsoluteTimeoutDespiteActivity(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	// Active every minute for the whole absolute period: the idle clock never
	// runs out, but the absolute one does, exactly on time.
	for at := time.Minute; at < absolute; at += time.Minute {
		h.clock.Set(t0.Add(at))
		if !h.signedIn(tok) {
			t.Fatalf("refused at %v, before the absolute timeout", at)
		}
	}
	h.clock.Set(t0.Add(absolute - time.Nanosecond))
	if !h.signedIn(tok) {
		t.Fatal("refused 1ns before the absolute timeout")
	}
	h.clock.Set(t0.Add(absolute))
	if h.signedIn(tok) {
		t.Fatal("a busy session outlived its absolute timeout")
	}
	if got := h.reason(tok); got != "absolute" {
		t.Errorf("end reason = %q, want absolute", got)
	}
	ended := h.events.ended()
	if len(ended) != 1 || ended[0].Reason != session.ReasonAbsolute || !ended[0].Time.Equal(t0.Add(absolute)) {
		t.Errorf("end events = %+v, want one absolute end at the deadline", ended)
	}
}

func TestPassiveRequestsDoNotCountAsActivity(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   string
		header string
	}{
		{"route wrapped in Passive", "/status", ""},
		{"Session-Activity header", "/private", "Session-Activity: passive"},
		{"Session-Activity header, any case", "/private", "session-activity: PASSIVE"},
		{"prefetch", "/private", "Sec-Purpose: prefetch"},
		{"prerender prefetch", "/private", "Sec-Purpose: prefetch;prerender"},
		{"legacy Purpose header", "/private", "Purpose: prefetch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tok := h.login("alice")
			// Poll every 10 seconds for the whole idle period: authenticated
			// every time, but it never keeps the session alive.
			for at := 10 * time.Second; at < idle; at += 10 * time.Second {
				h.clock.Set(t0.Add(at))
				var hdr []string
				if tc.header != "" {
					hdr = append(hdr, tc.header)
				}
				if w := h.do("GET", tc.path, tok, hdr...); w.Code != http.StatusOK {
					t.Fatalf("passive request at %v: %d", at, w.Code)
				}
			}
			if n := h.store.touches.Load(); n != 0 {
				t.Errorf("passive requests wrote activity %d times", n)
			}
			h.clock.Set(t0.Add(idle))
			if h.signedIn(tok) {
				t.Fatal("passive polling kept the session alive past the idle timeout")
			}
		})
	}
}

// TestPassiveOutsideHandler wraps Passive around Require with no Handler
// outside it: the route is still passive.
func TestPassiveOutsideHandler(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	status := session.Passive(h.m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	for at := 10 * time.Second; at < idle; at += 10 * time.Second {
		h.clock.Set(t0.Add(at))
		r := httptest.NewRequest("GET", "/status", nil)
		r.Header.Set("Cookie", h.m.CookieName()+"="+tok)
		w := httptest.NewRecorder()
		status.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("passive request at %v: %d", at, w.Code)
		}
	}
	if n := h.store.touches.Load(); n != 0 {
		t.Errorf("passive requests wrote activity %d times", n)
	}
}

func TestTouchThrottling(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	interval := h.m.TouchInterval(session.DefaultPolicy)
	if interval != time.Minute {
		t.Fatalf("default touch interval for 30m idle = %v, want 1m (a twentieth, at most a minute)", interval)
	}
	// Ten requests a second for a whole idle period.
	requests := 0
	for at := 100 * time.Millisecond; at <= idle; at += 100 * time.Millisecond {
		h.clock.Set(t0.Add(at))
		if !h.signedIn(tok) {
			t.Fatalf("refused at %v", at)
		}
		requests++
	}
	writes := h.store.touches.Load()
	if want := int64(idle / interval); writes != want {
		t.Errorf("%d requests wrote activity %d times, want %d (one per touch interval)", requests, writes, want)
	}
	t.Logf("%d requests, %d writes: %.2f writes per 1,000 requests", requests, writes, float64(writes)*1000/float64(requests))
}

func TestThrottledSessionEndsEarlyNeverLate(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	// Activity 59s after login is inside the touch interval, so it is not
	// written: the stored deadline stays login+idle.
	h.clock.Set(t0.Add(59 * time.Second))
	if !h.signedIn(tok) {
		t.Fatal("refused")
	}
	if n := h.store.touches.Load(); n != 0 {
		t.Fatalf("activity inside the touch interval was written (%d)", n)
	}
	// The session ends at login+idle: 59s early measured from the true last
	// activity, which is less than one touch interval...
	h.clock.Set(t0.Add(idle))
	if h.signedIn(tok) {
		t.Fatal("session outlived its stored idle deadline: it would end late")
	}
	early := 59 * time.Second
	if early >= h.m.TouchInterval(session.DefaultPolicy) {
		t.Fatalf("ended %v early, more than one touch interval", early)
	}
}

func TestExplicitTouchInterval(t *testing.T) {
	h := newHarness(t, func(c *session.Config) { c.TouchInterval = 5 * time.Second })
	tok := h.login("alice")
	for at := time.Second; at <= time.Minute; at += time.Second {
		h.clock.Set(t0.Add(at))
		h.signedIn(tok)
	}
	if n := h.store.touches.Load(); n != 12 {
		t.Errorf("60 requests over a minute with a 5s interval wrote %d times, want 12", n)
	}
}

func TestTokenAndCookie(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do("POST", "/login?user=alice", "")
	c := sessionCookie(t, w, "__Host-session")
	if len(c.Value) != 43 {
		t.Fatalf("token %q has %d characters, want 43", c.Value, len(c.Value))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(c.Value)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token is not 256 bits of unpadded base64url: %v, %d bytes", err, len(raw))
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Errorf("cookie attributes: Secure=%v HttpOnly=%v SameSite=%v Path=%q", c.Secure, c.HttpOnly, c.SameSite, c.Path)
	}
	header := w.Header().Get("Set-Cookie")
	for _, banned := range []string{"Domain", "Max-Age", "Expires"} {
		if strings.Contains(header, banned) {
			t.Errorf("Set-Cookie %q has %s: the session cookie must end with the browser", header, banned)
		}
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("a response carrying a token has Cache-Control %q, want no-store", got)
	}

	// The store knows the token only by its hash; the public ID is unrelated.
	recs, err := h.store.List(context.Background(), "alice", 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("List: %v, %d records", err, len(recs))
	}
	if recs[0].TokenHash != sha256.Sum256([]byte(c.Value)) {
		t.Error("the store does not hold the token's SHA-256 hash")
	}
	if id := recs[0].ID; id == "" || strings.Contains(c.Value, id) || strings.Contains(id, c.Value) {
		t.Errorf("public ID %q is empty or related to the token", id)
	}
}

func TestTokensAreUnique(t *testing.T) {
	h := newHarness(t, nil)
	seen := map[string]bool{}
	for range 1000 {
		tok := h.login("alice")
		if seen[tok] {
			t.Fatal("a token was issued twice")
		}
		seen[tok] = true
	}
}

func TestCookieOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cookie   session.CookieConfig
		wantName string
		secure   bool
		sameSite http.SameSite
		domain   string
	}{
		{"default", session.CookieConfig{}, "__Host-session", true, http.SameSiteLaxMode, ""},
		{"renamed", session.CookieConfig{Name: "__Host-id"}, "__Host-id", true, http.SameSiteLaxMode, ""},
		{"strict", session.CookieConfig{SameSite: http.SameSiteStrictMode}, "__Host-session", true, http.SameSiteStrictMode, ""},
		{"domain drops __Host-", session.CookieConfig{Domain: "example.com"}, "__Secure-session", true, http.SameSiteLaxMode, "example.com"},
		{"insecure opt-out keeps its name", session.CookieConfig{Name: "sid", InsecureAllowHTTP: true}, "sid", false, http.SameSiteLaxMode, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *session.Config) { c.Cookie = tc.cookie })
			c := sessionCookie(t, h.do("POST", "/login?user=alice", ""), tc.wantName)
			if c.Secure != tc.secure || c.SameSite != tc.sameSite || c.Domain != tc.domain || !c.HttpOnly {
				t.Errorf("got Secure=%v SameSite=%v Domain=%q HttpOnly=%v", c.Secure, c.SameSite, c.Domain, c.HttpOnly)
			}
		})
	}
	for _, bad := range []session.CookieConfig{
		{SameSite: http.SameSiteNoneMode},
		{InsecureAllowHTTP: true},                     // "__Host-session" cannot be sent without Secure
		{Name: "__Secure-s", InsecureAllowHTTP: true}, // nor can "__Secure-"
		{Name: "__Host-s", Domain: "example.com"},     // "__Host-" is this host only
		{Path: "/app"}, // "__Host-" is Path=/
		{Name: "s", Partitioned: true, InsecureAllowHTTP: true},
		{Name: "bad name"},
		{Name: "s", Path: "app"},
	} {
		if _, err := session.New(session.Config{Store: memstore.New(), SweepInterval: session.SweepOff, Cookie: bad}); err == nil {
			t.Errorf("CookieConfig %+v was accepted", bad)
		}
	}
}

func TestCookiePathAndPartitioned(t *testing.T) {
	h := newHarness(t, func(c *session.Config) {
		c.Cookie = session.CookieConfig{Name: "__Secure-shop", Path: "/shop", Partitioned: true}
	})
	res := h.do("POST", "/login?user=alice", "")
	c := sessionCookie(t, res, "__Secure-shop")
	if c.Path != "/shop" || !c.Secure {
		t.Errorf("cookie Path=%q Secure=%v, want /shop and Secure", c.Path, c.Secure)
	}
	if !strings.Contains(res.Header().Get("Set-Cookie"), "Partitioned") {
		t.Errorf("Set-Cookie %q lacks Partitioned", res.Header().Get("Set-Cookie"))
	}
}

func TestLoginNeverAdoptsAToken(t *testing.T) {
	h := newHarness(t, nil)
	// A well-formed token the server never issued, planted by an attacker.
	planted := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if h.signedIn(planted) {
		t.Fatal("an unknown token was accepted")
	}
	tok := h.login("alice", planted)
	if tok == planted {
		t.Fatal("login adopted the token the browser presented")
	}
	// Logging in again over a live session replaces its token and ends it.
	tok2 := h.login("alice", tok)
	if tok2 == tok {
		t.Fatal("login kept the old token")
	}
	if h.signedIn(tok) {
		t.Fatal("the token from before the second login still works")
	}
	if got := h.reason(tok); got != "logout" {
		t.Errorf("old token's end reason = %q, want logout", got)
	}
	if !h.signedIn(tok2) {
		t.Fatal("the new token does not work")
	}
}

func TestLogoutIsFinal(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	w := h.do("POST", "/logout", tok)
	if w.Code != http.StatusOK {
		t.Fatalf("logout: %d", w.Code)
	}
	c := sessionCookie(t, w, "__Host-session")
	if c.Value != "" || c.MaxAge >= 0 || !c.Secure || c.Path != "/" || !c.HttpOnly {
		t.Errorf("logout cookie %q does not delete the session cookie", w.Header().Get("Set-Cookie"))
	}
	if got := w.Header().Get("Clear-Site-Data"); got != `"cache", "cookies", "storage"` {
		t.Errorf("Clear-Site-Data = %q", got)
	}
	// The seed's flaw: a copy of the cookie kept working after logout.
	if h.signedIn(tok) {
		t.Fatal("a copy of the cookie still works after logout")
	}
	if got := h.reason(tok); got != "logout" {
		t.Errorf("end reason = %q, want logout", got)
	}
	if n := len(h.events.ended()); n != 1 {
		t.Errorf("%d end events, want 1", n)
	}
	// Logging out again, or without a session, is harmless.
	if w := h.do("POST", "/logout", tok); w.Code != http.StatusOK {
		t.Errorf("second logout: %d", w.Code)
	}
	if n := len(h.events.ended()); n != 1 {
		t.Errorf("%d end events after a replayed logout, want 1", n)
	}
}

func TestRevokeUserWithException(t *testing.T) {
	h := newHarness(t, nil)
	a1, a2, a3 := h.login("alice"), h.login("alice"), h.login("alice")
	b := h.login("bob")
	keep := currentID(t, h, a2)
	n, err := h.m.RevokeUser(context.Background(), "alice", keep)
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v; want 2, nil", n, err)
	}
	for _, tok := range []string{a1, a3} {
		if h.signedIn(tok) {
			t.Error("a revoked session still works")
		}
		if got := h.reason(tok); got != "revoked" {
			t.Errorf("end reason = %q, want revoked", got)
		}
	}
	if !h.signedIn(a2) || !h.signedIn(b) {
		t.Error("the excepted session or another user's session was revoked")
	}
	infos, err := h.m.List(context.Background(), "alice", 0)
	if err != nil || len(infos) != 1 || infos[0].ID != keep {
		t.Errorf("List after revoke = %+v, %v", infos, err)
	}
}

func TestRevokeOne(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	id := currentID(t, h, tok)
	// Bob learns Alice's session ID (from a shared screen, a log): revoking
	// it as himself must fail and leave her signed in.
	if err := h.m.Revoke(context.Background(), "bob", id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Revoke of another user's session = %v, want ErrNotFound", err)
	}
	if !h.signedIn(tok) {
		t.Fatal("another user revoked Alice's session")
	}
	if err := h.m.Revoke(context.Background(), "", id); err == nil {
		t.Fatal("Revoke without a user was accepted")
	}
	if err := h.m.Revoke(context.Background(), "alice", id); err != nil {
		t.Fatal(err)
	}
	if h.signedIn(tok) {
		t.Fatal("revoked session works")
	}
	if err := h.m.Revoke(context.Background(), "alice", id); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("second revoke = %v, want ErrNotFound", err)
	}
	if n := len(h.events.ended()); n != 1 {
		t.Errorf("%d end events, want 1", n)
	}
}

func TestListShowsClientAndTimes(t *testing.T) {
	h := newHarness(t, nil)
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("User-Agent", "TestBrowser/1.0")
	if _, err := h.m.Login(httptest.NewRecorder(), r, "alice", session.LoginOptions{Policy: session.Policy{IdleTimeout: 5 * time.Minute, AbsoluteTimeout: 4 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	infos, err := h.m.List(context.Background(), "alice", 0)
	if err != nil || len(infos) != 1 {
		t.Fatalf("List: %v %v", infos, err)
	}
	got := infos[0]
	if got.IP != "192.0.2.7" || got.UserAgent != "TestBrowser/1.0" || !got.CreatedAt.Equal(t0) || !got.LastActivity.Equal(t0) {
		t.Errorf("List = %+v", got)
	}
	if got.Policy != (session.Policy{IdleTimeout: 5 * time.Minute, AbsoluteTimeout: 4 * time.Hour}) {
		t.Errorf("the per-session policy was not kept: %+v", got.Policy)
	}
	// Expired but not yet swept sessions are not listed as live.
	h.clock.Advance(5 * time.Minute)
	if infos, _ := h.m.List(context.Background(), "alice", 0); len(infos) != 0 {
		t.Errorf("an expired session is listed: %+v", infos)
	}
}

func TestPerSessionPolicy(t *testing.T) {
	h := newHarness(t, nil)
	strict := session.Policy{IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour}
	w := httptest.NewRecorder()
	if _, err := h.m.Login(w, httptest.NewRequest("POST", "/", nil), "admin", session.LoginOptions{Policy: strict}); err != nil {
		t.Fatal(err)
	}
	tok := sessionCookie(t, w, h.m.CookieName()).Value
	h.clock.Advance(5*time.Minute - time.Nanosecond)
	if !h.signedIn(tok) {
		t.Fatal("refused before its own idle timeout")
	}
	h.clock.Advance(5 * time.Minute)
	if h.signedIn(tok) {
		t.Fatal("the session's own 5-minute idle timeout was not applied")
	}
	if _, err := h.m.Login(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), "x", session.LoginOptions{Policy: session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Minute}}); err == nil {
		t.Error("a policy with idle > absolute was accepted")
	}
}

func TestRenewAndReauthenticate(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	id := currentID(t, h, tok)

	// Stay active until a minute before the absolute limit.
	for at := 20 * time.Minute; at < absolute-time.Minute; at += 20 * time.Minute {
		h.clock.Set(t0.Add(at))
		h.signedIn(tok)
	}
	h.clock.Set(t0.Add(absolute - time.Minute))
	w := mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		return h.m.Reauthenticate(w, r)
	})
	tok2 := sessionCookie(t, w, h.m.CookieName()).Value
	if tok2 == tok {
		t.Fatal("re-authentication kept the token")
	}
	if h.signedIn(tok) {
		t.Fatal("the token from before re-authentication still works")
	}
	if got := currentID(t, h, tok2); got != id {
		t.Errorf("public ID changed from %q to %q; renewal keeps the session", id, got)
	}
	// Both clocks restarted: the old absolute deadline passes harmlessly.
	h.clock.Advance(2 * time.Minute)
	if !h.signedIn(tok2) {
		t.Fatal("re-authentication did not reset the absolute clock")
	}

	w = mustRun(t, h, tok2, func(w http.ResponseWriter, r *http.Request) error { return h.m.Renew(w, r) })
	tok3 := sessionCookie(t, w, h.m.CookieName()).Value
	if tok3 == tok2 || h.signedIn(tok2) || !h.signedIn(tok3) {
		t.Fatal("Renew did not replace the token")
	}
	renewed := 0
	for _, e := range h.events.events {
		if e.Kind == session.EventRenewed {
			renewed++
		}
	}
	if renewed != 2 || len(h.events.ended()) != 0 {
		t.Errorf("%d renewed and %d ended events, want 2 and 0", renewed, len(h.events.ended()))
	}
}

func TestEndEventExactlyOnce(t *testing.T) {
	h := newHarness(t, nil)
	byRequest := h.login("alice")
	bySweep := h.login("bob")
	h.clock.Advance(idle)
	if h.signedIn(byRequest) { // the request finds it expired and ends it
		t.Fatal("expired session accepted")
	}
	n, err := h.m.SweepExpired(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("SweepExpired = %d, %v; want 1 (bob's), nil", n, err)
	}
	// Presenting ended tokens again ends nothing again.
	for range 3 {
		h.signedIn(byRequest)
		h.signedIn(bySweep)
	}
	if n, _ := h.m.SweepExpired(context.Background()); n != 0 {
		t.Errorf("second sweep ended %d", n)
	}
	ended := h.events.ended()
	if len(ended) != 2 {
		t.Fatalf("%d end events, want exactly 2: %+v", len(ended), ended)
	}
	for _, e := range ended {
		if e.Reason != session.ReasonIdle || !e.Time.Equal(t0.Add(idle)) {
			t.Errorf("end event %+v: want reason idle at the deadline", e)
		}
	}
	if got := h.reason(bySweep); got != "idle" {
		t.Errorf("swept token's reason = %q, want idle", got)
	}
}

func TestSweeperEndsUnusedSessionsPromptly(t *testing.T) {
	// Real time, short timeouts: the end event of a session nobody uses comes
	// within two seconds of its deadline.
	events := make(chan session.Event, 10)
	m, err := session.New(session.Config{
		Store:  memstore.New(),
		Policy: session.Policy{IdleTimeout: 1500 * time.Millisecond, AbsoluteTimeout: time.Minute},
		Observers: []session.Observer{session.ObserverFunc(func(_ context.Context, e session.Event) {
			if e.Kind == session.EventEnded {
				events <- e
			}
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.Login(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), "alice", session.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := s.Info().IdleDeadline()
	select {
	case e := <-events:
		late := time.Since(deadline)
		if e.Reason != session.ReasonIdle || !e.Time.Equal(deadline) {
			t.Errorf("event %+v, want idle at %v", e, deadline)
		}
		if late > 2*time.Second {
			t.Errorf("end event came %v after the deadline, want within 2s", late)
		}
		t.Logf("end event %v after the deadline", late)
	case <-time.After(10 * time.Second):
		t.Fatal("no end event for a session that timed out unused")
	}
}

func TestNoResurrectionByRacingRequests(t *testing.T) {
	for round := range 20 {
		h := newHarness(t, func(c *session.Config) { c.TouchInterval = time.Nanosecond })
		tok := h.login("alice")
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := range 20 {
					h.clock.Advance(time.Millisecond) // every request is due a touch
					mustServe(h, tok, func(w http.ResponseWriter, r *http.Request) {
						if s := session.FromContext(r.Context()); s != nil && (i+j)%3 == 0 {
							s.Set(r.Context(), "k", "v")
						}
					})
				}
			}()
		}
		close(start)
		if w := h.do("POST", "/logout", tok); w.Code != http.StatusOK {
			t.Fatalf("logout: %d", w.Code)
		}
		wg.Wait()
		if h.signedIn(tok) {
			t.Fatalf("round %d: a request racing the logout brought the session back", round)
		}
		if recs, _ := h.store.List(context.Background(), "", 0); len(recs) != 0 {
			t.Fatalf("round %d: %d records left after logout", round, len(recs))
		}
		if n := len(h.events.ended()); n != 1 {
			t.Fatalf("round %d: %d end events", round, n)
		}
	}
}

func TestConcurrentRequestsOneSession(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				h.clock.Advance(time.Second)
				if !h.signedIn(tok) {
					t.Error("refused during concurrent use")
					return
				}
				mustServe(h, tok, func(w http.ResponseWriter, r *http.Request) {
					s := session.FromContext(r.Context())
					s.Set(r.Context(), "last", string(rune('a'+i%26)))
					s.Get("last")
					_ = s.IdleRemaining()
				})
			}
		}()
	}
	wg.Wait()
}

func TestSessionData(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		return session.FromContext(r.Context()).Set(r.Context(), "theme", "dark")
	})
	saves := h.store.saves.Load()
	mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		s := session.FromContext(r.Context())
		if v, _ := s.Get("theme"); v != "dark" {
			t.Errorf("theme = %q in the next request", v)
		}
		return s.Set(r.Context(), "theme", "dark") // unchanged: no write
	})
	if h.store.saves.Load() != saves {
		t.Error("setting an unchanged value wrote to the store")
	}
	mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		return session.FromContext(r.Context()).Delete(r.Context(), "theme")
	})
	mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		if _, ok := session.FromContext(r.Context()).Get("theme"); ok {
			t.Error("deleted key is still there")
		}
		return nil
	})
	// A save after the session ended fails and creates nothing.
	mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		s := session.FromContext(r.Context())
		if err := h.m.Logout(w, r); err != nil {
			return err
		}
		if err := s.Set(r.Context(), "x", "y"); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Set after logout = %v, want ErrNotFound", err)
		}
		return nil
	})
	if recs, _ := h.store.List(context.Background(), "", 0); len(recs) != 0 {
		t.Error("a data save after logout re-created the session")
	}
}

func TestExtendCountsEvenWhenPassive(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	h.clock.Advance(idle - time.Second)
	if w := h.do("POST", "/extend", tok, "Session-Activity: passive"); w.Code != http.StatusOK {
		t.Fatalf("extend: %d %s", w.Code, w.Body)
	}
	h.clock.Advance(idle - time.Nanosecond)
	if !h.signedIn(tok) {
		t.Fatal("Extend did not move the idle deadline")
	}
}

func TestAuthenticatedResponsesAreNotCached(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	w := h.do("GET", "/private", tok)
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q on an authenticated response", got)
	}
	if got := w.Header().Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
		t.Errorf("Vary = %q on an authenticated response, want Cookie", got)
	}
	// A Vary set before the middleware keeps its values.
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding")
		h.h.ServeHTTP(w, r)
	})
	r := httptest.NewRequest("GET", "/private", nil)
	r.Header.Set("Cookie", h.m.CookieName()+"="+tok)
	w = httptest.NewRecorder()
	outer.ServeHTTP(w, r)
	if got := strings.Join(w.Header().Values("Vary"), ", "); got != "Accept-Encoding, Cookie" {
		t.Errorf("Vary = %q, want Accept-Encoding, Cookie", got)
	}
}

// TestRequestContext checks the context a handler gets: the session is found
// from contexts derived from it, the values and the cancellation of the
// request's own context still reach them, and printing it shows no secret.
func TestRequestContext(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	type key struct{}
	base, cancelRequest := context.WithCancel(context.WithValue(context.Background(), key{}, "outer"))
	var derived context.Context
	var printed string
	handler := h.m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Hour)
		defer cancel()
		derived = context.WithoutCancel(ctx)
		if s := session.FromContext(ctx); s == nil || s.UserID() != "alice" {
			t.Errorf("a derived context has session %v", s)
		}
		if v := ctx.Value(key{}); v != "outer" {
			t.Errorf("the request context's value = %v", v)
		}
		cancelRequest()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Error("cancelling the request did not reach a context derived from the handler's")
		}
		printed = fmt.Sprint(r.Context())
	}))
	r := httptest.NewRequestWithContext(base, "GET", "/private", nil)
	r.Header.Set("Cookie", h.m.CookieName()+"="+tok)
	handler.ServeHTTP(httptest.NewRecorder(), r)
	if session.FromContext(derived) == nil {
		t.Error("the session is lost after WithoutCancel")
	}
	hash := sha256.Sum256([]byte(tok))
	if strings.Contains(printed, "alice") || strings.Contains(printed, base64.RawURLEncoding.EncodeToString(hash[:])) || strings.Contains(printed, fmt.Sprint(hash[:4])) {
		t.Errorf("the printed context shows the session: %s", printed)
	}
}

func TestMalformedTokensNeverReachTheStore(t *testing.T) {
	valid := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct{ name, value string }{
		{"empty", ""},
		{"short", "abc"},
		{"one too long", valid + "A"},
		{"one too short", valid[:42]},
		{"standard base64 alphabet", "+" + valid[1:]},
		{"padding", valid[:42] + "="},
		{"non-canonical last character", valid[:42] + "B"},
		{"non-UTF-8", "\xff\xfe" + valid[2:]},
		{"oversized", strings.Repeat("A", 100_000)},
		{"space inside", valid[:20] + " " + valid[21:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.login("alice")
			gets := h.store.gets.Load()
			r := httptest.NewRequest("GET", "/private", nil)
			r.Header.Set("Cookie", "__Host-session="+tc.value)
			w := httptest.NewRecorder()
			h.h.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", w.Code)
			}
			if n := h.store.gets.Load() - gets; n != 0 {
				t.Errorf("a malformed token reached the store %d times", n)
			}
		})
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	failing := &failingStore{Store: h.store}
	m, err := session.New(session.Config{Store: failing, Clock: h.clock, SweepInterval: session.SweepOff})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reached := false
	handler := m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
	failing.fail = true
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", m.CookieName()+"="+tok)
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || reached {
		t.Errorf("store down: status %d, handler reached %v; want 503 and no handler", w.Code, reached)
	}
	failing.fail = false
	w = httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !reached {
		t.Errorf("store back: status %d, want 200", w.Code)
	}
}

type failingStore struct {
	session.Store
	fail bool
}

func (s *failingStore) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	if s.fail {
		return session.Record{}, errors.New("connection refused")
	}
	return s.Store.Get(ctx, h)
}

// currentID returns the public ID of the session behind tok.
func currentID(t *testing.T, h *harness, tok string) string {
	t.Helper()
	var id string
	mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		id = session.FromContext(r.Context()).ID()
		return nil
	})
	return id
}

// mustRun runs f as the handler of a request with tok inside the Manager's
// middleware and fails the test if the request has no session or f fails.
func mustRun(t *testing.T, h *harness, tok string, f func(http.ResponseWriter, *http.Request) error) *httptest.ResponseRecorder {
	t.Helper()
	var err error
	w := serve(h, tok, h.m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { err = f(w, r) })))
	if w.Code != http.StatusOK || err != nil {
		t.Fatalf("request: status %d, err %v", w.Code, err)
	}
	return w
}

func mustServe(h *harness, tok string, f http.HandlerFunc) {
	serve(h, tok, h.m.Handler(f))
}

func serve(h *harness, tok string, handler http.Handler) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", h.m.CookieName()+"="+tok)
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	return w
}

func TestSessionDataMustBeText(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	mustRun(t, h, tok, func(w http.ResponseWriter, r *http.Request) error {
		s := session.FromContext(r.Context())
		for _, bad := range []string{"a\x00b", "\xff"} {
			if err := s.Set(r.Context(), "k", bad); !errors.Is(err, session.ErrInvalidData) {
				t.Errorf("Set(%q) = %v, want ErrInvalidData", bad, err)
			}
			if err := s.Set(r.Context(), bad, "v"); !errors.Is(err, session.ErrInvalidData) {
				t.Errorf("Set key %q = %v, want ErrInvalidData", bad, err)
			}
		}
		return nil
	})
	if n := h.store.saves.Load(); n != 0 {
		t.Errorf("invalid data reached the store %d times", n)
	}
}

func TestCount(t *testing.T) {
	h := newHarness(t, nil)
	h.login("alice")
	tok := h.login("bob")
	if n, err := h.m.Count(context.Background()); err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want 2", n, err)
	}
	h.do("POST", "/logout", tok)
	if n, _ := h.m.Count(context.Background()); n != 1 {
		t.Fatalf("Count after a logout = %d, want 1", n)
	}
}

// Concurrent requests of one busy session that all read the record before
// the first write landed write its activity once, not once each. In a
// synctest bubble, the store's delay passes at once for every request
// together, so they overlap however loaded the machine is.
func TestConcurrentRequestsTouchOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		tok := h.login("alice")
		h.clock.Advance(2 * time.Minute) // every request below is due a touch
		slow := &slowStore{Store: h.store, delay: 20 * time.Millisecond}
		m, err := session.New(session.Config{Store: slow, Clock: h.clock, SweepInterval: session.SweepOff})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		handler := m.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Cookie", m.CookieName()+"="+tok)
				handler.ServeHTTP(httptest.NewRecorder(), r)
			}()
		}
		wg.Wait()
		if n := h.store.touches.Load(); n != 1 {
			t.Errorf("32 overlapping requests wrote activity %d times, want 1", n)
		}
	})
}

// slowStore answers every Get delay after reading the record, as a store
// across a network does, so that requests read the same record and overlap.
type slowStore struct {
	session.Store
	delay time.Duration
}

func (s *slowStore) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	rec, err := s.Store.Get(ctx, h)
	time.Sleep(s.delay)
	return rec, err
}

// slowSweepStore makes every EndExpired take at least took, and records
// when each call began and ended.
type slowSweepStore struct {
	session.Store
	took time.Duration

	mu    sync.Mutex
	calls [][2]time.Time
}

func (s *slowSweepStore) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	began := time.Now()
	time.Sleep(s.took)
	ended, err := s.Store.EndExpired(ctx, now, keep, limit)
	s.mu.Lock()
	s.calls = append(s.calls, [2]time.Time{began, time.Now()})
	s.mu.Unlock()
	return ended, err
}

// damagedSweepStore reports, beside what each EndExpired call ended, a
// record it could not read and ended without returning, as a SQL store
// does when another writer damaged a row.
type damagedSweepStore struct{ session.Store }

var errDamaged = errors.New(`record "id-damaged" has unreadable data`)

func (s damagedSweepStore) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	ended, err := s.Store.EndExpired(ctx, now, keep, limit)
	return ended, errors.Join(err, errDamaged)
}

// The records a sweep ended get their end events even when the store also
// reports an error for one it could not read, and the error reaches the
// caller.
func TestSweepSendsEndEventsBesideAnError(t *testing.T) {
	clock := sessiontest.NewClock(t0)
	var ended []string
	m, err := session.New(session.Config{
		Store: damagedSweepStore{memstore.New()}, Clock: clock, SweepInterval: session.SweepOff,
		Policy: session.Policy{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour},
		Observers: []session.Observer{session.ObserverFunc(func(_ context.Context, e session.Event) {
			if e.Kind == session.EventEnded {
				ended = append(ended, e.Session.UserID)
			}
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, user := range []string{"a", "b"} {
		if _, err := m.Login(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), user, session.LoginOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	n, err := m.SweepExpired(context.Background())
	if n != 2 || !errors.Is(err, errDamaged) {
		t.Errorf("SweepExpired = %d, %v; want 2 and the store's error", n, err)
	}
	slices.Sort(ended)
	if !slices.Equal(ended, []string{"a", "b"}) {
		t.Errorf("end events for %v, want a and b", ended)
	}
}

// A sweep with a backlog pauses between full batches three times as long as
// each batch took, so that draining it uses at most a quarter of a core.
// Only a lower bound on the pauses is checked. The test runs in a synctest bubble, so the
// store's 40 ms and the pauses pass on a fake clock, not in real time.
func TestSweepPacesItselfBetweenFullBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := sessiontest.NewClock(t0)
		store := &slowSweepStore{Store: memstore.New(), took: 40 * time.Millisecond}
		m, err := session.New(session.Config{
			Store: store, Clock: clock, SweepInterval: session.SweepOff, SweepBatch: 2,
			Policy: session.Policy{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		for _, user := range []string{"a", "b", "c", "d", "e"} {
			if _, err := m.Login(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), user, session.LoginOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Minute)
		if n, err := m.SweepExpired(context.Background()); n != 5 || err != nil {
			t.Fatalf("SweepExpired = %d, %v; want 5, nil", n, err)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if len(store.calls) != 3 { // 2 + 2 + 1
			t.Fatalf("%d EndExpired calls, want 3", len(store.calls))
		}
		for i := 1; i < len(store.calls); i++ {
			prev, this := store.calls[i-1], store.calls[i]
			if took, paused := prev[1].Sub(prev[0]), this[0].Sub(prev[1]); paused < 3*took {
				t.Errorf("batch %d took %v and the next began %v later, want a pause at least three times as long", i, took, paused)
			}
		}
	})
}

// TestCheckDecidesActivity drives Check as a gateway does: the caller says
// whether a request is activity, and only those move the idle clock, at
// once and within touch throttling, whatever the headers say; inside
// Handler on a Passive route, Check reuses the lookup and Handler adds no
// second write.
func TestCheckDecidesActivity(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.login("alice")
	check := func(active bool, headers ...string) *http.Request {
		r := httptest.NewRequest("GET", "/gate", nil)
		r.Header.Set("Cookie", h.m.CookieName()+"="+tok)
		for _, line := range headers {
			k, v, _ := strings.Cut(line, ":")
			r.Header.Set(k, strings.TrimSpace(v))
		}
		return h.m.Check(r, active)
	}

	// Passive checks for most of the idle period: signed in, no write.
	for at := 10 * time.Second; at < idle; at += 10 * time.Second {
		h.clock.Set(t0.Add(at))
		if session.FromContext(check(false).Context()) == nil {
			t.Fatalf("passive check at %v: no session", at)
		}
	}
	if n := h.store.touches.Load(); n != 0 {
		t.Fatalf("passive checks wrote activity %d times", n)
	}

	// An active check writes at once, even with a passive header, and a
	// second one within the touch interval does not.
	h.clock.Set(t0.Add(idle - time.Second))
	check(true, "Session-Activity: passive")
	check(true)
	if n := h.store.touches.Load(); n != 1 {
		t.Fatalf("two active checks within the touch interval wrote %d times, want 1", n)
	}
	h.clock.Set(t0.Add(2*idle - 2*time.Second))
	if session.FromContext(check(false).Context()) == nil {
		t.Fatal("the active check did not move the idle deadline")
	}
	h.clock.Set(t0.Add(2*idle - time.Second))
	r := check(false)
	if session.FromContext(r.Context()) != nil || session.EndedReason(r.Context()) != session.ReasonIdle {
		t.Fatalf("after the idle period: session %v, reason %q; want none, idle",
			session.FromContext(r.Context()), session.EndedReason(r.Context()))
	}

	// Inside Handler, on a Passive route: one lookup, one write.
	tok = h.login("bob")
	h.store.gets.Store(0)
	h.store.touches.Store(0)
	h.clock.Set(h.clock.Now().Add(time.Minute))
	gate := h.m.Handler(session.Passive(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if session.FromContext(h.m.Check(r, true).Context()) == nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})))
	rq := httptest.NewRequest("GET", "/gate", nil)
	rq.Header.Set("Cookie", h.m.CookieName()+"="+tok)
	w := httptest.NewRecorder()
	gate.ServeHTTP(w, rq)
	if w.Code != http.StatusOK {
		t.Fatalf("check inside Handler: %d", w.Code)
	}
	if g, n := h.store.gets.Load(), h.store.touches.Load(); g != 1 || n != 1 {
		t.Fatalf("check inside Handler: %d lookups and %d writes, want 1 and 1", g, n)
	}
}

// limitRecorder records the limit of every EndExpired call, and suggests
// a sweep batch of its own when batch is set.
type limitRecorder struct {
	session.Store
	batch  int
	mu     sync.Mutex
	limits []int
}

func (s *limitRecorder) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	s.mu.Lock()
	s.limits = append(s.limits, limit)
	s.mu.Unlock()
	return s.Store.EndExpired(ctx, now, keep, limit)
}

func (s *limitRecorder) SweepBatch() int { return s.batch }

// The sweep's batch is, in order: Config.SweepBatch when set, the store's
// suggestion (SweepBatcher), and 500 when the store suggests nothing. The
// memory and SQLite stores suggest small ones, since each of their calls
// holds a core of this process for its whole length.
func TestSweepBatchComesFromConfigThenStore(t *testing.T) {
	for _, tc := range []struct {
		name          string
		config, store int
		want          int
	}{
		{"the store's suggestion", 0, 7, 7},
		{"no suggestion", 0, 0, 500},
		{"Config over the store", 3, 7, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &limitRecorder{Store: memstore.New(), batch: tc.store}
			m, err := session.New(session.Config{Store: store, SweepInterval: session.SweepOff, SweepBatch: tc.config})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if _, err := m.SweepExpired(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(store.limits) != 1 || store.limits[0] != tc.want {
				t.Errorf("EndExpired limits %v, want [%d]", store.limits, tc.want)
			}
		})
	}
	if got := memstore.New().SweepBatch(); got < 1 || got > 100 {
		t.Errorf("memstore suggests batches of %d, want 1 to 100", got)
	}
}
