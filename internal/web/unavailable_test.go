package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
)

// downAuthenticator is an accounts database that has stopped answering.
type downAuthenticator struct{}

var errAccountsDown = errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")

func (downAuthenticator) Authenticate(context.Context, account.Attempt) (account.User, error) {
	return account.User{}, errAccountsDown
}

func (downAuthenticator) Verify(context.Context, account.Attempt) error { return errAccountsDown }

func (downAuthenticator) RememberClient(context.Context, account.Attempt) (string, error) {
	return "", errAccountsDown
}

func (downAuthenticator) CheckSecondFactor(context.Context, account.Attempt, func(context.Context) error) error {
	return errAccountsDown
}

// TestSignInWithAccountsDown checks that a sign-in the accounts database
// cannot check is 503 (try again), not 500, signs nobody in, and shows
// nothing of the error.
func TestSignInWithAccountsDown(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Authenticator = downAuthenticator{} })
	e.addUser("alice", alicePassword, account.RoleUser)
	for _, accept := range []string{"text/html", "application/json"} {
		c := e.browser()
		res := c.post("/auth/login", url.Values{"username": {"alice"}, "password": {alicePassword}}, "Accept", accept)
		body := wantStatus(t, res, http.StatusServiceUnavailable)
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", accept)
		}
		if len(c.cookies) != 0 {
			t.Errorf("%s: a failed sign-in set cookies %v", accept, c.cookies)
		}
		if strings.Contains(body, "refused") || strings.Contains(body, "10.0.0.5") {
			t.Errorf("%s: the error reached the client: %s", accept, body)
		}
		if accept == "application/json" && strings.TrimSpace(body) != `{"error":"unavailable"}` {
			t.Errorf("JSON body %s, want {\"error\":\"unavailable\"}", body)
		}
	}
}

// verifyDown signs in through a working Authenticator but cannot check a
// password again: the database went away after the sign-in.
type verifyDown struct{ Authenticator }

func (verifyDown) Verify(context.Context, account.Attempt) error { return errAccountsDown }

// TestReauthWithAccountsDown checks the same for re-authentication before a
// sensitive action: 503, not 500, and not "wrong password".
func TestReauthWithAccountsDown(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Authenticator = verifyDown{c.Authenticator} })
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	res := c.post("/auth/reauth", url.Values{"password": {alicePassword}, "next": {"/account"}}, "Accept", "text/html")
	body := wantStatus(t, res, http.StatusServiceUnavailable)
	if strings.Contains(body, "incorrect") || strings.Contains(body, "refused") {
		t.Errorf("re-authentication with the accounts down: %s", body)
	}
}
