package passkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// The kinds of ceremony a state can be for.
const (
	ceremonyRegister     = "register"
	ceremonySecondFactor = "second-factor"
	ceremonyPasswordless = "passwordless"
)

// state is what a Begin call hands the caller to keep for its Finish call.
type state struct {
	Ceremony string               `json:"ceremony"`
	User     string               `json:"user,omitempty"`
	Expires  int64                `json:"expires"` // Unix nanoseconds
	Session  webauthn.SessionData `json:"session"`
}

// waUser is a user as the webauthn library sees one.
type waUser struct {
	name    string
	handle  []byte
	records []record
}

func (u *waUser) WebAuthnID() []byte          { return u.handle }
func (u *waUser) WebAuthnName() string        { return u.name }
func (u *waUser) WebAuthnDisplayName() string { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.records))
	for i, r := range u.records {
		out[i] = r.webauthn()
	}
	return out
}

// loadUser returns name's handle and passkeys (a nil handle if they never
// registered one), creating the handle if create is set.
func (s *Store) loadUser(ctx context.Context, name string, create bool) (*waUser, error) {
	h, err := s.handle(ctx, name, create)
	if err != nil || h == nil {
		return nil, err
	}
	recs, err := s.records(ctx, name)
	if err != nil {
		return nil, err
	}
	return &waUser{name: name, handle: h, records: recs}, nil
}

// newState encodes the state of a ceremony just begun.
func (s *Store) newState(ceremony, user string, sess *webauthn.SessionData) ([]byte, error) {
	return json.Marshal(state{
		Ceremony: ceremony,
		User:     user,
		Expires:  s.opts.Clock().Add(s.opts.StateTTL).UnixNano(),
		Session:  *sess,
	})
}

// useState decodes a state, checks that it is of one of the ceremonies and,
// if user is not empty, for user, and that it has not expired, and marks it
// used.
func (s *Store) useState(ctx context.Context, raw []byte, user string, ceremonies ...string) (state, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil || st.Session.Challenge == "" || !slices.Contains(ceremonies, st.Ceremony) {
		return state{}, ErrBadState
	}
	if user != "" && st.User != user {
		return state{}, ErrBadState
	}
	now := s.opts.Clock()
	if now.UnixNano() >= st.Expires {
		return state{}, ErrStateExpired
	}
	if err := s.useChallenge(ctx, st.Session.Challenge, now.Add(s.opts.StateTTL), now); err != nil {
		return state{}, err
	}
	return st, nil
}

// rejected wraps an error of the webauthn library as ErrRejected, with the
// library's developer information, which says what did not match.
func rejected(err error) error {
	if pe, ok := errors.AsType[*protocol.Error](err); ok && pe.DevInfo != "" {
		return fmt.Errorf("%w: %s (%s)", ErrRejected, pe.Details, pe.DevInfo)
	}
	return fmt.Errorf("%w: %v", ErrRejected, err)
}

// BeginRegistration starts registering a new passkey for user, who is
// signed in. It returns the options for the page, a JSON object whose
// "publicKey" member goes to PublicKeyCredential.parseCreationOptionsFromJSON
// and then navigator.credentials.create, and the state to keep for
// FinishRegistration. It asks for a discoverable credential (so the
// passkey can sign in without a user name), user verification if the
// authenticator can, and no attestation, and excludes the authenticators
// user already registered.
func (s *Store) BeginRegistration(ctx context.Context, user string) (options, state []byte, err error) {
	if !s.CeremoniesOn() {
		return nil, nil, ErrCeremoniesOff
	}
	u, err := s.loadUser(ctx, user, true)
	if err != nil {
		return nil, nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(u.records))
	for i, r := range u.records {
		c := r.webauthn()
		exclude[i] = c.Descriptor()
	}
	creation, sess, err := s.wa.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		}),
		webauthn.WithExclusions(exclude),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: beginning a registration for %s: %w", user, err)
	}
	if options, err = json.Marshal(creation); err != nil {
		return nil, nil, fmt.Errorf("passkey: beginning a registration for %s: %w", user, err)
	}
	if state, err = s.newState(ceremonyRegister, user, sess); err != nil {
		return nil, nil, fmt.Errorf("passkey: beginning a registration for %s: %w", user, err)
	}
	return options, state, nil
}

