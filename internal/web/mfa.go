package web

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/session"
)

// A sign-in whose password was right but which still needs a second factor
// (or the enrolment of one) is pending: nobody is signed in yet. The server
// keeps it in an anonymous session, under the data keys below, so that no
// page that checks SignedIn (every signed-in page, and the gateway's check)
// lets it through; only the second-factor pages read it. Signing in
// replaces that session with a new one that keeps none of its data.
const (
	pendingUserKey     = "mfa_user"     // the user name, as the account store has it
	pendingNextKey     = "mfa_next"     // where to go once signed in
	pendingStartedKey  = "mfa_started"  // when the password was right
	pendingFailuresKey = "mfa_failures" // second factors refused so far
	pendingEnrolKey    = "mfa_enrol"    // "1": the user must enrol a factor first
	pendingPolicyKey   = "mfa_policy"   // the account.MFAPolicy of the user's role
)

// pendingTTL is how long a pending sign-in may take: long enough to find a
// phone or a security key, short enough that a password typed on a shared
// computer and then abandoned is soon worth nothing.
const pendingTTL = 5 * time.Minute

// maxPendingFailures is how many wrong second factors end a pending
// sign-in: its user must then type the password again. The per-account
// throttle (Authenticator.CheckSecondFactor) limits guesses across sign-ins.
const maxPendingFailures = 5

// pending is a sign-in waiting for its second factor.
type pending struct {
	// Session is the anonymous session that holds it.
	Session *session.Session
	// User is the user whose password was right.
	User string
	// Next is where completing the sign-in goes.
	Next string
	// Policy is the second-factor policy of the user's role: which factors
	// count (Policy.Accepts).
	Policy account.MFAPolicy
	// MustEnrol says the user has no factor the policy accepts and must
	// enrol one (a passkey under account.MFAPasskey) to sign in.
	MustEnrol bool
	// Failures counts the second factors refused so far.
	Failures int
}

// pendingState is what a request's session says of a pending sign-in.
type pendingState int

const (
	pendingNone    pendingState = iota // no pending sign-in (or a signed-in session)
	pendingLive                        // one, within pendingTTL
	pendingExpired                     // one, older than pendingTTL
)

// loadPending reads the request's pending sign-in.
func (s *Server) loadPending(r *http.Request) (pending, pendingState) {
	sess := session.FromContext(r.Context())
	if sess == nil || sess.SignedIn() {
		return pending{}, pendingNone
	}
	user, ok := sess.Get(pendingUserKey)
	if !ok || user == "" {
		return pending{}, pendingNone
	}
	started, ok := sess.Time(pendingStartedKey)
	if !ok {
		return pending{}, pendingNone
	}
	next, _ := sess.Get(pendingNextKey)
	policy, _ := sess.Get(pendingPolicyKey)
	failures, _ := sess.Int(pendingFailuresKey)
	p := pending{
		Session:   sess,
		User:      user,
		Next:      s.cfg.RedirectHosts.nextTarget(next),
		Policy:    account.MFAPolicy(policy),
		MustEnrol: sess.Exists(pendingEnrolKey),
		Failures:  int(failures),
	}
	if s.cfg.Clock.Now().Sub(started) >= pendingTTL {
		return p, pendingExpired
	}
	return p, pendingLive
}

// pendingSignIn returns the request's pending sign-in: a right password
// still waiting for its second factor, begun less than pendingTTL ago. A
// passkey endpoint of a pending sign-in starts with it, and answers false
// as the page would: the browser back to the sign-in page.
func (s *Server) pendingSignIn(r *http.Request) (pending, bool) {
	p, state := s.loadPending(r)
	return p, state == pendingLive
}

// mfaPolicy returns the second-factor policy of users with role.
func (s *Server) mfaPolicy(role account.Role) account.MFAPolicy {
	if role == account.RoleAdmin {
		return s.cfg.AdminMFA
	}
	return s.cfg.MFA
}

// userFactors are the second factors of one user, as the pages need them.
type userFactors struct {
	account.Factors
	Passkeys int
}

