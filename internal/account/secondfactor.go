package account

import (
	"context"
	"errors"
)

// ScopeSecondFactor: too many wrong second factors (authenticator or
// recovery codes, refused passkeys) after a right password for this user
// name. Only someone who knows the password gets this far, so the lock holds
// back further sign-ins of the account, never a session already signed in.
const ScopeSecondFactor ThrottleScope = "second_factor"

// CheckSecondFactor runs check, the verification of a second factor for
// at.Name, counting it like a password attempt: an error wrapping
// ErrWrongCode from check is a failure, nil a success, and any other error
// counts for nothing and is returned as it is.
//
// A sign-in's factor (at.Session empty) counts against the user name
// (ScopeSecondFactor), so that starting new sign-ins with the password does
// not buy new guesses. A re-authentication's (at.Session set) counts against
// that session alone, sharing the budget of its passwords (ScopeSession):
// nobody else's failures can stop a signed-in user from proving who they
// are. It returns a *ThrottledError, without calling check, when the key is
// locked, and check's error otherwise. To count a failure found elsewhere (a
// refused passkey), pass a check that returns ErrWrongCode.
func (a *Authenticator) CheckSecondFactor(ctx context.Context, at Attempt, check func(context.Context) error) error {
	name, err := NormalizeName(at.Name)
	if err != nil {
		return ErrWrongCode
	}
	key := throttleKey{scope: ScopeSecondFactor, subject: name, policy: a.opts.AccountThrottle, user: name}
	if at.Session != "" {
		session := at.Session
		if len(session) > maxSessionKey {
			session = session[:maxSessionKey]
		}
		key = throttleKey{scope: ScopeSession, subject: session, policy: a.opts.AccountThrottle, user: name}
	}
	res, err := a.throttle.begin(ctx, []throttleKey{key}, at.IP)
	if err != nil {
		return err
	}
	err = check(ctx)
	switch {
	case err == nil:
		res.succeed(ctx)
		return nil
	case errors.Is(err, ErrWrongCode):
		if ferr := res.fail(ctx); ferr != nil {
			// Uncounted, the verdict would be a free guess.
			return ferr
		}
		return err
	}
	res.cancel(ctx)
	return err
}
