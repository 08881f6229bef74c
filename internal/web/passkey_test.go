package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/passkey"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

// testOrigin is where the test clients send their requests from, and so
// the origin a passkey answer names.
const testOrigin = "https://sessionguard.test"

// withPasskeys turns passkeys on, on a database of their own, with the
// env's clock.
func withPasskeys(t *testing.T) envOption {
	return func(c *Config) {
		pc, err := passkey.ConfigFromURL(testOrigin, "")
		if err != nil {
			t.Fatal(err)
		}
		c.Passkeys, err = passkey.NewStore(t.Context(), sqldbtest.Open(t, sqldb.SQLite), pc, passkey.Options{Clock: c.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// softKey is one passkey of a softAuthenticator.
type softKey struct {
	id     []byte
	key    *ecdsa.PrivateKey
	handle []byte // the user handle the server gave at registration
	count  uint32
}

// softAuthenticator does in Go what a browser and its authenticator do with
// the options a begin endpoint answers: it makes passkeys (attestation
// "none") and signs assertions with them, for the tests that run without
// Chromium. verified is whether it says it verified the user (UV).
type softAuthenticator struct {
	t        *testing.T
	origin   string
	verified bool
}

func newSoftAuthenticator(t *testing.T) *softAuthenticator {
	return &softAuthenticator{t: t, origin: testOrigin, verified: true}
}

var b64 = base64.RawURLEncoding

// flags of authenticator data (WebAuthn 6.1).
const (
	flagUserPresent  = 0x01
	flagUserVerified = 0x04
	flagAttested     = 0x40
)

func (a *softAuthenticator) authData(rpID string, flags byte, count uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	b := append(h[:], flags)
	b = binary.BigEndian.AppendUint32(b, count)
	return append(b, attested...)
}

func (a *softAuthenticator) flags() byte {
	if a.verified {
		return flagUserPresent | flagUserVerified
	}
	return flagUserPresent
}

func (a *softAuthenticator) clientData(kind, challenge string) []byte {
	b, err := json.Marshal(map[string]any{"type": kind, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	if err != nil {
		a.t.Fatal(err)
	}
	return b
}

// create answers registration options with a new passkey.
func (a *softAuthenticator) create(options []byte) (json.RawMessage, *softKey) {
	a.t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		a.t.Fatalf("registration options %s: %v", options, err)
	}
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	k := &softKey{id: make([]byte, 16), handle: handle}
	rand.Read(k.id)
	if k.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		a.t.Fatal(err)
	}
	pub, err := k.key.PublicKey.ECDH()
	if err != nil {
		a.t.Fatal(err)
	}
	xy := pub.Bytes()[1:] // uncompressed: 0x04, X, Y
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: xy[:32], -3: xy[32:]})
	if err != nil {
		a.t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.id)))
	attested = append(append(attested, k.id...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{
		"fmt": "none", "attStmt": map[string]any{},
		"authData": a.authData(o.PublicKey.RP.ID, a.flags()|flagAttested, 0, attested),
	})
	if err != nil {
		a.t.Fatal(err)
	}
	cred, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return cred, k
}

// get answers sign-in options with k.
func (a *softAuthenticator) get(options []byte, k *softKey) json.RawMessage {
	a.t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		a.t.Fatalf("sign-in options %s: %v", options, err)
	}
	k.count++
	data := a.authData(o.PublicKey.RPID, a.flags(), k.count, nil)
	client := a.clientData("webauthn.get", o.PublicKey.Challenge)
	clientHash := sha256.Sum256(client)
	digest := sha256.Sum256(append(append([]byte(nil), data...), clientHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		a.t.Fatal(err)
	}
	cred, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(client),
			"authenticatorData": b64.EncodeToString(data),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(k.handle),
		},
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return cred
}

// postJSON posts body as JSON, as passkey.js does.
func (c *client) postJSON(target string, body any) *http.Response {
	c.e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return c.send(http.MethodPost, target, strings.NewReader(string(b)),
		"Content-Type", "application/json", "Accept", "application/json")
}

// passkeyAnswer is what a finish endpoint answers.
type passkeyAnswer struct {
	Error         string   `json:"error"`
	Message       string   `json:"message"`
	Next          string   `json:"next"`
	RecoveryCodes []string `json:"recovery_codes"`
}

