package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
)

// withMFA sets the second-factor policies of users and admins.
func withMFA(user, admin account.MFAPolicy) envOption {
	return func(c *Config) { c.MFA, c.AdminMFA = user, admin }
}

// code returns the authenticator code of secret (as the enrolment page
// shows it, in groups) at the env's time.
func (e *testEnv) code(secret string) string {
	e.t.Helper()
	c, err := totp.GenerateCode(strings.ReplaceAll(secret, " ", ""), e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// enrolTOTP gives user a confirmed authenticator app, as if set up earlier,
// and returns its secret. The clock moves to the next time step, so that
// the code used to confirm is not the one the test uses next.
func (e *testEnv) enrolTOTP(user string) string {
	e.t.Helper()
	ctx := e.t.Context()
	en, err := e.accounts.BeginTOTP(ctx, user)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.accounts.ConfirmTOTP(ctx, user, e.code(en.Secret)); err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(account.TOTPPeriod)
	return en.Secret
}

// password posts the sign-in form.
func (c *client) password(name, password string) *http.Response {
	c.e.t.Helper()
	return c.post("/auth/login", url.Values{"username": {name}, "password": {password}, "next": {"/account"}})
}

// signedInAs reports who the client is signed in as ("" for nobody), from
// /auth/status.
func (c *client) signedInAs() string {
	c.e.t.Helper()
	res := c.get("/auth/status", "Accept", "application/json")
	var st struct {
		User string `json:"user"`
	}
	json.Unmarshal([]byte(readBody(res)), &st)
	if res.StatusCode != http.StatusOK {
		return ""
	}
	return st.User
}

var (
	secretOnPage = regexp.MustCompile(`data-totp-secret>([A-Z2-7 ]+)<`)
	codesOnPage  = regexp.MustCompile(`<code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code>`)
)

func secretIn(t *testing.T, page string) string {
	t.Helper()
	m := secretOnPage.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no authenticator secret on the page:\n%s", page)
	}
	return m[1]
}

func recoveryCodesIn(t *testing.T, page string) []string {
	t.Helper()
	var codes []string
	for _, m := range codesOnPage.FindAllStringSubmatch(page, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != account.RecoveryCodeCount {
		t.Fatalf("%d recovery codes on the page, want %d:\n%s", len(codes), account.RecoveryCodeCount, page)
	}
	return codes
}

// wantAudit fails unless user has an entry of event whose Detail is detail.
func (e *testEnv) wantAudit(event audit.Event, user, detail string) {
	e.t.Helper()
	var details []string
	for _, en := range e.auditFind(event, user) {
		if en.Detail == detail {
			return
		}
		details = append(details, en.Detail)
	}
	e.t.Errorf("no %s entry of %s with detail %q; details: %q", event, user, detail, details)
}

// What follows a right password: signed in at once, the second factor, or
// enrolment first, for browsers and JSON clients.
func TestSecondFactorDecisions(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFARequired))
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("bob", bobPassword, account.RoleUser)
	e.addUser("root", rootPassword, account.RoleAdmin)
	e.enrolTOTP("bob")

	for _, tc := range []struct {
		name, user, password string
		location, jsonError  string // jsonError empty: signed in
	}{
		{"optional, no factor: password alone", "alice", alicePassword, "/account", ""},
		{"optional, with an app: asked for it", "bob", bobPassword, "/auth/mfa", "second_factor_required"},
		{"required, no factor: enrol first", "root", rootPassword, "/auth/mfa/enrol", "enrolment_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			wantRedirect(t, b.password(tc.user, tc.password), tc.location)
			want := tc.user
			if tc.jsonError != "" {
				want = ""
			}
			if got := b.signedInAs(); got != want {
				t.Errorf("signed in as %q, want %q", got, want)
			}

			s := e.script()
			res := s.password(tc.user, tc.password)
			if tc.jsonError == "" {
				wantRedirect(t, res, "/account")
				return
			}
			var body struct{ Error, Next string }
			json.Unmarshal([]byte(wantStatus(t, res, http.StatusUnauthorized)), &body)
			if body.Error != tc.jsonError || body.Next != tc.location {
				t.Errorf("JSON answer %+v, want error %q, next %q", body, tc.jsonError, tc.location)
			}
			if s.sessionCookie() == "" {
				t.Error("a JSON client got no cookie for its pending sign-in")
			}
		})
	}
}