// factorsOf returns the user's second factors.
func (s *Server) factorsOf(ctx context.Context, user string) (userFactors, error) {
	var f userFactors
	if s.cfg.SecondFactors != nil {
		var err error
		if f.Factors, err = s.cfg.SecondFactors.Factors(ctx, user); err != nil {
			return userFactors{}, err
		}
	}
	n, err := s.passkeyCount(ctx, user)
	if err != nil {
		return userFactors{}, err
	}
	f.Passkeys = n
	return f, nil
}

// decide returns what follows the right password of u.
func (s *Server) decide(ctx context.Context, u account.User) (account.MFADecision, error) {
	policy := s.mfaPolicy(u.Role)
	if policy == account.MFAOff {
		return account.MFANoneNeeded, nil
	}
	f, err := s.factorsOf(ctx, u.Name)
	if err != nil {
		return 0, err
	}
	return policy.Decide(f.TOTP, f.Passkeys), nil
}

// beginPending answers a right password whose user needs a second factor
// (or must enrol one): the session the browser had ends, an anonymous one
// with a new token holds the pending sign-in, and the browser goes to
// /auth/mfa or /auth/mfa/enrol. A JSON client gets 401 with the error
// "second_factor_required" or "enrolment_required" and that page as next,
// and the new session's cookie.
func (s *Server) beginPending(w http.ResponseWriter, r *http.Request, u account.User, next string, d account.MFADecision) {
	if err := s.endPending(w, r); err != nil {
		s.unavailable(w, r, err)
		return
	}
	sess, err := s.cfg.Sessions.Start(w, r)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	ctx := r.Context()
	set := []struct{ key, value string }{
		{pendingUserKey, u.Name},
		{pendingNextKey, next},
		{pendingStartedKey, s.cfg.Clock.Now().Format(time.RFC3339Nano)},
		{pendingPolicyKey, string(s.mfaPolicy(u.Role))},
	}
	page, code := "/auth/mfa", "second_factor_required"
	if d == account.MFAMustEnrol {
		set = append(set, struct{ key, value string }{pendingEnrolKey, "1"})
		page, code = "/auth/mfa/enrol", "enrolment_required"
	}
	for _, kv := range set {
		if err := sess.Set(ctx, kv.key, kv.value); err != nil {
			s.unavailable(w, r, err)
			return
		}
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusUnauthorized, struct {
			Error string `json:"error"`
			Next  string `json:"next"`
		}{code, page})
		return
	}
	seeOther(w, page)
}

// endPending ends the request's session, if it has one. An anonymous
// session holds nothing of a user's that the browser should clear, so its
// end sends no Clear-Site-Data, which would also wipe the site's storage.
func (s *Server) endPending(w http.ResponseWriter, r *http.Request) error {
	sess := session.FromContext(r.Context())
	if sess == nil {
		return nil
	}
	signedIn := sess.SignedIn()
	if err := s.cfg.Sessions.Logout(w, r); err != nil {
		return err
	}
	if !signedIn {
		w.Header().Del("Clear-Site-Data")
	}
	return nil
}

// Why a pending sign-in was sent back to the password: the "mfa" parameter
// of the sign-in page, which says so.
const (
	restartExpired = "expired" // it took longer than pendingTTL
	restartFailed  = "failed"  // maxPendingFailures wrong second factors
)

// restartMessage is what the sign-in page says for an "mfa" parameter.
func restartMessage(why string) string {
	switch why {
	case restartExpired:
		return "The sign-in took more than " + durationWords(pendingTTL) + ". Enter your password again."
	case restartFailed:
		return "Too many wrong codes. Enter your password again."
	}
	return ""
}

// restartSignIn ends the pending sign-in and sends the browser back to the
// password (a JSON client gets 401 with the error "sign_in_expired" or
// "too_many_failures" and the sign-in page as next).
func (s *Server) restartSignIn(w http.ResponseWriter, r *http.Request, p pending, why string) {
	if err := s.endPending(w, r); err != nil {
		s.unavailable(w, r, err)
		return
	}
	q := url.Values{"mfa": {why}}
	if p.Next != "" && p.Next != "/" {
		q.Set("next", p.Next)
	}
	target := "/auth/login?" + q.Encode()
	if wantsJSON(r) {
		code := "sign_in_expired"
		if why == restartFailed {
			code = "too_many_failures"
		}
		s.writeJSON(w, r, http.StatusUnauthorized, struct {
			Error string `json:"error"`
			Next  string `json:"next"`
		}{code, target})
		return
	}
	seeOther(w, target)
}