// finish posts a finish endpoint and decodes its answer, failing the test
// unless its status is want.
func (c *client) finish(target string, body map[string]any, want int) passkeyAnswer {
	c.e.t.Helper()
	res := c.postJSON(target, body)
	text := wantStatus(c.e.t, res, want)
	var a passkeyAnswer
	if err := json.Unmarshal([]byte(text), &a); err != nil {
		c.e.t.Fatalf("POST %s: %d, not JSON: %s", target, res.StatusCode, text)
	}
	return a
}

// begin posts a begin endpoint and returns the options, failing the test
// unless it answered 200.
func (c *client) begin(target string) []byte {
	c.e.t.Helper()
	return []byte(wantStatus(c.e.t, c.postJSON(target, map[string]any{}), http.StatusOK))
}

// addPasskey registers a passkey of a on the account page of c, who is
// signed in, and returns it with the finish endpoint's answer.
func (c *client) addPasskey(a *softAuthenticator, name string) (*softKey, passkeyAnswer) {
	c.e.t.Helper()
	cred, k := a.create(c.begin("/account/passkeys/begin"))
	return k, c.finish("/account/passkeys/finish", map[string]any{"credential": cred, "name": name}, http.StatusOK)
}

// signInWithPasskey signs in with k without a password and returns the
// finish endpoint's answer, which has the status want.
func (c *client) signInWithPasskey(a *softAuthenticator, k *softKey, next string, want int) passkeyAnswer {
	c.e.t.Helper()
	cred := a.get(c.begin("/auth/passkey/begin"), k)
	return c.finish("/auth/passkey/finish", map[string]any{"credential": cred, "next": next}, want)
}

// A passkey added on the account page is the second factor after the
// password, and signs in without one; the audit log names the factors.
func TestPasskeySignIn(t *testing.T) {
	e := newEnv(t, withMFA(account.MFAOptional, account.MFARequired), withPasskeys(t))
	e.addUser("alice", alicePassword, account.RoleUser)
	a := newSoftAuthenticator(t)

	c := e.browser()
	c.login("alice", alicePassword)
	if page := wantStatus(t, c.get("/account"), http.StatusOK); !strings.Contains(page, `data-passkey="register"`) ||
		!strings.Contains(page, "You have no passkeys.") {
		t.Fatalf("the account page offers no passkey:\n%s", page)
	}
	k, added := c.addPasskey(a, "Work laptop")
	// The first factor comes with recovery codes, shown once.
	if added.Next != "/account?done=passkey" || len(added.RecoveryCodes) != account.RecoveryCodeCount {
		t.Fatalf("adding the first passkey answered %+v, want recovery codes and the account page", added)
	}
	e.wantAudit(audit.MFAEnrolled, "alice", "passkey")
	page := wantStatus(t, c.get(added.Next), http.StatusOK)
	if !strings.Contains(page, "Work laptop") || !strings.Contains(page, "/account/passkeys/remove") {
		t.Fatalf("the account page does not list the passkey:\n%s", page)
	}
	// Another one brings no new codes.
	if _, again := c.addPasskey(a, ""); again.RecoveryCodes != nil || again.Next != "/account?done=passkey" {
		t.Fatalf("adding a second passkey answered %+v, want no codes", again)
	}
	wantRedirect(t, c.post("/auth/logout", nil), "/auth/login?reason=logout")

	// Second factor.
	wantRedirect(t, c.password("alice", alicePassword), "/auth/mfa")
	page = wantStatus(t, c.get("/auth/mfa"), http.StatusOK)
	if !strings.Contains(page, `data-passkey="second-factor"`) || !strings.Contains(page, "/auth/static/passkey.js") {
		t.Fatalf("/auth/mfa offers no passkey:\n%s", page)
	}
	cred := a.get(c.begin("/auth/mfa/passkey/begin"), k)
	if got := c.finish("/auth/mfa/passkey/finish", map[string]any{"credential": cred}, http.StatusOK); got.Next != "/account" {
		t.Fatalf("second factor answered %+v, want next /account", got)
	}
	if c.signedInAs() != "alice" {
		t.Fatal("not signed in after the passkey")
	}
	e.wantAudit(audit.LoginSucceeded, "alice", "password+passkey")

	// Passwordless, from a new browser.
	d := e.browser()
	if page := wantStatus(t, d.get("/auth/login"), http.StatusOK); !strings.Contains(page, `data-passkey="signin"`) {
		t.Fatalf("the sign-in page offers no passkey:\n%s", page)
	}
	if got := d.signInWithPasskey(a, k, "/auth/sessions", http.StatusOK); got.Next != "/auth/sessions" {
		t.Fatalf("passwordless sign-in answered %+v", got)
	}
	if d.signedInAs() != "alice" {
		t.Fatal("not signed in after a passwordless sign-in")
	}
	e.wantAudit(audit.LoginSucceeded, "alice", "passkey (verified)")
	// next is checked as the sign-in form's is.
	if got := e.browser().signInWithPasskey(a, k, "https://evil.test/", http.StatusOK); got.Next != "/" {
		t.Errorf("passwordless sign-in led to %q, want /", got.Next)
	}
}