// Off means off: a user with an app is not asked for it.
func TestSecondFactorOff(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOff, account.MFAOff))
	e.addUser("bob", bobPassword, account.RoleUser)
	e.enrolTOTP("bob")
	wantRedirect(t, e.browser().password("bob", bobPassword), "/account")
}

// The whole flow of an administrator who must enrol: the secret from the
// page, a confirming code, the recovery codes once, then sign-ins with a
// fresh code (a replayed one refused) and with a recovery code (once).
func TestEnrolThenSignInWithCodes(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFARequired))
	e.addUser("root", rootPassword, account.RoleAdmin)

	b := e.browser()
	wantRedirect(t, b.password("root", rootPassword), "/auth/mfa/enrol")
	wantRedirect(t, b.get("/auth/mfa"), "/auth/mfa/enrol")
	page := wantStatus(t, b.get("/auth/mfa/enrol"), http.StatusOK)
	if !strings.Contains(page, `src="data:image/png;base64,`) {
		t.Error("the enrolment page shows no QR code")
	}
	secret := secretIn(t, page)

	// Nothing else works meanwhile.
	wantRedirect(t, b.get("/"), "/auth/login?next=%2F")
	wantRedirect(t, b.get("/account"), "/auth/login?next=%2Faccount")

	wrong := wantStatus(t, b.post("/auth/mfa/enrol", url.Values{"code": {"000000"}}), http.StatusUnauthorized)
	if secretOnPage.MatchString(wrong) {
		t.Error("a wrong code showed a new secret: the one in the app would no longer match")
	}
	page = wantStatus(t, b.post("/auth/mfa/enrol", url.Values{"code": {e.code(secret)}}), http.StatusOK)
	codes := recoveryCodesIn(t, page)
	if !strings.Contains(page, `href="/account"`) {
		t.Error("the recovery codes page does not continue to next")
	}
	if got := b.signedInAs(); got != "root" {
		t.Fatalf("after enrolment signed in as %q, want root", got)
	}
	e.wantAudit(audit.LoginSucceeded, "root", "password+totp")
	e.wantAudit(audit.MFAEnrolled, "root", "totp")
	e.wantAudit(audit.MFAEnrolled, "root", "recovery_codes")

	// The confirming code was used: signing in again with it is refused.
	wantRedirect(t, b.post("/auth/logout", nil), "/auth/login?reason=logout")
	used := e.code(secret)
	wantRedirect(t, b.password("root", rootPassword), "/auth/mfa")
	page = wantStatus(t, b.post("/auth/mfa", url.Values{"code": {used}}), http.StatusUnauthorized)
	if !strings.Contains(page, "was used already") {
		t.Errorf("a used code's page says:\n%s", page)
	}
	e.clock.Advance(account.TOTPPeriod)
	fresh := e.code(secret)
	wantRedirect(t, b.post("/auth/mfa", url.Values{"code": {fresh}}), "/account")
	if got := b.signedInAs(); got != "root" {
		t.Fatalf("signed in as %q, want root", got)
	}

	// A replay of that code in another sign-in, within its window.
	other := e.browser()
	wantRedirect(t, other.password("root", rootPassword), "/auth/mfa")
	wantStatus(t, other.post("/auth/mfa", url.Values{"code": {fresh}}), http.StatusUnauthorized)

	// A recovery code works once, typed in upper case with spaces.
	wantRedirect(t, other.post("/auth/mfa", url.Values{"code": {strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))}}), "/account")
	if got := other.signedInAs(); got != "root" {
		t.Fatalf("signed in with a recovery code as %q, want root", got)
	}
	e.wantAudit(audit.LoginSucceeded, "root", "password+recovery_code")
	e.wantAudit(audit.RecoveryCodeUsed, "root", "at sign-in; 9 left")
	third := e.browser()
	wantRedirect(t, third.password("root", rootPassword), "/auth/mfa")
	wantStatus(t, third.post("/auth/mfa", url.Values{"code": {codes[3]}}), http.StatusUnauthorized)
	if got := third.signedInAs(); got != "" {
		t.Errorf("a used recovery code signed in %q", got)
	}
}