// withPending wraps a handler of a pending sign-in. Without one, a signed-in
// browser goes home and any other to the sign-in page (a JSON client gets
// 401 "unauthenticated", and 503 when the session store did not answer);
// an expired one is ended and sent back to the password.
func (s *Server) withPending(h func(http.ResponseWriter, *http.Request, pending)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, state := s.loadPending(r)
		switch state {
		case pendingLive:
			h(w, r, p)
		case pendingExpired:
			s.restartSignIn(w, r, p, restartExpired)
		default:
			switch {
			case session.StoreError(r.Context()) != nil, wantsJSON(r):
				s.unauthenticated(w, r, "")
			case session.FromContext(r.Context()).SignedIn():
				seeOther(w, "/")
			default:
				// Not back here after the password: the password
				// decides where to go next.
				seeOther(w, "/auth/login")
			}
		}
	})
}

// completeSignIn signs the user of p in, now that the second factor its
// policy asks for succeeded: a new session with the user's role's policy
// (a new token, keeping none of the pending data), the login_succeeded
// entry with factors as its Detail ("password+totp", "password+passkey",
// "passkey (verified)"), and 303 to p.Next, for every client as a password
// sign-in. The passkey endpoints call it after a verified assertion; a
// script that posts with fetch then follows the redirect, or reads where
// it went from the response's url. A user disabled or removed meanwhile is
// sent back to the sign-in page instead.
func (s *Server) completeSignIn(w http.ResponseWriter, r *http.Request, p pending, factors string) {
	if _, ok := s.signInPending(w, r, p, factors); ok {
		seeOther(w, p.Next)
	}
}

// signInPending does completeSignIn's work but the answer, and returns the
// user signed in; false means it answered already.
func (s *Server) signInPending(w http.ResponseWriter, r *http.Request, p pending, factors string) (account.User, bool) {
	ctx := r.Context()
	u, err := s.cfg.Accounts.Get(ctx, p.User)
	if errors.Is(err, account.ErrNotFound) || (err == nil && u.Disabled) {
		if err := s.endPending(w, r); err != nil {
			s.unavailable(w, r, err)
			return account.User{}, false
		}
		s.cfg.Metrics.Login(metrics.LoginFailure)
		s.record(ctx, audit.Entry{Event: audit.LoginFailed, User: p.User, Reason: audit.ReasonInvalidCredentials,
			IP: s.cfg.ClientIP(r), Detail: "the account was disabled or removed before its second factor"})
		if wantsJSON(r) {
			s.writeJSON(w, r, http.StatusUnauthorized, jsonError{Error: "invalid_credentials"})
			return account.User{}, false
		}
		seeOther(w, loginURL(p.Next, ""))
		return account.User{}, false
	}
	if err != nil {
		s.unavailable(w, r, err)
		return account.User{}, false
	}
	// Of two requests finishing the same pending sign-in at once, one
	// signs in; the other finds it gone, as after a sign-out.
	if _, ok, err := p.Session.Pop(ctx, pendingUserKey); err != nil || !ok {
		if err != nil && !errors.Is(err, session.ErrNotFound) {
			s.unavailable(w, r, err)
			return account.User{}, false
		}
		s.unauthenticated(w, r, "")
		return account.User{}, false
	}
	sess, err := s.cfg.Sessions.Login(w, r, u.Name, session.LoginOptions{Policy: s.policyFor(string(u.Role))})
	if err != nil {
		s.unavailable(w, r, err)
		return account.User{}, false
	}
	s.cfg.Metrics.Login(metrics.LoginSuccess)
	s.record(ctx, audit.Entry{Event: audit.LoginSucceeded, User: u.Name, Session: sess.ID(), IP: s.cfg.ClientIP(r), Detail: factors})
	return u, true
}