// Only a passkey that verified the user (PIN, biometric) signs in without a
// password, and only into an enabled account; as the second factor, one
// that did not verify the user will do.
func TestPasswordlessRefusals(t *testing.T) {
	e := newEnv(t, withPasskeys(t))
	e.addUser("alice", alicePassword, account.RoleUser)
	a := newSoftAuthenticator(t)
	c := e.browser()
	c.login("alice", alicePassword)
	k, _ := c.addPasskey(a, "")

	a.verified = false
	d := e.browser()
	if got := d.signInWithPasskey(a, k, "", http.StatusUnauthorized); got.Error != "passkey_refused" || got.Message == "" {
		t.Errorf("unverified passkey: %+v, want passkey_refused with a message", got)
	}
	if d.signedInAs() != "" {
		t.Fatal("an unverified passkey signed in without a password")
	}
	wantRedirect(t, d.password("alice", alicePassword), "/auth/mfa")
	cred := a.get(d.begin("/auth/mfa/passkey/begin"), k)
	d.finish("/auth/mfa/passkey/finish", map[string]any{"credential": cred}, http.StatusOK)
	if d.signedInAs() != "alice" {
		t.Fatal("an unverified passkey was refused as the second factor")
	}

	a.verified = true
	if err := e.accounts.SetDisabled(t.Context(), "alice", true); err != nil {
		t.Fatal(err)
	}
	f := e.browser()
	if got := f.signInWithPasskey(a, k, "", http.StatusUnauthorized); got.Error != "passkey_refused" {
		t.Errorf("passkey of a disabled account: %+v, want passkey_refused", got)
	}
	if f.signedInAs() != "" {
		t.Fatal("a disabled account signed in with its passkey")
	}
	// The unverified answer names no user: the server refused it before
	// looking one up.
	if n, all := len(e.auditFind(audit.LoginFailed, "alice")), len(e.auditFind(audit.LoginFailed, "")); n != 1 || all != 2 {
		t.Errorf("%d login_failed entries, %d of them alice's, want 2 and 1", all, n)
	}
}

// A ceremony's answer counts once: posted again, or without a begin, it is
// refused and nothing is signed in.
func TestPasskeyAnswerOnce(t *testing.T) {
	e := newEnv(t, withPasskeys(t))
	e.addUser("alice", alicePassword, account.RoleUser)
	a := newSoftAuthenticator(t)
	c := e.browser()
	c.login("alice", alicePassword)
	k, _ := c.addPasskey(a, "")

	d := e.browser()
	cred := a.get(d.begin("/auth/passkey/begin"), k)
	d.finish("/auth/passkey/finish", map[string]any{"credential": cred}, http.StatusOK)
	wantRedirect(t, d.post("/auth/logout", nil), "/auth/login?reason=logout")
	if got := d.finish("/auth/passkey/finish", map[string]any{"credential": cred}, http.StatusBadRequest); got.Error != "no_ceremony" {
		t.Errorf("a replayed answer: %+v, want no_ceremony", got)
	}
	// Begun anew, the old answer (another challenge) is refused.
	d.begin("/auth/passkey/begin")
	if got := d.finish("/auth/passkey/finish", map[string]any{"credential": cred}, http.StatusUnauthorized); got.Error != "passkey_refused" {
		t.Errorf("an old answer to a new ceremony: %+v, want passkey_refused", got)
	}
	if d.signedInAs() != "" {
		t.Fatal("a replayed answer signed in")
	}
	// A body that is no credential.
	d.begin("/auth/passkey/begin")
	if got := d.finish("/auth/passkey/finish", map[string]any{"next": "/"}, http.StatusBadRequest); got.Error != "bad_request" {
		t.Errorf("no credential: %+v, want bad_request", got)
	}
}

