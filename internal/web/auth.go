package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/session"
)

// maxUsernameLen bounds what is logged of a username typed into the sign-in
// form, so a failed attempt cannot fill the audit log.
const maxUsernameLen = 128

// visit is a request with a live session, and who it belongs to.
type visit struct {
	sess *session.Session
	user account.User
}

// signedIn wraps a handler that needs a session. Without one, a browser is
// sent to the sign-in page (with where it was going and why its session
// ended) and a JSON client gets 401; when a store fails, 503: nobody is
// ever treated as signed in by mistake. A session whose account has been
// disabled or removed meanwhile is ended here, should its revocation have
// been missed. *account.Store answers this check from memory, but never
// with an account as it was before a change made anywhere.
func (s *Server) signedIn(h func(http.ResponseWriter, *http.Request, *visit)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := session.FromContext(r.Context())
		if !sess.SignedIn() { // none, or an anonymous one: not signed in
			s.unauthenticated(w, r, session.EndedReason(r.Context()))
			return
		}
		u, err := s.cfg.Accounts.Get(r.Context(), sess.UserID())
		if errors.Is(err, account.ErrNotFound) || (err == nil && u.Disabled) {
			if err := s.cfg.Sessions.Revoke(r.Context(), sess.UserID(), sess.ID()); err != nil && !errors.Is(err, session.ErrNotFound) {
				s.unavailable(w, r, err)
				return
			}
			s.cfg.Logger.Warn("ended a session whose account is disabled or gone", "user", sess.UserID(), "session", sess.ID())
			s.unauthenticated(w, r, session.ReasonRevoked)
			return
		}
		if err != nil {
			s.unavailable(w, r, err)
			return
		}
		h(w, r, &visit{sess: sess, user: u})
	})
}

// unauthenticated answers a request without a session: 503 if the session
// store could not tell, 401 JSON for JSON clients, else 303 to the sign-in
// page. reason is why its session ended, when known.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, reason session.EndReason) {
	if err := session.StoreError(r.Context()); err != nil {
		s.unavailable(w, r, err)
		return
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusUnauthorized, struct {
			Error  string `json:"error"`
			Reason string `json:"reason"`
		}{"unauthenticated", string(reason)})
		return
	}
	seeOther(w, loginURL(s.returnPath(r), reason))
}

// loginURL is the sign-in page's address that returns to next afterwards
// and says why the last session ended.
func loginURL(next string, reason session.EndReason) string {
	q := url.Values{}
	if next != "" {
		q.Set("next", next)
	}
	if reason != "" {
		q.Set("reason", string(reason))
	}
	if len(q) == 0 {
		return "/auth/login"
	}
	return "/auth/login?" + q.Encode()
}

// returnPath is where a browser should come back to after signing in:
// the page itself for a GET, and for a form post (which cannot be replayed)
// the nearest page above its path ("/account/password" -> "/account").
func (s *Server) returnPath(r *http.Request) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return safeNext(r.URL.RequestURI())
	}
	for p := r.URL.Path; p != "/" && p != "." && p != ""; p = path.Dir(p) {
		probe := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: p}, Host: r.Host}
		if _, pattern := s.mux.Handler(probe); s.patterns[pattern] {
			return safeNext(p)
		}
	}
	return "/"
}

// fresh reports whether the session's user authenticated recently enough
// for a sensitive action.
func (s *Server) fresh(v *visit) bool {
	return s.cfg.Clock.Now().Sub(v.sess.Info().AuthenticatedAt) < s.cfg.ReauthAfter
}

// sensitive wraps a handler for a sensitive action: it runs only if the
// user proved who they are within ReauthAfter. Otherwise a JSON client gets
// 403 {"error":"reauthentication_required"} and a browser goes to the
// password prompt, which brings it back.
func (s *Server) sensitive(h func(http.ResponseWriter, *http.Request, *visit)) http.Handler {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, v *visit) {
		if !s.fresh(v) {
			s.reauthRequired(w, r)
			return
		}
		h(w, r, v)
	})
}

