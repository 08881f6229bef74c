package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/internal/passkey"
	"github.com/sessionguard/sessionguard/session"
)

// passkeyButton is what the templates passkey-signin, passkey-second-factor
// and passkey-register of passkey.html show: a button that runs a WebAuthn
// ceremony through two JSON endpoints (static/passkey.js does the browser's
// part). It is comparable, so that the views of cached pages (the sign-in
// and re-authentication pages) may hold one.
type passkeyButton struct {
	On     bool   // passkeys are on and apply here; the templates show nothing otherwise
	Begin  string // the endpoint that returns the ceremony's options
	Finish string // the endpoint the browser's answer goes to; empty: into the enclosing form's "passkey" field
	Next   string // passkey-signin: where the sign-in leads
}

// passkeyList is what the template passkey-list shows: the user's passkeys,
// each with a rename and a remove form.
type passkeyList struct {
	On       bool
	Passkeys []passkey.Credential
}

// passkeySignInButton is the login page's button for a passwordless sign-in
// that leads to next.
func (s *Server) passkeySignInButton(next string) passkeyButton {
	return passkeyButton{On: s.passkeysOn(), Begin: "/auth/passkey/begin", Finish: "/auth/passkey/finish", Next: next}
}

// passkeySecondFactorButton is the /auth/mfa page's button, shown when user
// has a passkey.
func (s *Server) passkeySecondFactorButton(ctx context.Context, user string) (passkeyButton, error) {
	n, err := s.passkeyCount(ctx, user)
	return passkeyButton{On: s.passkeysOn() && n > 0, Begin: "/auth/mfa/passkey/begin", Finish: "/auth/mfa/passkey/finish"}, err
}

// passkeyReauthButton is the re-authentication page's button, shown when
// user has a passkey: it goes inside the password form, and puts the
// passkey's answer into the form's "passkey" field, which reauth checks
// with verifyReauthPasskey.
func (s *Server) passkeyReauthButton(ctx context.Context, user string) (passkeyButton, error) {
	n, err := s.passkeyCount(ctx, user)
	return passkeyButton{On: s.passkeysOn() && n > 0, Begin: "/auth/reauth/passkey/begin"}, err
}

// passkeyEnrolButton registers the first passkey of a user who must enrol
// before the sign-in completes.
func (s *Server) passkeyEnrolButton() passkeyButton {
	return passkeyButton{On: s.passkeysOn(), Begin: "/auth/mfa/enrol/passkey/begin", Finish: "/auth/mfa/enrol/passkey/finish"}
}

// passkeyAddButton registers another passkey from the account page.
func (s *Server) passkeyAddButton() passkeyButton {
	return passkeyButton{On: s.passkeysOn(), Begin: "/account/passkeys/begin", Finish: "/account/passkeys/finish"}
}

// passkeysOn reports whether passkeys can be used: registered, signed in
// with and managed. A Store without a relying party (see passkey.NewStore)
// still counts a user's passkeys, for the decision after the password.
func (s *Server) passkeysOn() bool {
	return s.cfg.Passkeys != nil && s.cfg.Passkeys.CeremoniesOn()
}

// passkeyList returns user's passkeys for the account page.
func (s *Server) passkeyList(ctx context.Context, user string) (passkeyList, error) {
	if !s.passkeysOn() {
		return passkeyList{}, nil
	}
	list, err := s.cfg.Passkeys.List(ctx, user)
	return passkeyList{On: true, Passkeys: list}, err
}

// passkeyCount returns how many passkeys user has (none without a passkey
// Store), whether or not they can be used here: a user whose passkey
// cannot be used is asked for another second factor (a recovery code),
// never let in with the password alone.
func (s *Server) passkeyCount(ctx context.Context, user string) (int, error) {
	if s.cfg.Passkeys == nil {
		return 0, nil
	}
	return s.cfg.Passkeys.Count(ctx, user)
}

// passkeyStateKey is the session data key of a ceremony begun and not yet
// finished: the state passkey.Store hands out, which stays on the server
// (never in a cookie or a form) and serves one Finish.
const passkeyStateKey = "passkey_state"