// Five wrong codes end the pending sign-in; the account's second factors
// are then throttled for a while, across new sign-ins, while a session
// already signed in goes on.
func TestWrongCodesEndThePendingSignIn(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("bob", bobPassword, account.RoleUser)
	secret := e.enrolTOTP("bob")

	owner := e.browser()
	wantRedirect(t, owner.password("bob", bobPassword), "/auth/mfa")
	wantRedirect(t, owner.post("/auth/mfa", url.Values{"code": {e.code(secret)}}), "/account")

	attacker := e.browser()
	wantRedirect(t, attacker.password("bob", bobPassword), "/auth/mfa")
	for i := range maxPendingFailures - 1 {
		page := wantStatus(t, attacker.post("/auth/mfa", url.Values{"code": {"12345" + string(rune('0'+i))}}), http.StatusUnauthorized)
		if !strings.Contains(page, wrongCodeMessage) {
			t.Fatalf("wrong code %d: page says\n%s", i+1, page)
		}
	}
	wantRedirect(t, attacker.post("/auth/mfa", url.Values{"code": {"999999"}}), "/auth/login?mfa=failed&next=%2Faccount")
	wantRedirect(t, attacker.get("/auth/mfa"), "/auth/login")
	page := wantStatus(t, attacker.get("/auth/login?mfa=failed&next=%2Faccount"), http.StatusOK)
	if !strings.Contains(page, "Too many wrong codes") {
		t.Errorf("the sign-in page does not say why:\n%s", page)
	}
	if n := len(e.auditFind(audit.MFAFailed, "bob")); n != maxPendingFailures {
		t.Errorf("%d mfa_failed entries, want %d", n, maxPendingFailures)
	}

	// A new sign-in, even with the right code, waits for the lock.
	wantRedirect(t, attacker.password("bob", bobPassword), "/auth/mfa")
	e.clock.Advance(account.TOTPPeriod)
	res := attacker.post("/auth/mfa", url.Values{"code": {e.code(secret)}})
	wantStatus(t, res, http.StatusTooManyRequests)
	if res.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// The owner's session is untouched.
	if got := owner.signedInAs(); got != "bob" {
		t.Errorf("the owner's session: signed in as %q, want bob", got)
	}
	e.clock.Advance(account.DefaultAccountThrottle.Lockout)
	wantRedirect(t, attacker.post("/auth/mfa", url.Values{"code": {e.code(secret)}}), "/account")
}

// A pending sign-in lasts pendingTTL.
func TestPendingSignInExpires(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("bob", bobPassword, account.RoleUser)
	secret := e.enrolTOTP("bob")

	b := e.browser()
	wantRedirect(t, b.password("bob", bobPassword), "/auth/mfa")
	e.clock.Advance(pendingTTL - time.Second)
	wantStatus(t, b.get("/auth/mfa"), http.StatusOK)
	e.clock.Advance(time.Second)
	wantRedirect(t, b.post("/auth/mfa", url.Values{"code": {e.code(secret)}}), "/auth/login?mfa=expired&next=%2Faccount")
	if got := b.signedInAs(); got != "" {
		t.Errorf("an expired pending sign-in signed in %q", got)
	}
	page := wantStatus(t, b.get("/auth/login?mfa=expired"), http.StatusOK)
	if !strings.Contains(page, "The sign-in took more than 5 minutes") {
		t.Errorf("the sign-in page does not say why:\n%s", page)
	}
}

