package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/session"
)

type accountView struct {
	Role            account.Role
	PasswordChanged time.Time
	MinLength       int
	MFA             *mfaSection // nil: second factors are off for the user
}

// accountNotices are the account page's messages after a change, by its
// "done" parameter.
var accountNotices = map[string]string{
	"password":        "Your password was changed, and your other sessions were ended.",
	"totp":            "Your authenticator app is set up.",
	"totp-removed":    "Your authenticator app was removed.",
	"passkey":         "Your passkey was added.",
	"passkey-renamed": "Your passkey was renamed.",
	"passkey-removed": "Your passkey was removed. It no longer signs you in.",
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request, v *visit) {
	s.renderAccount(w, r, v, http.StatusOK, "", "")
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, v *visit, status int, notice, problem string) {
	if notice == "" && r.Method == http.MethodGet {
		notice = accountNotices[r.URL.Query().Get("done")]
	}
	content, err := s.accountContent(r, v)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.renderUser(w, r, v, status, "account", &view{
		Title:   "Your account",
		Nav:     "account",
		Notice:  notice,
		Error:   problem,
		Content: content,
	})
}

// accountContent returns the account page's data for v's user.
func (s *Server) accountContent(r *http.Request, v *visit) (accountView, error) {
	mfa, err := s.accountMFA(r.Context(), v)
	if err != nil {
		return accountView{}, err
	}
	return accountView{
		Role:            v.user.Role,
		PasswordChanged: v.user.PasswordChangedAt,
		MinLength:       account.MinPasswordLength,
		MFA:             mfa,
	}, nil
}

// changePassword changes the user's own password. Typing the current one is
// the re-authentication, so it needs no recent sign-in. Every other session
// of the user ends, always (ASVS 7.4.3 only asks that it be offered): a
// password is changed because someone else may know it, and a session they
// opened with it must not outlive it. This session gets a new token and
// fresh clocks. The password changes first, so that nobody can sign in with
// the old one after the other sessions ended.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	current := r.PostForm.Get("current_password")
	next := r.PostForm.Get("new_password")
	fail := func(status int, code, msg string) {
		if wantsJSON(r) {
			s.writeJSON(w, r, status, struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			}{code, msg})
			return
		}
		s.renderAccount(w, r, v, status, "", msg)
	}
	if current == "" || next == "" {
		fail(http.StatusBadRequest, "bad_request", "Fill in your current password and the new one.")
		return
	}
	if confirm, ok := r.PostForm["confirm_password"]; ok && confirm[0] != next {
		fail(http.StatusBadRequest, "passwords_differ", "The two new passwords are not the same.")
		return
	}
	if !s.checkPassword(w, r, v, current, "account", func(msg string) *view {
		// The page says what went wrong even if its second-factor
		// section cannot be read now.
		content, _ := s.accountContent(r, v)
		content.Role, content.PasswordChanged, content.MinLength = v.user.Role, v.user.PasswordChangedAt, account.MinPasswordLength
		return &view{Title: "Your account", Nav: "account", Error: msg, Content: content}
	}) {
		return
	}
	if err := s.cfg.Accounts.SetPassword(r.Context(), v.user.Name, next); err != nil {
		if msg, ok := inputProblem(err); ok {
			fail(http.StatusBadRequest, "weak_password", msg)
			return
		}
		s.accountFailed(w, r, err)
		return
	}
	s.record(r.Context(), audit.Entry{Event: audit.PasswordChanged, User: v.user.Name, Session: v.sess.ID(), IP: s.cfg.ClientIP(r), Detail: "by the user"})
	revoked, err := s.cfg.Sessions.RevokeUser(r.Context(), v.user.Name, v.sess.ID())
	s.recordRevoked(r, v, v.user.Name, "", revoked, "password change")
	if err != nil {
		s.notDone(w, r, err, "Your password was changed, but your other sessions could not all be ended: the session service did not answer. End them on the Sessions page.", "")
		return
	}
	switch err := s.cfg.Sessions.Reauthenticate(w, r); {
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrNoSession):
		s.sessionWriteFailed(w, r, err) // this session ended meanwhile: sign in again
		return
	case err != nil:
		s.notDone(w, r, err, "Your password was changed and your other sessions were ended, but this session could not be given a new key: the session service did not answer. Sign out and sign in again.", "")
		return
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Changed bool `json:"changed"`
			Revoked int  `json:"revoked"`
		}{true, revoked})
		return
	}
	seeOther(w, "/account?done=password")
}

// inputProblem returns the message of an account error that refuses what a
// person typed (a bad name or role, a weak password), written for them.
func inputProblem(err error) (string, bool) {
	switch {
	case errors.Is(err, account.ErrInvalidName), errors.Is(err, account.ErrWeakPassword):
		return sentence(err.Error()), true
	case errors.Is(err, account.ErrInvalidRole):
		return "Choose the role user or admin.", true
	case errors.Is(err, account.ErrExists):
		return "A user with that name exists already.", true
	case errors.Is(err, account.ErrLastAdmin):
		return "This is the last enabled administrator: enable or add another one first.", true
	}
	return "", false
}

// accountFailed answers an account store error that is not the user's
// doing: busy hashing (429, retry soon) or a store failure (503).
func (s *Server) accountFailed(w http.ResponseWriter, r *http.Request, err error) {
	if wait, ok := throttled(err); ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		s.errorPage(w, r, http.StatusTooManyRequests, "throttled", "The server is busy. Try again in a few seconds.")
		return
	}
	s.unavailable(w, r, err)
}

// sentence turns an error message written for people ("password must have
// at least 15 characters") into a sentence.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// retryAfter is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