// passkeyRoutes registers the passkey endpoints: none when passkeys are off
// (404). Every ceremony is two same-origin JSON POSTs: begin answers the
// options for navigator.credentials, finish takes {"credential": the
// credential's toJSON()} (with "name" for a new passkey and "next" for a
// passwordless sign-in) and answers {"next": URL}, or
// {"error": code, "message": text}. routes calls it once.
func (s *Server) passkeyRoutes() {
	if !s.passkeysOn() {
		return
	}
	s.handle("POST /auth/passkey/begin", http.HandlerFunc(s.passwordlessBegin))
	s.handle("POST /auth/passkey/finish", http.HandlerFunc(s.passwordlessFinish))

	s.handle("POST /auth/mfa/passkey/begin", s.withPending(s.mfaPasskeyBegin))
	s.handle("POST /auth/mfa/passkey/finish", s.withPending(s.mfaPasskeyFinish))
	s.handle("POST /auth/mfa/enrol/passkey/begin", s.withPending(s.enrolPasskeyBegin))
	s.handle("POST /auth/mfa/enrol/passkey/finish", s.withPending(s.enrolPasskeyFinish))

	s.handle("POST /auth/reauth/passkey/begin", s.signedIn(s.reauthPasskeyBegin))

	s.handle("POST /account/passkeys/begin", s.sensitive(s.addPasskeyBegin))
	s.handle("POST /account/passkeys/finish", s.sensitive(s.addPasskeyFinish))
	s.handle("POST /account/passkeys/rename", s.sensitive(s.renamePasskey))
	s.handle("POST /account/passkeys/remove", s.sensitive(s.removePasskey))
}

// passkeyRequest is the body of a finish endpoint.
type passkeyRequest struct {
	// Credential is the PublicKeyCredential's toJSON().
	Credential json.RawMessage `json:"credential"`
	// Name is the name of a new passkey; empty: passkey.DefaultName.
	Name string `json:"name"`
	// Next is where a passwordless sign-in leads.
	Next string `json:"next"`
}

// passkeyDone is a finish endpoint's answer to a ceremony that succeeded.
type passkeyDone struct {
	Next string `json:"next"`
}

// passkeyProblem is a passkey endpoint's answer to a ceremony that did not:
// a stable code, a sentence for the person, and, when the step makes sense
// no more, the page to go to instead.
type passkeyProblem struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Next    string `json:"next,omitempty"`
}

// refusedPasskeyMessage is the one answer to a passkey that did not verify,
// whatever the reason, which goes to the log only.
const refusedPasskeyMessage = "That passkey was not accepted. Try again, or use another way to sign in."

// passkeyFail answers a passkey endpoint's refusal, always in JSON: only
// passkey.js calls these endpoints.
func (s *Server) passkeyFail(w http.ResponseWriter, r *http.Request, status int, code, message, next string) {
	s.writeJSON(w, r, status, passkeyProblem{Error: code, Message: message, Next: next})
}