// FinishRegistration verifies the browser's answer to BeginRegistration,
// body (the JSON of the PublicKeyCredential, as its toJSON method gives
// it), against state, and stores the new passkey under name (trimmed;
// DefaultName if empty). user must be the one the registration was begun
// for.
//
// It returns an error wrapping ErrInvalidName for a bad name (the state is
// still unused then), ErrBadState or ErrStateExpired for a state that
// cannot be used, and ErrRejected for an answer that does not verify or a
// passkey already registered.
func (s *Store) FinishRegistration(ctx context.Context, user, name string, state, body []byte) (Credential, error) {
	if !s.CeremoniesOn() {
		return Credential{}, ErrCeremoniesOff
	}
	name, err := cleanName(name)
	if err != nil {
		return Credential{}, err
	}
	st, err := s.useState(ctx, state, user, ceremonyRegister)
	if err != nil {
		return Credential{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return Credential{}, rejected(err)
	}
	u, err := s.loadUser(ctx, user, false)
	if err != nil {
		return Credential{}, err
	}
	if u == nil || !bytes.Equal(u.handle, st.Session.UserID) {
		// The user's passkeys were reset since the ceremony began.
		return Credential{}, ErrBadState
	}
	cred, err := s.wa.CreateCredential(u, st.Session, parsed)
	if err != nil {
		return Credential{}, rejected(err)
	}
	return s.insert(ctx, user, name, cred, s.opts.Clock())
}

// BeginLogin starts a sign-in with a passkey. With user set, it is the
// second factor after user's password: any of user's passkeys will do, and
// user verification is preferred (FinishLogin tells whether it happened);
// a user without passkeys gives ErrNoPasskeys. With user empty, it is a
// passwordless sign-in: the browser offers every passkey it has for the
// site, and user verification is required, so that the passkey alone is
// two factors (something held, and a PIN or biometric).
//
// It returns the options for the page, a JSON object whose "publicKey"
// member goes to PublicKeyCredential.parseRequestOptionsFromJSON and then
// navigator.credentials.get, and the state to keep for FinishLogin.
func (s *Store) BeginLogin(ctx context.Context, user string) (options, state []byte, err error) {
	if !s.CeremoniesOn() {
		return nil, nil, ErrCeremoniesOff
	}
	var assertion *protocol.CredentialAssertion
	var sess *webauthn.SessionData
	ceremony := ceremonyPasswordless
	if user == "" {
		assertion, sess, err = s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	} else {
		ceremony = ceremonySecondFactor
		u, err := s.loadUser(ctx, user, false)
		if err != nil {
			return nil, nil, err
		}
		if u == nil || len(u.records) == 0 {
			return nil, nil, ErrNoPasskeys
		}
		assertion, sess, err = s.wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: beginning a sign-in: %w", err)
	}
	if options, err = json.Marshal(assertion); err != nil {
		return nil, nil, fmt.Errorf("passkey: beginning a sign-in: %w", err)
	}
	if state, err = s.newState(ceremony, user, sess); err != nil {
		return nil, nil, fmt.Errorf("passkey: beginning a sign-in: %w", err)
	}
	return options, state, nil
}

// FinishLogin verifies the browser's answer to BeginLogin, body (the JSON of
// the PublicKeyCredential, as its toJSON method gives it), against state,
// and returns the user the passkey belongs to and whether the
// authenticator verified the user (always true for a passwordless
// sign-in). It records the passkey's use and signature counter.
//
// It returns an error wrapping ErrBadState or ErrStateExpired for a state
// that cannot be used, ErrRejected for an answer that does not verify
// (including a passkey removed since BeginLogin, or another user's passkey
// as a second factor), and ErrCloned when the passkey's counter went
// backwards.
func (s *Store) FinishLogin(ctx context.Context, state, body []byte) (user string, userVerified bool, err error) {
	if !s.CeremoniesOn() {
		return "", false, ErrCeremoniesOff
	}
	st, err := s.useState(ctx, state, "", ceremonySecondFactor, ceremonyPasswordless)
	if err != nil {
		return "", false, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return "", false, rejected(err)
	}
	var cred *webauthn.Credential
	if st.Ceremony == ceremonySecondFactor {
		u, err := s.loadUser(ctx, st.User, false)
		if err != nil {
			return "", false, err
		}
		if u == nil {
			return "", false, fmt.Errorf("%w: the user's passkeys were removed", ErrRejected)
		}
		if cred, err = s.wa.ValidateLogin(u, st.Session, parsed); err != nil {
			return "", false, rejected(err)
		}
		user = u.name
	} else {
		// A database error is the server's problem, not a refused
		// passkey: it is kept to be returned as it is.
		var dbErr error
		find := func(_, handle []byte) (webauthn.User, error) {
			name, err := s.userByHandle(ctx, handle)
			if err != nil {
				dbErr = err
				return nil, err
			}
			if name == "" {
				return nil, errors.New("no user has this passkey")
			}
			u, err := s.loadUser(ctx, name, false)
			if err != nil {
				dbErr = err
				return nil, err
			}
			if u == nil {
				return nil, errors.New("the user's passkeys were removed")
			}
			return u, nil
		}
		found, c, err := s.wa.ValidatePasskeyLogin(find, st.Session, parsed)
		if dbErr != nil {
			return "", false, dbErr
		}
		if err != nil {
			return "", false, rejected(err)
		}
		cred, user = c, found.(*waUser).name
	}
	flags := parsed.Response.AuthenticatorData.Flags
	if err := s.recordUse(ctx, user, cred.ID, cred.Flags.BackupEligible, flags.HasBackupState(), parsed.Response.AuthenticatorData.Counter, s.opts.Clock()); err != nil {
		return "", false, err
	}
	return user, flags.HasUserVerified(), nil
}