// Refused passkeys count as wrong codes: five end the pending sign-in.
func TestWrongPasskeysEndThePendingSignIn(t *testing.T) {
	e := newEnv(t, withPasskeys(t))
	e.addUser("alice", alicePassword, account.RoleUser)
	e.addUser("bob", bobPassword, account.RoleUser)
	a := newSoftAuthenticator(t)
	alice := e.browser()
	alice.login("alice", alicePassword)
	alice.addPasskey(a, "")
	bob := e.browser()
	bob.login("bob", bobPassword)
	bobKey, _ := bob.addPasskey(a, "")

	c := e.browser()
	wantRedirect(t, c.password("alice", alicePassword), "/auth/mfa")
	for i := 1; i <= maxPendingFailures; i++ {
		// Bob's passkey, answering alice's options.
		cred := a.get(c.begin("/auth/mfa/passkey/begin"), bobKey)
		got := c.finish("/auth/mfa/passkey/finish", map[string]any{"credential": cred}, http.StatusUnauthorized)
		if i < maxPendingFailures && got.Error != "wrong_second_factor" {
			t.Fatalf("attempt %d: %+v, want wrong_second_factor", i, got)
		}
		if i == maxPendingFailures && (got.Error != "too_many_failures" || !strings.HasPrefix(got.Next, "/auth/login?")) {
			t.Fatalf("attempt %d: %+v, want too_many_failures and the sign-in page", i, got)
		}
	}
	if c.signedInAs() != "" {
		t.Fatal("signed in with another user's passkey")
	}
	if got := c.postJSON("/auth/mfa/passkey/begin", map[string]any{}); got.StatusCode != http.StatusUnauthorized {
		t.Errorf("the ended pending sign-in can still begin a passkey: %d", got.StatusCode)
	}
	if n := len(e.auditFind(audit.MFAFailed, "alice")); n != maxPendingFailures {
		t.Errorf("%d mfa_failed entries, want %d", n, maxPendingFailures)
	}
}

// A user who must enrol can register a passkey and nothing else; that
// signs them in, with recovery codes unless only passkeys count.
func TestEnrolPasskey(t *testing.T) {
	for _, policy := range []account.MFAPolicy{account.MFARequired, account.MFAPasskey} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t, withMFA(policy, account.MFARequired), withPasskeys(t))
			e.addUser("alice", alicePassword, account.RoleUser)
			a := newSoftAuthenticator(t)
			c := e.browser()
			wantRedirect(t, c.password("alice", alicePassword), "/auth/mfa/enrol")
			page := wantStatus(t, c.get("/auth/mfa/enrol"), http.StatusOK)
			if !strings.Contains(page, `data-passkey="register"`) || strings.Contains(page, "data-totp-secret") != (policy == account.MFARequired) {
				t.Fatalf("the enrolment page under %s:\n%s", policy, page)
			}
			// Nothing else answers meanwhile.
			if res := c.get("/account"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/auth/login") {
				t.Fatalf("GET /account while enrolling: %d to %s", res.StatusCode, res.Header.Get("Location"))
			}
			if got := c.postJSON("/account/passkeys/begin", map[string]any{}); got.StatusCode != http.StatusUnauthorized {
				t.Fatalf("/account/passkeys/begin while enrolling: %d", got.StatusCode)
			}
			if got := c.postJSON("/auth/mfa/passkey/begin", map[string]any{}); got.StatusCode != http.StatusConflict {
				t.Fatalf("/auth/mfa/passkey/begin while enrolling: %d", got.StatusCode)
			}

			cred, k := a.create(c.begin("/auth/mfa/enrol/passkey/begin"))
			got := c.finish("/auth/mfa/enrol/passkey/finish", map[string]any{"credential": cred, "name": "Phone"}, http.StatusOK)
			if got.Next != "/account" || (len(got.RecoveryCodes) == account.RecoveryCodeCount) != (policy == account.MFARequired) {
				t.Fatalf("enrolment answered %+v", got)
			}
			if c.signedInAs() != "alice" {
				t.Fatal("not signed in after enrolling a passkey")
			}
			e.wantAudit(audit.MFAEnrolled, "alice", "passkey")
			e.wantAudit(audit.LoginSucceeded, "alice", "password+passkey")

			// The next sign-in asks for it.
			wantRedirect(t, c.post("/auth/logout", nil), "/auth/login?reason=logout")
			wantRedirect(t, c.password("alice", alicePassword), "/auth/mfa")
			cred2 := a.get(c.begin("/auth/mfa/passkey/begin"), k)
			c.finish("/auth/mfa/passkey/finish", map[string]any{"credential": cred2}, http.StatusOK)
			if c.signedInAs() != "alice" {
				t.Fatal("not signed in with the enrolled passkey")
			}
		})
	}
}