// beginCeremony keeps a ceremony's state in sess and answers its options,
// or answers err, begin's failure.
func (s *Server) beginCeremony(w http.ResponseWriter, r *http.Request, sess *session.Session, options, state []byte, err error) {
	if errors.Is(err, passkey.ErrNoPasskeys) {
		s.passkeyFail(w, r, http.StatusConflict, "no_passkeys", "You have no passkey. Use another way to sign in.", "")
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if err := sess.Set(r.Context(), passkeyStateKey, string(state)); err != nil {
		s.sessionWriteFailed(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, json.RawMessage(options))
}

// ceremonyAnswer takes the state of the ceremony begun in sess out of it,
// so that it serves this one answer, and reads the answer; false means it
// answered the request already.
func (s *Server) ceremonyAnswer(w http.ResponseWriter, r *http.Request, sess *session.Session) ([]byte, passkeyRequest, bool) {
	var req passkeyRequest
	var state string
	found := false
	if sess != nil {
		var err error
		if state, found, err = sess.Pop(r.Context(), passkeyStateKey); err != nil {
			s.sessionWriteFailed(w, r, err)
			return nil, req, false
		}
	}
	if !found {
		s.passkeyFail(w, r, http.StatusBadRequest, "no_ceremony", "That took too long, or was done already. Try again.", "")
		return nil, req, false
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Credential) == 0 {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.tooLarge(w, r)
			return nil, req, false
		}
		s.passkeyFail(w, r, http.StatusBadRequest, "bad_request", "The browser's answer could not be read. Reload the page and try again.", "")
		return nil, req, false
	}
	return []byte(state), req, true
}

// refusedPasskey reports whether err is a passkey's answer that did not
// verify (including a cloned key's), as opposed to a ceremony that cannot
// be finished or a store that did not answer.
func refusedPasskey(err error) bool {
	return errors.Is(err, passkey.ErrRejected) || errors.Is(err, passkey.ErrCloned)
}

// ceremonyFailed answers a Finish call's error.
func (s *Server) ceremonyFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, passkey.ErrBadState), errors.Is(err, passkey.ErrStateExpired):
		s.passkeyFail(w, r, http.StatusBadRequest, "no_ceremony", "That took too long, or was done already. Try again.", "")
	case errors.Is(err, passkey.ErrInvalidName):
		s.passkeyFail(w, r, http.StatusBadRequest, "invalid_name",
			"A passkey's name can have at most "+strconv.Itoa(passkey.MaxNameLength)+" characters, and no control characters.", "")
	case refusedPasskey(err):
		s.logRefusedPasskey(r.Context(), err)
		s.passkeyFail(w, r, http.StatusUnauthorized, "passkey_refused", refusedPasskeyMessage, "")
	default:
		s.unavailable(w, r, err)
	}
}

// logRefusedPasskey logs why a passkey was refused, which its answer does
// not tell: a cloned key is worth an administrator's look.
func (s *Server) logRefusedPasskey(ctx context.Context, err error) {
	level := slog.LevelInfo
	if errors.Is(err, passkey.ErrCloned) {
		level = slog.LevelWarn
	}
	s.cfg.Logger.Log(ctx, level, "a passkey was refused", "ref", infoFrom(ctx).id, "err", err)
}

// passwordlessBegin starts a sign-in with a passkey alone, from the sign-in
// page. The visitor has no session yet, so one is started to keep the
// ceremony in: anonymous, as for a pending sign-in, and replaced by a new
// one at sign-in.
func (s *Server) passwordlessBegin(w http.ResponseWriter, r *http.Request) {
	if session.FromContext(r.Context()) == nil {
		// This request would start a session: count it (see startLimit).
		if wait, ok := s.starts.allow(account.AddressKey(s.cfg.ClientIP(r)), s.cfg.Clock.Now()); !ok {
			w.Header().Set("Retry-After", retryAfter(wait))
			s.passkeyFail(w, r, http.StatusTooManyRequests, "throttled", "Too many sign-ins from your network at once. Wait a minute, then try again.", "")
			return
		}
	}
	sess, err := s.cfg.Sessions.Start(w, r)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	options, state, err := s.cfg.Passkeys.BeginLogin(r.Context(), "")
	s.beginCeremony(w, r, sess, options, state, err)
}

// passwordlessFinish signs in the user whose passkey answered, if the
// authenticator verified the user (a PIN or biometric: the passkey is then
// two factors by itself, NIST 800-63B 5.1.8/5.1.9) and the account is
// enabled; every refusal gets the same answer.
func (s *Server) passwordlessFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	state, req, ok := s.ceremonyAnswer(w, r, session.FromContext(ctx))
	if !ok {
		return
	}
	ip := s.cfg.ClientIP(r)
	refuse := func(user, detail string) {
		s.cfg.Metrics.Login(metrics.LoginFailure)
		s.record(ctx, audit.Entry{Event: audit.LoginFailed, User: user, Reason: audit.ReasonInvalidCredentials, IP: ip, Detail: detail})
		s.passkeyFail(w, r, http.StatusUnauthorized, "passkey_refused", refusedPasskeyMessage, "")
	}
	name, verified, err := s.cfg.Passkeys.FinishLogin(ctx, state, req.Credential)
	switch {
	case refusedPasskey(err):
		s.logRefusedPasskey(r.Context(), err)
		refuse(name, "passkey refused")
		return
	case err != nil:
		s.ceremonyFailed(w, r, err)
		return
	case !verified:
		refuse(name, "passkey without user verification")
		return
	}
	u, err := s.cfg.Accounts.Get(ctx, name)
	if errors.Is(err, account.ErrNotFound) || (err == nil && u.Disabled) {
		refuse(name, "passkey of a disabled or removed account")
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	sess, err := s.cfg.Sessions.Login(w, r, u.Name, session.LoginOptions{Policy: s.policyFor(string(u.Role))})
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.rememberClient(w, r, account.Attempt{Name: u.Name, IP: ip, Device: s.presentedDevice(r)})
	s.cfg.Metrics.Login(metrics.LoginSuccess)
	s.record(ctx, audit.Entry{Event: audit.LoginSucceeded, User: u.Name, Session: sess.ID(), IP: ip, Detail: "passkey (verified)"})
	s.writeJSON(w, r, http.StatusOK, passkeyDone{Next: s.cfg.RedirectHosts.nextTarget(req.Next)})
}