// reauthRequired answers a sensitive request whose sign-in is too old: 403
// {"error":"reauthentication_required"} for JSON clients, the password
// prompt for browsers, which then come back.
func (s *Server) reauthRequired(w http.ResponseWriter, r *http.Request) {
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusForbidden, jsonError{Error: "reauthentication_required"})
		return
	}
	seeOther(w, "/auth/reauth?next="+url.QueryEscape(s.returnPath(r)))
}

// loginView is the sign-in page's data.
type loginView struct {
	Username string
	Next     string
	Message  string        // why the last session (or sign-in) ended
	Passkey  passkeyButton // passwordless sign-in
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	next := s.cfg.RedirectHosts.nextTarget(q.Get("next"))
	if session.FromContext(r.Context()).SignedIn() {
		seeOther(w, next)
		return
	}
	v := loginView{Next: next, Passkey: s.passkeySignInButton(next)}
	if reason := session.EndReason(q.Get("reason")); reason.Valid() {
		v.Message = endMessage(reason, s.userPolicy())
	}
	if msg := restartMessage(q.Get("mfa")); msg != "" {
		v.Message = msg
	}
	s.render(w, r, http.StatusOK, "login", &view{Title: "Sign in", Content: v})
}

// failedLoginMessage is the one answer to a wrong password, an unknown user
// and a disabled account, so the page tells an attacker nothing.
const failedLoginMessage = "The username or password is incorrect."

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	next := s.cfg.RedirectHosts.nextTarget(r.PostForm.Get("next"))
	at := account.Attempt{Name: name, Password: r.PostForm.Get("password"), IP: s.cfg.ClientIP(r), Device: s.presentedDevice(r)}
	fail := func(status int, code, msg string) {
		if wantsJSON(r) {
			s.writeJSON(w, r, status, jsonError{Error: code})
			return
		}
		s.render(w, r, status, "login", &view{Title: "Sign in", Error: msg,
			Content: loginView{Username: name, Next: next, Passkey: s.passkeySignInButton(next)}})
	}
	if name == "" || at.Password == "" || len(name) > maxUsernameLen {
		s.cfg.Metrics.Login(metrics.LoginFailure)
		fail(http.StatusUnauthorized, "invalid_credentials", failedLoginMessage)
		return
	}
	user, err := s.cfg.Authenticator.Authenticate(r.Context(), at)
	if wait, code, msg, ok := throttledWords(err, "failed sign-ins"); ok {
		s.cfg.Metrics.Login(metrics.LoginThrottled)
		if code != "busy" { // a busy refusal is no failure: nothing to audit
			s.record(r.Context(), audit.Entry{Event: audit.LoginFailed, User: name, Reason: audit.ReasonThrottled, IP: at.IP})
		}
		w.Header().Set("Retry-After", retryAfter(wait))
		fail(http.StatusTooManyRequests, code, msg)
		return
	}
	if invalidCredentials(err) {
		s.cfg.Metrics.Login(metrics.LoginFailure)
		s.record(r.Context(), audit.Entry{Event: audit.LoginFailed, User: name, Reason: audit.ReasonInvalidCredentials, IP: at.IP})
		fail(http.StatusUnauthorized, "invalid_credentials", failedLoginMessage)
		return
	}
	if err != nil {
		// Not the user's doing and not a verdict on the password: the
		// accounts database did not answer (or the request ran out of
		// time waiting for it). Nobody is signed in; retrying may work.
		s.unavailable(w, r, err)
		return
	}
	decision, err := s.decide(r.Context(), user)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if decision != account.MFANoneNeeded {
		// The password was right: the client is the user's, as far as
		// password guessing goes. Nobody is signed in until the second
		// factor is.
		s.rememberClient(w, r, at)
		s.beginPending(w, r, user, next, decision)
		return
	}
	sess, err := s.cfg.Sessions.Login(w, r, user.Name, session.LoginOptions{Policy: s.policyFor(string(user.Role))})
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.rememberClient(w, r, at)
	s.cfg.Metrics.Login(metrics.LoginSuccess)
	s.record(r.Context(), audit.Entry{Event: audit.LoginSucceeded, User: user.Name, Session: sess.ID(), IP: at.IP})
	// The contract: success is 303 to next, for every client.
	seeOther(w, next)
}