// secondFactorFailed answers a second factor of p that was refused (a
// passkey whose assertion failed, or one of another user): it counts
// against the account's throttle and the pending sign-in, is audited as
// mfa_failed, and gets 401 {"error":"wrong_second_factor"} (a page for
// browsers), or, at the maxPendingFailures-th, ends the pending sign-in
// (see restartSignIn). While the account's second factors are locked it
// answers 429 with Retry-After.
func (s *Server) secondFactorFailed(w http.ResponseWriter, r *http.Request, p pending, factor account.FactorKind) {
	err := s.cfg.Authenticator.CheckSecondFactor(r.Context(), account.Attempt{Name: p.User, IP: s.cfg.ClientIP(r)},
		func(context.Context) error { return account.ErrWrongCode })
	if !errors.Is(err, account.ErrWrongCode) {
		s.secondFactorRefused(w, r, p, factor, err)
		return
	}
	s.pendingFailure(w, r, p, factor, func(msg string) { s.renderMFA(w, r, p, http.StatusUnauthorized, msg) })
}

// wrongCodeMessage answers every refused code alike: wrong, used already,
// expired or malformed.
const wrongCodeMessage = "That code is not right, or was used already. Try the next code your app shows, or a recovery code."

// pendingFailure counts a refused second factor of p (the throttle has
// counted it already) and answers it: back to the password at the
// maxPendingFailures-th, else with again(msg) for a browser, 401
// {"error":"wrong_second_factor"} for a JSON client.
func (s *Server) pendingFailure(w http.ResponseWriter, r *http.Request, p pending, factor account.FactorKind, again func(msg string)) {
	ctx := r.Context()
	p.Failures++
	s.record(ctx, audit.Entry{Event: audit.MFAFailed, User: p.User, IP: s.cfg.ClientIP(r),
		Reason: audit.ReasonInvalidCredentials, Detail: string(factor) + " at sign-in"})
	if p.Failures >= maxPendingFailures {
		s.restartSignIn(w, r, p, restartFailed)
		return
	}
	if err := p.Session.SetInt(ctx, pendingFailuresKey, int64(p.Failures)); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			s.unauthenticated(w, r, "")
			return
		}
		s.unavailable(w, r, err)
		return
	}
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusUnauthorized, jsonError{Error: "wrong_second_factor"})
		return
	}
	again(wrongCodeMessage)
}

// secondFactorRefused answers a second-factor check that decided nothing:
// locked (429, audited), busy (429) or a store that did not answer (503).
func (s *Server) secondFactorRefused(w http.ResponseWriter, r *http.Request, p pending, factor account.FactorKind, err error) {
	wait, code, msg, ok := throttledWords(err, "wrong codes")
	if !ok {
		s.unavailable(w, r, err)
		return
	}
	if code != "busy" {
		s.record(r.Context(), audit.Entry{Event: audit.MFAFailed, User: p.User, IP: s.cfg.ClientIP(r),
			Reason: audit.ReasonThrottled, Detail: string(factor) + " at sign-in"})
	}
	w.Header().Set("Retry-After", retryAfter(wait))
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusTooManyRequests, jsonError{Error: code})
		return
	}
	s.renderMFA(w, r, p, http.StatusTooManyRequests, msg)
}

// codeKind tells an authenticator code (six digits, with any spaces or
// dashes) from a recovery code, so that one field takes either.
func codeKind(code string) account.FactorKind {
	digits := 0
	for _, c := range code {
		switch {
		case '0' <= c && c <= '9':
			digits++
		case c == ' ' || c == '-':
		default:
			return account.FactorRecoveryCode
		}
	}
	if digits == account.TOTPDigits {
		return account.FactorTOTP
	}
	return account.FactorRecoveryCode
}

// checkCode verifies code, an authenticator or recovery code of user, and
// uses it up: the check that CheckSecondFactor throttles.
func (s *Server) checkCode(user, code string, kind account.FactorKind) func(context.Context) error {
	return func(ctx context.Context) error {
		if kind == account.FactorTOTP {
			return s.cfg.SecondFactors.VerifyTOTP(ctx, user, code)
		}
		return s.cfg.SecondFactors.UseRecoveryCode(ctx, user, code)
	}
}