// A pending sign-in is nobody: signed-in pages, JSON endpoints and the
// session check refuse it.
func TestPendingSignInIsRefusedElsewhere(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("bob", bobPassword, account.RoleUser)
	e.enrolTOTP("bob")

	b := e.browser()
	wantRedirect(t, b.password("bob", bobPassword), "/auth/mfa")
	for _, path := range []string{"/", "/account", "/auth/sessions", "/auth/reauth", "/admin", "/account/mfa/totp"} {
		if res := b.get(path); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/auth/login") {
			t.Errorf("GET %s: %d to %q, want the sign-in page", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	for _, path := range []string{"/auth/status", "/auth/sessions"} {
		wantStatus(t, b.get(path, "Accept", "application/json"), http.StatusUnauthorized)
	}
	wantStatus(t, b.post("/auth/extend", nil, "Accept", "application/json"), http.StatusUnauthorized)
	wantRedirect(t, b.post("/notes", url.Values{"note": {"x"}}), "/auth/login?next=%2F")
	if got := b.signedInAs(); got != "" {
		t.Errorf("a pending sign-in is signed in as %q", got)
	}
	// Signing out ends it.
	wantRedirect(t, b.post("/auth/logout", nil), "/auth/login?reason=logout")
	wantRedirect(t, b.get("/auth/mfa"), "/auth/login")
}

// A pending sign-in gets a session token of its own, and completing it
// another: neither the token the browser had nor the pending one works
// afterwards.
func TestPendingSignInRenewsTheToken(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("bob", bobPassword, account.RoleUser)
	secret := e.enrolTOTP("bob")

	b := e.browser()
	wantRedirect(t, b.password("bob", bobPassword), "/auth/mfa")
	pendingToken := b.sessionCookie()
	wantRedirect(t, b.password("bob", bobPassword), "/auth/mfa")
	if b.sessionCookie() == pendingToken {
		t.Fatal("a new sign-in kept the earlier pending token")
	}
	secondToken := b.sessionCookie()
	wantRedirect(t, b.post("/auth/mfa", url.Values{"code": {e.code(secret)}}), "/account")
	if b.sessionCookie() == secondToken {
		t.Fatal("signing in kept the pending token")
	}
	for _, token := range []string{pendingToken, secondToken} {
		old := e.browser()
		old.cookies[e.sessions.CookieName()] = token
		if got := old.signedInAs(); got != "" {
			t.Errorf("an earlier token is signed in as %q", got)
		}
	}
}

// A disabled account's pending sign-in does not complete.
func TestPendingSignInOfDisabledAccount(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("bob", bobPassword, account.RoleUser)
	secret := e.enrolTOTP("bob")

	b := e.browser()
	wantRedirect(t, b.password("bob", bobPassword), "/auth/mfa")
	if err := e.accounts.SetDisabled(t.Context(), "bob", true); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, b.post("/auth/mfa", url.Values{"code": {e.code(secret)}}), "/auth/login?next=%2Faccount")
	if got := b.signedInAs(); got != "" {
		t.Errorf("a disabled account signed in as %q", got)
	}
}

// Under the passkey policy codes are neither offered nor accepted.
func TestPasskeyPolicyRefusesCodes(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("bob", bobPassword, account.RoleUser)
	secret := e.enrolTOTP("bob")
	e.srv.cfg.MFA = account.MFAPasskey // Config.check wants a passkey store for this; none is needed here

	b := e.browser()
	wantRedirect(t, b.password("bob", bobPassword), "/auth/mfa/enrol")
	page := wantStatus(t, b.get("/auth/mfa/enrol"), http.StatusOK)
	if secretOnPage.MatchString(page) {
		t.Error("the passkey policy offered an authenticator app")
	}
	wantStatus(t, b.post("/auth/mfa/enrol", url.Values{"code": {e.code(secret)}}), http.StatusBadRequest)
	wantStatus(t, b.post("/auth/mfa", url.Values{"code": {e.code(secret)}}), http.StatusSeeOther)
	if got := b.signedInAs(); got != "" {
		t.Errorf("a code signed in %q under the passkey policy", got)
	}
}

// Re-authentication asks for the code of a user who has an app, counts
// wrong ones against the session, and records the factors.
func TestReauthAsksForTheCode(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("bob", bobPassword, account.RoleUser)
	secret := e.enrolTOTP("bob")

	b := e.browser()
	wantRedirect(t, b.password("bob", bobPassword), "/auth/mfa")
	wantRedirect(t, b.post("/auth/mfa", url.Values{"code": {e.code(secret)}}), "/account")
	e.clock.Advance(e.srv.cfg.ReauthAfter)

	wantRedirect(t, b.get("/account/mfa/totp"), "/auth/reauth?next=%2Faccount%2Fmfa%2Ftotp")
	page := wantStatus(t, b.get("/auth/reauth?next=%2Faccount%2Fmfa%2Ftotp"), http.StatusOK)
	if !strings.Contains(page, `name="code"`) {
		t.Fatalf("the re-authentication page asks for no code:\n%s", page)
	}
	form := func(password, code string) url.Values {
		return url.Values{"password": {password}, "code": {code}, "next": {"/account/mfa/totp"}}
	}
	for _, tc := range []struct{ name, password, code string }{
		{"password alone", bobPassword, ""},
		{"wrong password", "not the password at all", "123456"},
		{"wrong code", bobPassword, "000000"},
	} {
		page := wantStatus(t, b.post("/auth/reauth", form(tc.password, tc.code)), http.StatusUnauthorized)
		if tc.code != "" && !strings.Contains(page, wrongFactorsMessage) {
			t.Errorf("%s: the page says\n%s", tc.name, page)
		}
	}
	e.clock.Advance(account.TOTPPeriod)
	wantRedirect(t, b.post("/auth/reauth", form(bobPassword, e.code(secret))), "/account/mfa/totp")
	wantStatus(t, b.get("/account/mfa/totp"), http.StatusOK)
	e.wantAudit(audit.Reauthenticated, "bob", "password+totp")
	e.wantAudit(audit.MFAFailed, "bob", "totp at re-authentication")
}

// A user without a second factor re-authenticates with the password alone.
func TestReauthWithoutSecondFactor(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFAOptional))
	e.addUser("alice", alicePassword, account.RoleUser)
	b := e.browser()
	b.login("alice", alicePassword)
	e.clock.Advance(e.srv.cfg.ReauthAfter)
	page := wantStatus(t, b.get("/auth/reauth?next=%2Faccount"), http.StatusOK)
	if strings.Contains(page, `name="code"`) {
		t.Error("the re-authentication page asks a user without a second factor for a code")
	}
	wantRedirect(t, b.post("/auth/reauth", url.Values{"password": {alicePassword}, "next": {"/account"}}), "/account")
	e.wantAudit(audit.Reauthenticated, "alice", "password")
}