// logout ends the request's session. When the store fails, nothing
// changes: the browser keeps its cookie, so that the person can try again,
// and is told that they are still signed in, since "signed out" with the
// token still working would leave anyone holding a copy of it signed in.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Sessions.Logout(w, r); err != nil {
		s.notDone(w, r, err, signOutNotDone, "/auth/logout")
		return
	}
	seeOther(w, "/auth/login?reason=logout")
}

// statusJSON is the body of GET /auth/status and POST /auth/extend for a
// live session. Durations are seconds from the server's now, so a client
// schedules with its monotonic clock and its wall clock never matters.
type statusJSON struct {
	Authenticated       bool    `json:"authenticated"`
	User                string  `json:"user"`
	IdleRemaining       float64 `json:"idle_remaining_s"`
	AbsoluteRemaining   float64 `json:"absolute_remaining_s"`
	IdleTimeout         float64 `json:"idle_timeout_s"`
	AbsoluteTimeout     float64 `json:"absolute_timeout_s"`
	WarnBefore          float64 `json:"warn_before_s"`
	AbsoluteWarnBefore  float64 `json:"absolute_warn_before_s"`
	TouchInterval       float64 `json:"touch_interval_s"`
	ReauthenticateAfter float64 `json:"reauthenticate_after_s"`
}

func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request, sess *session.Session) {
	info := sess.Info()
	s.writeJSON(w, r, http.StatusOK, statusJSON{
		Authenticated:       true,
		User:                info.UserID,
		IdleRemaining:       max(sess.IdleRemaining().Seconds(), 0),
		AbsoluteRemaining:   max(sess.AbsoluteRemaining().Seconds(), 0),
		IdleTimeout:         info.Policy.IdleTimeout.Seconds(),
		AbsoluteTimeout:     info.Policy.AbsoluteTimeout.Seconds(),
		WarnBefore:          warning(s.cfg.WarnBefore),
		AbsoluteWarnBefore:  warning(s.cfg.AbsoluteWarnBefore),
		TouchInterval:       s.cfg.Sessions.TouchInterval(info.Policy).Seconds(),
		ReauthenticateAfter: s.cfg.ReauthAfter.Seconds(),
	})
}

// noSessionStatus answers /auth/status and /auth/extend without a session:
// always JSON, whatever the Accept header, since only scripts call them.
func (s *Server) noSessionStatus(w http.ResponseWriter, r *http.Request) {
	if err := session.StoreError(r.Context()); err != nil {
		ref := infoFrom(r.Context()).id
		s.cfg.Logger.Error("a store did not answer", "ref", ref, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		s.writeJSON(w, r, http.StatusServiceUnavailable, jsonError{Error: "unavailable"})
		return
	}
	s.writeJSON(w, r, http.StatusUnauthorized, struct {
		Authenticated bool   `json:"authenticated"`
		Reason        string `json:"reason"`
	}{false, string(session.EndedReason(r.Context()))})
}

// status answers GET /auth/status. Its route is wrapped in session.Passive:
// polling it never keeps a session alive.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	sess := session.FromContext(r.Context())
	if !sess.SignedIn() {
		s.noSessionStatus(w, r)
		return
	}
	s.writeStatus(w, r, sess)
}

// extend answers POST /auth/extend, the "Stay signed in" button: explicit
// activity, written at once whatever the touch interval.
func (s *Server) extend(w http.ResponseWriter, r *http.Request) {
	sess := session.FromContext(r.Context())
	if !sess.SignedIn() {
		s.noSessionStatus(w, r)
		return
	}
	if err := sess.Extend(r.Context()); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			s.writeJSON(w, r, http.StatusUnauthorized, struct {
				Authenticated bool   `json:"authenticated"`
				Reason        string `json:"reason"`
			}{false, ""})
			return
		}
		s.unavailable(w, r, err)
		return
	}
	s.writeStatus(w, r, sess)
}

type reauthView struct {
	Next string
	// Code asks for an authenticator or recovery code with the password.
	Code bool
	// Passkey lets a passkey stand for the second factor, inside the form.
	Passkey passkeyButton
}

