package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/internal/testbrowser"
)

// onLocalhost makes the tests reach s as http://localhost:PORT: the
// server's passkeys belong to localhost (the address it derives when
// listening on a loopback address), browsers refuse a passkey for an IP
// address, and localhost is a secure context without TLS.
func onLocalhost(s *server) {
	s.URL = strings.Replace(s.URL, "://127.0.0.1:", "://localhost:", 1)
}

// withAuthenticator gives the tab a virtual platform authenticator that
// keeps discoverable passkeys and verifies the user (as a fingerprint
// reader would), answering every request at once.
func withAuthenticator(t *testing.T, tab context.Context, s *server) {
	t.Helper()
	do(t, tab, chromedp.Navigate(s.URL+"/auth/login"))
	testbrowser.AddAuthenticator(t, tab)
}

// click waits until the element css selects is visible (the passkey
// buttons appear once passkey.js finds WebAuthn) and clicks it.
func click(t *testing.T, tab context.Context, css string) {
	t.Helper()
	do(t, tab, chromedp.WaitVisible(chromedp.CSS(css)), chromedp.Click(chromedp.CSS(css)))
}

// typePassword submits the sign-in form with user's password from the
// sign-in page, and waits for the page it leads to.
func typePassword(t *testing.T, tab context.Context, s *server, user string) {
	t.Helper()
	do(t, tab,
		chromedp.Navigate(s.URL+"/auth/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), user),
		chromedp.SetValue(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")),
	)
	waitFor(t, tab, 10*time.Second, "the page after the password",
		`location.pathname !== '/auth/login' && document.readyState === 'complete'`)
}

// signOut presses the page's sign-out button.
func signOut(t *testing.T, tab context.Context) {
	t.Helper()
	click(t, tab, "form.signout button")
	waitFor(t, tab, 10*time.Second, "the sign-in page after signing out", onLoginPage)
}

const (
	signedInPage    = `document.readyState === 'complete' && !!document.querySelector('form.signout')`
	codesShown      = `!!document.querySelector('[data-passkey-codes]:not([hidden])')`
	passkeyRegister = `[data-passkey="register"] [data-passkey-start]`
	passkeySignIn   = `[data-passkey="signin"] [data-passkey-start]`
	passkeyFactor   = `[data-passkey="second-factor"] [data-passkey-start]`
	passkeyReauth   = `[data-passkey="form"] [data-passkey-start]`
)

// A passkey registered from the account page, in real Chromium with a
// virtual authenticator, is the second factor after the password and signs
// in without one; re-authentication takes it; once removed, it signs in no
// more.
func TestPasskeys(t *testing.T) {
	const reauthAfter = 10 * time.Second
	s := startServer(t, "-reauth-after", reauthAfter.String())
	onLocalhost(s)
	tab := newBrowser(t)
	withAuthenticator(t, tab, s)

	// Register: the first factor brings recovery codes, shown once.
	signIn(t, tab, s, "alice")
	open(t, tab, s, "/account")
	do(t, tab, chromedp.WaitVisible(chromedp.ID("passkey-name")), chromedp.SetValue(chromedp.ID("passkey-name"), "Test laptop"))
	click(t, tab, passkeyRegister)
	waitFor(t, tab, 10*time.Second, "the recovery codes", codesShown)
	if n := eval[int](t, tab, `document.querySelectorAll('[data-passkey-code-list] li').length`); n != 10 {
		t.Fatalf("%d recovery codes shown, want 10", n)
	}
	if eval[bool](t, tab, `document.activeElement !== document.querySelector('[data-passkey-codes]')`) {
		t.Error("the recovery codes did not take the focus")
	}
	click(t, tab, "[data-passkey-continue]")
	waitFor(t, tab, 10*time.Second, "the account page with the passkey",
		`location.search === '?done=passkey' && document.body.textContent.includes('Test laptop')`)
	checkAccessibility(t, tab, "account with a passkey")

	// Second factor after the password.
	signOut(t, tab)
	typePassword(t, tab, s, "alice")
	if p := location(t, tab).Path; p != "/auth/mfa" {
		t.Fatalf("after the password the tab is at %s, want /auth/mfa", p)
	}
	waitFor(t, tab, 10*time.Second, "the passkey button", `!!document.querySelector('[data-passkey="second-factor"]:not([hidden])')`)
	checkAccessibility(t, tab, "second factor")
	click(t, tab, passkeyFactor)
	waitFor(t, tab, 10*time.Second, "alice's page after the passkey", `location.pathname === '/' && `+signedInPage)
	if st := s.status(t, cookies(t, tab, s)); !st.Authenticated || st.User != "alice" {
		t.Fatalf("after the passkey the server says %+v", st)
	}

	// Without a password.
	signOut(t, tab)
	click(t, tab, passkeySignIn)
	waitFor(t, tab, 10*time.Second, "alice's page after a passwordless sign-in", `location.pathname === '/' && `+signedInPage)
	signedInAt := time.Now()

	// A sensitive change after -reauth-after asks for the password and
	// the passkey.
	open(t, tab, s, "/account")
	time.Sleep(time.Until(signedInAt.Add(reauthAfter + time.Second)))
	click(t, tab, `form[action="/account/passkeys/remove"] button`)
	waitFor(t, tab, 10*time.Second, "the re-authentication page", `location.pathname === '/auth/reauth'`)
	do(t, tab, chromedp.WaitVisible(chromedp.ID("password")), chromedp.SetValue(chromedp.ID("password"), password))
	click(t, tab, passkeyReauth)
	waitFor(t, tab, 10*time.Second, "the account page after re-authenticating", `location.pathname === '/account' && `+signedInPage)

	// Removed, it signs in no more.
	click(t, tab, `form[action="/account/passkeys/remove"] button`)
	waitFor(t, tab, 10*time.Second, "the account page without the passkey",
		`location.search === '?done=passkey-removed' && document.body.textContent.includes('You have no passkeys.')`)
	signOut(t, tab)
	click(t, tab, passkeySignIn)
	waitFor(t, tab, 10*time.Second, "the refusal", `document.querySelector('[data-passkey="signin"] .passkey-status').textContent !== ''`)
	holds(t, tab, time.Second, "the tab stays on the sign-in page", onLoginPage+` && !document.querySelector('form.signout')`)
}

// An account that needs a second factor and has none is sent to enrolment
// straight after the password, is signed in to nothing meanwhile, and is
// signed in once its passkey is registered.
func TestPasskeyEnrolmentRequired(t *testing.T) {
	s := startServer(t, "-mfa", "required")
	onLocalhost(s)
	tab := newBrowser(t)
	withAuthenticator(t, tab, s)

	typePassword(t, tab, s, "bob")
	if p := location(t, tab).Path; p != "/auth/mfa/enrol" {
		t.Fatalf("after the password the tab is at %s, want /auth/mfa/enrol", p)
	}
	if st := s.status(t, cookies(t, tab, s)); st.Authenticated {
		t.Fatalf("a sign-in waiting for enrolment is signed in: %+v", st)
	}
	for _, path := range []string{"/", "/account", "/auth/sessions"} {
		open(t, tab, s, path)
		if p := location(t, tab).Path; p != "/auth/login" {
			t.Fatalf("%s while enrolling: the tab is at %s, want the sign-in page", path, p)
		}
	}

	open(t, tab, s, "/auth/mfa/enrol")
	checkAccessibility(t, tab, "enrolment")
	click(t, tab, passkeyRegister)
	waitFor(t, tab, 10*time.Second, "the recovery codes", codesShown)
	click(t, tab, "[data-passkey-continue]")
	waitFor(t, tab, 10*time.Second, "bob's page after enrolling", `location.pathname === '/' && `+signedInPage)
	if st := s.status(t, cookies(t, tab, s)); !st.Authenticated || st.User != "bob" {
		t.Fatalf("after enrolling the server says %+v", st)
	}
}