// recordRecoveryCodeUsed notes that a recovery code stood in for the second
// factor, with how many are left: a user running out should be told.
func (s *Server) recordRecoveryCodeUsed(r *http.Request, user, sessionID, where string) {
	detail := where
	if f, err := s.cfg.SecondFactors.Factors(r.Context(), user); err == nil {
		detail += "; " + strconv.Itoa(f.RecoveryCodesLeft) + " left"
	}
	s.record(r.Context(), audit.Entry{Event: audit.RecoveryCodeUsed, User: user, Session: sessionID,
		IP: s.cfg.ClientIP(r), Detail: detail})
}

// mfaView is the data of /auth/mfa.
type mfaView struct {
	User string
	// Codes is whether the code field is offered: the policy accepts codes
	// and the user has an app or recovery codes.
	Codes bool
	// Passkey is the passkey button (passkey-second-factor).
	Passkey passkeyButton
}

func (s *Server) mfaPage(w http.ResponseWriter, r *http.Request, p pending) {
	if p.MustEnrol {
		seeOther(w, "/auth/mfa/enrol")
		return
	}
	s.renderMFA(w, r, p, http.StatusOK, "")
}

// renderMFA shows /auth/mfa with problem, if any.
func (s *Server) renderMFA(w http.ResponseWriter, r *http.Request, p pending, status int, problem string) {
	ctx := r.Context()
	f, err := s.factorsOf(ctx, p.User)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	button, err := s.passkeySecondFactorButton(ctx, p.User)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.render(w, r, status, "mfa", &view{
		Title: "Two-step sign-in",
		Error: problem,
		Content: mfaView{
			User:    p.User,
			Codes:   p.Policy.Accepts(account.FactorTOTP) && (f.TOTP || f.RecoveryCodesLeft > 0),
			Passkey: button,
		},
	})
}

// mfaSubmit checks the code of a pending sign-in: an authenticator code or
// a recovery code in the one field "code".
func (s *Server) mfaSubmit(w http.ResponseWriter, r *http.Request, p pending) {
	if !s.parseForm(w, r) {
		return
	}
	if p.MustEnrol {
		seeOther(w, "/auth/mfa/enrol")
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	kind := codeKind(code)
	if !p.Policy.Accepts(kind) {
		s.errorPage(w, r, http.StatusBadRequest, "passkey_required", "This account signs in with a passkey, not a code.")
		return
	}
	if code == "" {
		if wantsJSON(r) {
			s.writeJSON(w, r, http.StatusBadRequest, jsonError{Error: "bad_request"})
			return
		}
		s.renderMFA(w, r, p, http.StatusBadRequest, "Enter the code from your authenticator app, or a recovery code.")
		return
	}
	err := s.cfg.Authenticator.CheckSecondFactor(r.Context(), account.Attempt{Name: p.User, IP: s.cfg.ClientIP(r)},
		s.checkCode(p.User, code, kind))
	switch {
	case err == nil:
		if kind == account.FactorRecoveryCode {
			s.recordRecoveryCodeUsed(r, p.User, "", "at sign-in")
		}
		s.completeSignIn(w, r, p, "password+"+string(kind))
	case errors.Is(err, account.ErrWrongCode):
		s.pendingFailure(w, r, p, kind, func(msg string) { s.renderMFA(w, r, p, http.StatusUnauthorized, msg) })
	default:
		s.secondFactorRefused(w, r, p, kind, err)
	}
}

// totpOffer is what the enrolment page shows of a new authenticator
// secret. Secret empty: the secret was shown already, and the page asks
// only for the code again.
type totpOffer struct {
	QRCode template.URL // a data: URL of the PNG
	Secret string       // base32, in groups of four for reading
	Action string       // where the confirming code is posted
}

// mfaEnrolView is the data of the enrolment page, at sign-in
// (/auth/mfa/enrol) and from the account page (/account/mfa/totp).
type mfaEnrolView struct {
	// Forced is whether the user is signing in and must enrol first.
	Forced bool
	// TOTP is the authenticator app's enrolment; nil when only passkeys
	// count (account.MFAPasskey).
	TOTP *totpOffer
	// Passkey is the passkey registration button (passkey-register).
	Passkey passkeyButton
}

// newTOTPOffer begins an authenticator enrolment for user, to be confirmed
// at action.
func (s *Server) newTOTPOffer(ctx context.Context, user, action string) (*totpOffer, error) {
	e, err := s.cfg.SecondFactors.BeginTOTP(ctx, user)
	if err != nil {
		return nil, err
	}
	return &totpOffer{
		// The QR code travels inside the page (the CSP allows img-src
		// data:), so the secret is in no URL, log or cache but the
		// page's, which is sent no-store.
		QRCode: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRCode)),
		Secret: groupSecret(e.Secret),
		Action: action,
	}, nil
}