// Every change of second factors on the account page needs a fresh
// re-authentication; setting up an app shows recovery codes once; the last
// factor a policy requires cannot be removed.
func TestAccountSecondFactors(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFARequired))
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("root", rootPassword, account.RoleAdmin)

	b := e.browser()
	b.login("alice", alicePassword)
	page := wantStatus(t, b.get("/account"), http.StatusOK)
	if !strings.Contains(page, "Two-step sign-in") || !strings.Contains(page, `href="/account/mfa/totp"`) {
		t.Fatalf("the account page has no second-factor section:\n%s", page)
	}

	e.clock.Advance(e.srv.cfg.ReauthAfter)
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/account/mfa/totp"},
		{http.MethodPost, "/account/mfa/totp"},
		{http.MethodPost, "/account/mfa/totp/remove"},
		{http.MethodPost, "/account/mfa/recovery"},
	} {
		res := b.do(req.method, req.path, url.Values{})
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/auth/reauth?") {
			t.Errorf("%s %s without a fresh sign-in: %d to %q", req.method, req.path, res.StatusCode, res.Header.Get("Location"))
		}
		wantStatus(t, b.do(req.method, req.path, url.Values{}, "Accept", "application/json"), http.StatusForbidden)
	}

	wantRedirect(t, b.post("/auth/reauth", url.Values{"password": {alicePassword}, "next": {"/account/mfa/totp"}}), "/account/mfa/totp")
	secret := secretIn(t, wantStatus(t, b.get("/account/mfa/totp"), http.StatusOK))
	wantStatus(t, b.post("/account/mfa/totp", url.Values{"code": {"000000"}}), http.StatusBadRequest)
	codes := recoveryCodesIn(t, wantStatus(t, b.post("/account/mfa/totp", url.Values{"code": {e.code(secret)}}), http.StatusOK))
	e.wantAudit(audit.MFAEnrolled, "alice", "totp")
	page = wantStatus(t, b.get("/account"), http.StatusOK)
	if !strings.Contains(page, "Set up on") || !strings.Contains(page, "10 unused recovery codes left") {
		t.Errorf("the account page does not show the app and codes:\n%s", page)
	}

	again := recoveryCodesIn(t, wantStatus(t, b.post("/account/mfa/recovery", nil), http.StatusOK))
	if again[0] == codes[0] {
		t.Error("new recovery codes are the old ones")
	}
	if err := e.accounts.UseRecoveryCode(t.Context(), "alice", codes[0]); err == nil {
		t.Error("an old recovery code still works after new ones were made")
	}

	// Optional for users: the app may go.
	wantRedirect(t, b.post("/account/mfa/totp/remove", nil), "/account?done=totp-removed")
	e.wantAudit(audit.MFARemoved, "alice", "totp")

	// Required for admins: not the last factor.
	a := e.browser()
	wantRedirect(t, a.password("root", rootPassword), "/auth/mfa/enrol")
	rootSecret := secretIn(t, wantStatus(t, a.get("/auth/mfa/enrol"), http.StatusOK))
	wantStatus(t, a.post("/auth/mfa/enrol", url.Values{"code": {e.code(rootSecret)}}), http.StatusOK)
	page = wantStatus(t, a.post("/account/mfa/totp/remove", nil), http.StatusConflict)
	if !strings.Contains(page, "must have a second factor") {
		t.Errorf("refusing to remove the last factor, the page says:\n%s", page)
	}
	if f, err := e.accounts.Factors(t.Context(), "root"); err != nil || !f.TOTP {
		t.Errorf("root's factors after a refused removal: %+v, %v", f, err)
	}
}