// Renaming and removing passkeys are sensitive; the last factor a policy
// requires stays; a removed passkey signs in no more.
func TestManagePasskeys(t *testing.T) {
	e := newEnv(t, withMFA(account.MFARequired, account.MFARequired), withPasskeys(t))
	e.addUser("alice", alicePassword, account.RoleUser)
	a := newSoftAuthenticator(t)
	c := e.browser()
	wantRedirect(t, c.password("alice", alicePassword), "/auth/mfa/enrol")
	cred, first := a.create(c.begin("/auth/mfa/enrol/passkey/begin"))
	c.finish("/auth/mfa/enrol/passkey/finish", map[string]any{"credential": cred, "name": "Phone"}, http.StatusOK)
	second, _ := c.addPasskey(a, "Laptop")
	id := func(k *softKey) string { return b64.EncodeToString(k.id) }

	res := c.post("/account/passkeys/rename", url.Values{"id": {id(second)}, "name": {"Old laptop"}})
	wantRedirect(t, res, "/account?done=passkey-renamed")
	if page := wantStatus(t, c.get("/account?done=passkey-renamed"), http.StatusOK); !strings.Contains(page, "Old laptop") ||
		!strings.Contains(page, "Your passkey was renamed.") {
		t.Fatalf("the renamed passkey is not on the account page:\n%s", page)
	}
	res = c.post("/account/passkeys/rename", url.Values{"id": {id(second)}, "name": {strings.Repeat("x", passkey.MaxNameLength+1)}})
	wantStatus(t, res, http.StatusBadRequest)
	res = c.post("/account/passkeys/rename", url.Values{"id": {"bm90IG1pbmU"}, "name": {"x"}})
	wantStatus(t, res, http.StatusNotFound)

	wantRedirect(t, c.post("/account/passkeys/remove", url.Values{"id": {id(second)}}), "/account?done=passkey-removed")
	e.wantAudit(audit.MFARemoved, "alice", "passkey")
	if got := e.browser().signInWithPasskey(a, second, "", http.StatusUnauthorized); got.Error != "passkey_refused" {
		t.Errorf("a removed passkey: %+v, want passkey_refused", got)
	}
	// The last one stays: the policy requires a factor.
	body := wantStatus(t, c.post("/account/passkeys/remove", url.Values{"id": {id(first)}}), http.StatusConflict)
	if !strings.Contains(body, "must have a second factor") {
		t.Errorf("removing the last factor: the page does not say why:\n%s", body)
	}
	if got := e.browser().signInWithPasskey(a, first, "", http.StatusOK); got.Next != "/" {
		t.Errorf("the remaining passkey: %+v", got)
	}

	// Later, every change asks for the password (and the second factor)
	// first.
	e.clock.Advance(10 * time.Minute)
	wantRedirect(t, c.post("/account/passkeys/remove", url.Values{"id": {id(first)}}), "/auth/reauth?next=%2Faccount")
	s := e.script()
	s.cookies = c.cookies
	if got := s.postJSON("/account/passkeys/begin", map[string]any{}); got.StatusCode != http.StatusForbidden ||
		!strings.Contains(readBody(got), "reauthentication_required") {
		t.Errorf("adding a passkey with an old sign-in: %d", got.StatusCode)
	}
}

