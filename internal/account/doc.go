// Package account keeps the server's users and checks their passwords.
//
// A Store holds the users in the shared SQL database (package sqldb):
// a name, a role, an argon2id password hash and a disabled flag. An
// Authenticator checks sign-ins against it, with the defences a public sign-in
// form needs:
//
//   - The same argon2id work for every attempt, whether the user exists, is
//     disabled, or gave a wrong password, and one error (ErrInvalidCredentials)
//     for all three, so that neither the answer nor its timing tells an
//     attacker which names exist.
//   - Throttling of failed attempts per account and per client address, with
//     a lockout that doubles each time it is reached (ThrottledError, for a
//     429 with Retry-After). Only failures count, never successes or attempts
//     in progress; but while an account is locked, even the right password
//     waits, or guessing would simply continue. The lock holds back strangers
//     only: the account's known devices and addresses (RememberClient) and
//     its signed-in sessions re-authenticating (Verify) each have a limit of
//     their own, so that failing on purpose cannot lock a user out. Counts
//     and locks live in the database, shared by every server on it.
//   - A bounded number of password hashes at once, and a bounded queue behind
//     them, so a flood of sign-in attempts costs a fixed amount of CPU and
//     memory and fails fast beyond it, leaving the server to its signed-in
//     users (whose requests never hash a password).
//
// # User names
//
// A name is 1 to 64 ASCII letters, digits and the characters . _ - @,
// starting with a letter or a digit ("alice", "bob.smith@example.com"). Names
// are case-insensitive: they are folded to lower case on the way in, so
// "Alice" signs in as "alice" and cannot be created beside her. Non-ASCII
// letters are refused rather than normalised, because look-alike characters
// from other scripts would make two different accounts read the same. A name
// never changes: the session layer identifies users by it.
//
// # Passwords
//
// Passwords follow NIST SP 800-63B-4 §3.1.1.2 for passwords used as the only
// factor: at least MinPasswordLength (15) characters, counted in Unicode code
// points after NFKC normalisation, at most MaxPasswordLength (128), any
// printable character including spaces and emoji, and no composition rules
// (no "one digit and one symbol"). Instead, CheckPassword refuses the guessable
// shapes the standard names: one pattern repeated, a run like "abcdef..." or
// "123456...", and passwords that are mostly the user name, the service name
// or common words and keyboard walks.
//
// Hashes are argon2id in the PHC string format
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash), with OWASP's parameters by
// default (DefaultParams). The parameters are read back from each stored
// hash, so they can be raised later: a successful sign-in re-hashes a
// password whose hash has other parameters than the Store's (NeedsRehash).
//
// # The first administrator
//
// There is no default password. A server with no accounts issues a one-time
// SetupToken (Store.NewSetupToken), prints a link with it, and creates the
// first administrator with Store.CreateFirstAdmin inside SetupToken.Use. The
// token's hash lives in the database, so the link works on every instance
// that shares it.
package account