// mfaPasskeyBegin starts the passkey ceremony of a pending sign-in's
// second factor.
func (s *Server) mfaPasskeyBegin(w http.ResponseWriter, r *http.Request, p pending) {
	if p.MustEnrol {
		s.passkeyFail(w, r, http.StatusConflict, "enrolment_required", "Set up a second factor first.", "/auth/mfa/enrol")
		return
	}
	options, state, err := s.cfg.Passkeys.BeginLogin(r.Context(), p.User)
	s.beginCeremony(w, r, p.Session, options, state, err)
}

// mfaPasskeyFinish checks the passkey of a pending sign-in and completes
// the sign-in. The check is throttled with the account's other second
// factors, and a refused passkey counts as a wrong code does.
func (s *Server) mfaPasskeyFinish(w http.ResponseWriter, r *http.Request, p pending) {
	if p.MustEnrol {
		s.passkeyFail(w, r, http.StatusConflict, "enrolment_required", "Set up a second factor first.", "/auth/mfa/enrol")
		return
	}
	state, req, ok := s.ceremonyAnswer(w, r, p.Session)
	if !ok {
		return
	}
	err := s.cfg.Authenticator.CheckSecondFactor(r.Context(), account.Attempt{Name: p.User, IP: s.cfg.ClientIP(r)},
		s.checkPasskey(p.User, state, req.Credential))
	switch {
	case err == nil:
		if _, ok := s.signInPending(w, r, p, "password+passkey"); ok {
			s.writeJSON(w, r, http.StatusOK, passkeyDone{Next: p.Next})
		}
	case errors.Is(err, account.ErrWrongCode):
		s.pendingFailure(w, r, p, account.FactorPasskey, func(msg string) { s.renderMFA(w, r, p, http.StatusUnauthorized, msg) })
	case errors.Is(err, passkey.ErrBadState), errors.Is(err, passkey.ErrStateExpired):
		s.ceremonyFailed(w, r, err)
	default:
		s.secondFactorRefused(w, r, p, account.FactorPasskey, err)
	}
}

// checkPasskey is the check Authenticator.CheckSecondFactor throttles: the
// passkey answer of a second-factor ceremony for user, refused (an error
// wrapping account.ErrWrongCode, as a wrong code) unless it verifies and is
// user's. Any passkey of the user will do, verified or not: the password
// was the first factor.
func (s *Server) checkPasskey(user string, state, answer []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		owner, _, err := s.cfg.Passkeys.FinishLogin(ctx, state, answer)
		if err == nil && owner != user {
			err = fmt.Errorf("%w: a passkey of %s answered for %s", passkey.ErrRejected, owner, user)
		}
		if refusedPasskey(err) {
			s.logRefusedPasskey(ctx, err)
			return fmt.Errorf("%w: %w", account.ErrWrongCode, err)
		}
		return err
	}
}