// reauthAsk returns what re-authenticating v's user asks for besides the
// password, and whether that is a second factor at all: one when the
// user's policy asks them for one at sign-in.
func (s *Server) reauthAsk(ctx context.Context, v *visit, next string) (reauthView, bool, error) {
	rv := reauthView{Next: next}
	policy := s.mfaPolicy(v.user.Role)
	if policy == account.MFAOff {
		return rv, false, nil
	}
	f, err := s.factorsOf(ctx, v.user.Name)
	if err != nil {
		return rv, false, err
	}
	if policy.Decide(f.TOTP, f.Passkeys) != account.MFAAskSecondFactor {
		return rv, false, nil
	}
	rv.Code = policy.Accepts(account.FactorTOTP) && (f.TOTP || f.RecoveryCodesLeft > 0)
	if policy.Accepts(account.FactorPasskey) {
		if rv.Passkey, err = s.passkeyReauthButton(ctx, v.user.Name); err != nil {
			return rv, false, err
		}
	}
	return rv, true, nil
}

func (s *Server) reauthPage(w http.ResponseWriter, r *http.Request, v *visit) {
	rv, _, err := s.reauthAsk(r.Context(), v, safeNext(r.URL.Query().Get("next")))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.renderUser(w, r, v, http.StatusOK, "reauth", &view{Title: "Confirm it's you", Content: rv})
}

// wrongFactorsMessage answers a wrong password or second factor at
// re-authentication alike, so that the answer does not tell which one
// was wrong.
const wrongFactorsMessage = "The password or the code is incorrect."

// reauth checks the signed-in user's password again, and their second
// factor when they have one, and restarts the session's clocks (NIST
// 800-63B-4 §5.2: re-authentication resets both). Failures of either count
// against this session alone.
func (s *Server) reauth(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	rv, second, err := s.reauthAsk(ctx, v, safeNext(r.PostForm.Get("next")))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	page := func(msg string) *view {
		return &view{Title: "Confirm it's you", Error: msg, Content: rv}
	}
	if ok := s.checkPassword(w, r, v, r.PostForm.Get("password"), "reauth", func(msg string) *view {
		if second && msg == wrongPasswordMessage {
			msg = wrongFactorsMessage
		}
		return page(msg)
	}); !ok {
		return
	}
	factors := "password"
	if second {
		kind, ok := s.reauthSecondFactor(w, r, v, rv, page)
		if !ok {
			return
		}
		factors += "+" + string(kind)
	}
	if err := s.cfg.Sessions.Reauthenticate(w, r); err != nil {
		s.sessionWriteFailed(w, r, err)
		return
	}
	s.record(ctx, audit.Entry{Event: audit.Reauthenticated, User: v.user.Name, Session: v.sess.ID(),
		IP: s.cfg.ClientIP(r), Detail: factors})
	if wantsJSON(r) {
		s.writeStatus(w, r, v.sess)
		return
	}
	seeOther(w, rv.Next)
}

// reauthSecondFactor checks the second factor of a re-authentication whose
// password was right: the passkey's answer in the field "passkey", or the
// code in "code". It returns the kind that succeeded, or answers the
// failure and returns false.
func (s *Server) reauthSecondFactor(w http.ResponseWriter, r *http.Request, v *visit, rv reauthView, page func(string) *view) (account.FactorKind, bool) {
	ctx := r.Context()
	answer, code := r.PostForm.Get("passkey"), strings.TrimSpace(r.PostForm.Get("code"))
	var kind account.FactorKind
	var check func(context.Context) error
	switch {
	case answer != "" && rv.Passkey.On:
		kind = account.FactorPasskey
		check = func(ctx context.Context) error { return s.verifyReauthPasskey(ctx, v, answer) }
	case code != "" && rv.Code && s.mfaPolicy(v.user.Role).Accepts(codeKind(code)):
		kind = codeKind(code)
		check = s.checkCode(v.user.Name, code, kind)
	default:
		if wantsJSON(r) {
			s.writeJSON(w, r, http.StatusUnauthorized, jsonError{Error: "second_factor_required"})
			return "", false
		}
		msg := "Confirm with your passkey as well as your password."
		if rv.Code {
			msg = "Enter the code from your authenticator app (or a recovery code) as well as your password."
		}
		s.renderUser(w, r, v, http.StatusUnauthorized, "reauth", page(msg))
		return "", false
	}
	ip := s.cfg.ClientIP(r)
	err := s.cfg.Authenticator.CheckSecondFactor(ctx, account.Attempt{Name: v.user.Name, IP: ip, Session: v.sess.ID()}, check)
	if err == nil {
		if kind == account.FactorRecoveryCode {
			s.recordRecoveryCodeUsed(r, v.user.Name, v.sess.ID(), "at re-authentication")
		}
		return kind, true
	}
	status, code, msg := http.StatusUnauthorized, "invalid_credentials", wrongFactorsMessage
	reason := audit.ReasonInvalidCredentials
	if wait, throttledCode, throttledMsg, ok := throttledWords(err, "wrong passwords or codes"); ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		status, code, msg, reason = http.StatusTooManyRequests, throttledCode, throttledMsg, audit.ReasonThrottled
	} else if !errors.Is(err, account.ErrWrongCode) {
		s.unavailable(w, r, err)
		return "", false
	}
	if code != "busy" {
		s.record(ctx, audit.Entry{Event: audit.MFAFailed, User: v.user.Name, Session: v.sess.ID(), IP: ip,
			Reason: reason, Detail: string(kind) + " at re-authentication"})
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, status, jsonError{Error: code})
		return "", false
	}
	s.renderUser(w, r, v, status, "reauth", page(msg))
	return "", false
}