// The JSON answer of an enrolment at sign-in carries the recovery codes.
func TestEnrolJSON(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFARequired))
	e.addUser("root", rootPassword, account.RoleAdmin)
	b := e.browser()
	wantRedirect(t, b.password("root", rootPassword), "/auth/mfa/enrol")
	secret := secretIn(t, wantStatus(t, b.get("/auth/mfa/enrol"), http.StatusOK))
	var body struct {
		RecoveryCodes []string `json:"recovery_codes"`
		Next          string
	}
	res := b.post("/auth/mfa/enrol", url.Values{"code": {e.code(secret)}}, "Accept", "application/json")
	json.Unmarshal([]byte(wantStatus(t, res, http.StatusOK)), &body)
	if len(body.RecoveryCodes) != account.RecoveryCodeCount || body.Next != "/account" {
		t.Errorf("JSON answer %+v", body)
	}
}

func TestCodeKind(t *testing.T) {
	for code, want := range map[string]account.FactorKind{
		"123456":              account.FactorTOTP,
		"123 456":             account.FactorTOTP,
		"123-456":             account.FactorTOTP,
		"12345":               account.FactorRecoveryCode,
		"1234567":             account.FactorRecoveryCode,
		"7kqm-x2cd-9vhe-t4nb": account.FactorRecoveryCode,
		"":                    account.FactorRecoveryCode,
	} {
		if got := codeKind(code); got != want {
			t.Errorf("codeKind(%q) = %s, want %s", code, got, want)
		}
	}
}

func TestConfigSecondFactors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  envOption
		want string
	}{
		{"no store", func(c *Config) { c.SecondFactors = nil }, "SecondFactors is required"},
		{"passkey policy without passkeys", withMFA(account.MFAPasskey, account.MFARequired), "needs Config.Passkeys"},
		{"unknown policy", withMFA("sometimes", account.MFARequired), "unknown second-factor policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.srv.cfg
			cfg.MFA, cfg.AdminMFA = "", ""
			tc.opt(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	e := newEnv(t)
	cfg := e.srv.cfg
	cfg.SecondFactors, cfg.MFA, cfg.AdminMFA = nil, account.MFAOff, account.MFAOff
	cfg.Metrics, cfg.Registerer, cfg.Gatherer = nil, prometheus.NewRegistry(), nil
	if _, err := New(cfg); err != nil {
		t.Errorf("both policies off: %v", err)
	}
}