// enrolPasskeyBegin starts registering the first passkey of a user who
// must enrol a second factor to sign in.
func (s *Server) enrolPasskeyBegin(w http.ResponseWriter, r *http.Request, p pending) {
	if !p.MustEnrol {
		s.passkeyFail(w, r, http.StatusConflict, "second_factor_required", "You have a second factor already: use it.", "/auth/mfa")
		return
	}
	options, state, err := s.cfg.Passkeys.BeginRegistration(r.Context(), p.User)
	s.beginCeremony(w, r, p.Session, options, state, err)
}

// enrolPasskeyFinish registers the passkey of a user who had to enrol one,
// signs the user in, and answers the new recovery codes, which the page
// shows once, where the policy accepts them.
func (s *Server) enrolPasskeyFinish(w http.ResponseWriter, r *http.Request, p pending) {
	if !p.MustEnrol {
		s.passkeyFail(w, r, http.StatusConflict, "second_factor_required", "You have a second factor already: use it.", "/auth/mfa")
		return
	}
	state, req, ok := s.ceremonyAnswer(w, r, p.Session)
	if !ok {
		return
	}
	ctx := r.Context()
	if _, err := s.cfg.Passkeys.FinishRegistration(ctx, p.User, req.Name, state, req.Credential); err != nil {
		s.ceremonyFailed(w, r, err)
		return
	}
	ip := s.cfg.ClientIP(r)
	s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: p.User, IP: ip, Detail: string(account.FactorPasskey)})
	var codes []string
	if p.Policy.Accepts(account.FactorRecoveryCode) {
		var err error
		if codes, err = s.cfg.SecondFactors.NewRecoveryCodes(ctx, p.User); err != nil {
			s.unavailable(w, r, err)
			return
		}
		s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: p.User, IP: ip, Detail: "recovery_codes"})
	}
	u, ok := s.signInPending(w, r, p, "password+passkey")
	if !ok {
		return
	}
	if codes != nil {
		s.showRecoveryCodes(w, r, u, codes, p.Next)
		return
	}
	s.writeJSON(w, r, http.StatusOK, passkeyDone{Next: p.Next})
}

// reauthPasskeyBegin starts the passkey ceremony of a re-authentication:
// the page then posts the answer with the password (verifyReauthPasskey).
func (s *Server) reauthPasskeyBegin(w http.ResponseWriter, r *http.Request, v *visit) {
	options, state, err := s.cfg.Passkeys.BeginLogin(r.Context(), v.user.Name)
	s.beginCeremony(w, r, v.sess, options, state, err)
}

// verifyReauthPasskey checks answer, the passkey's answer that the
// re-authentication form carries in its "passkey" field (passkey.js puts
// it there, from the ceremony /auth/reauth/passkey/begin keeps in v's
// session), and uses the ceremony up. nil: one of v's user's passkeys
// answered. An error wrapping account.ErrWrongCode: the answer was refused,
// or no ceremony was begun or it expired; count it as a wrong second
// factor (run it inside Authenticator.CheckSecondFactor with the session).
// Any other error: a store did not answer.
func (s *Server) verifyReauthPasskey(ctx context.Context, v *visit, answer string) error {
	if !s.passkeysOn() {
		return fmt.Errorf("%w: passkeys are off", account.ErrWrongCode)
	}
	state, found, err := v.sess.Pop(ctx, passkeyStateKey)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: no passkey ceremony was begun", account.ErrWrongCode)
	}
	err = s.checkPasskey(v.user.Name, []byte(state), []byte(answer))(ctx)
	if errors.Is(err, passkey.ErrBadState) || errors.Is(err, passkey.ErrStateExpired) {
		return fmt.Errorf("%w: %w", account.ErrWrongCode, err)
	}
	return err
}

// acceptsFactor reports whether v's user may set up and manage factors of
// kind k: none when their second-factor policy is off, where the account
// page has no section for them either, and only passkeys under the
// passkey policy.
func (s *Server) acceptsFactor(v *visit, k account.FactorKind) bool {
	return s.mfaPolicy(v.user.Role).Accepts(k)
}

// addPasskeyBegin starts registering another passkey from the account page.
func (s *Server) addPasskeyBegin(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.acceptsFactor(v, account.FactorPasskey) {
		s.notFound(w, r)
		return
	}
	options, state, err := s.cfg.Passkeys.BeginRegistration(r.Context(), v.user.Name)
	s.beginCeremony(w, r, v.sess, options, state, err)
}