// groupSecret writes a base32 secret in groups of four, easier to type.
func groupSecret(secret string) string {
	var b strings.Builder
	for i := 0; i < len(secret); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(secret[i:min(i+4, len(secret))])
	}
	return b.String()
}

// enrolPage shows the enrolment a pending sign-in must complete.
func (s *Server) enrolPage(w http.ResponseWriter, r *http.Request, p pending) {
	if !p.MustEnrol {
		seeOther(w, "/auth/mfa")
		return
	}
	v := mfaEnrolView{Forced: true, Passkey: s.passkeyEnrolButton()}
	if p.Policy.Accepts(account.FactorTOTP) {
		offer, err := s.newTOTPOffer(r.Context(), p.User, "/auth/mfa/enrol")
		if err != nil {
			s.accountFailed(w, r, err)
			return
		}
		v.TOTP = offer
	}
	s.render(w, r, http.StatusOK, "mfa_enrol", &view{Title: "Set up two-step sign-in", Content: v})
}

// enrolSubmit confirms the authenticator app of a pending sign-in that had
// to enrol one, signs the user in, and shows the new recovery codes once.
func (s *Server) enrolSubmit(w http.ResponseWriter, r *http.Request, p pending) {
	if !s.parseForm(w, r) {
		return
	}
	if !p.MustEnrol {
		seeOther(w, "/auth/mfa")
		return
	}
	if !p.Policy.Accepts(account.FactorTOTP) {
		s.errorPage(w, r, http.StatusBadRequest, "passkey_required", "This account needs a passkey, not an authenticator app.")
		return
	}
	ctx := r.Context()
	again := func(msg string) {
		s.render(w, r, http.StatusUnauthorized, "mfa_enrol", &view{Title: "Set up two-step sign-in", Error: msg,
			Content: mfaEnrolView{Forced: true, TOTP: &totpOffer{Action: "/auth/mfa/enrol"}, Passkey: s.passkeyEnrolButton()}})
	}
	switch err := s.cfg.SecondFactors.ConfirmTOTP(ctx, p.User, strings.TrimSpace(r.PostForm.Get("code"))); {
	case errors.Is(err, account.ErrNoTOTPEnrolment):
		seeOther(w, "/auth/mfa/enrol")
		return
	case errors.Is(err, account.ErrWrongCode):
		s.pendingFailure(w, r, p, account.FactorTOTP, again)
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	}
	s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: p.User, IP: s.cfg.ClientIP(r), Detail: string(account.FactorTOTP)})
	codes, err := s.cfg.SecondFactors.NewRecoveryCodes(ctx, p.User)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: p.User, IP: s.cfg.ClientIP(r), Detail: "recovery_codes"})
	u, ok := s.signInPending(w, r, p, "password+totp")
	if !ok {
		return
	}
	s.showRecoveryCodes(w, r, u, codes, p.Next)
}

// recoveryCodesView is the data of the page that shows new recovery codes.
type recoveryCodesView struct {
	Codes []string
	Next  string
}

// showRecoveryCodes shows codes, just issued, once: they are in no
// session, URL or log, and the page is sent no-store. A JSON client gets
// {"recovery_codes":[...],"next":next}.
func (s *Server) showRecoveryCodes(w http.ResponseWriter, r *http.Request, u account.User, codes []string, next string) {
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			RecoveryCodes []string `json:"recovery_codes"`
			Next          string   `json:"next"`
		}{codes, next})
		return
	}
	s.render(w, r, http.StatusOK, "recovery_codes", &view{Title: "Your recovery codes", User: u.Name, Admin: u.IsAdmin(),
		Content: recoveryCodesView{Codes: codes, Next: next}})
}