// Re-authentication takes a passkey with the password: the page's script
// puts its answer into the form.
func TestReauthWithPasskey(t *testing.T) {
	e := newEnv(t, withPasskeys(t))
	e.addUser("alice", alicePassword, account.RoleUser)
	a := newSoftAuthenticator(t)
	c := e.browser()
	c.login("alice", alicePassword)
	k, _ := c.addPasskey(a, "")
	e.clock.Advance(10 * time.Minute)

	page := wantStatus(t, c.get("/auth/reauth?next=/account"), http.StatusOK)
	if !strings.Contains(page, `data-passkey="form"`) || !strings.Contains(page, `name="passkey"`) {
		t.Fatalf("the reauth page offers no passkey:\n%s", page)
	}
	// Without a ceremony begun, an answer is refused.
	stale := a.get(c.begin("/auth/reauth/passkey/begin"), k)
	c.begin("/auth/reauth/passkey/begin")
	res := c.post("/auth/reauth", url.Values{"password": {alicePassword}, "passkey": {string(stale)}, "next": {"/account"}})
	wantStatus(t, res, http.StatusUnauthorized)

	answer := a.get(c.begin("/auth/reauth/passkey/begin"), k)
	res = c.post("/auth/reauth", url.Values{"password": {alicePassword}, "passkey": {string(answer)}, "next": {"/account"}})
	wantRedirect(t, res, "/account")
	e.wantAudit(audit.Reauthenticated, "alice", "password+passkey")
	if _, again := c.addPasskey(a, "Another"); again.Next != "/account?done=passkey" {
		t.Errorf("after re-authenticating: %+v", again)
	}
}

// With passkeys off, nothing offers or answers them.
func TestPasskeysOff(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	if page := wantStatus(t, c.get("/auth/login"), http.StatusOK); strings.Contains(page, "data-passkey") {
		t.Errorf("the sign-in page offers passkeys that are off:\n%s", page)
	}
	c.login("alice", alicePassword)
	if page := wantStatus(t, c.get("/account"), http.StatusOK); strings.Contains(page, "data-passkey") {
		t.Errorf("the account page offers passkeys that are off:\n%s", page)
	}
	for _, p := range []string{"/auth/passkey/begin", "/auth/mfa/passkey/begin", "/account/passkeys/begin", "/account/passkeys/remove"} {
		if res := c.postJSON(p, map[string]any{}); res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s with passkeys off: %d, want 404", p, res.StatusCode)
		}
	}
}

// The passkey script is served from the server, as the CSP requires.
func TestPasskeyScriptServed(t *testing.T) {
	e := newEnv(t, withPasskeys(t))
	res := e.browser().get("/auth/static/passkey.js")
	body := wantStatus(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, "javascript") || !strings.Contains(body, "parseRequestOptionsFromJSON") {
		t.Errorf("passkey.js: %s, %d bytes", ct, len(body))
	}
}

// A passkey that cannot be used here (a server at an address browsers
// offer none to) still counts as the user's second factor: the password
// alone does not sign them in, and no passkey button is offered.
func TestUnusablePasskeyStillCounts(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	withStore := func(cfg passkey.Config) envOption {
		return func(c *Config) {
			var err error
			if c.Passkeys, err = passkey.NewStore(t.Context(), db, cfg, passkey.Options{Clock: c.Clock.Now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	rp, err := passkey.ConfigFromURL(testOrigin, "")
	if err != nil {
		t.Fatal(err)
	}
	on := newEnv(t, withStore(rp))
	on.addUser("alice", alicePassword, account.RoleUser)
	c := on.browser()
	c.login("alice", alicePassword)
	c.addPasskey(newSoftAuthenticator(t), "Laptop")

	off := newEnv(t, withStore(passkey.Config{}))
	off.addUser("alice", alicePassword, account.RoleUser)
	b := off.browser()
	wantRedirect(t, b.password("alice", alicePassword), "/auth/mfa")
	if got := b.signedInAs(); got != "" {
		t.Errorf("signed in as %q with the password alone, though alice has a passkey", got)
	}
	if page := wantStatus(t, b.get("/auth/mfa"), http.StatusOK); strings.Contains(page, "data-passkey") {
		t.Errorf("the second-factor page offers a passkey that cannot be used here:\n%s", page)
	}
}
