// Package passkey keeps users' passkeys (WebAuthn credentials) in the
// server's database and runs the two WebAuthn ceremonies on them, with
// github.com/go-webauthn/webauthn doing the verification.
//
// A ceremony is two calls with a round trip through the browser between
// them:
//
//	options, state, err := store.BeginLogin(ctx, "")  // "" asks for any passkey: passwordless
//	// keep state in the (anonymous) session; send options to the page, which
//	// calls navigator.credentials.get and posts the credential's JSON back
//	user, verified, err := store.FinishLogin(ctx, state, body)
//
// The state is opaque: it is bound to its kind of ceremony (and, for a
// registration or a second-factor sign-in, to its user), it expires after
// Options.StateTTL, and Finish accepts it once, across every process on the
// database, so a captured answer cannot be replayed. Keep it server-side, in
// the session, never in a cookie or a form.
//
// The package knows nothing of accounts, sessions or policy: the caller
// decides whether a verified user counts as two factors, and calls
// RemoveAll when an account is reset or deleted.
package passkey