// mfaSection is the "Two-step sign-in" section of the account page; nil
// when the user's policy is account.MFAOff.
type mfaSection struct {
	Policy            account.MFAPolicy
	Required          bool // the policy requires a factor
	CodesAccepted     bool // authenticator apps and recovery codes count
	TOTP              bool
	TOTPSince         time.Time
	RecoveryCodesLeft int
	Passkeys          passkeyList
	AddPasskey        passkeyButton
}

// accountMFA returns the account page's section for v's user.
func (s *Server) accountMFA(ctx context.Context, v *visit) (*mfaSection, error) {
	policy := s.mfaPolicy(v.user.Role)
	if policy == account.MFAOff || s.cfg.SecondFactors == nil {
		return nil, nil
	}
	f, err := s.cfg.SecondFactors.Factors(ctx, v.user.Name)
	if err != nil {
		return nil, err
	}
	list, err := s.passkeyList(ctx, v.user.Name)
	if err != nil {
		return nil, err
	}
	return &mfaSection{
		Policy:            policy,
		Required:          policy == account.MFARequired || policy == account.MFAPasskey,
		CodesAccepted:     policy.Accepts(account.FactorTOTP),
		TOTP:              f.TOTP,
		TOTPSince:         f.TOTPSince,
		RecoveryCodesLeft: f.RecoveryCodesLeft,
		Passkeys:          list,
		AddPasskey:        s.passkeyAddButton(),
	}, nil
}

// lastRequiredFactor reports whether removing a factor of kind (one of
// them, for passkeys) would leave v's user without a factor their policy
// requires: such a removal is refused, since the next sign-in would send
// them to enrol again, with only a password between an attacker and a
// factor of the attacker's choosing.
func (s *Server) lastRequiredFactor(ctx context.Context, v *visit, kind account.FactorKind) (bool, error) {
	policy := s.mfaPolicy(v.user.Role)
	if policy != account.MFARequired && policy != account.MFAPasskey {
		return false, nil
	}
	f, err := s.factorsOf(ctx, v.user.Name)
	if err != nil {
		return false, err
	}
	switch kind {
	case account.FactorTOTP:
		f.TOTP = false
	case account.FactorPasskey:
		f.Passkeys--
	}
	return policy.Decide(f.TOTP, max(f.Passkeys, 0)) == account.MFAMustEnrol, nil
}

// totpSetupPage begins setting up an authenticator app from the account
// page (a sensitive action: the page shows a secret). A confirmed app
// stays in use until the new one is confirmed.
func (s *Server) totpSetupPage(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.acceptsFactor(v, account.FactorTOTP) {
		s.notFound(w, r)
		return
	}
	offer, err := s.newTOTPOffer(r.Context(), v.user.Name, "/account/mfa/totp")
	if err != nil {
		s.accountFailed(w, r, err)
		return
	}
	s.renderUser(w, r, v, http.StatusOK, "mfa_enrol", &view{Title: "Set up an authenticator app", Nav: "account",
		Content: mfaEnrolView{TOTP: offer}})
}