// addPasskeyFinish registers the passkey begun by addPasskeyBegin. A user
// without recovery codes, where the policy accepts them, gets a new set,
// shown once.
func (s *Server) addPasskeyFinish(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.acceptsFactor(v, account.FactorPasskey) {
		s.notFound(w, r)
		return
	}
	state, req, ok := s.ceremonyAnswer(w, r, v.sess)
	if !ok {
		return
	}
	ctx := r.Context()
	if _, err := s.cfg.Passkeys.FinishRegistration(ctx, v.user.Name, req.Name, state, req.Credential); err != nil {
		s.ceremonyFailed(w, r, err)
		return
	}
	ip := s.cfg.ClientIP(r)
	s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: v.user.Name, Session: v.sess.ID(), IP: ip, Detail: string(account.FactorPasskey)})
	const next = "/account?done=passkey"
	if s.mfaPolicy(v.user.Role).Accepts(account.FactorRecoveryCode) {
		f, err := s.cfg.SecondFactors.Factors(ctx, v.user.Name)
		if err != nil {
			s.unavailable(w, r, err)
			return
		}
		if f.RecoveryCodesLeft == 0 {
			codes, err := s.cfg.SecondFactors.NewRecoveryCodes(ctx, v.user.Name)
			if err != nil {
				s.unavailable(w, r, err)
				return
			}
			s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: v.user.Name, Session: v.sess.ID(), IP: ip, Detail: "recovery_codes"})
			s.showRecoveryCodes(w, r, v.user, codes, next)
			return
		}
	}
	s.writeJSON(w, r, http.StatusOK, passkeyDone{Next: next})
}

// renamePasskey renames one of the user's passkeys (form: id, name).
func (s *Server) renamePasskey(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	if !s.acceptsFactor(v, account.FactorPasskey) {
		s.notFound(w, r)
		return
	}
	switch err := s.cfg.Passkeys.Rename(r.Context(), v.user.Name, r.PostForm.Get("id"), r.PostForm.Get("name")); {
	case errors.Is(err, passkey.ErrInvalidName):
		s.accountRefused(w, r, v, http.StatusBadRequest, "invalid_name",
			"A passkey's name can have at most "+strconv.Itoa(passkey.MaxNameLength)+" characters, and no control characters.")
		return
	case errors.Is(err, passkey.ErrNotFound):
		s.accountRefused(w, r, v, http.StatusNotFound, "not_found", "That passkey is not on your account any more.")
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Renamed bool `json:"renamed"`
		}{true})
		return
	}
	seeOther(w, "/account?done=passkey-renamed")
}

// removePasskey removes one of the user's passkeys (form: id), unless it is
// the last factor their policy requires. It signs in no more from then on,
// even in a ceremony already begun.
func (s *Server) removePasskey(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	if !s.acceptsFactor(v, account.FactorPasskey) {
		s.notFound(w, r)
		return
	}
	ctx := r.Context()
	last, err := s.lastRequiredFactor(ctx, v, account.FactorPasskey)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if last {
		msg := "Your account must have a second factor: add another passkey or set up an authenticator app before you remove this one."
		if !s.mfaPolicy(v.user.Role).Accepts(account.FactorTOTP) {
			msg = "Your account must have a passkey: add another one before you remove this one."
		}
		s.accountRefused(w, r, v, http.StatusConflict, "last_factor", msg)
		return
	}
	switch err := s.cfg.Passkeys.Remove(ctx, v.user.Name, r.PostForm.Get("id")); {
	case errors.Is(err, passkey.ErrNotFound):
		s.accountRefused(w, r, v, http.StatusNotFound, "not_found", "That passkey is not on your account any more.")
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	}
	s.record(ctx, audit.Entry{Event: audit.MFARemoved, User: v.user.Name, Session: v.sess.ID(), IP: s.cfg.ClientIP(r),
		Detail: string(account.FactorPasskey)})
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Removed bool `json:"removed"`
		}{true})
		return
	}
	seeOther(w, "/account?done=passkey-removed")
}