// wrongPasswordMessage answers a wrong password of a signed-in user.
const wrongPasswordMessage = "The password is incorrect."

// checkPassword verifies the signed-in user's password (throttled per
// session: nobody else's failures can lock the user out of it) and answers
// a wrong one (401) or throttling (429) with the page failPage builds. It
// reports whether the password was right.
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, v *visit, password, page string, failPage func(msg string) *view) bool {
	ip := s.cfg.ClientIP(r)
	err := s.cfg.Authenticator.Verify(r.Context(), account.Attempt{Name: v.user.Name, Password: password, IP: ip, Session: v.sess.ID()})
	if err == nil {
		return true
	}
	status, code, msg := http.StatusUnauthorized, "invalid_credentials", wrongPasswordMessage
	wait, throttledCode, throttledMsg, throttled := throttledWords(err, "wrong passwords")
	switch {
	case throttled:
		w.Header().Set("Retry-After", retryAfter(wait))
		status, code, msg = http.StatusTooManyRequests, throttledCode, throttledMsg
	case !invalidCredentials(err):
		s.unavailable(w, r, err) // the accounts database did not answer
		return false
	}
	if code != "busy" {
		reason := audit.ReasonInvalidCredentials
		if throttled {
			reason = audit.ReasonThrottled
		}
		s.record(r.Context(), audit.Entry{Event: audit.LoginFailed, User: v.user.Name, Session: v.sess.ID(),
			Reason: reason, IP: ip, Detail: "re-authentication (" + page + ")"})
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, status, jsonError{Error: code})
		return false
	}
	s.renderUser(w, r, v, status, page, failPage(msg))
	return false
}

// sessionWriteFailed answers a session operation that failed: the session
// ended meanwhile (sign in again) or the store failed (503).
func (s *Server) sessionWriteFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrNoSession) {
		s.unauthenticated(w, r, session.EndedReason(r.Context()))
		return
	}
	s.unavailable(w, r, err)
}

// record writes an audit entry; a failure is logged, not shown: the action
// the user asked for has happened.
func (s *Server) record(ctx context.Context, e audit.Entry) {
	if s.cfg.Audit == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.cfg.Clock.Now()
	}
	if err := s.cfg.Audit.Record(ctx, e); err != nil {
		s.cfg.Logger.Error("could not write an audit entry", "event", e.Event, "user", e.User, "err", err)
	}
}

// recordRevoked notes who ended sessions of user (each also gets its own
// session_ended entry from the audit observer); session is the one ended,
// when it is one.
func (s *Server) recordRevoked(r *http.Request, v *visit, user, session string, n int, how string) {
	if n == 0 {
		return
	}
	detail := fmt.Sprintf("%s by %s: %d session", how, v.user.Name, n)
	if n != 1 {
		detail += "s"
	}
	s.record(r.Context(), audit.Entry{Event: audit.SessionsRevoked, User: user, Session: session,
		IP: s.cfg.ClientIP(r), Detail: detail})
}