// totpSetup confirms the authenticator app begun on totpSetupPage. A user
// without recovery codes gets a new set, shown once.
func (s *Server) totpSetup(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	if !s.acceptsFactor(v, account.FactorTOTP) {
		s.notFound(w, r)
		return
	}
	ctx := r.Context()
	switch err := s.cfg.SecondFactors.ConfirmTOTP(ctx, v.user.Name, strings.TrimSpace(r.PostForm.Get("code"))); {
	case errors.Is(err, account.ErrNoTOTPEnrolment):
		seeOther(w, "/account/mfa/totp")
		return
	case errors.Is(err, account.ErrWrongCode):
		if wantsJSON(r) {
			s.writeJSON(w, r, http.StatusBadRequest, jsonError{Error: "wrong_code"})
			return
		}
		s.renderUser(w, r, v, http.StatusBadRequest, "mfa_enrol", &view{Title: "Set up an authenticator app", Nav: "account",
			Error:   "That code is not right. Enter the code your app shows now.",
			Content: mfaEnrolView{TOTP: &totpOffer{Action: "/account/mfa/totp"}}})
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	}
	ip := s.cfg.ClientIP(r)
	s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: v.user.Name, Session: v.sess.ID(), IP: ip, Detail: string(account.FactorTOTP)})
	f, err := s.cfg.SecondFactors.Factors(ctx, v.user.Name)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if f.RecoveryCodesLeft > 0 {
		if wantsJSON(r) {
			s.writeJSON(w, r, http.StatusOK, struct {
				Enrolled bool `json:"enrolled"`
			}{true})
			return
		}
		seeOther(w, "/account?done=totp")
		return
	}
	codes, err := s.cfg.SecondFactors.NewRecoveryCodes(ctx, v.user.Name)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: v.user.Name, Session: v.sess.ID(), IP: ip, Detail: "recovery_codes"})
	s.showRecoveryCodes(w, r, v.user, codes, "/account")
}

// totpRemove removes the user's authenticator app, unless it is the last
// factor their policy requires.
func (s *Server) totpRemove(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	last, err := s.lastRequiredFactor(ctx, v, account.FactorTOTP)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if last {
		s.accountRefused(w, r, v, http.StatusConflict, "last_factor",
			"Your account must have a second factor: add a passkey before you remove the authenticator app.")
		return
	}
	switch err := s.cfg.SecondFactors.RemoveTOTP(ctx, v.user.Name); {
	case errors.Is(err, account.ErrNoTOTP):
		seeOther(w, "/account")
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	}
	s.record(ctx, audit.Entry{Event: audit.MFARemoved, User: v.user.Name, Session: v.sess.ID(), IP: s.cfg.ClientIP(r),
		Detail: string(account.FactorTOTP)})
	if wantsJSON(r) {
		s.writeJSON(w, r, http.StatusOK, struct {
			Removed bool `json:"removed"`
		}{true})
		return
	}
	seeOther(w, "/account?done=totp-removed")
}

// recoveryRegenerate replaces the user's recovery codes with new ones,
// shown once.
func (s *Server) recoveryRegenerate(w http.ResponseWriter, r *http.Request, v *visit) {
	if !s.parseForm(w, r) {
		return
	}
	if !s.acceptsFactor(v, account.FactorRecoveryCode) {
		s.notFound(w, r)
		return
	}
	ctx := r.Context()
	codes, err := s.cfg.SecondFactors.NewRecoveryCodes(ctx, v.user.Name)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.record(ctx, audit.Entry{Event: audit.MFAEnrolled, User: v.user.Name, Session: v.sess.ID(), IP: s.cfg.ClientIP(r),
		Detail: "recovery_codes"})
	s.showRecoveryCodes(w, r, v.user, codes, "/account")
}

// accountRefused answers an account-page change that is refused: JSON
// {"error": code} or the account page with msg.
func (s *Server) accountRefused(w http.ResponseWriter, r *http.Request, v *visit, status int, code, msg string) {
	if wantsJSON(r) {
		s.writeJSON(w, r, status, jsonError{Error: code})
		return
	}
	s.renderAccount(w, r, v, status, "", msg)
}

// mfaRoutes registers the second-factor pages and, once, the passkey
// endpoints.
func (s *Server) mfaRoutes() {
	s.handle("GET /auth/mfa", s.withPending(s.mfaPage))
	s.handle("POST /auth/mfa", s.withPending(s.mfaSubmit))
	s.handle("GET /auth/mfa/enrol", s.withPending(s.enrolPage))
	s.handle("POST /auth/mfa/enrol", s.withPending(s.enrolSubmit))

	s.handle("GET /account/mfa/totp", s.sensitive(s.totpSetupPage))
	s.handle("POST /account/mfa/totp", s.sensitive(s.totpSetup))
	s.handle("POST /account/mfa/totp/remove", s.sensitive(s.totpRemove))
	s.handle("POST /account/mfa/recovery", s.sensitive(s.recoveryRegenerate))

	s.passkeyRoutes()
}
