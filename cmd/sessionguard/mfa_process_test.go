package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// What the second-factor pages show: the authenticator secret in groups of
// four base32 characters, and recovery codes in four groups of four.
var (
	secretRE       = regexp.MustCompile(`\b[A-Z2-7]{4}(?: [A-Z2-7]{4}){7}\b`)
	recoveryCodeRE = regexp.MustCompile(`\b[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}\b`)
)

// sessionCookie returns the session cookie that resp sets, as a Cookie
// header value, or "" if it sets none.
func sessionCookie(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// password posts user's password and expects to be sent to the second
// factor's page next (not signed in yet); it returns the cookie of the
// pending sign-in.
func password(t *testing.T, s *server, user, next string) string {
	t.Helper()
	resp, body := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {user}, "password": {testPassword}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != next {
		t.Fatalf("password of %s: %d to %q, want 303 to %s\n%.500s", user, resp.StatusCode, resp.Header.Get("Location"), next, body)
	}
	cookie := sessionCookie(resp)
	if cookie == "" {
		t.Fatalf("the password of %s set no session cookie for the pending sign-in", user)
	}
	return cookie
}

// code returns the authenticator code of secret for now plus ahead. The
// server accepts codes one 30-second step early or late, each once: the
// test confirms the app with the code of now, and signs in with the next
// step's, which is later than any code used before it.
func code(t *testing.T, secret string, ahead time.Duration) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, time.Now().Add(ahead))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// expectSignedOut checks that cookie opens no signed-in page: a pending
// sign-in is no sign-in.
func expectSignedOut(t *testing.T, s *server, cookie, what string) {
	t.Helper()
	if resp, _ := do(t, "GET", s.url+"/", cookie, nil); resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/auth/login") {
		t.Errorf("home page with %s: %d to %q, want 303 to the sign-in page", what, resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := do(t, "GET", s.url+"/auth/status", cookie, nil, "Accept", "application/json"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/auth/status with %s: %d %s, want 401", what, resp.StatusCode, body)
	}
}

// expectSignedIn checks that cookie is a signed-in session of user.
func expectSignedIn(t *testing.T, s *server, cookie, user string) {
	t.Helper()
	resp, body := do(t, "GET", s.url+"/auth/status", cookie, nil, "Accept", "application/json")
	var st struct {
		Authenticated bool   `json:"authenticated"`
		User          string `json:"user"`
	}
	if err := json.Unmarshal([]byte(body), &st); resp.StatusCode != http.StatusOK || err != nil || !st.Authenticated || st.User != user {
		t.Fatalf("/auth/status: %d %s, want %s signed in", resp.StatusCode, body, user)
	}
}

func logout(t *testing.T, s *server, cookie string) {
	t.Helper()
	if resp, _ := do(t, "POST", s.url+"/auth/logout", cookie, url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d, want 303", resp.StatusCode)
	}
}

// TestProcessMFA walks a user through the second factor on the real
// server with -mfa required: sent to enrolment after the password, the
// secret read from the page, confirmed with a code the test computes,
// recovery codes shown once; then sign-ins with a fresh code (a replayed
// one refused) and with a recovery code, which works once.
func TestProcessMFA(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-mfa", "required")
	s.waitLog(regexp.MustCompile(`msg="sessionguard listening".* mfa=required admin_mfa=required .*passkeys_rp_id=localhost`))
	mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", "alice")

	// A script is told what is missing, and gets no session it could use.
	resp, body := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {"alice"}, "password": {testPassword}}, "Accept", "application/json")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error":"enrolment_required"`) || !strings.Contains(body, `"next":"/auth/mfa/enrol"`) {
		t.Errorf("JSON sign-in without a second factor: %d %s, want 401 enrolment_required", resp.StatusCode, body)
	}

	pending := password(t, s, "alice", "/auth/mfa/enrol")
	expectSignedOut(t, s, pending, "the pending sign-in")
	resp, body = do(t, "GET", s.url+"/auth/mfa/enrol", pending, nil)
	secret := strings.ReplaceAll(secretRE.FindString(body), " ", "")
	if resp.StatusCode != http.StatusOK || secret == "" {
		t.Fatalf("enrolment page: %d, secret %q\n%.2000s", resp.StatusCode, secret, body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("enrolment page Cache-Control %q, want no-store: it shows the secret", cc)
	}

	// A wrong code first: refused, and the sign-in is still pending.
	good := code(t, secret, 0)
	wrong := good[:5] + strconv.Itoa((int(good[5]-'0')+1)%10)
	if resp, _ := do(t, "POST", s.url+"/auth/mfa/enrol", pending, url.Values{"code": {wrong}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("enrolment with a wrong code: %d, want 401", resp.StatusCode)
	}
	expectSignedOut(t, s, pending, "the pending sign-in after a wrong code")

	resp, body = do(t, "POST", s.url+"/auth/mfa/enrol", pending, url.Values{"code": {good}})
	codes := recoveryCodeRE.FindAllString(body, -1)
	slices.Sort(codes)
	codes = slices.Compact(codes)
	if resp.StatusCode != http.StatusOK || len(codes) != 10 {
		t.Fatalf("enrolment with the right code: %d and %d recovery codes, want 200 and 10\n%.2000s", resp.StatusCode, len(codes), body)
	}
	cookie := sessionCookie(resp)
	if cookie == "" || cookie == pending {
		t.Fatalf("enrolment signed in with cookie %q, want a new one", cookie)
	}
	expectSignedIn(t, s, cookie, "alice")
	expectSignedOut(t, s, pending, "the pending sign-in's old cookie")
	logout(t, s, cookie)

	// A fresh code signs in; the same code again is a replay.
	pending = password(t, s, "alice", "/auth/mfa")
	fresh := code(t, secret, 30*time.Second)
	resp, _ = do(t, "POST", s.url+"/auth/mfa", pending, url.Values{"code": {fresh}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in with a fresh code: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie = sessionCookie(resp)
	expectSignedIn(t, s, cookie, "alice")
	logout(t, s, cookie)
	pending = password(t, s, "alice", "/auth/mfa")
	if resp, _ := do(t, "POST", s.url+"/auth/mfa", pending, url.Values{"code": {fresh}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with a replayed code: %d, want 401", resp.StatusCode)
	}
	expectSignedOut(t, s, pending, "the pending sign-in after a replayed code")

	// A recovery code stands in for the app, once.
	resp, _ = do(t, "POST", s.url+"/auth/mfa", pending, url.Values{"code": {codes[0]}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in with a recovery code: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie = sessionCookie(resp)
	expectSignedIn(t, s, cookie, "alice")
	logout(t, s, cookie)
	pending = password(t, s, "alice", "/auth/mfa")
	if resp, _ := do(t, "POST", s.url+"/auth/mfa", pending, url.Values{"code": {codes[0]}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with a used recovery code: %d, want 401", resp.StatusCode)
	}
	expectSignedOut(t, s, pending, "the pending sign-in after a used recovery code")

	// The audit log names the factors of each sign-in.
	out := mustCLI(t, s.dir, "", "audit", "-db", s.db, "-json", "-user", "alice")
	var got []string
	for line := range strings.Lines(out) {
		var e struct{ Event, Detail string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch e.Event {
		case "login_succeeded", "mfa_enrolled", "mfa_failed", "recovery_code_used":
			got = append(got, e.Event+" "+e.Detail)
		}
	}
	for _, want := range []string{
		"mfa_enrolled totp", "mfa_enrolled recovery_codes", "login_succeeded password+totp",
		"login_succeeded password+recovery_code", "recovery_code_used ",
	} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
			t.Errorf("the audit log lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(got), func(g string) bool { return !strings.HasPrefix(g, "mfa_failed") })); n != 3 {
		t.Errorf("%d mfa_failed entries, want 3 (a wrong, a replayed and a used code):\n%s", n, strings.Join(got, "\n"))
	}

	// The administrator's way back for a user who lost the phone: the
	// next sign-in enrols again.
	if out := mustCLI(t, s.dir, "", "user", "mfa-reset", "-db", s.db, "alice"); !strings.Contains(out, "removed the authenticator app and 9 recovery codes of alice") {
		t.Errorf("user mfa-reset printed %q", out)
	}
	password(t, s, "alice", "/auth/mfa/enrol")
}

// TestProcessMFAGateway: in reverse-proxy mode, a sign-in waiting for its
// second factor reaches nothing of the application.
func TestProcessMFAGateway(t *testing.T) {
	t.Parallel()
	called := make(chan string, 10)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- r.URL.Path
		w.Write([]byte("the application"))
	}))
	t.Cleanup(app.Close)
	s := startServer(t, "-upstream", app.URL, "-mfa", "required")
	mustCLI(t, s.dir, testPassword+"\n", "user", "add", "-db", s.db, "-password-stdin", "alice")

	pending := password(t, s, "alice", "/auth/mfa/enrol")
	resp, _ := do(t, "GET", s.url+"/app/page", pending, nil, "Accept", "text/html", "Sec-Fetch-Mode", "navigate")
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc == nil || loc.Path != "/auth/login" {
		t.Errorf("the application with a pending sign-in: %d to %q, want 302 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	select {
	case p := <-called:
		t.Errorf("the application was called (%s) for a sign-in without its second factor", p)
	default:
	}
}
